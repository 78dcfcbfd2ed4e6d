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
        let allowed = tail == "supported"
            || tail == "latest"
            || tail.starts_with("lookup/")
            || tail.starts_with("tile/");
        if !allowed {
            return Err(ServeError::NotFound(format!(
                "not a checksum database path: {tail}"
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
        let mut fetched = route.get(self.upstreams.http(), tail).await?;
        // Checksum DB answers are small (a tile is at most 8 KiB).
        let mut body = Vec::new();
        while let Some(chunk) = fetched.chunk().await? {
            body.extend_from_slice(&chunk);
        }
        Ok(Outcome {
            status: StatusCode::OK,
            cache: CacheStatus::Bypass,
            content_type: if tail.starts_with("tile/") {
                "application/octet-stream"
            } else {
                "text/plain; charset=utf-8"
            },
            length: Some(body.len() as u64),
            body: ResponseBody::Full(Some(body.into())),
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
        for source in self.upstreams.public().sources() {
            match source {
                Source::Proxy(p) => {
                    let base = format!("{}/sumdb/{name}", p.base());
                    let candidate = ProxyUpstream::new(&base, &self.upstreams.http().policy);
                    match candidate.get(self.upstreams.http(), "supported").await {
                        Ok(_) => {
                            found = Some(candidate);
                            break;
                        }
                        Err(e) if e.is_not_found() => continue,
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
