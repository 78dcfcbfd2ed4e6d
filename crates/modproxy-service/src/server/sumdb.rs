//! `/sumdb/$name/…`: the checksum database, proxied from what this proxy
//! verified and stored (see [`crate::sumdb`]), so a go command with the
//! default GOSUMDB and only this proxy reachable verifies everything, also
//! while the upstream is down. Lookups of private module paths are refused
//! so their names never leave the proxy.

use std::sync::Arc;

use bytes::Bytes;
use hyper::StatusCode;
use modproxy_module::path::{unescape_version, ModulePath};
use tlog_tiles::Tile;

use super::body::ResponseBody;
use super::handler::Outcome;
use crate::cache::CacheStatus;
use crate::error::ServeError;
use crate::sumdb::SumDb;

pub struct SumDbProxy {
    db: Option<Arc<SumDb>>,
}

impl SumDbProxy {
    /// `db` is `None` when the checksum database is off.
    pub fn new(db: Option<Arc<SumDb>>) -> Self {
        SumDbProxy { db }
    }

    /// Answers `rest`, the path after `/sumdb/`.
    pub async fn handle(&self, rest: &str) -> Outcome {
        match self.answer(rest).await {
            Ok((status, body)) => Outcome {
                status: StatusCode::OK,
                cache: status,
                content_type: "text/plain; charset=utf-8",
                length: Some(body.len() as u64),
                body: ResponseBody::Full(Some(body)),
                challenge: false,
                location: None,
            },
            Err(e) => Outcome::error(CacheStatus::Miss, &e),
        }
    }

    async fn answer(&self, rest: &str) -> Result<(CacheStatus, Bytes), ServeError> {
        let Some(db) = &self.db else {
            return Err(ServeError::NotFound(
                "checksum database proxying is off (sumdb = \"off\")".into(),
            ));
        };
        let tail = rest
            .strip_prefix(db.name())
            .and_then(|t| t.strip_prefix('/'))
            .ok_or_else(|| {
                ServeError::NotFound(format!(
                    "checksum database not proxied here; this proxy serves {}",
                    db.name()
                ))
            })?;
        if !is_sumdb_path(tail) {
            return Err(ServeError::NotFound(format!(
                "not a checksum database path: {tail:?}"
            )));
        }
        if tail == "supported" {
            // 404 lets the go command fall through to its next way to the
            // database when this proxy has none: no route, and nothing
            // verified before to serve from the store.
            let stored = matches!(db.latest_note().await, Ok(Some(_)));
            if !stored && !db.reachable().await {
                return Err(ServeError::NotFound(format!(
                    "checksum database {} is not reachable from this proxy",
                    db.name()
                )));
            }
            return Ok((CacheStatus::Bypass, Bytes::new()));
        }
        if tail == "latest" {
            return latest(db).await;
        }
        if let Some(lookup) = tail.strip_prefix("lookup/") {
            let (module, version) = parse_lookup(lookup)?;
            if !db.covers(&module) {
                return Err(ServeError::NotFound(format!(
                    "{module} is private or exempt (--private, --nosumdb): its name is not sent to the checksum database"
                )));
            }
            let (raw, cached) = db.lookup_cached(&module, &version).await?;
            return Ok((hit_or_miss(cached), raw));
        }
        let tile = Tile::from_path(tail)
            .map_err(|e| ServeError::NotFound(format!("not a tile path {tail:?}: {e}")))?;
        if tile.is_data() {
            return Ok((CacheStatus::Bypass, db.fetch(tail).await?));
        }
        let (data, cached) = db.tile(tile).await?;
        if !cached {
            // Full tiles are kept for good once authenticated; the rest is
            // passed through.
            db.keep_tile(tile).await;
        }
        Ok((hit_or_miss(cached), data))
    }
}

fn hit_or_miss(cached: bool) -> CacheStatus {
    if cached {
        CacheStatus::Hit
    } else {
        CacheStatus::Miss
    }
}

/// The newest signed tree head: from the database (checked for
/// consistency with what this proxy accepted before), or, when the database
/// cannot be reached, the newest one accepted (STALE).
async fn latest(db: &Arc<SumDb>) -> Result<(CacheStatus, Bytes), ServeError> {
    match db.fetch("latest").await {
        Ok(note) => {
            db.merge_latest(&note).await?;
            Ok((CacheStatus::Miss, note))
        }
        Err(e) => match db.latest_note().await? {
            Some(note) => {
                tracing::warn!(error = %crate::error::chain(&e), "serving the last verified checksum database tree head");
                Ok((CacheStatus::Stale, note))
            }
            None => Err(e.into()),
        },
    }
}

/// `ESCAPED_MODULE@ESCAPED_VERSION` of a lookup path.
fn parse_lookup(lookup: &str) -> Result<(ModulePath, String), ServeError> {
    let bad =
        |e: &dyn std::fmt::Display| ServeError::NotFound(format!("bad lookup {lookup:?}: {e}"));
    let (module, version) = lookup.rsplit_once('@').ok_or_else(|| bad(&"no @"))?;
    let module = ModulePath::unescape(module).map_err(|e| bad(&e))?;
    let version = unescape_version(version).map_err(|e| bad(&e))?;
    Ok((module, version))
}

/// The checksum database protocol's paths, strictly: `supported`, `latest`,
/// `lookup/MODULE@VERSION`, `tile/H/L/N[.p/W]` (N in `x123/` groups).
/// Nothing else, so no `..` or stray path can reach an upstream.
fn is_sumdb_path(tail: &str) -> bool {
    if tail == "supported" || tail == "latest" {
        return true;
    }
    if let Some(lookup) = tail.strip_prefix("lookup/") {
        let safe = |c: char| c.is_ascii_alphanumeric() || "-._~!/+@".contains(c);
        return lookup.contains('@')
            && lookup.chars().all(safe)
            && !lookup
                .split('/')
                .any(|e| e.is_empty() || e.starts_with('.'));
    }
    let Some(tile) = tail.strip_prefix("tile/") else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.len() <= 3 && s.bytes().all(|b| b.is_ascii_digit());
    let mut parts = tile.splitn(3, '/');
    let (Some(height), Some(level), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let level_ok = digits(height) && (digits(level) || level == "data");
    let (index, partial_ok) = match rest.split_once(".p/") {
        Some((index, width)) => (index, digits(width)),
        None => (rest, true),
    };
    let elements: Vec<&str> = index.split('/').collect();
    let index_ok = elements.iter().enumerate().all(|(i, e)| {
        let e = if i + 1 < elements.len() {
            e.strip_prefix('x').unwrap_or("")
        } else {
            e
        };
        digits(e)
    });
    level_ok && index_ok && partial_ok
}

#[cfg(test)]
mod tests {
    use super::is_sumdb_path;

    #[test]
    fn only_checksum_database_paths_pass() {
        for ok in [
            "supported",
            "latest",
            "lookup/rsc.io/quote@v1.5.2",
            "lookup/github.com/!azure/x@v0.0.0-20200101000000-abcdefabcdef",
            "tile/8/0/001",
            "tile/8/1/x001/234",
            "tile/8/0/002.p/5",
            "tile/8/data/000",
        ] {
            assert!(is_sumdb_path(ok), "{ok}");
        }
        for bad in [
            "tile/../lookup/corp.example.com/x@v1.0.0",
            "tile/8/0/../../x",
            "lookup/../../x@v1",
            "lookup/rsc.io/quote",
            "tile/8/0/12345",
            "tile/8/0/002.p/",
            "other",
            "",
        ] {
            assert!(!is_sumdb_path(bad), "{bad}");
        }
    }
}
