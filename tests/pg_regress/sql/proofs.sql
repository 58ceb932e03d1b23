-- Proofs for auditors (API section 7). export_proof() returns a JSON
-- document that the audit-log command checks offline (tests/shell/
-- auditor_proofs.sh does, with tampering); here, what the database side
-- promises: the parts of the proof, the errors, signatures and who may do what.
CREATE TABLE proof_demo (id int PRIMARY KEY, label text);
SELECT audit_log.track('proof_demo');
SET audit_log.actor = 'proof.alice';
INSERT INTO proof_demo SELECT g, 'label ' || g FROM generate_series(1, 40) g;
SET audit_log.actor = 'proof.bob';
UPDATE proof_demo SET label = 'changed, "quoted"' WHERE id <= 5;
RESET audit_log.actor;
CALL seal_everything();

-- The proof embeds the latest checkpoint, with its signatures, and names
-- every exported event's leaf and leaf hash, as the tree stores them.
SELECT p ->> 'format' AS format,
       p -> 'complete' AS complete,
       jsonb_array_length(p -> 'events') AS events,
       jsonb_array_length(p -> 'unsealed') AS unsealed,
       p ? 'stretch' AS has_stretch,
       p ->> 'checkpoint' = audit_log.checkpoint() AS embeds_the_latest_checkpoint,
       p -> 'filters' ->> 'actor' AS actor
  FROM (SELECT audit_log.export_proof(actor => 'proof.bob')::jsonb AS p) AS s;
SELECT bool_and(l.leaf_index = (e ->> 1)::bigint
                AND l.leaf_hash = decode(e ->> 2, 'base64')) AS leaves_as_stored,
       count(*) AS events
  FROM jsonb_array_elements((audit_log.export_proof(actor => 'proof.bob')::jsonb) -> 'events') AS e
  JOIN audit_log.tree_leaves l ON l.event_id = (e ->> 0)::bigint;
-- In the export's order.
SELECT array_agg((e ->> 0)::bigint ORDER BY n) = (SELECT array_agg(x.id::bigint) FROM audit_log.export(actor => 'proof.bob') AS x)
       AS in_export_order
  FROM jsonb_array_elements((audit_log.export_proof(actor => 'proof.bob')::jsonb) -> 'events') WITH ORDINALITY AS t(e, n);
-- Filters are recorded as export() applied them: the entity as the names it
-- stands for, the action as stored.
SELECT p -> 'filters' -> 'entity' -> 'segments' AS entity_segments, p -> 'filters' ->> 'action' AS action
  FROM (SELECT audit_log.export_proof(entity => 'proof_demo', action => 'update')::jsonb AS p) AS s;

-- Events not sealed yet are listed as unsealed, never proven.
SET audit_log.actor = 'proof.bob';
INSERT INTO proof_demo VALUES (41, 'late');
RESET audit_log.actor;
SELECT jsonb_array_length(p -> 'events') AS events, jsonb_array_length(p -> 'unsealed') AS unsealed
  FROM (SELECT audit_log.export_proof(actor => 'proof.bob')::jsonb AS p) AS s;
CALL seal_everything();

-- complete: the stretch of the tree the period bounds, every other leaf of
-- it revealed by header and body hash, never by its values. A period with
-- no end is always open.
SELECT p -> 'stretch' -> 'open' AS open,
       (p -> 'stretch' ->> 'end')::bigint = (SELECT max(tree_size) FROM audit_log.seals) AS to_the_end,
       (SELECT count(*) FROM jsonb_array_elements(p -> 'stretch' -> 'leaves') AS l
         WHERE l ->> 'kind' = 'event' AND l ? 'body_hash' AND NOT l ? 'new_values') > 0 AS headers_only,
       (SELECT count(*) FROM jsonb_array_elements(p -> 'stretch' -> 'leaves') AS l
         WHERE l ->> 'kind' = 'seal') > 0 AS seal_leaves_whole
  FROM (SELECT audit_log.export_proof(actor => 'proof.bob', complete => true)::jsonb AS p) AS s;
-- A closed period: from the last seal before it through the seal after it.
SELECT (p -> 'stretch' -> 'open')::boolean AS open,
       (p -> 'stretch' ->> 'end')::bigint - (p -> 'stretch' ->> 'first')::bigint
           < (SELECT max(tree_size) FROM audit_log.seals) AS shorter_than_the_tree
  FROM (SELECT audit_log.export_proof(since => (SELECT min(sealed_at) FROM audit_log.seals),
                                      until => (SELECT min(horizon) FROM audit_log.seals
                                                 WHERE horizon > (SELECT min(sealed_at) FROM audit_log.seals)),
                                      complete => true)::jsonb AS p) AS s;
-- Closed by the latest seal: the stretch runs to the end of the tree.
SELECT (p -> 'stretch' -> 'open')::boolean AS open,
       (p -> 'stretch' ->> 'end')::bigint = (SELECT max(tree_size) FROM audit_log.seals) AS to_the_end
  FROM (SELECT audit_log.export_proof(since => (SELECT sealed_at FROM audit_log.seals
                                                 ORDER BY tree_size DESC OFFSET 1 LIMIT 1),
                                      until => (SELECT max(horizon) FROM audit_log.seals),
                                      complete => true)::jsonb AS p) AS s;

-- With the auditor's earlier checkpoint, a consistency proof from it.
SELECT audit_log.checkpoint((SELECT min(tree_size) FROM audit_log.seals)) AS old \gset
SELECT (p -> 'consistency' ->> 'old_size')::bigint = (SELECT min(tree_size) FROM audit_log.seals) AS from_the_old_size,
       jsonb_array_length(p -> 'consistency' -> 'hashes') > 0 AS with_hashes
  FROM (SELECT audit_log.export_proof(actor => 'proof.bob', checkpoint => :'old')::jsonb AS p) AS s;
SELECT c ->> 'format' AS format, (c ->> 'old_size')::bigint = (SELECT min(tree_size) FROM audit_log.seals) AS old_size,
       (c ->> 'new_size')::bigint = (SELECT max(tree_size) FROM audit_log.seals) AS new_size
  FROM (SELECT audit_log.consistency_proof((SELECT min(tree_size) FROM audit_log.seals))::jsonb AS c) AS s;
SELECT jsonb_array_length(audit_log.consistency_proof(0)::jsonb -> 'hashes') AS from_the_empty_tree;

-- Bad input: each error with its SQLSTATE (log ids and sizes masked).
CREATE FUNCTION proof_error(query text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE query;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || regexp_replace(regexp_replace(SQLERRM, '[0-9a-f-]{36}', '<log id>', 'g'),
                                              '[0-9]+', 'N', 'g');
END
$$;
SELECT proof_error($$SELECT audit_log.export_proof(checkpoint => 'not a checkpoint')$$);
SELECT proof_error(format('SELECT audit_log.export_proof(checkpoint => %L)',
    regexp_replace(:'old', '^audit_log/[^\n]*', 'audit_log/00000000-0000-4000-8000-000000000000')));
SELECT proof_error(format('SELECT audit_log.export_proof(checkpoint => %L)',
    regexp_replace(:'old', E'\n[^\n]*\n$', E'\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n')));
SELECT proof_error(format('SELECT audit_log.export_proof(checkpoint => %L)',
    regexp_replace(:'old', E'\n[0-9]+\n', E'\n999999999\n')));
SELECT proof_error($$SELECT audit_log.export_proof(since => '2026-02-01', until => '2026-01-01')$$);
SELECT proof_error($$SELECT audit_log.export_proof(action => 'drop table')$$);
SELECT proof_error($$SELECT audit_log.consistency_proof(NULL)$$);
SELECT proof_error($$SELECT audit_log.consistency_proof(-1)$$);
SELECT proof_error($$SELECT audit_log.consistency_proof(5, 4)$$);
SELECT proof_error($$SELECT audit_log.consistency_proof(0, 999999999)$$);

-- Signatures: add_signature() keeps the signature lines of a signed copy of
-- one of this log's checkpoints; checkpoint() returns them.
SELECT :'old' || E'\n— witness.example '
       || translate(encode('\x01020304'::bytea || sha512('one'::bytea), 'base64'), E'\n', '') || E'\n'
       AS signed \gset
SELECT audit_log.add_signature(:'signed');
SELECT audit_log.add_signature(:'signed');  -- twice: kept once
SELECT audit_log.checkpoint((SELECT min(tree_size) FROM audit_log.seals)) = :'signed' AS returned_signed,
       (SELECT count(*) FROM audit_log.tree_signatures) AS signatures;
SELECT checkpoint = :'signed' AS the_view_too FROM audit_log.seals ORDER BY tree_size LIMIT 1;
SELECT proof_error(format('SELECT audit_log.add_signature(%L)', :'old'));
SELECT proof_error(format('SELECT audit_log.add_signature(%L)',
    regexp_replace(:'signed', E'\n[0-9]+\n', E'\n999999999\n')));
SELECT proof_error(format('SELECT audit_log.add_signature(%L)', replace(:'signed', '— ', '- ')));
SELECT proof_error('SELECT audit_log.add_signature(NULL)');
-- Append-only, and written only through the functions.
DELETE FROM audit_log.tree_signatures;
INSERT INTO audit_log.tree_nodes VALUES (4, 1000000, sha256(''));

-- Who may do what: readers prove, admins also sign, others nothing.
CREATE ROLE proofs_admin IN ROLE audit_log_admin;
CREATE ROLE proofs_reader IN ROLE audit_log_reader;
CREATE ROLE proofs_nobody;
SET ROLE proofs_reader;
SELECT length(audit_log.export_proof(actor => 'proof.bob')) > 0 AS reader_proves,
       length(audit_log.consistency_proof(0)) > 0 AS and_checks_consistency;
SELECT audit_log.add_signature(:'signed');
RESET ROLE;
SET ROLE proofs_admin;
SELECT audit_log.add_signature(:'signed');
RESET ROLE;
SET ROLE proofs_nobody;
SELECT audit_log.export_proof();
SELECT audit_log.consistency_proof(0);
RESET ROLE;
DROP ROLE proofs_admin, proofs_reader, proofs_nobody;
DROP FUNCTION proof_error(text);
