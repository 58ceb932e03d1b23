//! Key files: `<name>.key` holds the private key text, `<name>.pub` the
//! verifier key, each on one line.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use audit_log_tree::note::{SignerKey, VerifierKey};

use crate::keys::public_key;

/// The files a key pair is written to in `dir`. Key names are often
/// URL-like (`example.com/log`), as the spec recommends; `/` becomes `_` so
/// that the files land in `dir` and not in a directory named after a host.
pub fn key_pair_paths(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let stem = name.replace('/', "_");
    (
        dir.join(format!("{stem}.key")),
        dir.join(format!("{stem}.pub")),
    )
}

/// Writes both files, never replacing one: a lost private key cannot be
/// recovered, and a replaced one would silently orphan every signature it
/// made. The private key file is created readable by its owner only.
pub fn write_key_pair(
    dir: &Path,
    signer: &SignerKey,
    verifier: &VerifierKey,
) -> Result<(PathBuf, PathBuf), String> {
    let (key_path, pub_path) = key_pair_paths(dir, &signer.name);
    for path in [&key_path, &pub_path] {
        if fs::symlink_metadata(path).is_ok() {
            return Err(format!(
                "{} already exists; key files are never overwritten",
                path.display()
            ));
        }
    }
    create_new(&key_path, 0o600, &signer.text())?;
    if let Err(error) = create_new(&pub_path, 0o644, &verifier.text()) {
        // Not half a pair: the private key alone would be unusable.
        let _ = fs::remove_file(&key_path);
        return Err(error);
    }
    Ok((key_path, pub_path))
}

fn create_new(path: &Path, mode: u32, line: &str) -> Result<(), String> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|error| match error.kind() {
            ErrorKind::AlreadyExists => format!(
                "{} already exists; key files are never overwritten",
                path.display()
            ),
            _ => format!("cannot create {}: {error}", path.display()),
        })?;
    file.write_all(format!("{line}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|error| format!("cannot write {}: {error}", path.display()))
}

/// Reads a private key and checks that its key ID is that of its key, so
/// that signatures never carry an ID verifiers would not find.
pub fn read_signer_key(path: &Path) -> Result<SignerKey, String> {
    let text = read_key_line(path)?;
    let key = SignerKey::parse(&text).map_err(|error| format!("{}: {error}", path.display()))?;
    if public_key(&key).key_id != key.key_id {
        return Err(format!(
            "{}: the key ID does not match the private key",
            path.display()
        ));
    }
    Ok(key)
}

pub fn read_verifier_key(path: &Path) -> Result<VerifierKey, String> {
    let text = read_key_line(path)?;
    VerifierKey::parse(&text).map_err(|error| format!("{}: {error}", path.display()))
}

/// The file's one line; the newline at its end is optional, as editors
/// differ.
fn read_key_line(path: &Path) -> Result<String, String> {
    let text = fs::read_to_string(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let line = text.strip_suffix('\n').unwrap_or(&text);
    if line.contains('\n') {
        return Err(format!("{}: a key file holds one line", path.display()));
    }
    Ok(line.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::generate;
    use std::os::unix::fs::PermissionsExt;

    const PETER_SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_key_pair_is_written_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let (signer, verifier) = generate("example.com/log").unwrap();
        let (key_path, pub_path) = write_key_pair(dir.path(), &signer, &verifier).unwrap();
        assert_eq!(key_path, dir.path().join("example.com_log.key"));
        assert_eq!(pub_path, dir.path().join("example.com_log.pub"));
        assert_eq!(mode(&key_path), 0o600);
        assert_eq!(mode(&pub_path) & 0o022, 0);
        assert_eq!(read_signer_key(&key_path).unwrap(), signer);
        assert_eq!(read_verifier_key(&pub_path).unwrap(), verifier);

        let (again, again_public) = generate("example.com/log").unwrap();
        let error = write_key_pair(dir.path(), &again, &again_public).unwrap_err();
        assert!(error.contains("already exists"), "{error}");
        assert_eq!(read_signer_key(&key_path).unwrap(), signer);
    }

    #[test]
    fn an_existing_public_key_file_blocks_the_pair() {
        let dir = tempfile::tempdir().unwrap();
        let (signer, verifier) = generate("solo").unwrap();
        fs::write(dir.path().join("solo.pub"), "keep me\n").unwrap();
        assert!(write_key_pair(dir.path(), &signer, &verifier).is_err());
        assert!(!dir.path().join("solo.key").exists());
    }

    #[test]
    fn a_private_key_with_a_wrong_key_id_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peter.key");
        fs::write(&path, format!("{PETER_SKEY}\n")).unwrap();
        assert_eq!(read_signer_key(&path).unwrap().name, "PeterNeumann");
        fs::write(&path, PETER_SKEY.replace("c74f20a3", "c74f20a4")).unwrap();
        let error = read_signer_key(&path).unwrap_err();
        assert!(error.contains("does not match"), "{error}");
        fs::write(&path, format!("{PETER_SKEY}\n{PETER_SKEY}\n")).unwrap();
        assert!(read_signer_key(&path).is_err());
    }
}
