//! The upstream chain: GOPROXY-style lists of proxies, `direct` and `off`.
//!
//! `,` after an entry falls through to the next one only when the entry
//! answered "not found" (404/410); `|` falls through on any error, including
//! a skip by the circuit breaker. With `hedge_after`, an entry followed by
//! `|` that has not answered in time races the rest of the list. Private
//! module paths use their own list and never reach a public upstream.
//!
//! The cache sees the upstreams only through the [`Upstream`] trait, so
//! its core can be tested against an in-process fake.

pub mod address;
mod breaker;
pub mod direct;
mod error;
mod proxy;
mod redact;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use modproxy_module::goproxy::{ProxyList, ProxySpec};
use modproxy_module::path::ModulePath;
use modproxy_module::pattern::PathPatterns;

#[cfg(test)]
pub(crate) use error::network_error;
pub use error::UpstreamError;
pub use proxy::{Fetched, Http, ProxyUpstream};
pub use redact::redact;

use crate::error::chain;
use crate::settings::{Settings, UpstreamPolicy};

/// One entry of an upstream list.
#[derive(Debug, Clone)]
pub enum Source {
    Proxy(ProxyUpstream),
    Direct,
    Off,
}

/// A parsed upstream list: each source and whether any error falls through.
#[derive(Debug, Clone)]
pub struct Chain {
    entries: Vec<(Source, bool)>,
}

impl Chain {
    /// The chain for `list`. A proxy already in `known` (the same URL in
    /// another list) is reused, so it has one circuit breaker and one set
    /// of statistics; new ones are added to `known`.
    pub fn new(
        list: &ProxyList,
        policy: &UpstreamPolicy,
        known: &mut Vec<(String, ProxyUpstream)>,
    ) -> Chain {
        let mut proxy = |url: &str| {
            if let Some((_, p)) = known.iter().find(|(u, _)| u == url) {
                return p.clone();
            }
            let p = ProxyUpstream::new(url, policy);
            known.push((url.to_string(), p.clone()));
            p
        };
        let entries = list
            .entries
            .iter()
            .map(|e| {
                let source = match &e.spec {
                    ProxySpec::Url(url) => Source::Proxy(proxy(url)),
                    ProxySpec::Direct => Source::Direct,
                    ProxySpec::Off => Source::Off,
                };
                (source, e.fall_through_on_error)
            })
            .collect();
        Chain { entries }
    }

    /// The sources in order, each with whether any error falls through (`|`).
    pub fn entries(&self) -> impl Iterator<Item = (&Source, bool)> {
        self.entries.iter().map(|(s, f)| (s, *f))
    }
}

/// What the cache needs from the upstreams.
#[async_trait]
pub trait Upstream: Send + Sync {
    /// Fetches the protocol file `path` of `module`: the answer once its
    /// headers are in, its body still arriving.
    async fn fetch(&self, module: &ModulePath, path: &str) -> Result<Fetched, UpstreamError>;

    /// Longest wait for the next bytes of a body; also how long a relayed
    /// piece waits for the slowest waiter.
    fn stall(&self) -> Duration;

    /// Whether some proxy of `module`'s chain is not being skipped by its
    /// circuit breaker, or `None` when the chain has no proxy at all
    /// (`off`, `direct` only).
    fn proxy_health(&self, module: &ModulePath) -> Option<bool>;

    /// Whether some proxy of `module`'s chain is healthy (background work
    /// waits for one).
    fn healthy_for(&self, module: &ModulePath) -> bool {
        self.proxy_health(module) == Some(true)
    }
}

#[async_trait]
impl Upstream for Upstreams {
    async fn fetch(&self, module: &ModulePath, path: &str) -> Result<Fetched, UpstreamError> {
        Upstreams::fetch(self, module, path).await
    }

    fn stall(&self) -> Duration {
        self.http.policy.stall
    }

    fn proxy_health(&self, module: &ModulePath) -> Option<bool> {
        Upstreams::proxy_health(self, module)
    }
}

/// All upstreams with the one shared HTTP client.
#[derive(Debug)]
pub struct Upstreams {
    http: Http,
    /// For URLs a public module path names (see [`address`]).
    guarded: Http,
    public: Chain,
    private: Chain,
    private_patterns: PathPatterns,
    /// Version control, when `direct` is in a list.
    direct: Option<direct::Direct>,
}

/// What a fetch along a chain is for.
#[derive(Clone, Copy)]
struct Attempted<'a> {
    chain: &'a Chain,
    module: &'a ModulePath,
    path: &'a str,
}

type Attempt<'a> = Pin<Box<dyn Future<Output = Result<Fetched, Vec<UpstreamError>>> + Send + 'a>>;

impl Upstreams {
    pub fn new(settings: &Settings) -> Result<Upstreams, reqwest::Error> {
        let policy = settings.upstream_policy;
        let builder = || {
            reqwest::Client::builder()
                .connect_timeout(policy.connect)
                .pool_idle_timeout(Duration::from_secs(90))
                .user_agent(concat!("modproxy/", env!("CARGO_PKG_VERSION")))
        };
        let client = builder().redirect(address::trusted_redirects()).build()?;
        let addresses = Arc::new(address::AddressPolicy::new(settings.allow_internal.clone()));
        let guarded = Http {
            client: addresses.guard(builder()).build()?,
            policy,
            guard: Some(Arc::clone(&addresses)),
        };
        let mut known = Vec::new();
        Ok(Upstreams {
            http: Http {
                client,
                policy,
                guard: None,
            },
            guarded,
            public: Chain::new(&settings.upstream, &policy, &mut known),
            private: Chain::new(&settings.private_upstream, &policy, &mut known),
            private_patterns: settings.private.clone(),
            direct: [&settings.upstream, &settings.private_upstream]
                .iter()
                .any(|l| l.entries.iter().any(|e| e.spec == ProxySpec::Direct))
                .then(|| {
                    direct::Direct::new(&direct::DirectSettings {
                        // Not a module path (those never start with a dot):
                        // the store's walks leave it out.
                        dir: settings.data_dir.join(".vcs"),
                        git_timeout: settings.git_timeout,
                        insecure: settings.insecure.clone(),
                        trusted: settings.private.clone(),
                        addresses: Arc::clone(&addresses),
                    })
                }),
        })
    }

    /// The shared client and its policy.
    pub fn http(&self) -> &Http {
        &self.http
    }

    /// The public chain (also the route to the checksum DB).
    pub fn public(&self) -> &Chain {
        &self.public
    }

    /// Every proxy upstream, by name, with what it has done.
    pub fn stats(&self) -> Vec<(&str, &crate::metrics::UpstreamStats, bool)> {
        let mut out: Vec<(&str, &crate::metrics::UpstreamStats, bool)> = Vec::new();
        for chain in [&self.public, &self.private] {
            for (source, _) in &chain.entries {
                if let Source::Proxy(p) = source {
                    if !out.iter().any(|(name, _, _)| *name == p.name()) {
                        out.push((p.name(), p.stats(), p.is_failing()));
                    }
                }
            }
        }
        out
    }

    /// The chain responsible for `module`.
    pub fn chain_for(&self, module: &ModulePath) -> &Chain {
        if self.private_patterns.matches(module.as_str()) {
            &self.private
        } else {
            &self.public
        }
    }

    /// Whether some proxy of `module`'s chain is not being skipped by its
    /// circuit breaker, or `None` when the chain has no proxy at all
    /// (`off`, `direct` only).
    pub fn proxy_health(&self, module: &ModulePath) -> Option<bool> {
        let mut health = None;
        for (source, _) in &self.chain_for(module).entries {
            match source {
                Source::Proxy(p) if !p.is_skipped() => return Some(true),
                Source::Proxy(_) => health = Some(false),
                Source::Direct => continue,
                Source::Off => break,
            }
        }
        health
    }

    /// Fetches the protocol file `path` of `module` along its chain.
    pub async fn fetch(&self, module: &ModulePath, path: &str) -> Result<Fetched, UpstreamError> {
        let chain = self.chain_for(module);
        let at = Attempted {
            chain,
            module,
            path,
        };
        self.fetch_from(at, 0).await.map_err(summarize)
    }

    /// Tries entries `i..` of the chain; on failure, every error met.
    fn fetch_from<'a>(&'a self, at: Attempted<'a>, i: usize) -> Attempt<'a> {
        Box::pin(async move {
            let (chain, path) = (at.chain, at.path);
            let Some((source, fall_through_on_error)) = chain.entries.get(i) else {
                return Err(Vec::new());
            };
            let proxy = match source {
                Source::Off => return Err(vec![UpstreamError::Off]),
                Source::Direct => {
                    let direct = self.direct.as_ref().expect("direct is set up when listed");
                    return match direct.get(&self.http, &self.guarded, at.module, path).await {
                        Ok(fetched) => Ok(fetched),
                        Err(e) => self.after_failure(at, i, e, *fall_through_on_error).await,
                    };
                }
                Source::Proxy(p) => p,
            };
            let hedge = self
                .http
                .policy
                .hedge_after
                .filter(|_| *fall_through_on_error && i + 1 < chain.entries.len());
            match hedge {
                None => match proxy.get(&self.http, path).await {
                    Ok(fetched) => Ok(fetched),
                    Err(e) => self.after_failure(at, i, e, *fall_through_on_error).await,
                },
                Some(after) => self.hedged(at, i, proxy, after).await,
            }
        })
    }

    /// Entry `i` failed with `err`: go on to the next entry or stop.
    async fn after_failure(
        &self,
        at: Attempted<'_>,
        i: usize,
        err: UpstreamError,
        fall_through_on_error: bool,
    ) -> Result<Fetched, Vec<UpstreamError>> {
        let not_found = err.kind().is_not_found();
        if !not_found && !fall_through_on_error {
            tracing::warn!(err = %chain(&err), "upstream failed");
            return Err(vec![err]);
        }
        if !not_found {
            tracing::warn!(err = %chain(&err), "upstream failed; trying the next one");
        }
        match self.fetch_from(at, i + 1).await {
            Ok(fetched) => Ok(fetched),
            Err(mut rest) => {
                rest.insert(0, err);
                Err(rest)
            }
        }
    }

    /// Entry `i` with a hedge: if it has no headers after `after` (or fails
    /// first), the rest of the chain starts; the first success wins.
    async fn hedged(
        &self,
        at: Attempted<'_>,
        i: usize,
        proxy: &ProxyUpstream,
        after: Duration,
    ) -> Result<Fetched, Vec<UpstreamError>> {
        let first = proxy.get(&self.http, at.path);
        tokio::pin!(first);
        let first_err = tokio::select! {
            result = &mut first => match result {
                Ok(fetched) => return Ok(fetched),
                Err(e) => Some(e),
            },
            () = tokio::time::sleep(after) => None,
        };
        if let Some(e) = first_err {
            return self.after_failure(at, i, e, true).await;
        }
        tracing::info!(
            upstream = proxy.name(),
            after_ms = after.as_millis() as u64,
            "hedging: starting the next upstream"
        );
        let rest = self.fetch_from(at, i + 1);
        tokio::pin!(rest);
        tokio::select! {
            result = &mut first => match result {
                Ok(fetched) => Ok(fetched),
                Err(e) => rest.await.map_err(|mut errs| { errs.insert(0, e); errs }),
            },
            result = &mut rest => match result {
                Ok(fetched) => Ok(fetched),
                Err(mut errs) => match first.await {
                    Ok(fetched) => Ok(fetched),
                    Err(e) => { errs.insert(0, e); Err(errs) }
                },
            },
        }
    }
}

/// One error for a failed chain, like the go command: a real failure says
/// more than "not found"; if all said "not found", all of them.
fn summarize(mut errors: Vec<UpstreamError>) -> UpstreamError {
    if let Some(i) = errors.iter().position(|e| !e.kind().is_not_found()) {
        return errors.swap_remove(i);
    }
    match errors.len() {
        0 => UpstreamError::Off,
        1 => errors.remove(0),
        _ => UpstreamError::NoneHas(errors),
    }
}
