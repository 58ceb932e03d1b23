-- Everything the extension defines, one line per object, with its full
-- definition and privileges: two databases whose extensions have the same
-- fingerprint have the same schema (used by upgrade_keeps_the_schema.sh).
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'audit_log'),
member AS (
    SELECT d.classid, d.objid
      FROM pg_depend d, ext
     WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
)
SELECT line FROM (
    -- Functions: whole definition, owner-independent privileges.
    SELECT 'function ' || p.oid::regprocedure || E'\n' || pg_get_functiondef(p.oid)
           || E'\nacl ' || coalesce(p.proacl::text, 'default') AS line
      FROM member m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid
    UNION ALL
    -- Tables, views, sequences, types' relations: columns, defaults, privileges.
    SELECT 'relation ' || c.oid::regclass || ' kind ' || c.relkind::text
           || E'\ncolumns ' || coalesce((
                  SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                                    || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
                                    || coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), ''),
                                    ', ' ORDER BY a.attnum)
                    FROM pg_attribute a
                    LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
                   WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '')
           || coalesce(E'\nview ' || pg_get_viewdef(c.oid), '')
           || E'\nacl ' || coalesce(c.relacl::text, 'default')
      FROM member m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
    UNION ALL
    -- Constraints, indexes and triggers of the extension's tables.
    SELECT 'constraint ' || con.conrelid::regclass || ' ' || con.conname || ' ' || pg_get_constraintdef(con.oid)
      FROM member m JOIN pg_constraint con ON m.classid = 'pg_class'::regclass AND con.conrelid = m.objid
    UNION ALL
    SELECT 'index ' || pg_get_indexdef(i.indexrelid)
      FROM member m JOIN pg_index i ON m.classid = 'pg_class'::regclass AND i.indrelid = m.objid
    UNION ALL
    SELECT 'trigger ' || pg_get_triggerdef(t.oid) || ' enabled ' || t.tgenabled::text
      FROM member m JOIN pg_trigger t ON m.classid = 'pg_class'::regclass AND t.tgrelid = m.objid
     WHERE NOT t.tgisinternal
    UNION ALL
    SELECT 'event trigger ' || e.evtname || ' on ' || e.evtevent || ' ' || e.evtfoid::regproc
           || ' tags ' || coalesce(e.evttags::text, 'all') || ' enabled ' || e.evtenabled::text
      FROM member m JOIN pg_event_trigger e ON m.classid = 'pg_event_trigger'::regclass AND e.oid = m.objid
    UNION ALL
    SELECT 'type ' || t.oid::regtype || ' ' || t.typtype::text
      FROM member m JOIN pg_type t ON m.classid = 'pg_type'::regclass AND t.oid = m.objid
    UNION ALL
    SELECT 'schema ' || n.nspname || ' acl ' || coalesce(n.nspacl::text, 'default')
      FROM member m JOIN pg_namespace n ON m.classid = 'pg_namespace'::regclass AND n.oid = m.objid
    UNION ALL
    SELECT 'other ' || pg_describe_object(m.classid, m.objid, 0)
      FROM member m
     WHERE m.classid NOT IN ('pg_proc'::regclass, 'pg_class'::regclass, 'pg_event_trigger'::regclass,
                             'pg_type'::regclass, 'pg_namespace'::regclass)
    UNION ALL
    SELECT 'config ' || c::regclass || ' filter ' || coalesce(f, '')
      FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS x(c, f)
     WHERE e.extname = 'audit_log'
) AS fingerprint
ORDER BY line;
