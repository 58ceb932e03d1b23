//! `audit-log archive`: whole closed partitions leave the database only as
//! an archive that was written, read back from disk and proven complete
//! against this log's own checkpoint; only then are they detached and
//! dropped.
//!
//! Every step can be interrupted. Files are written aside and renamed, the
//! manifest last, so a manifest only ever names finished files. A partition
//! detached by an interrupted run is finished first on the next run, and
//! only when its archive still verifies: nothing is dropped on the strength
//! of an archive that was not read back.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use audit_log_tree::format::{ExportProof, ProvenEvent};
use postgres::{Client, IsolationLevel, NoTls};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::csv_source;
use crate::export_check::{read_checkpoint, verify_export};

/// The `format` of a manifest of this version.
pub const MANIFEST_FORMAT: &str = "audit_log archive 1";

/// Names the step after which the command aborts, for crash tests.
pub const CRASH_AT_VARIABLE: &str = "AUDIT_LOG_ARCHIVE_CRASH_AT";

/// Beyond this, a failed verification's problems are counted, not listed:
/// a wholly wrong file would otherwise name every row.
const PROBLEMS_SHOWN: usize = 10;

/// What `<label>.manifest.json` says of an archive; `drop_archived()` keeps
/// it, so that the log itself records what left it and where to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// `MANIFEST_FORMAT`.
    pub format: String,
    pub partition: String,
    /// `None` for a partition that starts at `-infinity`.
    pub from: Option<String>,
    pub to: String,
    pub events: u64,
    /// The events' leaf indexes as inclusive runs, so that an auditor can
    /// tell which leaves of the tree this archive holds without the proof.
    pub leaf_ranges: Vec<[u64; 2]>,
    pub leaf_hashes_sha256: String,
    /// Of the CSV decompressed: the same export made again elsewhere (or
    /// compressed otherwise) can be compared with it.
    pub csv_sha256: String,
    pub csv: ArchivedFile,
    pub proof: ArchivedFile,
    pub checkpoint: String,
}

/// A file of the archive, named relative to the manifest's directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchivedFile {
    pub file: String,
    pub sha256: String,
}

impl Manifest {
    pub fn parse(text: &str) -> Result<Manifest, String> {
        serde_json::from_str(text).map_err(|e| format!("not an archive manifest: {e}"))
    }

    pub fn text(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a manifest is plain JSON");
        text.push('\n');
        text
    }

    /// Whether both describe the same events of the same partition: then one
    /// may replace the other, the partition still holding them.
    fn same_events(&self, other: &Manifest) -> bool {
        self.partition == other.partition
            && self.from == other.from
            && self.to == other.to
            && self.events == other.events
            && self.leaf_ranges == other.leaf_ranges
            && self.leaf_hashes_sha256 == other.leaf_hashes_sha256
    }
}

/// A partition of the log and the period it takes, times as `iso_utc()`
/// writes them (as the proof's filters do, so that they compare as text).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Period {
    partition: String,
    from: Option<String>,
    to: String,
}

/// The paths of one label's archive in the output directory.
struct ArchivePaths {
    csv_name: String,
    proof_name: String,
    manifest: PathBuf,
}

impl ArchivePaths {
    fn new(label: &str, dir: &Path) -> Self {
        ArchivePaths {
            csv_name: format!("{label}.csv.zst"),
            proof_name: format!("{label}.proof"),
            manifest: dir.join(format!("{label}.manifest.json")),
        }
    }

    fn expected(&self, dir: &Path) -> String {
        format!(
            "{}, {} and {}",
            self.manifest.display(),
            dir.join(&self.csv_name).display(),
            dir.join(&self.proof_name).display()
        )
    }
}

/// Archives, verifies, detaches and drops every whole partition that ends
/// by `before`, after finishing what an earlier run left half done. Each
/// line of the outcome goes to `say` as soon as it is known.
pub fn run(dsn: &str, before: &str, dir: &Path, mut say: impl FnMut(&str)) -> Result<(), String> {
    let mut client =
        Client::connect(dsn, NoTls).map_err(|e| format!("cannot connect to {dsn}: {e}"))?;
    // Partition names then print schema-qualified, as the extension records
    // them (drop_archived() compares the manifest's with its own), and a bare
    // DATE is midnight UTC, where the log's periods begin and end.
    client
        .batch_execute("SET search_path = pg_catalog, pg_temp; SET TimeZone = 'UTC'")
        .map_err(failed("setting up the session"))?;
    let version: i32 = client
        .query_one(
            "SELECT pg_catalog.current_setting('server_version_num')::int",
            &[],
        )
        .map_err(failed("reading the server's version"))?
        .get(0);
    if version < 140_000 {
        return Err(
            "archiving needs PostgreSQL 14 or later: it detaches partitions CONCURRENTLY, so that writers never wait"
                .into(),
        );
    }
    client
        .batch_execute("SELECT audit_log.prepare_partitions()")
        .map_err(failed("audit_log.prepare_partitions()"))?;
    client
        .batch_execute("SELECT audit_log.seal()")
        .map_err(failed("audit_log.seal()"))?;
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;

    let resumed = resume(&mut client, dir, &mut say)?;

    let rows = client
        .query(
            "SELECT partition::text, audit_log.iso_utc(from_time), audit_log.iso_utc(to_time), \
                    from_time = '-infinity' \
               FROM audit_log.partitions \
              WHERE to_time <= $1::text::timestamptz \
              ORDER BY from_time",
            &[&before],
        )
        .map_err(failed("listing the partitions"))?;
    if rows.is_empty() && resumed == 0 {
        say(&format!("nothing to archive before {before}"));
        return Ok(());
    }
    for row in rows {
        let from_minus_infinity: bool = row.get(3);
        let period = Period {
            partition: row.get(0),
            from: (!from_minus_infinity).then(|| row.get(1)),
            to: row.get(2),
        };
        let refusal: Option<String> = client
            .query_one(
                "SELECT audit_log.archivable($1::text::regclass)",
                &[&period.partition],
            )
            .map_err(failed("audit_log.archivable()"))?
            .get(0);
        if let Some(reason) = refusal {
            say(&format!("not archived: {}: {reason}", period.partition));
            return Err(format!(
                "{} and the partitions after it are left in the log",
                period.partition
            ));
        }
        archive_partition(&mut client, dir, &period, &mut say)?;
    }
    Ok(())
}

/// Finishes the partitions an earlier run detached, or began to detach,
/// without dropping them. Returns how many it finished.
fn resume(client: &mut Client, dir: &Path, say: &mut impl FnMut(&str)) -> Result<usize, String> {
    let detached = periods(
        client,
        "SELECT partition, audit_log.iso_utc(from_time), audit_log.iso_utc(to_time) \
           FROM audit_log.detached_partitions \
          WHERE to_regclass(partition) IS NOT NULL \
          ORDER BY from_time",
        "listing the detached partitions",
    )?;
    // A DETACH ... CONCURRENTLY interrupted in its second transaction leaves
    // the partition attached but on its way out, closed to new rows.
    let pending = periods(
        client,
        "SELECT b.partition::text, audit_log.iso_utc(b.from_time), audit_log.iso_utc(b.to_time) \
           FROM audit_log.partition_bounds() AS b \
           JOIN pg_catalog.pg_inherits AS i ON i.inhrelid = b.partition \
          WHERE i.inhdetachpending \
          ORDER BY b.from_time",
        "listing the partitions being detached",
    )?;
    let mut finished = 0;
    for period in detached.iter().chain(
        pending
            .iter()
            .filter(|p| !detached.iter().any(|d| d.partition == p.partition)),
    ) {
        finish_detached(client, dir, period, say)?;
        finished += 1;
    }
    Ok(finished)
}

fn periods(client: &mut Client, query: &str, what: &str) -> Result<Vec<Period>, String> {
    let rows = client.query(query, &[]).map_err(failed(what))?;
    rows.into_iter()
        .map(|row| {
            let partition: String = row.get(0);
            let from: Option<String> = row.get(1);
            let to: Option<String> = row.get(2);
            let to = to.ok_or_else(|| format!("{partition} has no upper bound"))?;
            Ok(Period {
                from: from.filter(|from| from != "-infinity"),
                partition,
                to,
            })
        })
        .collect()
}

fn finish_detached(
    client: &mut Client,
    dir: &Path,
    period: &Period,
    say: &mut impl FnMut(&str),
) -> Result<(), String> {
    let partition = &period.partition;
    let paths = ArchivePaths::new(&label(partition)?, dir);
    let left_alone = || format!("expected {}; nothing was dropped", paths.expected(dir));
    let text = fs::read_to_string(&paths.manifest).map_err(|e| {
        format!(
            "{partition} was detached by an earlier run but its archive cannot be read ({}: {e}): {}",
            paths.manifest.display(),
            left_alone()
        )
    })?;
    let manifest = Manifest::parse(&text)
        .map_err(|e| format!("{}: {e}: {}", paths.manifest.display(), left_alone()))?;
    if manifest.partition != *partition || manifest.from != period.from || manifest.to != period.to
    {
        return Err(format!(
            "{} is the archive of {} from {} to {}, not of {partition} from {} to {}: {}",
            paths.manifest.display(),
            manifest.partition,
            manifest.from.as_deref().unwrap_or("-infinity"),
            manifest.to,
            period.from.as_deref().unwrap_or("-infinity"),
            period.to,
            left_alone()
        ));
    }
    verify_with_log(client, dir, &manifest).map_err(|e| {
        format!(
            "{partition} was detached by an earlier run but its archive does not verify: {e}; {}",
            left_alone()
        )
    })?;
    let detach_pending: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits \
                             WHERE inhrelid = pg_catalog.to_regclass($1::text) AND inhdetachpending)",
            &[partition],
        )
        .map_err(failed("reading pg_inherits"))?
        .get(0);
    if detach_pending {
        client
            .batch_execute(&format!(
                "ALTER TABLE audit_log.events DETACH PARTITION {partition} FINALIZE"
            ))
            .map_err(failed(&format!("finishing the detach of {partition}")))?;
    }
    drop_archived(client, partition, &text)?;
    say(&archived_line(
        partition,
        manifest.events,
        &dir.join(&manifest.csv.file),
    ));
    Ok(())
}

fn archive_partition(
    client: &mut Client,
    dir: &Path,
    period: &Period,
    say: &mut impl FnMut(&str),
) -> Result<(), String> {
    let partition = &period.partition;
    let paths = ArchivePaths::new(&label(partition)?, dir);
    let csv_partial = format!("{}.partial", paths.csv_name);
    let proof_partial = format!("{}.partial", paths.proof_name);
    let exported = export(
        client,
        period,
        &dir.join(&csv_partial),
        &dir.join(&proof_partial),
    )?;
    let proof: ExportProof = serde_json::from_str(&exported.proof_text)
        .map_err(|e| format!("audit_log.export_proof() for {partition} is not a proof: {e}"))?;
    let written = Manifest {
        format: MANIFEST_FORMAT.into(),
        partition: partition.clone(),
        from: period.from.clone(),
        to: period.to.clone(),
        events: proof.events.len() as u64,
        leaf_ranges: leaf_ranges(proof.events.iter().map(|event| event.1)),
        leaf_hashes_sha256: leaf_hashes_sha256(&proof.events),
        csv_sha256: exported.csv_sha256,
        csv: ArchivedFile {
            file: csv_partial.clone(),
            sha256: exported.csv_file_sha256,
        },
        proof: ArchivedFile {
            file: proof_partial.clone(),
            sha256: sha256_hex(exported.proof_text.as_bytes()),
        },
        checkpoint: proof.checkpoint,
    };
    drop(exported.proof_text);
    verify_with_log(client, dir, &written)
        .map_err(|e| format!("{e}; {partition} is left in the log"))?;
    refuse_replacing_another_archive(&paths.manifest, &written)?;

    rename(&dir.join(&csv_partial), &dir.join(&paths.csv_name))?;
    rename(&dir.join(&proof_partial), &dir.join(&paths.proof_name))?;
    let manifest = Manifest {
        csv: ArchivedFile {
            file: paths.csv_name.clone(),
            ..written.csv
        },
        proof: ArchivedFile {
            file: paths.proof_name.clone(),
            ..written.proof
        },
        ..written
    };
    let manifest_partial = paths.manifest.with_extension("json.partial");
    write_synced(&manifest_partial, manifest.text().as_bytes())?;
    rename(&manifest_partial, &paths.manifest)?;
    sync_dir(dir)?;
    crash_here("written");

    let text = fs::read_to_string(&paths.manifest)
        .map_err(|e| format!("cannot read {} back: {e}", paths.manifest.display()))?;
    if text != manifest.text() {
        return Err(format!(
            "{} reads back other than written; {partition} is left in the log",
            paths.manifest.display()
        ));
    }
    verify_with_log(client, dir, &Manifest::parse(&text)?)
        .map_err(|e| format!("{e}; {partition} is left in the log"))?;
    crash_here("verified");

    client
        .batch_execute(&format!(
            "ALTER TABLE audit_log.events DETACH PARTITION {partition} CONCURRENTLY"
        ))
        .map_err(failed(&format!("detaching {partition}")))?;
    crash_here("detached");
    drop_archived(client, partition, &text)?;
    say(&archived_line(
        partition,
        manifest.events,
        &dir.join(&manifest.csv.file),
    ));
    Ok(())
}

struct Exported {
    csv_sha256: String,
    csv_file_sha256: String,
    proof_text: String,
}

/// Writes the partition's export and its complete proof, both fsynced, from
/// one snapshot: the proof is of exactly the rows the CSV holds.
fn export(
    client: &mut Client,
    period: &Period,
    csv_path: &Path,
    proof_path: &Path,
) -> Result<Exported, String> {
    let partition = &period.partition;
    let mut transaction = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .start()
        .map_err(failed("starting the export's transaction"))?;
    // The proof first: if it cannot be made, no month is streamed for nothing.
    let proof_text: String = transaction
        .query_one(
            "SELECT audit_log.export_proof(since => $1::text::timestamptz, \
                                           until => $2::text::timestamptz, complete => true)",
            &[&period.from, &period.to],
        )
        .map_err(failed(&format!("audit_log.export_proof() for {partition}")))?
        .get(0);
    write_synced(proof_path, proof_text.as_bytes())?;

    // COPY takes no parameters.
    let copy = format!(
        "COPY (SELECT * FROM audit_log.export(since => {}, until => {})) \
         TO STDOUT WITH (FORMAT csv, HEADER, ENCODING 'UTF8')",
        timestamptz_literal(period.from.as_deref()),
        timestamptz_literal(Some(&period.to)),
    );
    let cannot_write = |e: io::Error| format!("cannot write {}: {e}", csv_path.display());
    let file = File::create(csv_path).map_err(cannot_write)?;
    let mut stored = Digesting::new(BufWriter::with_capacity(1 << 20, file));
    let mut encoder = zstd::Encoder::new(&mut stored, 3).map_err(cannot_write)?;
    encoder.include_checksum(true).map_err(cannot_write)?;
    let mut csv = Digesting::new(
        transaction
            .copy_out(copy.as_str())
            .map_err(failed(&format!("exporting {partition}")))?,
    );
    let bar = spinner(format!("exporting {partition}"));
    let mut buffer = vec![0; 1 << 20];
    loop {
        let read = csv
            .read(&mut buffer)
            .map_err(|e| format!("exporting {partition} failed: {e}"))?;
        if read == 0 {
            break;
        }
        encoder.write_all(&buffer[..read]).map_err(cannot_write)?;
        bar.set_position(csv.bytes);
    }
    bar.finish_and_clear();
    let csv_sha256 = hex(&csv.digest());
    drop(csv);
    encoder.finish().map_err(cannot_write)?;
    stored.flush().map_err(cannot_write)?;
    let csv_file_sha256 = hex(&stored.digest());
    let file = stored
        .inner
        .into_inner()
        .map_err(|e| cannot_write(e.into_error()))?;
    file.sync_all().map_err(cannot_write)?;
    transaction
        .commit()
        .map_err(failed("ending the export's transaction"))?;
    Ok(Exported {
        csv_sha256,
        csv_file_sha256,
        proof_text,
    })
}

/// The archive's own checks, then that its checkpoint is this log's: a
/// proof that verifies against a checkpoint of some other tree proves
/// nothing about what is dropped here.
fn verify_with_log(client: &mut Client, dir: &Path, manifest: &Manifest) -> Result<(), String> {
    verify_archive(dir, manifest)?;
    let (_, checkpoint) = read_checkpoint(&manifest.checkpoint)
        .map_err(|e| format!("the checkpoint of {} is malformed: {e}", manifest.partition))?;
    let size = i64::try_from(checkpoint.size)
        .map_err(|_| format!("tree size {} is out of range", checkpoint.size))?;
    let logs: String = client
        .query_one("SELECT audit_log.checkpoint($1)", &[&size])
        .map_err(failed(&format!(
            "audit_log.checkpoint({size}) for {}",
            manifest.partition
        )))?
        .get(0);
    let body = |text: &str| text.split('\n').take(3).collect::<Vec<_>>().join("\n");
    if body(&manifest.checkpoint) != body(&logs) {
        return Err(format!(
            "the archive of {} is proven against a checkpoint that is not this log's: at tree size {size} the log's is\n{}\nthe proof's is\n{}",
            manifest.partition,
            body(&logs),
            body(&manifest.checkpoint)
        ));
    }
    Ok(())
}

/// Reads the archive `manifest` describes back from `dir` and checks it
/// whole: the files are those the manifest names, the proof is complete
/// and closed for the partition's period, and the CSV is exactly the events
/// it proves.
pub fn verify_archive(dir: &Path, manifest: &Manifest) -> Result<(), String> {
    let problems = archive_problems(dir, manifest);
    if problems.is_empty() {
        return Ok(());
    }
    let mut shown = problems
        .iter()
        .take(PROBLEMS_SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if problems.len() > PROBLEMS_SHOWN {
        shown.push_str(&format!("; and {} more", problems.len() - PROBLEMS_SHOWN));
    }
    Err(format!(
        "the archive of {} ({} and {}) does not verify: {shown}",
        manifest.partition,
        dir.join(&manifest.csv.file).display(),
        dir.join(&manifest.proof.file).display()
    ))
}

fn archive_problems(dir: &Path, manifest: &Manifest) -> Vec<String> {
    if manifest.format != MANIFEST_FORMAT {
        return vec![format!(
            "the manifest's format is {:?}, this command reads {MANIFEST_FORMAT:?}",
            manifest.format
        )];
    }
    let mut problems = vec![];
    for file in [&manifest.csv, &manifest.proof] {
        if !is_plain_file_name(&file.file) {
            return vec![format!(
                "the manifest names {:?}, not a file beside it",
                file.file
            )];
        }
        let path = dir.join(&file.file);
        match sha256_file(&path) {
            Err(problem) => return vec![problem],
            Ok(sha256) if sha256 != file.sha256 => problems.push(format!(
                "{}: its SHA-256 is {sha256}, the manifest says {}",
                path.display(),
                file.sha256
            )),
            Ok(_) => {}
        }
    }
    // Files other than those described are not worth proving.
    if !problems.is_empty() {
        return problems;
    }

    let proof_path = dir.join(&manifest.proof.file);
    let proof: ExportProof = match fs::read_to_string(&proof_path)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
    {
        Ok(proof) => proof,
        Err(e) => {
            return vec![format!(
                "{} is not an export proof: {e}",
                proof_path.display()
            )]
        }
    };
    if proof.checkpoint != manifest.checkpoint {
        problems.push("the proof's checkpoint is not the manifest's".into());
    }
    let filters = &proof.filters;
    if filters.since != manifest.from || filters.until.as_ref() != Some(&manifest.to) {
        problems.push(format!(
            "the proof is of {} to {}, the partition of {} to {}",
            filters.since.as_deref().unwrap_or("-infinity"),
            filters.until.as_deref().unwrap_or("infinity"),
            manifest.from.as_deref().unwrap_or("-infinity"),
            manifest.to
        ));
    }
    if filters.actor.is_some() || filters.entity.is_some() || filters.action.is_some() {
        problems.push("the proof is of a selection of the period, not of all of it".into());
    }
    if !proof.complete {
        problems.push("the proof is not complete: it cannot show that no event is missing".into());
    }
    if !proof.unsealed.is_empty() {
        problems.push(format!(
            "{} events of the export are not sealed",
            proof.unsealed.len()
        ));
    }
    match &proof.stretch {
        None => problems.push("the proof reveals no stretch of the tree".into()),
        Some(stretch) if stretch.open => problems.push(
            "the period is still open: events of it may still come, so the proof cannot call it complete"
                .into(),
        ),
        Some(_) => {}
    }
    if proof.events.len() as u64 != manifest.events {
        problems.push(format!(
            "the proof has {} events, the manifest says {}",
            proof.events.len(),
            manifest.events
        ));
    }
    if leaf_ranges(proof.events.iter().map(|event| event.1)) != manifest.leaf_ranges {
        problems.push("the manifest's leaf ranges are not the proof's leaves".into());
    }
    if leaf_hashes_sha256(&proof.events) != manifest.leaf_hashes_sha256 {
        problems.push("the manifest's leaf hash digest is not that of the proof's leaves".into());
    }

    let csv_path = dir.join(&manifest.csv.file);
    let csv = match File::open(&csv_path).and_then(csv_source::open) {
        Ok(csv) => csv,
        Err(e) => {
            problems.push(format!("cannot read {}: {e}", csv_path.display()));
            return problems;
        }
    };
    let mut csv = Digesting::new(csv);
    let bar = spinner(format!("verifying {}", csv_path.display()));
    let verified = verify_export(&mut csv, &proof, &proof.checkpoint, None, |bytes| {
        bar.set_position(bytes)
    });
    bar.finish_and_clear();
    match verified {
        Err(e) => problems.push(format!("{}: {e}", csv_path.display())),
        Ok(report) => {
            let clean = report.problems.is_empty();
            problems.extend(report.problems);
            if clean && report.proven as u64 != manifest.events {
                problems.push(format!(
                    "the CSV holds {} events, the manifest says {}",
                    report.proven, manifest.events
                ));
            }
            let csv_sha256 = hex(&csv.digest());
            if csv_sha256 != manifest.csv_sha256 {
                problems.push(format!(
                    "the CSV decompressed has SHA-256 {csv_sha256}, the manifest says {}",
                    manifest.csv_sha256
                ));
            }
        }
    }
    problems
}

/// An earlier crashed run's archive of the same events is replaced (the
/// partition still holds them); anything else under that name may be the
/// only copy of a partition dropped long ago, and is never overwritten.
fn refuse_replacing_another_archive(path: &Path, new: &Manifest) -> Result<(), String> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    match Manifest::parse(&text) {
        Ok(old) if old.same_events(new) => Ok(()),
        Ok(old) => Err(format!(
            "{} is the archive of other events ({}, {} events): an archive is never overwritten; move it away, then archive again",
            path.display(),
            old.partition,
            old.events
        )),
        Err(e) => Err(format!(
            "{} is in the way ({e}): an archive is never overwritten; move it away, then archive again",
            path.display()
        )),
    }
}

fn drop_archived(client: &mut Client, partition: &str, manifest_text: &str) -> Result<(), String> {
    client
        .execute(
            "SELECT audit_log.drop_archived($1::text::regclass, $2::text::jsonb)",
            &[&partition, &manifest_text],
        )
        .map_err(failed(&format!(
            "audit_log.drop_archived() for {partition}"
        )))?;
    Ok(())
}

fn archived_line(partition: &str, events: u64, csv: &Path) -> String {
    format!(
        "archived {partition}: {events} events in {} (verified), partition dropped",
        csv.display()
    )
}

/// The archive's file name stem: `audit_log.events_2026_01` is `2026-01`.
/// Only letters, digits and `_` are taken, so that it is always a plain
/// file name.
pub fn label(partition: &str) -> Result<String, String> {
    let name = partition
        .rsplit_once('.')
        .map_or(partition, |(_, name)| name);
    let stem = name.strip_prefix("events_").unwrap_or(name);
    if stem.is_empty() || !stem.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(format!(
            "cannot name the archive of {partition}: only partitions named with letters, digits and '_' are archived"
        ));
    }
    Ok(stem.replace('_', "-"))
}

/// Leaf indexes as sorted, maximal runs of consecutive indexes, both ends
/// inclusive.
pub fn leaf_ranges(leaves: impl IntoIterator<Item = u64>) -> Vec<[u64; 2]> {
    let mut leaves: Vec<u64> = leaves.into_iter().collect();
    leaves.sort_unstable();
    leaves.dedup();
    let mut ranges: Vec<[u64; 2]> = vec![];
    for leaf in leaves {
        match ranges.last_mut() {
            Some(run) if run[1] + 1 == leaf => run[1] = leaf,
            _ => ranges.push([leaf, leaf]),
        }
    }
    ranges
}

/// SHA-256 of the events' leaf hashes in leaf order: the proof lists them
/// in the export's order, which a later export need not repeat, while the
/// tree's order is fixed.
pub fn leaf_hashes_sha256(events: &[ProvenEvent]) -> String {
    let mut by_leaf: Vec<&ProvenEvent> = events.iter().collect();
    by_leaf.sort_unstable_by_key(|event| event.1);
    let mut digest = Sha256::new();
    for event in by_leaf {
        digest.update(event.2 .0);
    }
    hex(&digest.finalize())
}

fn timestamptz_literal(time: Option<&str>) -> String {
    match time {
        None => "NULL".into(),
        Some(time) => format!("'{}'::timestamptz", time.replace('\'', "''")),
    }
}

fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\', '\0'])
}

fn sha256_file(path: &Path) -> Result<String, String> {
    let mut file = File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut digest = Sha256::new();
    io::copy(&mut file, &mut digest).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(hex(&digest.finalize()))
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), String> {
    File::create(path)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn rename(from: &Path, to: &Path) -> Result<(), String> {
    fs::rename(from, to)
        .map_err(|e| format!("cannot rename {} to {}: {e}", from.display(), to.display()))
}

/// Renames are durable only once the directory is.
fn sync_dir(dir: &Path) -> Result<(), String> {
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|e| format!("cannot sync {}: {e}", dir.display()))
}

/// The crash test kills the command between steps, here.
fn crash_here(step: &str) {
    if std::env::var(CRASH_AT_VARIABLE).is_ok_and(|at| at == step) {
        std::process::abort();
    }
}

fn failed(what: &str) -> impl FnOnce(postgres::Error) -> String + '_ {
    // The server's own words: postgres::Error alone says only "db error".
    move |e| match e.as_db_error() {
        Some(db) => format!("{what} failed: {} ({})", db.message(), db.code().code()),
        None => format!("{what} failed: {e}"),
    }
}

/// Shown on a terminal only: a month takes a while to export and to check.
fn spinner(message: String) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new_spinner().with_message(message);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg}: {bytes} ({bytes_per_sec})")
            .expect("a valid template"),
    );
    bar
}

/// Passes bytes through, hashing them: a month's CSV is hashed as it
/// streams by rather than held.
struct Digesting<T> {
    inner: T,
    sha256: Sha256,
    bytes: u64,
}

impl<T> Digesting<T> {
    fn new(inner: T) -> Self {
        Digesting {
            inner,
            sha256: Sha256::new(),
            bytes: 0,
        }
    }

    fn digest(&self) -> [u8; 32] {
        self.sha256.clone().finalize().into()
    }
}

impl<T: Read> Read for Digesting<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.sha256.update(&buf[..read]);
        self.bytes += read as u64;
        Ok(read)
    }
}

impl<T: Write> Write for Digesting<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.sha256.update(&buf[..written]);
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use audit_log_tree::format::{Filters, RevealedLeaf, Stretch, B64, EXPORT_PROOF_FORMAT};
    use audit_log_tree::tree::{leaf_hash, node_hash};
    use audit_log_tree::{event_leaf_hash, Checkpoint, SealLeaf};

    #[test]
    fn labels_are_the_period_without_schema_or_prefix() {
        assert_eq!(label("audit_log.events_2026_01").unwrap(), "2026-01");
        assert_eq!(label("audit_log.events_2026_01_05").unwrap(), "2026-01-05");
        assert_eq!(
            label("audit_log.events_before_2026_12").unwrap(),
            "before-2026-12"
        );
        assert_eq!(label("events_2026_01").unwrap(), "2026-01");
        for unsafe_name in [
            "audit_log.events_",
            "audit_log.\"events_../x\"",
            "audit_log.\"events 2026\"",
        ] {
            assert!(label(unsafe_name).is_err(), "{unsafe_name}");
        }
    }

    #[test]
    fn leaf_ranges_merge_consecutive_leaves() {
        assert_eq!(
            leaf_ranges([3, 4, 5, 9, 11, 12]),
            vec![[3, 5], [9, 9], [11, 12]]
        );
        assert_eq!(
            leaf_ranges([12, 3, 11, 5, 9, 4]),
            vec![[3, 5], [9, 9], [11, 12]]
        );
        assert_eq!(
            leaf_ranges([0, u64::MAX]),
            vec![[0, 0], [u64::MAX, u64::MAX]]
        );
        assert_eq!(leaf_ranges([]), Vec::<[u64; 2]>::new());
    }

    #[test]
    fn leaf_hash_digest_follows_leaf_order_not_proof_order() {
        let a = ProvenEvent(1, 7, B64([1; 32]));
        let b = ProvenEvent(2, 3, B64([2; 32]));
        let mut in_leaf_order = Sha256::new();
        in_leaf_order.update([2; 32]);
        in_leaf_order.update([1; 32]);
        let expected = hex(&in_leaf_order.finalize());
        assert_eq!(leaf_hashes_sha256(&[a, b]), expected);
        assert_eq!(leaf_hashes_sha256(&[b, a]), expected);
        assert_eq!(leaf_hashes_sha256(&[]), sha256_hex(b""));
    }

    const SINCE: &str = "2026-01-01T00:00:00.000000Z";
    const UNTIL: &str = "2026-02-01T00:00:00.000000Z";

    /// A log of two leaves, one event of January and the seal that closes
    /// January, archived in `dir`: what `archive_partition` writes.
    fn write_archive(dir: &Path, actor_in_csv: &str) -> Manifest {
        let fields: [Option<&[u8]>; 14] = [
            Some(b"1"),
            Some(b"2026-01-15T10:00:00.000000Z"),
            Some(b"800"),
            Some(b"alice"),
            Some(b"app"),
            None,
            None,
            Some(b"public.t"),
            Some(b"{\"id\": 1}"),
            Some(b"INSERT"),
            None,
            None,
            Some(b"{\"id\": 1}"),
            None,
        ];
        let event = event_leaf_hash(&fields);
        let seal = SealLeaf {
            watermark: 801,
            sealed_at: "2026-02-01T00:05:00.000000Z".into(),
            horizon: "2026-02-01T00:01:00.000000Z".into(),
            cluster: 7,
        };
        let checkpoint = Checkpoint {
            log_id: "test".into(),
            size: 2,
            root: node_hash(&event, &leaf_hash(&seal.leaf_data())),
        }
        .text();
        let proof = ExportProof {
            format: EXPORT_PROOF_FORMAT.into(),
            checkpoint: checkpoint.clone(),
            filters: Filters {
                since: Some(SINCE.into()),
                until: Some(UNTIL.into()),
                ..Filters::default()
            },
            complete: true,
            events: vec![ProvenEvent(1, 0, B64(event))],
            unsealed: vec![],
            stretch: Some(Stretch {
                first: 0,
                end: 2,
                open: false,
                leaves: vec![RevealedLeaf::Seal {
                    leaf: 1,
                    watermark: "801".into(),
                    sealed_at: seal.sealed_at.clone(),
                    horizon: seal.horizon.clone(),
                    version: audit_log_tree::FORMAT_VERSION.into(),
                    cluster: "7".into(),
                }],
            }),
            hashes: vec![],
            consistency: None,
        };
        let csv = format!(
            "{}\n1,2026-01-15T10:00:00.000000Z,800,{actor_in_csv},app,,,public.t,\"{{\"\"id\"\": 1}}\",INSERT,,,\"{{\"\"id\"\": 1}}\",\n",
            crate::csv_rows::COLUMNS.join(",")
        );
        let compressed = zstd::encode_all(csv.as_bytes(), 3).unwrap();
        let proof_text = serde_json::to_string(&proof).unwrap();
        fs::write(dir.join("2026-01.csv.zst"), &compressed).unwrap();
        fs::write(dir.join("2026-01.proof"), &proof_text).unwrap();
        Manifest {
            format: MANIFEST_FORMAT.into(),
            partition: "audit_log.events_2026_01".into(),
            from: Some(SINCE.into()),
            to: UNTIL.into(),
            events: 1,
            leaf_ranges: leaf_ranges([0]),
            leaf_hashes_sha256: leaf_hashes_sha256(&proof.events),
            csv_sha256: sha256_hex(csv.as_bytes()),
            csv: ArchivedFile {
                file: "2026-01.csv.zst".into(),
                sha256: sha256_hex(&compressed),
            },
            proof: ArchivedFile {
                file: "2026-01.proof".into(),
                sha256: sha256_hex(proof_text.as_bytes()),
            },
            checkpoint,
        }
    }

    #[test]
    fn a_whole_archive_verifies_and_its_manifest_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = write_archive(dir.path(), "alice");
        verify_archive(dir.path(), &manifest).unwrap();
        assert_eq!(Manifest::parse(&manifest.text()).unwrap(), manifest);
        assert!(manifest.text().contains("\"leaf_ranges\""));
    }

    #[test]
    fn a_file_whose_sha256_is_not_the_manifests_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut manifest = write_archive(dir.path(), "alice");
        manifest.csv.sha256 = sha256_hex(b"another file");
        let error = verify_archive(dir.path(), &manifest).unwrap_err();
        assert!(error.contains("audit_log.events_2026_01"), "{error}");
        assert!(error.contains("2026-01.csv.zst: its SHA-256 is"), "{error}");
    }

    #[test]
    fn a_changed_row_is_refused_even_with_matching_file_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = write_archive(dir.path(), "mallory");
        let error = verify_archive(dir.path(), &manifest).unwrap_err();
        assert!(error.contains("event 1 was changed"), "{error}");
    }

    #[test]
    fn a_manifest_cannot_point_outside_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let mut manifest = write_archive(dir.path(), "alice");
        manifest.proof.file = "../2026-01.proof".into();
        let error = verify_archive(dir.path(), &manifest).unwrap_err();
        assert!(error.contains("not a file beside it"), "{error}");
    }

    #[test]
    fn another_archive_under_the_same_name_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let old = write_archive(dir.path(), "alice");
        let path = dir.path().join("2026-01.manifest.json");
        fs::write(&path, old.text()).unwrap();
        let rerun = Manifest {
            checkpoint: "a later checkpoint".into(),
            ..old.clone()
        };
        refuse_replacing_another_archive(&path, &rerun).unwrap();
        let other = Manifest {
            leaf_ranges: vec![[5, 9]],
            ..old
        };
        assert!(refuse_replacing_another_archive(&path, &other).is_err());
    }
}
