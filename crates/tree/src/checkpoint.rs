//! Checkpoints (API section 6.2): the C2SP `tlog-checkpoint` text an auditor
//! keeps, `audit_log/<log id>`, the tree size and the root in standard
//! base64, each line ending with a newline; a signed one goes on with a
//! blank line and signature lines, which this reads past.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::tree::Hash;

/// The origin line's prefix: `audit_log/` then the log id.
pub const ORIGIN_PREFIX: &str = "audit_log/";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub log_id: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The checkpoint's text (its signed-note body).
    pub fn text(&self) -> String {
        format!(
            "{ORIGIN_PREFIX}{}\n{}\n{}\n",
            self.log_id,
            self.size,
            STANDARD.encode(self.root)
        )
    }

    /// Reads a checkpoint, signed or not. Strict: the three lines exactly as
    /// `text()` writes them (a checkpoint is compared byte for byte).
    pub fn parse(text: &str) -> Result<Self, String> {
        let body = match text.split_once("\n\n") {
            Some((body, _signatures)) => format!("{body}\n"),
            None => text.to_string(),
        };
        let lines: Vec<&str> = body.split_terminator('\n').collect();
        if !body.ends_with('\n') || lines.len() != 3 {
            return Err("a checkpoint has three lines, each ending with a newline".into());
        }
        let log_id = lines[0]
            .strip_prefix(ORIGIN_PREFIX)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| format!("the first line must be {ORIGIN_PREFIX}<log id>"))?;
        let size = lines[1]
            .parse::<u64>()
            .ok()
            .filter(|size| size.to_string() == lines[1])
            .ok_or("the second line must be the tree size in decimal")?;
        let root: Hash = STANDARD
            .decode(lines[2])
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or("the third line must be a 32-byte root hash in standard base64")?;
        Ok(Checkpoint {
            log_id: log_id.to_string(),
            size,
            root,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::leaf_hash;

    #[test]
    fn text_and_parse_round_trip() {
        let checkpoint = Checkpoint {
            log_id: "3f2c1e4a-8b7d-4c6e-9f01-23456789abcd".into(),
            size: 42,
            root: leaf_hash(b"x"),
        };
        let text = checkpoint.text();
        assert!(text.starts_with("audit_log/3f2c1e4a-8b7d-4c6e-9f01-23456789abcd\n42\n"));
        assert!(text.ends_with("=\n"));
        assert_eq!(Checkpoint::parse(&text).unwrap(), checkpoint);
        let signed = format!("{text}\n— example.org Az3grlgtzPICa5OS8npBqPh8YL8HuFt7k2E8v/cHtlA4uRcNEHI2ipaNZeJtZCrSy2VjuA1m8xzl6wiNr7ve4ZZgDAo=\n");
        assert_eq!(Checkpoint::parse(&signed).unwrap(), checkpoint);
    }

    #[test]
    fn malformed_checkpoints_are_refused() {
        let good = Checkpoint {
            log_id: "id".into(),
            size: 1,
            root: leaf_hash(b""),
        }
        .text();
        for bad in [
            good.trim_end().to_string(),
            good.replace("audit_log/", "other/"),
            good.replace("\n1\n", "\n01\n"),
            good.replace("\n1\n", "\n-1\n"),
            good.replace('=', ""),
            format!("{good}extra\n"),
            "audit_log/\n1\nAAAA\n".to_string(),
        ] {
            assert!(
                Checkpoint::parse(&bad).is_err(),
                "{bad:?} should be refused"
            );
        }
    }
}
