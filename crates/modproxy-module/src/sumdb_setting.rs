//! The `GOSUMDB` setting (`modfetch.dbDial` and `note.NewVerifier`):
//! `off`, a known database name, or a verifier key `name+hash+base64key`,
//! optionally followed by a space and the URL to reach the database at.

use std::fmt;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::goproxy::{normalize_http_url, UrlProblem};

/// Go's built-in key for `sum.golang.org` (`modfetch.knownGOSUMDB`).
pub const SUM_GOLANG_ORG_KEY: &str =
    "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";

/// The Ed25519 algorithm byte of a verifier key (`note.algEd25519`).
const ALG_ED25519: u8 = 1;

/// Go's `base64.StdEncoding` (padded; non-zero trailing bits tolerated).
const STD_ENCODING: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
);

/// A bad `GOSUMDB` value; messages follow Go's.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SumDbSettingError {
    #[error("missing GOSUMDB")]
    Missing,
    #[error("invalid GOSUMDB: too many fields")]
    TooManyFields,
    #[error("invalid GOSUMDB: malformed verifier id")]
    MalformedVerifierId,
    #[error("invalid GOSUMDB: invalid verifier hash")]
    InvalidVerifierHash,
    #[error("invalid GOSUMDB: unknown verifier algorithm")]
    UnknownVerifierAlgorithm,
    #[error("invalid sumdb name (must be host[/path]): {name}")]
    InvalidName { name: String },
    #[error("invalid GOSUMDB URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
}

/// A parsed `GOSUMDB` value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SumDbSetting {
    /// `GOSUMDB=off`: no checksum database.
    Off,
    Db(SumDbConfig),
}

/// A checksum database to use.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SumDbConfig {
    /// The database name, e.g. `sum.golang.org` (`host[/path]`).
    pub name: String,
    /// The full verifier key `name+hash+base64key`.
    pub key: String,
    /// Where to reach the database (`http(s)://...` without a trailing
    /// slash); `None` means `https://<name>`.
    pub url: Option<String>,
}

impl SumDbConfig {
    /// The base URL to fetch from: `url`, or `https://<name>`.
    pub fn base_url(&self) -> String {
        self.url
            .clone()
            .unwrap_or_else(|| format!("https://{}", self.name))
    }

    /// The key hash (the 8 hex digits of the key, checked at parse time).
    pub fn key_hash(&self) -> u32 {
        let hash16 = self.key.split('+').nth(1).unwrap_or("");
        u32::from_str_radix(hash16, 16).unwrap_or(0)
    }

    /// The 32-byte Ed25519 public key (checked at parse time).
    pub fn public_key(&self) -> [u8; 32] {
        let (_, _, key) = split_key(&self.key);
        let key = STD_ENCODING.decode(key).unwrap_or_default();
        key.get(1..33)
            .and_then(|k| k.try_into().ok())
            .unwrap_or([0; 32])
    }
}

impl Default for SumDbSetting {
    /// Go's default, `GOSUMDB=sum.golang.org`.
    fn default() -> Self {
        SumDbSetting::Db(SumDbConfig {
            name: "sum.golang.org".to_owned(),
            key: SUM_GOLANG_ORG_KEY.to_owned(),
            url: None,
        })
    }
}

impl fmt::Display for SumDbSetting {
    /// Prints the setting back in `GOSUMDB` syntax (with the full key).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SumDbSetting::Off => f.write_str("off"),
            SumDbSetting::Db(c) => match &c.url {
                Some(url) => write!(f, "{} {url}", c.key),
                None => f.write_str(&c.key),
            },
        }
    }
}

impl SumDbSetting {
    /// Parses a `GOSUMDB` value like Go's `dbDial`:
    ///
    /// * `off`;
    /// * `sum.golang.google.cn`, Go's alias for
    ///   `sum.golang.org https://sum.golang.google.cn`;
    /// * a key, then optionally white space and a URL. The key is either
    ///   a known name (`sum.golang.org`, replaced by Go's built-in key) or
    ///   a verifier key `name+hash+base64key` whose hash must be the first
    ///   4 bytes of SHA-256(name + "\n" + decoded key) and whose decoded key
    ///   must be the Ed25519 algorithm byte (1) and 32 key bytes.
    ///
    /// Go accepts any URL; this proxy accepts only `http(s)://host[/path]`.
    pub fn parse(s: &str) -> Result<SumDbSetting, SumDbSettingError> {
        let s = if s == "sum.golang.google.cn" {
            "sum.golang.org https://sum.golang.google.cn"
        } else {
            s
        };
        if s == "off" {
            return Ok(SumDbSetting::Off);
        }
        let fields: Vec<&str> = s.split_whitespace().collect();
        let (key, url) = match fields[..] {
            [] => return Err(SumDbSettingError::Missing),
            [key] => (key, None),
            [key, url] => (key, Some(url)),
            _ => return Err(SumDbSettingError::TooManyFields),
        };
        let key = if key == "sum.golang.org" {
            SUM_GOLANG_ORG_KEY
        } else {
            key
        };
        let name = check_verifier_key(key)?;
        check_name(name)?;
        let url = url
            .map(|u| {
                normalize_http_url(u).map_err(|p| SumDbSettingError::InvalidUrl {
                    url: u.to_owned(),
                    reason: url_reason(p),
                })
            })
            .transpose()?;
        Ok(SumDbSetting::Db(SumDbConfig {
            name: name.to_owned(),
            key: key.to_owned(),
            url,
        }))
    }
}

fn url_reason(p: UrlProblem) -> String {
    match p {
        UrlProblem::MissingScheme => "missing scheme (use https:// or http://)".to_owned(),
        UrlProblem::FileScheme | UrlProblem::BadScheme => {
            "this proxy reaches checksum databases over http:// or https:// only".to_owned()
        }
        UrlProblem::Invalid(reason) => reason.to_owned(),
    }
}

/// Splits `name+hash+key` like Go's two `strings.Cut` calls (the base64
/// key may itself contain `+`).
fn split_key(vkey: &str) -> (&str, &str, &str) {
    let (name, rest) = vkey.split_once('+').unwrap_or((vkey, ""));
    let (hash16, key64) = rest.split_once('+').unwrap_or((rest, ""));
    (name, hash16, key64)
}

/// Go's `note.NewVerifier` checks; returns the key's name.
fn check_verifier_key(vkey: &str) -> Result<&str, SumDbSettingError> {
    let (name, hash16, key64) = split_key(vkey);
    let hash = (hash16.len() == 8 && hash16.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u32::from_str_radix(hash16, 16).ok())
        .flatten();
    let key = STD_ENCODING.decode(key64).ok();
    let valid_name = !name.is_empty() && !name.chars().any(char::is_whitespace);
    let (Some(hash), Some(key), true) = (hash, key, valid_name) else {
        return Err(SumDbSettingError::MalformedVerifierId);
    };
    if key.is_empty() {
        return Err(SumDbSettingError::MalformedVerifierId);
    }
    if hash != key_hash(name, &key) {
        return Err(SumDbSettingError::InvalidVerifierHash);
    }
    if key[0] != ALG_ED25519 {
        return Err(SumDbSettingError::UnknownVerifierAlgorithm);
    }
    if key.len() != 33 {
        return Err(SumDbSettingError::MalformedVerifierId);
    }
    Ok(name)
}

/// `note.keyHash`: the first 4 bytes (big-endian) of
/// SHA-256(name + "\n" + key), where key includes the algorithm byte.
pub fn key_hash(name: &str, key: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update(key);
    let sum = h.finalize();
    u32::from_be_bytes([sum[0], sum[1], sum[2], sum[3]])
}

/// Go requires `https://<name>` to parse as a plain `host[/path]` URL.
fn check_name(name: &str) -> Result<(), SumDbSettingError> {
    let bad = || SumDbSettingError::InvalidName {
        name: name.to_owned(),
    };
    if name.ends_with('/') {
        return Err(bad());
    }
    let (host, path) = name.split_once('/').unwrap_or((name, ""));
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~:".contains(&b))
        && normalize_http_url(&format!("https://{host}")).is_ok();
    let path_ok = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~/!$&'()*,;=:@".contains(&b));
    if host_ok && path_ok {
        Ok(())
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests;
