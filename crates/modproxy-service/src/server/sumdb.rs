//! `/sumdb/$name/…`: the checksum database, passed through.
//!
//! The database is reached the way the go command reaches it: through the
//! first upstream proxy that says it supports it (`/sumdb/$name/supported`),
//! or directly where the list says `direct`. Lookups of private module paths
//! are refused so their names never leave the proxy. Caching and
//! verification of the database itself are not done here yet.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::StatusCode;
use modproxy_module::path::ModulePath;
use modproxy_module::pattern::PathPatterns;
use modproxy_module::sumdb_setting::SumDbSetting;

use super::body::ResponseBody;
use super::handler::Outcome;
use crate::cache::CacheStatus;
use crate::error::ServeError;
use crate::upstream::{ProxyUpstream, Source, Upstreams};

/// Largest checksum database answer accepted.
const SUMDB_ANSWER_LIMIT: u64 = 1 << 20;

/// How long the chosen route to the database is reused.
const ROUTE_TTL: Duration = Duration::from_secs(300);

pub struct SumDbProxy {
    setting: SumDbSetting,
    upstreams: Arc<Upstreams>,
    private: PathPatterns,
    route: Mutex<Option<(Instant, Option<ProxyUpstream>)>>,
}

impl SumDbProxy {
    pub fn new(setting: SumDbSetting, upstreams: Arc<Upstreams>, private: PathPatterns) -> Self {
        SumDbProxy {
            setting,
            upstreams,
            private,
            route: Mutex::new(None),
        }
    }

    /// Answers `rest`, the path after `/sumdb/`.
    pub async fn handle(&self, rest: &str) -> Outcome {
        match self.answer(rest).await {
            Ok(outcome) => outcome,
            Err(e) => Outcome::error(CacheStatus::Bypass, &e),
        }
    }

    async fn answer(&self, rest: &str) -> Result<Outcome, ServeError> {
        let SumDbSetting::Db(db) = &self.setting else {
            return Err(ServeError::NotFound(
                "checksum database proxying is off (sumdb = \"off\")".into(),
            ));
        };
        let tail = rest
            .strip_prefix(db.name.as_str())
            .and_then(|t| t.strip_prefix('/'))
            .ok_or_else(|| {
                ServeError::NotFound(format!(
                    "checksum database not proxied here; this proxy serves {}",
                    db.name
                ))
            })?;
        if !is_sumdb_path(tail) {
            return Err(ServeError::NotFound(format!(
                "not a checksum database path: {tail:?}"
            )));
        }
        if let Some(lookup) = tail.strip_prefix("lookup/") {
            self.refuse_private(lookup)?;
        }
        let Some(route) = self.route(&db.name, db.url.as_deref()).await? else {
            return Err(ServeError::NotFound(format!(
                "checksum database {} is not reachable through any upstream",
                db.name
            )));
        };
        if tail == "supported" {
            return Ok(Outcome {
                status: StatusCode::OK,
                cache: CacheStatus::Bypass,
                content_type: "text/plain; charset=utf-8",
                length: Some(0),
                body: ResponseBody::empty(),
            });
        }
        let fetched = route.get(self.upstreams.http(), tail).await?;
        // Checksum DB answers are small (a tile is at most 8 KiB).
        let body = fetched.bytes(tail, SUMDB_ANSWER_LIMIT).await?;
        Ok(Outcome {
            status: StatusCode::OK,
            cache: CacheStatus::Bypass,
            content_type: if tail.starts_with("tile/") {
                "application/octet-stream"
            } else {
                "text/plain; charset=utf-8"
            },
            length: Some(body.len() as u64),
            body: ResponseBody::Full(Some(body)),
        })
    }

    fn refuse_private(&self, lookup: &str) -> Result<(), ServeError> {
        let escaped = lookup.rsplit_once('@').map_or(lookup, |(m, _)| m);
        if let Ok(module) = ModulePath::unescape(escaped) {
            if self.private.matches(module.as_str()) {
                return Err(ServeError::NotFound(format!(
                    "{module} is private: its name is not sent to the checksum database"
                )));
            }
        }
        Ok(())
    }

    /// The base URL of the database: the first upstream proxy supporting it,
    /// or the database itself where the list says `direct`.
    async fn route(
        &self,
        name: &str,
        url: Option<&str>,
    ) -> Result<Option<ProxyUpstream>, ServeError> {
        if let Some((at, route)) = &*self.route.lock().unwrap_or_else(|p| p.into_inner()) {
            if at.elapsed() < ROUTE_TTL {
                return Ok(route.clone());
            }
        }
        let mut found = None;
        for (source, fall_through_on_error) in self.upstreams.public().entries() {
            match source {
                Source::Proxy(p) => {
                    // Shares the proxy's circuit breaker: a dead proxy is skipped here too.
                    let candidate = p.sub(&format!("sumdb/{name}"));
                    match candidate.get(self.upstreams.http(), "supported").await {
                        Ok(_) => {
                            found = Some(candidate);
                            break;
                        }
                        Err(e) if e.is_not_found() || fall_through_on_error => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                Source::Direct => {
                    let base = url.map_or_else(|| format!("https://{name}"), str::to_string);
                    found = Some(ProxyUpstream::new(&base, &self.upstreams.http().policy));
                    break;
                }
                Source::Off => break,
            }
        }
        *self.route.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now(), found.clone()));
        Ok(found)
    }
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
