//! Per-backend state.

/// A value that lives as long as the backend process. A Postgres backend runs
/// its queries on one thread, so these statics are never shared across threads;
/// being statics, they are never dropped, so nothing runs at process exit.
pub struct BackendLocal<T>(T);

// SAFETY: a backend touches its state from its single main thread only.
unsafe impl<T> Sync for BackendLocal<T> {}

impl<T> BackendLocal<T> {
    pub const fn new(value: T) -> Self {
        Self(value)
    }

    pub fn get(&self) -> &T {
        &self.0
    }
}
