//! `audit-log`: the auditor's side of audit_log (API section 7).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use audit_log_cli::{archive, csv_source, export_check, key_files, keys, witness};
use audit_log_tree::note::{Note, MAX_NOTE_BYTES};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "audit-log", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a signing key pair: NAME.key (private, mode 0600) and NAME.pub
    /// in the current directory ('/' in NAME becomes '_'); never overwrites.
    Keygen { name: String },
    /// Sign the checkpoint (or any signed note) read on stdin; the note,
    /// with the signature added, goes to stdout.
    Sign {
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
    },
    /// Check an export against a checkpoint with an inclusion proof.
    VerifyExport {
        /// The export, as `\copy` or export_csv() wrote it, or compressed
        /// with zstd (an archive's .csv.zst)
        #[arg(long, value_name = "F")]
        csv: PathBuf,
        #[arg(long, value_name = "F")]
        proof: PathBuf,
        #[arg(long, value_name = "F")]
        checkpoint: PathBuf,
        #[arg(long, value_name = "F")]
        key: Option<PathBuf>,
    },
    /// Check that a newer checkpoint extends an older one.
    VerifyConsistency {
        #[arg(long, value_name = "F")]
        old: PathBuf,
        #[arg(long, value_name = "F")]
        new: PathBuf,
        #[arg(long, value_name = "F")]
        proof: PathBuf,
        #[arg(long, value_name = "F")]
        key: Option<PathBuf>,
    },
    /// Watch a log's checkpoints and cosign those consistent with the last.
    Witness {
        #[arg(long)]
        dsn: String,
        #[arg(long, value_name = "F")]
        key: PathBuf,
        #[arg(long, value_name = "DIR")]
        state: PathBuf,
    },
    /// Archive whole closed partitions before DATE into DIR (a zstd CSV
    /// export, its complete proof, a manifest), verify them, then detach and
    /// drop them
    Archive {
        #[arg(long)]
        dsn: String,
        /// A date (midnight UTC) or any timestamptz literal: partitions
        /// ending at or before it are archived
        #[arg(long, value_name = "DATE")]
        before: String,
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Keygen { name } => keygen(&name),
        Command::Sign { key } => sign(&key),
        Command::VerifyExport {
            csv,
            proof,
            checkpoint,
            key,
        } => return verify_export(&csv, &proof, &checkpoint, key.as_deref()),
        Command::VerifyConsistency {
            old,
            new,
            proof,
            key,
        } => return verify_consistency(&old, &new, &proof, key.as_deref()),
        Command::Witness { dsn, key, state } => witness(&dsn, &key, &state),
        Command::Archive { dsn, before, out } => {
            archive::run(&dsn, &before, &out, |line| println!("{line}"))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("audit-log: {message}");
            ExitCode::FAILURE
        }
    }
}

fn keygen(name: &str) -> Result<(), String> {
    let (signer, verifier) = keys::generate(name)?;
    let (key_path, pub_path) = key_files::write_key_pair(Path::new("."), &signer, &verifier)?;
    println!(
        "{}: the private key; keep it secret\n{}: {}",
        key_path.display(),
        pub_path.display(),
        verifier.text()
    );
    Ok(())
}

fn sign(key_path: &Path) -> Result<(), String> {
    let key = key_files::read_signer_key(key_path)?;
    let mut bytes = Vec::new();
    // One byte over the limit is enough for the parser to refuse it.
    std::io::stdin()
        .take(MAX_NOTE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| format!("cannot read stdin: {error}"))?;
    let text = String::from_utf8(bytes).map_err(|_| "the note on stdin is not UTF-8")?;
    let note = Note::parse(&text).map_err(|error| format!("stdin: {error}"))?;
    let signed = keys::sign(&note, &key);
    std::io::stdout()
        .write_all(signed.text().as_bytes())
        .map_err(|error| format!("cannot write stdout: {error}"))
}

fn read_text(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))
}

/// Prints every problem, one per line, and fails; or prints the OK line.
fn conclude(outcome: Result<String, Vec<String>>) -> ExitCode {
    match outcome {
        Ok(ok) => {
            println!("{ok}");
            ExitCode::SUCCESS
        }
        Err(problems) => {
            for problem in &problems {
                println!("{problem}");
            }
            eprintln!(
                "audit-log: {} problem{} found: NOT verified",
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            );
            ExitCode::FAILURE
        }
    }
}

fn verify_export(csv: &Path, proof: &Path, checkpoint: &Path, key: Option<&Path>) -> ExitCode {
    let outcome = (|| -> Result<Result<String, Vec<String>>, String> {
        let key = key.map(key_files::read_verifier_key).transpose()?;
        let proof: audit_log_tree::format::ExportProof =
            serde_json::from_str(&read_text(proof)?)
                .map_err(|error| format!("{} is not an export proof: {error}", proof.display()))?;
        let kept = read_text(checkpoint)?;
        let file = std::fs::File::open(csv)
            .map_err(|error| format!("cannot read {}: {error}", csv.display()))?;
        let length = file.metadata().map(|m| m.len()).unwrap_or(0);
        let read = std::rc::Rc::new(std::cell::Cell::new(0));
        let csv_bytes = csv_source::open(csv_source::Counted::new(file, read.clone()))
            .map_err(|error| format!("cannot read {}: {error}", csv.display()))?;
        let bar = indicatif::ProgressBar::new(length);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {bytes}/{total_bytes} {wide_bar} {eta} left",
            )
            .expect("a valid template"),
        );
        // Small files finish before a bar would help; large ones show it.
        if length < 16 << 20 {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        // The bar follows the file as stored, compressed or not.
        let report = export_check::verify_export(csv_bytes, &proof, &kept, key.as_ref(), |_| {
            bar.set_position(read.get())
        })?;
        bar.finish_and_clear();
        Ok(if report.problems.is_empty() {
            Ok(report.summary())
        } else {
            Err(report.problems)
        })
    })();
    match outcome {
        Ok(outcome) => conclude(outcome),
        Err(message) => {
            eprintln!("audit-log: {message}");
            ExitCode::FAILURE
        }
    }
}

fn verify_consistency(old: &Path, new: &Path, proof: &Path, key: Option<&Path>) -> ExitCode {
    let files = (|| -> Result<_, String> {
        let key = key.map(key_files::read_verifier_key).transpose()?;
        Ok((read_text(old)?, read_text(new)?, read_text(proof)?, key))
    })();
    match files {
        Ok((old, new, proof, key)) => {
            conclude(witness::verify_files(&old, &new, &proof, key.as_ref()))
        }
        Err(message) => {
            eprintln!("audit-log: {message}");
            ExitCode::FAILURE
        }
    }
}

fn witness(dsn: &str, key: &Path, state: &Path) -> Result<(), String> {
    let key = key_files::read_signer_key(key)?;
    println!("{}", witness::run(dsn, &key, state)?);
    Ok(())
}
