//! The parts of the `audit-log` command, a library so that its integration
//! tests (and an auditor's own tools) can use them.

pub mod archive;
pub mod csv_rows;
pub mod csv_source;
pub mod export_check;
pub mod key_files;
pub mod keys;
pub mod witness;
