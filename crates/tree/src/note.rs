//! Signed notes (C2SP `signed-note`, the format of Go's
//! `golang.org/x/mod/sumdb/note`): how a checkpoint carries signatures, and
//! how keys are written down. Only the structure lives here; signing and
//! verifying are the `audit-log` command's, so that the extension does not
//! link a signature library it never uses.
//!
//! A signed note is its text (the body, each line ending with a newline),
//! one blank line, then signature lines `— <key name> <base64(key ID ||
//! signature)>`. Ed25519 key IDs are the first 4 bytes of
//! SHA-256(name || 0x0A || 0x01 || public key).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// Notes are small (a checkpoint is about 100 bytes); the cap keeps a
/// hostile input from costing memory or time.
pub const MAX_NOTE_BYTES: usize = 1 << 20;
/// As Go's `note.Open`: more than this is refused rather than checked one
/// by one. The spec asks verifiers to accept at least 16.
pub const MAX_SIGNATURES: usize = 100;
/// The signature type byte of Ed25519 in key IDs and key texts.
pub const ED25519: u8 = 0x01;

const SIGNATURE_PREFIX: &str = "\u{2014} ";
const PRIVATE_KEY_PREFIX: &str = "PRIVATE+KEY+";

/// One `— <name> <base64(key ID || signature)>` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureLine {
    pub name: String,
    pub key_id: [u8; 4],
    pub signature: Vec<u8>,
}

impl SignatureLine {
    /// Reads one line, with or without its newline.
    pub fn parse(line: &str) -> Result<Self, String> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        refuse_control_characters(line)?;
        let rest = line.strip_prefix(SIGNATURE_PREFIX).ok_or_else(|| {
            format!("{line:?} is not a signature line: those begin with an em dash (U+2014) and a space")
        })?;
        let (name, encoded) = rest
            .split_once(' ')
            .ok_or_else(|| format!("{line:?}: a signature line is `— <key name> <base64>`"))?;
        if !valid_key_name(name) {
            return Err(format!("{name:?} is not a valid key name"));
        }
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| format!("the signature of {name} is not standard base64"))?;
        // Four bytes of key ID and at least one of signature, as Go requires.
        if bytes.len() < 5 {
            return Err(format!("the signature of {name} is too short"));
        }
        let (key_id, signature) = bytes.split_at(4);
        Ok(SignatureLine {
            name: name.to_string(),
            key_id: key_id.try_into().expect("split at 4"),
            signature: signature.to_vec(),
        })
    }

    pub fn text(&self) -> String {
        let mut bytes = self.key_id.to_vec();
        bytes.extend_from_slice(&self.signature);
        format!(
            "{SIGNATURE_PREFIX}{} {}\n",
            self.name,
            STANDARD.encode(bytes)
        )
    }
}

/// A note: its body (the signed text, ending with a newline) and its
/// signature lines, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    pub body: String,
    pub signatures: Vec<SignatureLine>,
}

impl Note {
    /// Reads a note, signed or not.
    ///
    /// As the spec and Go's `note.Open` say, the signatures begin after the
    /// *last* blank line, so a body may hold blank lines of its own;
    /// checkpoints have none. A text without a blank line is an unsigned
    /// body. A missing newline at the very end of a signed note is
    /// tolerated, because `$(...)` and many editors drop it; an unsigned
    /// body must keep it, since it is part of what gets signed.
    pub fn parse(text: &str) -> Result<Note, String> {
        if text.len() > MAX_NOTE_BYTES {
            return Err(format!(
                "the note has {} bytes; more than {MAX_NOTE_BYTES} (1 MiB) is refused",
                text.len()
            ));
        }
        refuse_control_characters(text)?;
        // `psql -At -c "SELECT audit_log.checkpoint()" > file` ends the
        // value, which ends with a newline, with one more: the way most
        // checkpoints reach a file. That one is not part of the note.
        let text = match text.strip_suffix('\n') {
            Some(shorter) if shorter.ends_with('\n') => shorter,
            _ => text,
        };
        let completed;
        let whole = if text.ends_with('\n') {
            text
        } else {
            completed = format!("{text}\n");
            &completed
        };
        let Some(split) = whole.rfind("\n\n") else {
            if !text.ends_with('\n') {
                return Err("a note must end with a newline".into());
            }
            return Ok(Note {
                body: text.to_string(),
                signatures: Vec::new(),
            });
        };
        let (body, signature_block) = (&whole[..=split], &whole[split + 2..]);
        if signature_block.is_empty() {
            return Err("the note ends with a blank line: signature lines must follow it".into());
        }
        let lines: Vec<&str> = signature_block.split_terminator('\n').collect();
        if lines.len() > MAX_SIGNATURES {
            return Err(format!(
                "the note has {} signature lines; more than {MAX_SIGNATURES} are refused",
                lines.len()
            ));
        }
        let signatures = lines
            .into_iter()
            .map(SignatureLine::parse)
            .collect::<Result<_, _>>()?;
        Ok(Note {
            body: body.to_string(),
            signatures,
        })
    }

    /// The note as text: the body alone when there are no signatures.
    pub fn text(&self) -> String {
        let mut text = self.body.clone();
        if !self.signatures.is_empty() {
            text.push('\n');
            for signature in &self.signatures {
                text.push_str(&signature.text());
            }
        }
        text
    }
}

/// Signed notes must hold no ASCII control character but the newline; this
/// also turns CRLF line endings into a clear error instead of a signature
/// that fails.
fn refuse_control_characters(text: &str) -> Result<(), String> {
    match text.chars().find(|&c| c < ' ' && c != '\n') {
        Some(c) => Err(format!(
            "a note holds no control character but the newline; found {c:?}"
        )),
        None => Ok(()),
    }
}

/// Non-empty, without Unicode spaces or `+`, as the spec says; control
/// characters are refused too, since no well-formed note can hold them.
pub fn valid_key_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
}

pub fn ed25519_key_id(name: &str, public_key: &[u8; 32]) -> [u8; 4] {
    let digest = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update([b'\n', ED25519])
        .chain_update(public_key)
        .finalize();
    digest[..4].try_into().expect("SHA-256 has 32 bytes")
}

/// An Ed25519 verifier key, `<name>+<key ID in hex>+<base64(0x01 || public
/// key)>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierKey {
    pub name: String,
    pub key_id: [u8; 4],
    pub public_key: [u8; 32],
}

impl VerifierKey {
    /// Strict: the key text alone, its ID that of its name and key.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(key_id), Some(encoded)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err("a verifier key is `<name>+<key ID>+<base64 key>`".into());
        };
        let (name, key_id, public_key) = parse_key_parts(name, key_id, encoded, "verifier")?;
        if ed25519_key_id(name, &public_key) != key_id {
            return Err(format!(
                "the key ID {} does not match the verifier key {name}",
                hex(&key_id)
            ));
        }
        Ok(VerifierKey {
            name: name.to_string(),
            key_id,
            public_key,
        })
    }

    pub fn text(&self) -> String {
        key_text(&self.name, &self.key_id, &self.public_key)
    }
}

/// An Ed25519 signer key, `PRIVATE+KEY+<name>+<key ID in hex>+<base64(0x01
/// || seed)>`. Its key ID is that of the *public* key, which takes
/// Ed25519 arithmetic to derive: whoever loads one must check the ID
/// against the derived key.
#[derive(Clone, PartialEq, Eq)]
pub struct SignerKey {
    pub name: String,
    pub key_id: [u8; 4],
    pub seed: [u8; 32],
}

impl SignerKey {
    pub fn parse(text: &str) -> Result<Self, String> {
        let rest = text
            .strip_prefix(PRIVATE_KEY_PREFIX)
            .ok_or("a private key begins with PRIVATE+KEY+")?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(key_id), Some(encoded)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err("a private key is `PRIVATE+KEY+<name>+<key ID>+<base64 key>`".into());
        };
        let (name, key_id, seed) = parse_key_parts(name, key_id, encoded, "private")?;
        Ok(SignerKey {
            name: name.to_string(),
            key_id,
            seed,
        })
    }

    pub fn text(&self) -> String {
        format!(
            "{PRIVATE_KEY_PREFIX}{}",
            key_text(&self.name, &self.key_id, &self.seed)
        )
    }
}

/// Keeps the seed out of logs and panic messages.
impl std::fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignerKey")
            .field("name", &self.name)
            .field("key_id", &hex(&self.key_id))
            .finish_non_exhaustive()
    }
}

fn parse_key_parts<'a>(
    name: &'a str,
    key_id: &str,
    encoded: &str,
    kind: &str,
) -> Result<(&'a str, [u8; 4], [u8; 32]), String> {
    if !valid_key_name(name) {
        return Err(format!("{name:?} is not a valid key name"));
    }
    let key_id = parse_key_id(key_id)
        .ok_or_else(|| format!("the key ID of a {kind} key is 8 lowercase hex digits"))?;
    let bytes = STANDARD
        .decode(encoded)
        .map_err(|_| format!("the {kind} key of {name} is not standard base64"))?;
    match bytes.split_first() {
        Some((&ED25519, key)) => {
            let key = key.try_into().map_err(|_| {
                format!("the Ed25519 {kind} key of {name} must have 32 bytes")
            })?;
            Ok((name, key_id, key))
        }
        Some((algorithm, _)) => Err(format!(
            "the {kind} key of {name} is of signature type {algorithm:#04x}; only Ed25519 (0x01) is supported"
        )),
        None => Err(format!("the {kind} key of {name} is empty")),
    }
}

fn key_text(name: &str, key_id: &[u8; 4], key: &[u8; 32]) -> String {
    let mut bytes = vec![ED25519];
    bytes.extend_from_slice(key);
    format!("{name}+{}+{}", hex(key_id), STANDARD.encode(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Lowercase only: the spec's hex is lowercase, and one spelling per key
/// keeps key texts comparable as strings.
fn parse_key_id(text: &str) -> Option<[u8; 4]> {
    if text.len() != 8 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut key_id = [0; 4];
    for (byte, pair) in key_id.iter_mut().zip(text.as_bytes().chunks(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(key_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Published vectors: Go's golang.org/x/mod/sumdb/note note_test.go and
    // the C2SP signed-note spec.
    const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const PETER_SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
    const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                           then you don't know what your problem is.\n";
    const PETER_SIG: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    const ENOCH_SIG: &str = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";
    const SPEC_VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
    const SPEC_POEM: &str = "Ognuno sta solo sul cuor della terra\n\
                             trafitto da un raggio di sole:\n\
                             \n\
                             ed è subito sera.\n\
                             \n\
                             — quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n";

    fn go_note() -> String {
        format!("{GO_TEXT}\n{PETER_SIG}{ENOCH_SIG}")
    }

    #[test]
    fn published_verifier_keys_parse_and_round_trip() {
        for (text, name, key_id) in [
            (PETER_VKEY, "PeterNeumann", [0xc7, 0x4f, 0x20, 0xa3]),
            (ENOCH_VKEY, "EnochRoot", [0xaf, 0x0c, 0xfe, 0x78]),
            (SPEC_VKEY, "example.com/foo", [0x53, 0x0d, 0x90, 0x3a]),
        ] {
            let key = VerifierKey::parse(text).unwrap();
            assert_eq!(key.name, name);
            assert_eq!(key.key_id, key_id);
            assert_eq!(ed25519_key_id(name, &key.public_key), key_id);
            assert_eq!(key.text(), text);
        }
    }

    #[test]
    fn the_published_signer_key_parses_and_round_trips() {
        let key = SignerKey::parse(PETER_SKEY).unwrap();
        assert_eq!(key.name, "PeterNeumann");
        assert_eq!(key.key_id, [0xc7, 0x4f, 0x20, 0xa3]);
        assert_eq!(key.seed[..3], [0x81, 0x0a, 0x14]);
        assert_eq!(key.text(), PETER_SKEY);
        let debug = format!("{key:?}");
        assert!(
            debug.contains("c74f20a3") && !debug.contains("seed"),
            "{debug}"
        );
    }

    /// Go's TestNewVerifier: every proper substring and every one-byte
    /// change of a key is refused.
    #[test]
    fn mangled_verifier_keys_are_refused() {
        let bytes = PETER_VKEY.as_bytes();
        for start in 0..bytes.len() {
            for end in start + 1..=bytes.len() {
                if (start, end) != (0, bytes.len()) {
                    let part = &PETER_VKEY[start..end];
                    assert!(VerifierKey::parse(part).is_err(), "{part:?}");
                }
            }
        }
        for i in 0..bytes.len() {
            let mut changed = bytes.to_vec();
            changed[i] += 1;
            let changed = String::from_utf8(changed).unwrap();
            assert!(VerifierKey::parse(&changed).is_err(), "{changed:?}");
        }
        // Go's: wrong key length and unknown algorithm, each with its key
        // ID adjusted so that only that fault remains.
        assert!(VerifierKey::parse(
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
        )
        .is_err());
        let unknown = VerifierKey::parse(
            "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        )
        .unwrap_err();
        assert!(unknown.contains("signature type 0x65"), "{unknown}");
        assert!(VerifierKey::parse(&PETER_VKEY.replace("c74f20a3", "C74F20A3")).is_err());
    }

    #[test]
    fn mangled_signer_keys_are_refused() {
        for bad in [
            PETER_SKEY.replace("PRIVATE+KEY+", ""),
            PETER_SKEY.replace("PRIVATE", "private"),
            PETER_SKEY.replace("PeterNeumann", "Peter Neumann"),
            PETER_SKEY.replace("c74f20a3", "c74f20a"),
            PETER_SKEY.replace("+AYEK", "+AoEK"),
            PETER_SKEY.replace("DFz", "DF"),
            PETER_SKEY.replace("+AYEK", "+"),
        ] {
            assert!(SignerKey::parse(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn key_names() {
        for good in ["a", "PeterNeumann", "example.com/foo", "ünïcødé"] {
            assert!(valid_key_name(good), "{good:?}");
        }
        for bad in [
            "",
            "a b",
            "a+b",
            "a\tb",
            "a\u{a0}b",
            "a\u{2003}b",
            "a\u{1}b",
        ] {
            assert!(!valid_key_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn go_signed_note_parses_and_round_trips() {
        let note = Note::parse(&go_note()).unwrap();
        assert_eq!(note.body, GO_TEXT);
        assert_eq!(note.signatures.len(), 2);
        let peter = &note.signatures[0];
        assert_eq!(peter.name, "PeterNeumann");
        assert_eq!(peter.key_id, [0xc7, 0x4f, 0x20, 0xa3]);
        assert_eq!(peter.signature.len(), 64);
        assert_eq!(peter.text(), PETER_SIG);
        assert_eq!(note.signatures[1].key_id, [0xaf, 0x0c, 0xfe, 0x78]);
        assert_eq!(note.text(), go_note());
    }

    #[test]
    fn the_body_ends_at_the_last_blank_line() {
        let note = Note::parse(SPEC_POEM).unwrap();
        assert!(note.body.starts_with("Ognuno") && note.body.ends_with("ed è subito sera.\n"));
        assert!(note.body.contains(":\n\ned"));
        assert_eq!(note.signatures.len(), 1);
        assert_eq!(note.signatures[0].name, "quasimodo.example/salvatore");
        assert_eq!(note.text(), SPEC_POEM);
    }

    #[test]
    fn unsigned_bodies() {
        let note = Note::parse(GO_TEXT).unwrap();
        assert_eq!(note.body, GO_TEXT);
        assert!(note.signatures.is_empty());
        assert_eq!(note.text(), GO_TEXT);
        assert!(Note::parse(GO_TEXT.trim_end()).is_err());
        assert!(Note::parse("").is_err());
    }

    #[test]
    fn a_missing_final_newline_is_tolerated_after_signatures() {
        let full = go_note();
        let note = Note::parse(full.strip_suffix('\n').unwrap()).unwrap();
        assert_eq!(note.text(), full);
    }

    #[test]
    fn a_newline_psql_adds_is_not_part_of_the_note() {
        let signed = go_note();
        assert_eq!(Note::parse(&format!("{signed}\n")).unwrap().text(), signed);
        let unsigned = Note::parse(&format!("{GO_TEXT}\n")).unwrap();
        assert_eq!(unsigned.body, GO_TEXT);
        assert!(unsigned.signatures.is_empty());
    }

    #[test]
    fn go_malformed_notes_are_refused() {
        let bad_name = "— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=";
        // Go also refuses "{GO_TEXT}\n" and "{GO_TEXT}\n{PETER_SIG}\n"; this
        // reads them as the note psql -At writes with one newline more
        // (a_newline_psql_adds_is_not_part_of_the_note).
        for bad in [
            format!("\u{1}{GO_TEXT}\n{PETER_SIG}"),
            format!("{GO_TEXT}\n{bad_name}"),
            format!("{GO_TEXT}\n{PETER_SIG}Unexpected line.\n"),
            format!("{GO_TEXT}\n{PETER_SIG}\n\n"),
            format!("{GO_TEXT}\n{}", PETER_SIG.replace('\n', "\r\n")),
            format!("{GO_TEXT}\n— PeterNeumann x08g\n"),
            format!("{GO_TEXT}\n— PeterNeumann x08go/ZJ*\n"),
            format!("{GO_TEXT}\n- PeterNeumann x08go/ZJkuBS9U\n"),
            format!("{GO_TEXT}\n— PeterNeumann  x08go/ZJkuBS9U\n"),
        ] {
            assert!(Note::parse(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn limits() {
        let hundred = format!("{GO_TEXT}\n{}", PETER_SIG.repeat(MAX_SIGNATURES));
        assert_eq!(Note::parse(&hundred).unwrap().signatures.len(), 100);
        let too_many = format!("{hundred}{PETER_SIG}");
        let error = Note::parse(&too_many).unwrap_err();
        assert!(error.contains("101 signature lines"), "{error}");

        let line = "x".repeat(1023) + "\n";
        let just_fits = line.repeat(1024);
        assert_eq!(just_fits.len(), MAX_NOTE_BYTES);
        assert!(Note::parse(&just_fits).is_ok());
        let error = Note::parse(&format!("{just_fits}\n{PETER_SIG}")).unwrap_err();
        assert!(error.contains("1 MiB"), "{error}");
    }

    #[test]
    fn signature_lines() {
        let line = SignatureLine::parse(PETER_SIG).unwrap();
        assert_eq!(SignatureLine::parse(PETER_SIG.trim_end()).unwrap(), line);
        assert_eq!(line.text(), PETER_SIG);
        let made = SignatureLine {
            name: "n".into(),
            key_id: [1, 2, 3, 4],
            signature: vec![5],
        };
        assert_eq!(made.text(), "— n AQIDBAU=\n");
        assert_eq!(SignatureLine::parse(&made.text()).unwrap(), made);
    }
}
