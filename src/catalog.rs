//! What capture needs to know about a table, computed once and cached per
//! backend until the table, its tracked ancestor or the tracking options change.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString};
use std::rc::Rc;

use pgrx::pg_sys;

use crate::backend::BackendLocal;
use crate::capture_triggers;
use crate::ffi::{attributes, get_partition_ancestors};
use crate::generated::VirtualColumns;
use crate::jsonb::{KeyPolicy, ValueKind};
use crate::storage;

pub struct Column {
    pub name: CString,
    /// Attribute number in the table that fired the trigger (a leaf partition
    /// may order its columns differently from the tracked table).
    pub attnum: i16,
    pub len: i16,
    pub byval: bool,
    pub policy: KeyPolicy,
    pub kind: ValueKind,
}

pub struct TableInfo {
    /// The tracked table (the partitioned parent for a partition), quoted as SQL needs.
    pub entity: CString,
    pub root: pg_sys::Oid,
    /// The tracked table's columns, in its order.
    pub columns: Vec<Column>,
    /// The columns in jsonb key order (shorter names first, then bytewise):
    /// building an object in that order leaves PostgreSQL nothing to sort.
    pub render_order: Vec<usize>,
    /// The primary-key (or replica-identity index) columns, as positions in `columns`.
    pub keys: Vec<usize>,
    /// A column holds money, or an array of it: its rendering depends on lc_monetary.
    pub renders_money: bool,
    /// The syscache hash of the tracked table's schema, whose name `entity` holds.
    pub schema_hash: u32,
    /// PostgreSQL 18's virtual generated columns, computed for each row.
    pub virtual_columns: Option<VirtualColumns>,
    /// The triggers allowed to capture this relation's changes.
    pub allowed_triggers: capture_triggers::Allowed,
    mcxt: pg_sys::MemoryContext,
}

impl Drop for TableInfo {
    fn drop(&mut self) {
        unsafe { pg_sys::MemoryContextDelete(self.mcxt) };
    }
}

/// Per relation whose trigger fired: its capture metadata, None when it is
/// not tracked. Indexed by tracked table too: an invalidation of a tracked
/// table evicts its partitions' entries without a scan of the whole cache,
/// which a session that wrote to thousands of tables would pay at every DDL.
#[derive(Default)]
struct Cache {
    tables: HashMap<pg_sys::Oid, Option<Rc<TableInfo>>>,
    by_root: HashMap<pg_sys::Oid, HashSet<pg_sys::Oid>>,
}

static TABLES: BackendLocal<RefCell<Option<Cache>>> = BackendLocal::new(RefCell::new(None));

/// The capture metadata of the table `rel`, or None when neither it nor an
/// ancestor is tracked (a trigger that track() did not create records nothing).
///
/// # Safety
/// `rel` must be an open relation.
pub unsafe fn table_info(rel: pg_sys::Relation) -> Option<Rc<TableInfo>> {
    let relid = (*rel).rd_id;
    // No borrow is held across Postgres calls: an invalidation may arrive in any of them.
    let cached = TABLES
        .get()
        .borrow()
        .as_ref()
        .and_then(|cache| cache.tables.get(&relid).cloned());
    if let Some(info) = cached {
        return info;
    }
    let info = build(rel).map(Rc::new);
    let mut tables = TABLES.get().borrow_mut();
    let cache = tables.get_or_insert_with(Cache::default);
    if let Some(root) = info.as_ref().map(|i| i.root).filter(|root| *root != relid) {
        cache.by_root.entry(root).or_default().insert(relid);
    }
    cache.tables.insert(relid, info.clone());
    info
}

/// Relcache invalidation: the table changed shape, was renamed, had its
/// triggers changed, or was attached or detached. Entries whose tracked table
/// is `relid` go too, since their entity name and options came from it.
pub fn invalidate(relid: pg_sys::Oid) {
    let evicted: Vec<_> = {
        let mut tables = TABLES.get().borrow_mut();
        let Some(cache) = tables.as_mut() else { return };
        if relid == pg_sys::InvalidOid {
            cache.by_root.clear();
            cache.tables.drain().map(|(_, info)| info).collect()
        } else {
            let dependents = cache.by_root.remove(&relid).unwrap_or_default();
            std::iter::once(relid)
                .chain(dependents)
                .filter_map(|oid| cache.tables.remove(&oid))
                .collect()
        }
    };
    // Dropped outside the borrow: dropping deletes memory contexts.
    drop(evicted);
}

/// A schema changed (renamed, say): the entries whose entity names it go.
/// `hash` is the syscache hash of its OID; 0 means any schema may have.
pub fn invalidate_schema(hash: u32) {
    if hash == 0 {
        return invalidate(pg_sys::InvalidOid);
    }
    let evicted: Vec<_> = {
        let mut tables = TABLES.get().borrow_mut();
        let Some(cache) = tables.as_mut() else { return };
        let stale: Vec<_> = cache
            .tables
            .iter()
            .filter(|(_, info)| info.as_ref().is_some_and(|i| i.schema_hash == hash))
            .map(|(oid, _)| *oid)
            .collect();
        stale
            .into_iter()
            .filter_map(|oid| cache.tables.remove(&oid))
            .collect()
    };
    drop(evicted);
}

unsafe fn build(rel: pg_sys::Relation) -> Option<TableInfo> {
    let relid = (*rel).rd_id;
    let (root, options) = tracked_ancestor_or_self(rel)?;
    let root_rel = if root == relid {
        rel
    } else {
        pg_sys::relation_open(root, pg_sys::AccessShareLock as _)
    };

    let entity = qualified_name(root_rel);
    let schema_hash = pg_sys::GetSysCacheHashValue(
        pg_sys::SysCacheIdentifier::NAMESPACEOID as _,
        pg_sys::Datum::from((*(*root_rel).rd_rel).relnamespace),
        pg_sys::Datum::from(0),
        pg_sys::Datum::from(0),
        pg_sys::Datum::from(0),
    );
    let key_names = key_columns(root_rel);
    let mcxt = pg_sys::AllocSetContextCreateExtended(
        pg_sys::CurrentMemoryContext,
        c"audit_log table info".as_ptr(),
        pg_sys::ALLOCSET_SMALL_MINSIZE as _,
        pg_sys::ALLOCSET_SMALL_INITSIZE as _,
        pg_sys::ALLOCSET_SMALL_MAXSIZE as _,
    );

    let renders_money = live_attributes(root_rel).any(|attr| {
        let base = pg_sys::getBaseType(attr.atttypid);
        let element = pg_sys::get_element_type(base);
        base == pg_sys::MONEYOID
            || (element != pg_sys::InvalidOid && pg_sys::getBaseType(element) == pg_sys::MONEYOID)
    });
    let leaf_attnums: HashMap<&[u8], &pg_sys::FormData_pg_attribute> = live_attributes(rel)
        .map(|attr| (CStr::from_ptr(attr.attname.data.as_ptr()).to_bytes(), attr))
        .collect();
    let columns: Vec<Column> = live_attributes(root_rel)
        .filter_map(|attr| {
            let name = CStr::from_ptr(attr.attname.data.as_ptr());
            let leaf = leaf_attnums.get(name.to_bytes())?;
            let policy = if options.exclude_columns.iter().any(|c| c.as_c_str() == name) {
                KeyPolicy::Drop
            } else if options.redact_columns.iter().any(|c| c.as_c_str() == name) {
                KeyPolicy::Redact
            } else {
                KeyPolicy::Keep
            };
            Some(Column {
                name: name.to_owned(),
                attnum: leaf.attnum,
                len: leaf.attlen,
                byval: leaf.attbyval,
                policy,
                kind: ValueKind::of(leaf.atttypid, mcxt),
            })
        })
        .collect();

    if root_rel != rel {
        pg_sys::relation_close(root_rel, pg_sys::NoLock as _);
    }

    let mut render_order: Vec<usize> = (0..columns.len()).collect();
    render_order.sort_by(|&a, &b| {
        let (a, b) = (columns[a].name.to_bytes(), columns[b].name.to_bytes());
        a.len().cmp(&b.len()).then_with(|| a.cmp(b))
    });
    let keys = key_names
        .iter()
        .filter_map(|key| columns.iter().position(|c| c.name == *key))
        .collect();
    let caller = pg_sys::MemoryContextSwitchTo(mcxt);
    let virtual_columns = VirtualColumns::of(rel);
    pg_sys::MemoryContextSwitchTo(caller);
    // Built under the caller's memory until complete, so an error leaks nothing.
    pg_sys::MemoryContextSetParent(mcxt, pg_sys::CacheMemoryContext);
    Some(TableInfo {
        entity,
        root,
        columns,
        render_order,
        keys,
        renders_money,
        schema_hash,
        virtual_columns,
        allowed_triggers: Default::default(),
        mcxt,
    })
}

/// The tracked table whose changes `rel`'s are: `rel` or a partition ancestor.
///
/// # Safety
/// `rel` must be an open relation.
pub unsafe fn tracked_root(rel: pg_sys::Relation) -> Option<pg_sys::Oid> {
    tracked_ancestor_or_self(rel).map(|(root, _)| root)
}

/// The topmost tracked table among `rel` and its partition ancestors.
unsafe fn tracked_ancestor_or_self(
    rel: pg_sys::Relation,
) -> Option<(pg_sys::Oid, storage::TrackOptions)> {
    let relid = (*rel).rd_id;
    let mut candidates = Vec::new();
    if (*(*rel).rd_rel).relispartition {
        let ancestors = get_partition_ancestors(relid);
        if !ancestors.is_null() {
            let cells =
                std::slice::from_raw_parts((*ancestors).elements, (*ancestors).length as usize);
            // Listed from the immediate parent up to the top: the top wins.
            candidates.extend(cells.iter().rev().map(|cell| cell.oid_value));
        }
    }
    candidates.push(relid);
    candidates.into_iter().find_map(|candidate| {
        storage::tracked_options(candidate).map(|options| (candidate, options))
    })
}

unsafe fn live_attributes<'a>(
    rel: pg_sys::Relation,
) -> impl Iterator<Item = &'a pg_sys::FormData_pg_attribute> {
    attributes((*rel).rd_att)
        .into_iter()
        .filter(|attr| !attr.attisdropped)
}

/// `schema.table`, each part quoted only where SQL needs it.
pub unsafe fn qualified_name(rel: pg_sys::Relation) -> CString {
    let form = (*rel).rd_rel;
    let schema = pg_sys::get_namespace_name((*form).relnamespace);
    let name = pg_sys::quote_qualified_identifier(schema, (*form).relname.data.as_ptr());
    CStr::from_ptr(name).to_owned()
}

/// The columns that identify a row: the primary key, else the replica-identity index.
unsafe fn key_columns(rel: pg_sys::Relation) -> Vec<CString> {
    #[cfg(not(feature = "pg18"))]
    let mut index = pg_sys::RelationGetPrimaryKeyIndex(rel);
    #[cfg(feature = "pg18")]
    let mut index = pg_sys::RelationGetPrimaryKeyIndex(rel, false);
    if index == pg_sys::InvalidOid
        && (*(*rel).rd_rel).relreplident == pg_sys::REPLICA_IDENTITY_INDEX as std::ffi::c_char
    {
        index = pg_sys::RelationGetReplicaIndex(rel);
    }
    if index == pg_sys::InvalidOid {
        return Vec::new();
    }
    let index_rel = pg_sys::index_open(index, pg_sys::AccessShareLock as _);
    let form = (*index_rel).rd_index;
    let nkeys = (*form).indnkeyatts as usize;
    let attrs = attributes((*rel).rd_att);
    let keys = (*form)
        .indkey
        .values
        .as_slice(nkeys)
        .iter()
        .filter(|attnum| **attnum > 0)
        .map(|attnum| {
            let attr = attrs[*attnum as usize - 1];
            CStr::from_ptr(attr.attname.data.as_ptr()).to_owned()
        })
        .collect();
    pg_sys::index_close(index_rel, pg_sys::AccessShareLock as _);
    keys
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use super::*;
    use pgrx::prelude::*;

    fn info_of(table: &str) -> Option<Rc<TableInfo>> {
        let relid = Spi::get_one::<pg_sys::Oid>(&format!("SELECT '{table}'::regclass::oid"))
            .unwrap()
            .unwrap();
        unsafe {
            let rel = pg_sys::relation_open(relid, pg_sys::AccessShareLock as _);
            let info = table_info(rel);
            pg_sys::relation_close(rel, pg_sys::AccessShareLock as _);
            info
        }
    }

    fn column_names(info: &TableInfo) -> Vec<(String, KeyPolicy)> {
        info.columns
            .iter()
            .map(|c| (c.name.to_str().unwrap().to_owned(), c.policy))
            .collect()
    }

    #[pg_test]
    fn untracked_tables_have_no_info() {
        Spi::run("CREATE TABLE plain (id int PRIMARY KEY)").unwrap();
        assert!(info_of("plain").is_none());
    }

    #[pg_test]
    fn info_follows_alter_table_and_retracking_in_the_same_session() {
        Spi::run("CREATE TABLE t (id int PRIMARY KEY, a text, secret text)").unwrap();
        Spi::run("SELECT audit_log.track('t', redact_columns => '{secret}')").unwrap();
        let first = info_of("t").unwrap();
        assert_eq!(first.entity.to_str().unwrap(), "public.t");
        assert_eq!(first.keys, vec![0]);
        assert_eq!(
            column_names(&first),
            vec![
                ("id".into(), KeyPolicy::Keep),
                ("a".into(), KeyPolicy::Keep),
                ("secret".into(), KeyPolicy::Redact)
            ]
        );
        // Cached: the same entry comes back while nothing changes.
        assert!(Rc::ptr_eq(&first, &info_of("t").unwrap()));

        Spi::run("ALTER TABLE t ADD COLUMN b int").unwrap();
        let altered = info_of("t").unwrap();
        assert!(!Rc::ptr_eq(&first, &altered));
        assert_eq!(altered.columns.len(), 4);

        Spi::run("SELECT audit_log.track('t', exclude_columns => '{a}')").unwrap();
        let retracked = info_of("t").unwrap();
        let policies: Vec<_> = column_names(&retracked)
            .into_iter()
            .map(|(_, policy)| policy)
            .collect();
        assert_eq!(
            policies,
            vec![
                KeyPolicy::Keep,
                KeyPolicy::Drop,
                KeyPolicy::Keep,
                KeyPolicy::Keep
            ]
        );
        // Rendered in jsonb key order: by length, then bytewise.
        let order: Vec<_> = retracked
            .render_order
            .iter()
            .map(|&i| retracked.columns[i].name.to_str().unwrap())
            .collect();
        assert_eq!(order, vec!["a", "b", "id", "secret"]);

        Spi::run("ALTER TABLE t RENAME TO t2").unwrap();
        assert_eq!(info_of("t2").unwrap().entity.to_str().unwrap(), "public.t2");
    }

    #[pg_test]
    fn partitions_resolve_to_the_tracked_parent_with_their_own_attribute_numbers() {
        Spi::run("CREATE TABLE p (k int, v text, PRIMARY KEY (k)) PARTITION BY RANGE (k)").unwrap();
        Spi::run("CREATE TABLE p1 (v text, k int NOT NULL)").unwrap();
        Spi::run("ALTER TABLE p ATTACH PARTITION p1 FOR VALUES FROM (0) TO (10)").unwrap();
        Spi::run("SELECT audit_log.track('p')").unwrap();
        let leaf = info_of("p1").unwrap();
        assert_eq!(leaf.entity.to_str().unwrap(), "public.p");
        // The parent's column order, the leaf's attribute numbers.
        let layout: Vec<_> = leaf
            .columns
            .iter()
            .map(|c| (c.name.to_str().unwrap(), c.attnum))
            .collect();
        assert_eq!(layout, vec![("k", 2), ("v", 1)]);

        Spi::run("SELECT audit_log.untrack('p')").unwrap();
        assert!(info_of("p1").is_none());
    }

    fn oid_of(table: &str) -> pg_sys::Oid {
        Spi::get_one::<pg_sys::Oid>(&format!("SELECT '{table}'::regclass::oid"))
            .unwrap()
            .unwrap()
    }

    #[pg_test]
    fn other_schemas_changing_leave_the_cache_alone() {
        Spi::run("CREATE SCHEMA s1").unwrap();
        Spi::run("CREATE TABLE s1.t (id int PRIMARY KEY)").unwrap();
        Spi::run("SELECT audit_log.track('s1.t')").unwrap();
        let cached = info_of("s1.t").unwrap();
        // Any CREATE SCHEMA or GRANT on a schema used to empty every
        // session's cache.
        Spi::run("CREATE SCHEMA s2").unwrap();
        Spi::run("GRANT USAGE ON SCHEMA s2 TO PUBLIC").unwrap();
        assert!(Rc::ptr_eq(&cached, &info_of("s1.t").unwrap()));
        // Its own schema renamed, the entity follows.
        Spi::run("ALTER SCHEMA s1 RENAME TO s1b").unwrap();
        assert_eq!(info_of("s1b.t").unwrap().entity.to_str().unwrap(), "s1b.t");
    }

    #[pg_test]
    fn a_tracked_table_invalidated_takes_its_partitions_entries_only() {
        Spi::run("CREATE TABLE p (k int PRIMARY KEY) PARTITION BY RANGE (k)").unwrap();
        Spi::run("CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (10)").unwrap();
        Spi::run("CREATE TABLE p2 PARTITION OF p FOR VALUES FROM (10) TO (20)").unwrap();
        Spi::run("CREATE TABLE q (k int PRIMARY KEY)").unwrap();
        Spi::run("SELECT audit_log.track('p')").unwrap();
        Spi::run("SELECT audit_log.track('q')").unwrap();
        let (p1, p2, q) = (
            info_of("p1").unwrap(),
            info_of("p2").unwrap(),
            info_of("q").unwrap(),
        );
        invalidate(oid_of("p"));
        assert!(!Rc::ptr_eq(&p1, &info_of("p1").unwrap()));
        assert!(!Rc::ptr_eq(&p2, &info_of("p2").unwrap()));
        assert!(Rc::ptr_eq(&q, &info_of("q").unwrap()));
        // A partition invalidated alone leaves its siblings.
        let p2 = info_of("p2").unwrap();
        invalidate(oid_of("p1"));
        assert!(Rc::ptr_eq(&p2, &info_of("p2").unwrap()));
    }
}
