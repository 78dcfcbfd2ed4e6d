//! Warming: fetch everything a build needs through a GOPROXY (a running
//! modproxy, or one started in-process on the local store), so the store
//! can serve that build with every upstream gone.
//!
//! The module graph is loaded by Go's rules ([`Graph`]): the go.mod files
//! it asks for are fetched (as many at once as allowed) and handed back
//! until the graph is complete; then every module of the build list gets
//! its `.info`, `.mod` and `.zip`. Each file is one [`Outcome`]: fetched,
//! already present (`X-Cache-Status: HIT`), or failed with the reason.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use modproxy_module::graph::{Graph, ModVer, Source};
use modproxy_module::modfile::GoMod;
use modproxy_module::path::ModulePath;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::error::chain;
use crate::request::{Endpoint, ModuleRequest};

/// Largest `.mod`/`.info` read into memory.
const SMALL_LIMIT: usize = 16 << 20;
/// A request that sends nothing for this long fails.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What to warm.
pub struct Plan {
    /// The graph, with the main modules' requirements added as roots.
    pub graph: Graph,
    /// `module@query` arguments to resolve first (`latest`, a branch, a
    /// version prefix…); each becomes a root loaded unpruned.
    pub queries: Vec<(String, String)>,
    /// Versions whose go.mod alone is needed (`/go.mod` lines of go.sum).
    pub gomods: Vec<ModVer>,
    /// Versions needed whole (the other go.sum lines).
    pub modules: Vec<ModVer>,
}

/// What happened to one file.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The protocol path (`rsc.io/quote/@v/v1.5.2.zip`) or a description.
    pub what: String,
    pub result: Result<Got, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Got {
    /// Fetched by this run (bytes).
    Fetched(u64),
    /// Already in the store (bytes).
    Present(u64),
}

/// Fetches through one GOPROXY URL.
pub struct Warmer {
    http: Arc<WarmGet>,
    permits: Arc<Semaphore>,
}

type Done = (Option<ModVer>, Outcome, Option<Bytes>);
/// Which file of a version (`Endpoint::Mod`, …).
type EndpointOf = fn(String) -> Endpoint;

impl Warmer {
    /// A warmer for the proxy at `base` (`http://host:port[/prefix]`),
    /// with at most `concurrency` requests at once.
    pub fn new(base: &str, concurrency: usize) -> Result<Warmer, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .no_proxy()
            .build()?;
        Ok(Warmer {
            http: Arc::new(WarmGet {
                client,
                base: base.trim_end_matches('/').to_string(),
            }),
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
        })
    }

    /// Runs `plan`; `on` sees every outcome as it lands. Returns them all.
    pub async fn run(&self, mut plan: Plan, mut on: impl FnMut(&Outcome)) -> Vec<Outcome> {
        let mut outcomes = Vec::new();
        let mut record = |o: Outcome| {
            on(&o);
            outcomes.push(o);
        };
        for (path, query) in std::mem::take(&mut plan.queries) {
            match self.resolve(&path, &query).await {
                Ok((version, outcome)) => {
                    record(outcome);
                    plan.graph.add_root(ModVer::new(path, version), false);
                }
                Err(outcome) => record(outcome),
            }
        }
        let mut seen: HashSet<String> = HashSet::new();
        let mut tasks: JoinSet<Done> = JoinSet::new();
        // The graph: go.mod files until nothing more is wanted and nothing
        // is in flight (a local replacement can want more at once).
        loop {
            let mut wanted = plan.graph.wanted();
            while !wanted.is_empty() {
                for m in wanted {
                    match plan.graph.source(&m) {
                        Source::Module(src) => match file(&src, Endpoint::Mod) {
                            Ok(what) => {
                                seen.insert(what.clone());
                                self.spawn(&mut tasks, Some(m), what, true);
                            }
                            Err(outcome) => {
                                plan.graph.provide(&m, None);
                                record(outcome);
                            }
                        },
                        Source::Dir(dir) => {
                            // A local replacement: its go.mod is on disk.
                            let path = std::path::Path::new(&dir).join("go.mod");
                            match std::fs::read(&path) {
                                Ok(data) => plan.graph.provide(&m, Some(&GoMod::parse(&data))),
                                Err(e) => {
                                    plan.graph.provide(&m, None);
                                    record(Outcome {
                                        what: format!("{m} => {dir}"),
                                        result: Err(format!("cannot read {}: {e}", path.display())),
                                    });
                                }
                            }
                        }
                    }
                }
                wanted = plan.graph.wanted();
            }
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            let (m, outcome, body) = joined.unwrap_or_else(panicked);
            if let Some(m) = m {
                let gomod = body.map(|b| GoMod::parse(&b));
                plan.graph.provide(&m, gomod.as_ref());
            }
            record(outcome);
        }
        // The files of the build list and of go.sum.
        let mut wanted: Vec<(ModVer, EndpointOf)> = Vec::new();
        for m in plan.graph.build_list().into_iter().chain(plan.modules) {
            if let Source::Module(src) = plan.graph.source(&m) {
                wanted.push((src.clone(), Endpoint::Info));
                wanted.push((src.clone(), Endpoint::Mod));
                wanted.push((src, Endpoint::Zip));
            }
        }
        for m in plan.gomods {
            if let Source::Module(src) = plan.graph.source(&m) {
                wanted.push((src, Endpoint::Mod));
            }
        }
        for (m, endpoint) in wanted {
            match file(&m, endpoint) {
                Ok(what) if seen.insert(what.clone()) => {
                    self.spawn(&mut tasks, None, what, false);
                }
                Ok(_) => {}
                Err(outcome) if seen.insert(outcome.what.clone()) => record(outcome),
                Err(_) => {}
            }
        }
        while let Some(joined) = tasks.join_next().await {
            record(joined.unwrap_or_else(panicked).1);
        }
        outcomes
    }

    /// Resolves `path@query` to a version through the proxy.
    async fn resolve(&self, path: &str, query: &str) -> Result<(String, Outcome), Outcome> {
        let endpoint: EndpointOf = match query {
            "latest" => |_| Endpoint::Latest,
            _ => Endpoint::Query,
        };
        let what = file(&ModVer::new(path, query), endpoint)?;
        let outcome = self.http.get(&what, true).await;
        let fail = |reason: String| Outcome {
            what: what.clone(),
            result: Err(reason),
        };
        let (got, body) = outcome.map_err(&fail)?;
        let info: serde_json::Value = serde_json::from_slice(&body.unwrap_or_default())
            .map_err(|e| fail(format!("not a version's .info: {e}")))?;
        let version = info["Version"]
            .as_str()
            .ok_or_else(|| fail("the .info names no Version".into()))?
            .to_string();
        Ok((
            version,
            Outcome {
                what: format!(
                    "{path}@{query} = {}",
                    info["Version"].as_str().unwrap_or("")
                ),
                result: Ok(got),
            },
        ))
    }

    fn spawn(&self, tasks: &mut JoinSet<Done>, m: Option<ModVer>, what: String, keep: bool) {
        let (http, permits) = (Arc::clone(&self.http), Arc::clone(&self.permits));
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.ok();
            let (result, body) = match http.get(&what, keep).await {
                Ok((got, body)) => (Ok(got), body),
                Err(e) => (Err(e), None),
            };
            (m, Outcome { what, result }, body)
        });
    }
}

/// One GET of a protocol path.
struct WarmGet {
    client: reqwest::Client,
    base: String,
}

impl WarmGet {
    /// The body is kept (`keep`, for small files) or counted and dropped.
    async fn get(&self, what: &str, keep: bool) -> Result<(Got, Option<Bytes>), String> {
        let url = format!("{}/{what}", self.base);
        let mut response = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| chain(&e).to_string())?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            let text = text.trim();
            let first = text.lines().next().unwrap_or("");
            return Err(format!("{status}: {first}"));
        }
        let present = response
            .headers()
            .get("x-cache-status")
            .is_some_and(|v| v.as_bytes() == b"HIT");
        let mut bytes = 0u64;
        let mut kept = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| chain(&e).to_string())? {
            bytes += chunk.len() as u64;
            if keep {
                if kept.len() + chunk.len() > SMALL_LIMIT {
                    return Err(format!("larger than {SMALL_LIMIT} bytes"));
                }
                kept.extend_from_slice(&chunk);
            }
        }
        let got = if present {
            Got::Present(bytes)
        } else {
            Got::Fetched(bytes)
        };
        Ok((got, keep.then(|| Bytes::from(kept))))
    }
}

/// The protocol path of one file of `m`, or the failure of a module path
/// that is not valid.
fn file(m: &ModVer, endpoint: EndpointOf) -> Result<String, Outcome> {
    match ModulePath::new(&m.path) {
        Ok(module) => Ok(ModuleRequest {
            module,
            endpoint: endpoint(m.version.clone()),
        }
        .protocol_path()),
        Err(e) => Err(Outcome {
            what: m.to_string(),
            result: Err(format!("malformed module path: {e}")),
        }),
    }
}

fn panicked(e: tokio::task::JoinError) -> Done {
    let outcome = Outcome {
        what: "a download".into(),
        result: Err(format!("internal error: {e}")),
    };
    (None, outcome, None)
}
