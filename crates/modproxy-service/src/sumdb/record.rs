//! The checksum database's message formats: a lookup answer (record id,
//! record text, signed tree note) and the tree note text, parsed like Go's
//! `tlog.ParseRecord` and `tlog.ParseTree`; and signed-note verification
//! with a GOSUMDB verifier key.

use signed_note::{Note, StandardVerifier, VerifierList};
use tlog_tiles::Hash;

/// A tree head: size and root hash.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tree {
    pub n: u64,
    pub hash: Hash,
}

impl Tree {
    pub const EMPTY: Tree = Tree {
        n: 0,
        hash: Hash([0; 32]),
    };
}

/// A lookup answer, split.
#[derive(Debug)]
pub struct Record<'a> {
    pub id: u64,
    pub text: &'a [u8],
    pub note: &'a [u8],
}

/// Splits `ID\nTEXT...\n\nNOTE` (Go's `tlog.ParseRecord`).
pub fn parse_record(msg: &[u8]) -> Result<Record<'_>, String> {
    let bad = |why: &str| format!("malformed lookup answer: {why}");
    let nl = msg
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| bad("no id line"))?;
    let id = std::str::from_utf8(&msg[..nl])
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| bad("bad record id"))?;
    let rest = &msg[nl + 1..];
    let split = rest
        .windows(2)
        .position(|w| w == b"\n\n")
        .ok_or_else(|| bad("no blank line before the tree note"))?;
    Ok(Record {
        id,
        text: &rest[..split + 1],
        note: &rest[split + 2..],
    })
}

/// Parses a tree note's text: `go.sum database tree\nN\nHASH\n` (Go's
/// `tlog.ParseTree`; extra lines after the hash are allowed).
pub fn parse_tree(text: &[u8]) -> Result<Tree, String> {
    let bad = || "malformed tree note".to_string();
    let text = std::str::from_utf8(text).map_err(|_| bad())?;
    let mut lines = text.split('\n');
    if lines.next() != Some("go.sum database tree") {
        return Err(bad());
    }
    let n = lines
        .next()
        .and_then(|l| l.parse::<u64>().ok())
        .ok_or_else(bad)?;
    let hash = lines
        .next()
        .and_then(|l| Hash::parse_hash(l).ok())
        .ok_or_else(bad)?;
    Ok(Tree { n, hash })
}

/// Opens a signed tree note with the database's verifier key and returns
/// the tree it signs.
pub fn open_tree_note(msg: &[u8], verifier_key: &str) -> Result<Tree, String> {
    let verifier = StandardVerifier::new(verifier_key)
        .map_err(|e| format!("invalid checksum database key: {e}"))?;
    let list = VerifierList::new(vec![Box::new(verifier)]);
    let note = Note::from_bytes(msg).map_err(|e| format!("reading tree note: {e}"))?;
    note.verify(&list)
        .map_err(|e| format!("verifying tree note: {e}"))?;
    parse_tree(note.text())
}

/// The `h1:` hashes a record lists for `module` `version`: the zip's and
/// the go.mod's (`None` where a line is missing).
pub fn hashes_for(text: &[u8], module: &str, version: &str) -> (Option<String>, Option<String>) {
    let text = String::from_utf8_lossy(text);
    let (mut zip, mut gomod) = (None, None);
    for line in text.lines() {
        let mut fields = line.split(' ');
        let (Some(m), Some(v), Some(h)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        if m != module {
            continue;
        }
        if v == version {
            zip = Some(h.to_string());
        } else if v.strip_suffix("/go.mod") == Some(version) {
            gomod = Some(h.to_string());
        }
    }
    (zip, gomod)
}

#[cfg(test)]
mod tests {
    use super::*;
    use signed_note::{Signer, StandardSigner};

    fn signed(text: &str, skey: &str) -> Vec<u8> {
        let signer = StandardSigner::new(skey).unwrap();
        let mut note = Note::new(text.as_bytes(), &[]).unwrap();
        note.add_sigs(&[&signer as &dyn Signer]).unwrap();
        note.to_bytes()
    }

    fn keys(name: &str) -> (String, String) {
        signed_note::generate_key(&mut rand_core::OsRng, name)
    }

    const TREE: &str = "go.sum database tree\n5\nKgKxHJqoGqUgQrVbBMXNqRWTQQ0qLeL3g3f6AT1k6VI=\n";

    #[test]
    fn a_good_note_opens_and_a_tampered_one_does_not() {
        let (skey, vkey) = keys("sum.example.com");
        let msg = signed(TREE, &skey);
        let tree = open_tree_note(&msg, &vkey).unwrap();
        assert_eq!(tree.n, 5);

        // Someone else's key.
        let (other_skey, _) = keys("sum.example.com");
        assert!(open_tree_note(&signed(TREE, &other_skey), &vkey).is_err());
        // Text changed after signing.
        let tampered = String::from_utf8(msg.clone())
            .unwrap()
            .replacen("\n5\n", "\n6\n", 1);
        assert!(open_tree_note(tampered.as_bytes(), &vkey).is_err());
        // Signature bytes flipped.
        let mut flipped = msg.clone();
        let last = flipped.len() - 3;
        flipped[last] ^= 1;
        assert!(open_tree_note(&flipped, &vkey).is_err());
    }

    #[test]
    fn records_and_hash_lines() {
        let msg = b"42\nrsc.io/quote v1.5.2 h1:AAA=\nrsc.io/quote v1.5.2/go.mod h1:BBB=\n\ngo.sum database tree\n...";
        let r = parse_record(msg).unwrap();
        assert_eq!(r.id, 42);
        assert!(r.note.starts_with(b"go.sum database tree"));
        let (zip, gomod) = hashes_for(r.text, "rsc.io/quote", "v1.5.2");
        assert_eq!(
            (zip.as_deref(), gomod.as_deref()),
            (Some("h1:AAA="), Some("h1:BBB="))
        );
        assert!(parse_record(b"x\n").is_err());
        assert!(parse_tree(b"go.sum database tree\nnope\n").is_err());
    }
}
