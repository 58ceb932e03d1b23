//! `audit-log keygen` and `audit-log sign` as a user runs them, checked
//! with the library and against Go's published signed notes
//! (golang.org/x/mod/sumdb/note note_test.go).

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use audit_log_cli::key_files::{read_signer_key, read_verifier_key};
use audit_log_cli::keys::{check, SignatureCheck};
use audit_log_tree::note::{Note, VerifierKey};

const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                       then you don't know what your problem is.\n";
const PETER_SIG: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG: &str = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

const CHECKPOINT: &str =
    "audit_log/3f2c1e4a-8b7d-4c6e-9f01-23456789abcd\n42\nn4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=\n";

fn audit_log(dir: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_audit-log"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that fails early may not read its stdin at all.
    if let Err(error) = child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe, "{error}");
    }
    child.wait_with_output().unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{:?}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn keygen(dir: &Path, name: &str) -> VerifierKey {
    stdout(&audit_log(dir, &["keygen", name], ""));
    read_verifier_key(&dir.join(format!("{name}.pub"))).unwrap()
}

fn sign(dir: &Path, key_file: &str, note: &str) -> Note {
    let signed = stdout(&audit_log(dir, &["sign", "--key", key_file], note));
    Note::parse(&signed).unwrap()
}

#[test]
fn keygen_writes_a_private_and_a_public_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let output = stdout(&audit_log(dir.path(), &["keygen", "auditor"], ""));
    let key_path = dir.path().join("auditor.key");
    let pub_path = dir.path().join("auditor.pub");
    assert_eq!(mode(&key_path), 0o600);
    assert_eq!(mode(&pub_path) & 0o022, 0, "not writable by others");
    let signer = read_signer_key(&key_path).unwrap();
    let verifier = read_verifier_key(&pub_path).unwrap();
    assert_eq!(
        (signer.name.as_str(), signer.key_id),
        ("auditor", verifier.key_id)
    );
    assert!(fs::read_to_string(&key_path)
        .unwrap()
        .starts_with("PRIVATE+KEY+auditor+"));
    assert!(output.contains(&verifier.text()), "{output}");
}

#[test]
fn keygen_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    keygen(dir.path(), "auditor");
    let key_before = fs::read(dir.path().join("auditor.key")).unwrap();
    let pub_before = fs::read(dir.path().join("auditor.pub")).unwrap();

    let again = audit_log(dir.path(), &["keygen", "auditor"], "");
    assert_eq!(again.status.code(), Some(1));
    let stderr = String::from_utf8(again.stderr).unwrap();
    assert!(
        stderr.starts_with("audit-log: ") && stderr.contains("auditor.key already exists"),
        "{stderr}"
    );
    assert_eq!(
        fs::read(dir.path().join("auditor.key")).unwrap(),
        key_before
    );
    assert_eq!(
        fs::read(dir.path().join("auditor.pub")).unwrap(),
        pub_before
    );

    fs::write(dir.path().join("other.pub"), "mine\n").unwrap();
    let blocked = audit_log(dir.path(), &["keygen", "other"], "");
    assert_eq!(blocked.status.code(), Some(1));
    assert!(!dir.path().join("other.key").exists());
    assert_eq!(
        fs::read_to_string(dir.path().join("other.pub")).unwrap(),
        "mine\n"
    );
}

#[test]
fn keygen_refuses_invalid_names() {
    let dir = tempfile::tempdir().unwrap();
    let output = audit_log(dir.path(), &["keygen", "two words"], "");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_signed_checkpoint_verifies_with_its_key_only() {
    let dir = tempfile::tempdir().unwrap();
    let auditor = keygen(dir.path(), "auditor");
    let other = keygen(dir.path(), "other");

    let signed = sign(dir.path(), "auditor.key", CHECKPOINT);
    assert_eq!(signed.body, CHECKPOINT);
    assert_eq!(signed.signatures.len(), 1);
    assert_eq!(check(&signed, &auditor), SignatureCheck::Valid);
    assert_eq!(check(&signed, &other), SignatureCheck::Missing);

    // A cosignature: both verify, and signing again replaces rather than
    // adds. The shell may have dropped the final newline.
    let cosigned = sign(dir.path(), "other.key", signed.text().trim_end());
    let resigned = sign(dir.path(), "auditor.key", &cosigned.text());
    assert_eq!(resigned.signatures.len(), 2);
    assert_eq!(check(&resigned, &auditor), SignatureCheck::Valid);
    assert_eq!(check(&resigned, &other), SignatureCheck::Valid);
}

#[test]
fn a_flipped_byte_makes_the_signature_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let auditor = keygen(dir.path(), "auditor");
    let signed = sign(dir.path(), "auditor.key", CHECKPOINT);

    let mut signature_flipped = signed.clone();
    signature_flipped.signatures[0].signature[10] ^= 0x01;
    assert_eq!(check(&signature_flipped, &auditor), SignatureCheck::Invalid);

    let body_flipped = Note::parse(&signed.text().replace("\n42\n", "\n43\n")).unwrap();
    assert_eq!(check(&body_flipped, &auditor), SignatureCheck::Invalid);
}

#[test]
fn gos_published_signed_note_verifies() {
    let note = Note::parse(&format!("{GO_TEXT}\n{PETER_SIG}{ENOCH_SIG}")).unwrap();
    for vkey in [PETER_VKEY, ENOCH_VKEY] {
        let key = VerifierKey::parse(vkey).unwrap();
        assert_eq!(check(&note, &key), SignatureCheck::Valid, "{vkey}");
    }
}

/// Ed25519 signatures are deterministic: with Go's key, the command must
/// print Go's bytes.
#[test]
fn signing_with_gos_key_gives_gos_signed_note() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("peter.key"), format!("{PETER_SKEY}\n")).unwrap();
    let output = stdout(&audit_log(
        dir.path(),
        &["sign", "--key", "peter.key"],
        GO_TEXT,
    ));
    assert_eq!(output, format!("{GO_TEXT}\n{PETER_SIG}"));
}

#[test]
fn sign_reports_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("peter.key"), PETER_SKEY).unwrap();
    for (args, stdin, expected) in [
        (
            &["sign", "--key", "missing.key"][..],
            CHECKPOINT,
            "cannot read missing.key",
        ),
        (
            &["sign", "--key", "peter.key"][..],
            "no newline",
            "must end with a newline",
        ),
        (
            &["sign", "--key", "peter.key"][..],
            "a\r\n",
            "control character",
        ),
    ] {
        let output = audit_log(dir.path(), args, stdin);
        assert_eq!(output.status.code(), Some(1), "{stdin:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(
            stderr.starts_with("audit-log: ") && stderr.contains(expected),
            "{stderr}"
        );
        assert!(output.stdout.is_empty());
    }
}
