//! Pseudo-versions (`module/pseudo.go`): recognising and splitting the
//! versions Go invents for untagged commits.
//!
//! The three general forms (each optionally followed by `+incompatible`):
//!
//! 1. `vX.0.0-yyyymmddhhmmss-abcdef123456` (no earlier tag)
//! 2. `vX.Y.(Z+1)-0.yyyymmddhhmmss-abcdef123456` (after tag `vX.Y.Z`)
//! 3. `vX.Y.Z-pre.0.yyyymmddhhmmss-abcdef123456` (after tag `vX.Y.Z-pre`)

use crate::goquote::quote;
use crate::semver;

/// The pieces of a pseudo-version, as Go's `parsePseudoVersion` splits it.
///
/// `base` is the text before the timestamp without its trailing separator:
/// `"vX.0.0"`, `"vX.Y.(Z+1)-0"` or `"vX.Y.Z-pre.0"`. Use
/// [`pseudo_version_base`] for the tagged version it was derived from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PseudoVersion {
    pub base: String,
    /// `yyyymmddhhmmss` (UTC), not checked to be a real date.
    pub timestamp: String,
    /// The revision identifier, usually a 12-character commit hash prefix.
    pub revision: String,
}

/// Errors about pseudo-versions, worded like Go's `InvalidVersionError`.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum PseudoError {
    #[error("pseudo-version {} invalid: syntax error", quote(version))]
    Syntax { version: String },
    #[error(
        "pseudo-version {} invalid: lacks base version, but has build metadata {}",
        quote(version),
        quote(build)
    )]
    BuildWithoutBase { version: String, build: String },
    #[error(
        "pseudo-version {} invalid: version before {base} would have negative patch number",
        quote(version)
    )]
    NegativePatch { version: String, base: String },
}

/// `module.IsPseudoVersion`.
pub fn is_pseudo_version(v: &str) -> bool {
    v.matches('-').count() >= 2 && semver::is_valid(v) && matches_pseudo_re(v)
}

/// A hand-written equivalent of Go's `pseudoVersionRE`
/// `^v[0-9]+\.(0\.0-|\d+\.\d+-([^+]*\.)?0\.)\d{14}-[A-Za-z0-9]+(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$`
/// for a string already known to be valid semver (so the build suffix,
/// if any, already has the required shape).
fn matches_pseudo_re(v: &str) -> bool {
    let s = v.split_once('+').map_or(v, |(s, _)| s);
    // `\d{14}-[A-Za-z0-9]+$`: the revision follows the last dash.
    let Some((head, rev)) = s.rsplit_once('-') else {
        return false;
    };
    if rev.is_empty() || !rev.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    if head.len() < 14
        || !head.as_bytes()[head.len() - 14..]
            .iter()
            .all(u8::is_ascii_digit)
    {
        return false;
    }
    let p = &head[..head.len() - 14];
    // `^v[0-9]+\.` then `0\.0-` or `\d+\.\d+-([^+]*\.)?0\.`.
    let Some(rest) = p.strip_prefix('v').and_then(|r| skip_digits_then(r, b'.')) else {
        return false;
    };
    if rest == "0.0-" {
        return true;
    }
    let Some(rest) = skip_digits_then(rest, b'.').and_then(|r| skip_digits_then(r, b'-')) else {
        return false;
    };
    match rest.strip_suffix("0.") {
        Some(mid) => mid.is_empty() || mid.ends_with('.'),
        None => false,
    }
}

/// Skips one or more ASCII digits followed by `sep`.
fn skip_digits_then(s: &str, sep: u8) -> Option<&str> {
    let n = s.bytes().take_while(u8::is_ascii_digit).count();
    (n > 0 && s.as_bytes().get(n) == Some(&sep)).then(|| &s[n + 1..])
}

/// Go's `parsePseudoVersion`.
pub fn parse_pseudo_version(v: &str) -> Result<PseudoVersion, PseudoError> {
    if !is_pseudo_version(v) {
        return Err(PseudoError::Syntax {
            version: v.to_owned(),
        });
    }
    let build = semver::build(v).unwrap_or("");
    let v = &v[..v.len() - build.len()];
    let (v, rev) = v.rsplit_once('-').expect("pseudo-version has a dash");
    let i = v.rfind('-').expect("pseudo-version has two dashes");
    let (base, timestamp) = match v.rfind('.') {
        Some(j) if j > i => (&v[..j], &v[j + 1..]),
        _ => (&v[..i], &v[i + 1..]),
    };
    Ok(PseudoVersion {
        base: base.to_owned(),
        timestamp: timestamp.to_owned(),
        revision: rev.to_owned(),
    })
}

/// `module.PseudoVersionBase`: the tagged version the pseudo-version was
/// derived from (keeping `+incompatible`), or `None` for form 1.
pub fn pseudo_version_base(v: &str) -> Result<Option<String>, PseudoError> {
    let p = parse_pseudo_version(v)?;
    let build = semver::build(v).unwrap_or("");
    match semver::prerelease(&p.base) {
        None => {
            if !build.is_empty() {
                return Err(PseudoError::BuildWithoutBase {
                    version: v.to_owned(),
                    build: build.to_owned(),
                });
            }
            Ok(None)
        }
        Some("-0") => {
            let base = &p.base[..p.base.len() - 2];
            let i = base.rfind('.').expect("base has a patch number");
            let patch = dec_decimal(&base[i + 1..]);
            if patch.is_empty() {
                return Err(PseudoError::NegativePatch {
                    version: v.to_owned(),
                    base: base.to_owned(),
                });
            }
            Ok(Some(format!("{}{patch}{build}", &base[..=i])))
        }
        Some(_) => {
            let base = p.base.strip_suffix(".0").expect("base ends in .0");
            Ok(Some(format!("{base}{build}")))
        }
    }
}

/// `module.PseudoVersion`: builds a pseudo-version for major version
/// `major` (`""` means `"v0"`), the most recent older tag `older` (`""`
/// for none), a `yyyymmddhhmmss` UTC timestamp and a revision id.
pub fn pseudo_version(major: &str, older: &str, timestamp: &str, rev: &str) -> String {
    let major = if major.is_empty() { "v0" } else { major };
    let segment = format!("{timestamp}-{rev}");
    let build = semver::build(older).unwrap_or("");
    let Some(older) = semver::canonical(older) else {
        return format!("{major}.0.0-{segment}");
    };
    if semver::prerelease(&older).is_some() {
        return format!("{older}.0.{segment}{build}");
    }
    let i = older.rfind('.').map_or(0, |i| i + 1);
    let (v, patch) = older.split_at(i);
    format!("{v}{}-0.{segment}{build}", inc_decimal(patch))
}

/// Increments a decimal string by one.
fn inc_decimal(decimal: &str) -> String {
    let mut digits = decimal.as_bytes().to_vec();
    let mut i = digits.len();
    while i > 0 && digits[i - 1] == b'9' {
        digits[i - 1] = b'0';
        i -= 1;
    }
    if i > 0 {
        digits[i - 1] += 1;
    } else {
        digits.insert(0, b'1');
    }
    String::from_utf8(digits).expect("ASCII digits")
}

/// Decrements a decimal string by one; `""` if it is all zeros.
fn dec_decimal(decimal: &str) -> String {
    let mut digits = decimal.as_bytes().to_vec();
    let mut i = digits.len();
    while i > 0 && digits[i - 1] == b'0' {
        digits[i - 1] = b'9';
        i -= 1;
    }
    if i == 0 {
        return String::new();
    }
    if i == 1 && digits[0] == b'1' && digits.len() > 1 {
        digits.remove(0);
    } else {
        digits[i - 1] -= 1;
    }
    String::from_utf8(digits).expect("ASCII digits")
}

#[cfg(test)]
mod tests;
