//! Ed25519 keys and signatures on signed notes (C2SP `signed-note`); the
//! note and key texts are `audit_log_tree::note`'s.

use audit_log_tree::note::{
    ed25519_key_id, valid_key_name, Note, SignatureLine, SignerKey, VerifierKey,
};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand_core::OsRng;

/// What a note says about one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureCheck {
    Valid,
    /// No signature line with this key's name and key ID.
    Missing,
    /// A line with this key's name and key ID whose signature does not
    /// verify.
    Invalid,
}

pub fn generate(name: &str) -> Result<(SignerKey, VerifierKey), String> {
    if !valid_key_name(name) {
        return Err(format!(
            "{name:?} is not a valid key name: it must be non-empty, without spaces or '+'"
        ));
    }
    let signer = SignerKey {
        name: name.to_string(),
        key_id: [0; 4],
        seed: SigningKey::generate(&mut OsRng).to_bytes(),
    };
    let verifier = public_key(&signer);
    Ok((
        SignerKey {
            key_id: verifier.key_id,
            ..signer
        },
        verifier,
    ))
}

/// The verifier key of a signer key, its key ID derived from the key (not
/// copied from `key.key_id`, which a loader checks against this).
pub fn public_key(key: &SignerKey) -> VerifierKey {
    let public_key = SigningKey::from_bytes(&key.seed).verifying_key().to_bytes();
    VerifierKey {
        name: key.name.clone(),
        key_id: ed25519_key_id(&key.name, &public_key),
        public_key,
    }
}

/// Adds the key's signature of the note's body after the existing ones; a
/// line of the same key (name and key ID) is replaced, as Go's `note.Sign`
/// does, so that signing twice leaves one signature.
pub fn sign(note: &Note, key: &SignerKey) -> Note {
    let verifier = public_key(key);
    let signature = SigningKey::from_bytes(&key.seed).sign(note.body.as_bytes());
    let mut signatures: Vec<SignatureLine> = note
        .signatures
        .iter()
        .filter(|line| !same_key(line, &verifier))
        .cloned()
        .collect();
    signatures.push(SignatureLine {
        name: verifier.name,
        key_id: verifier.key_id,
        signature: signature.to_bytes().to_vec(),
    });
    Note {
        body: note.body.clone(),
        signatures,
    }
}

/// Lines of other keys are ignored, as the spec requires, even when they
/// share this key's name or its key ID (but not both). Every line of this
/// key must verify: a note carrying a bad copy beside a good one has been
/// tampered with.
pub fn check(note: &Note, key: &VerifierKey) -> SignatureCheck {
    let mut lines = note
        .signatures
        .iter()
        .filter(|line| same_key(line, key))
        .peekable();
    if lines.peek().is_none() {
        return SignatureCheck::Missing;
    }
    let Ok(verifying_key) = VerifyingKey::from_bytes(&key.public_key) else {
        return SignatureCheck::Invalid;
    };
    let all_verify = lines.all(|line| {
        <[u8; 64]>::try_from(line.signature.as_slice()).is_ok_and(|bytes| {
            verifying_key
                .verify_strict(note.body.as_bytes(), &Signature::from_bytes(&bytes))
                .is_ok()
        })
    });
    if all_verify {
        SignatureCheck::Valid
    } else {
        SignatureCheck::Invalid
    }
}

fn same_key(line: &SignatureLine, key: &VerifierKey) -> bool {
    line.name == key.name && line.key_id == key.key_id
}

#[cfg(test)]
mod tests {
    use super::*;

    // Go's golang.org/x/mod/sumdb/note note_test.go (TestSign, TestOpen).
    const PETER_SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
    const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                           then you don't know what your problem is.\n";
    const PETER_SIG: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
    const ENOCH_SIG: &str = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";
    // The C2SP signed-note spec's example.
    const SPEC_VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
    const SPEC_NOTE: &str = "This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

    fn unsigned(body: &str) -> Note {
        Note {
            body: body.to_string(),
            signatures: Vec::new(),
        }
    }

    #[test]
    fn the_published_private_key_gives_the_published_public_key() {
        let signer = SignerKey::parse(PETER_SKEY).unwrap();
        assert_eq!(public_key(&signer).text(), PETER_VKEY);
    }

    /// Ed25519 is deterministic: the same key and text give Go's bytes.
    #[test]
    fn signing_gives_gos_signed_note() {
        let signer = SignerKey::parse(PETER_SKEY).unwrap();
        let signed = sign(&unsigned(GO_TEXT), &signer);
        assert_eq!(signed.text(), format!("{GO_TEXT}\n{PETER_SIG}"));
    }

    #[test]
    fn signing_replaces_the_same_keys_line_and_keeps_others() {
        let signer = SignerKey::parse(PETER_SKEY).unwrap();
        let mut stale = Note::parse(&format!("{GO_TEXT}\n{PETER_SIG}{ENOCH_SIG}")).unwrap();
        stale.signatures[0].signature = vec![1, 2, 3];
        let signed = sign(&stale, &signer);
        assert_eq!(signed.text(), format!("{GO_TEXT}\n{ENOCH_SIG}{PETER_SIG}"));
    }

    #[test]
    fn published_signatures_verify() {
        let go = Note::parse(&format!("{GO_TEXT}\n{PETER_SIG}{ENOCH_SIG}")).unwrap();
        for vkey in [PETER_VKEY, ENOCH_VKEY] {
            let key = VerifierKey::parse(vkey).unwrap();
            assert_eq!(check(&go, &key), SignatureCheck::Valid, "{vkey}");
        }
        let spec = Note::parse(SPEC_NOTE).unwrap();
        let key = VerifierKey::parse(SPEC_VKEY).unwrap();
        assert_eq!(check(&spec, &key), SignatureCheck::Valid);
        assert_eq!(
            check(&go, &key),
            SignatureCheck::Missing,
            "another key's note"
        );
    }

    #[test]
    fn tampering_makes_a_signature_invalid() {
        let key = VerifierKey::parse(PETER_VKEY).unwrap();
        let note = Note::parse(&format!("{GO_TEXT}\n{PETER_SIG}")).unwrap();

        let mut body_changed = note.clone();
        body_changed.body = body_changed.body.replace("answer", "Answer");
        assert_eq!(check(&body_changed, &key), SignatureCheck::Invalid);

        for byte in [0, 31, 32, 63] {
            let mut signature_changed = note.clone();
            signature_changed.signatures[0].signature[byte] ^= 1;
            assert_eq!(
                check(&signature_changed, &key),
                SignatureCheck::Invalid,
                "{byte}"
            );
        }

        let mut truncated = note.clone();
        truncated.signatures[0].signature.pop();
        assert_eq!(check(&truncated, &key), SignatureCheck::Invalid);

        let mut good_and_bad = note.clone();
        good_and_bad
            .signatures
            .push(truncated.signatures[0].clone());
        assert_eq!(check(&good_and_bad, &key), SignatureCheck::Invalid);
    }

    /// The spec: a signature that shares only the name, or only the key
    /// ID, is another key's, and ignored.
    #[test]
    fn lines_of_other_keys_are_ignored() {
        let key = VerifierKey::parse(PETER_VKEY).unwrap();
        let mut note = Note::parse(&format!("{GO_TEXT}\n{PETER_SIG}")).unwrap();
        note.signatures[0].key_id[3] ^= 1;
        assert_eq!(check(&note, &key), SignatureCheck::Missing);
        note.signatures[0].key_id[3] ^= 1;
        note.signatures[0].name = "PeterNeuman".into();
        assert_eq!(check(&note, &key), SignatureCheck::Missing);
        assert_eq!(check(&unsigned(GO_TEXT), &key), SignatureCheck::Missing);
    }

    #[test]
    fn generated_keys_sign_and_verify() {
        let (signer, verifier) = generate("audit.example/checkpoints").unwrap();
        assert_eq!(signer.key_id, verifier.key_id);
        assert_eq!(public_key(&signer), verifier);
        assert_eq!(VerifierKey::parse(&verifier.text()).unwrap(), verifier);
        assert_eq!(SignerKey::parse(&signer.text()).unwrap(), signer);

        let note = sign(&unsigned("audit_log/x\n1\nAAAA\n"), &signer);
        assert_eq!(check(&note, &verifier), SignatureCheck::Valid);
        let (_, other) = generate("audit.example/checkpoints").unwrap();
        assert_ne!(other.public_key, verifier.public_key);
        assert_eq!(check(&note, &other), SignatureCheck::Missing);
    }

    #[test]
    fn invalid_names_are_refused() {
        for bad in ["", "a b", "a+b"] {
            assert!(generate(bad).is_err(), "{bad:?}");
        }
    }
}
