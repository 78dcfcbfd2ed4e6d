//! The upstream chain: GOPROXY-style lists of proxies, `direct` and `off`.
//!
//! `,` after an entry falls through to the next one only when the entry
//! answered "not found" (404/410); `|` falls through on any error. Private
//! module paths use their own list and never reach a public upstream.

mod error;
mod proxy;

use std::time::Duration;

use modproxy_module::goproxy::{ProxyList, ProxySpec};
use modproxy_module::path::ModulePath;
use modproxy_module::pattern::PathPatterns;

pub use error::UpstreamError;
pub use proxy::{Fetched, ProxyUpstream};

use crate::settings::{Settings, UpstreamTimeouts};

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
    pub fn new(list: &ProxyList) -> Chain {
        let entries = list
            .entries
            .iter()
            .map(|e| {
                let source = match &e.spec {
                    ProxySpec::Url(url) => Source::Proxy(ProxyUpstream::new(url)),
                    ProxySpec::Direct => Source::Direct,
                    ProxySpec::Off => Source::Off,
                };
                (source, e.fall_through_on_error)
            })
            .collect();
        Chain { entries }
    }

    /// The sources in order.
    pub fn sources(&self) -> impl Iterator<Item = &Source> {
        self.entries.iter().map(|(s, _)| s)
    }
}

/// All upstreams with the one shared HTTP client.
#[derive(Debug)]
pub struct Upstreams {
    client: reqwest::Client,
    timeouts: UpstreamTimeouts,
    public: Chain,
    private: Chain,
    private_patterns: PathPatterns,
}

impl Upstreams {
    pub fn new(settings: &Settings) -> Result<Upstreams, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(settings.timeouts.connect)
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(concat!("modproxy/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Upstreams {
            client,
            timeouts: settings.timeouts,
            public: Chain::new(&settings.upstream),
            private: Chain::new(&settings.private_upstream),
            private_patterns: settings.private.clone(),
        })
    }

    /// The shared HTTP client.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub fn timeouts(&self) -> &UpstreamTimeouts {
        &self.timeouts
    }

    /// The public chain (also the route to the checksum DB).
    pub fn public(&self) -> &Chain {
        &self.public
    }

    /// The chain responsible for `module`.
    pub fn chain_for(&self, module: &ModulePath) -> &Chain {
        if self.private_patterns.matches(module.as_str()) {
            &self.private
        } else {
            &self.public
        }
    }

    /// Fetches the protocol file `path` of `module` along its chain.
    pub async fn fetch(&self, module: &ModulePath, path: &str) -> Result<Fetched, UpstreamError> {
        let mut first_failure: Option<UpstreamError> = None;
        let mut not_found: Vec<UpstreamError> = Vec::new();
        for (source, fall_through_on_error) in &self.chain_for(module).entries {
            let result = match source {
                Source::Proxy(p) => p.get(&self.client, &self.timeouts, path).await,
                Source::Direct => Err(UpstreamError::DirectUnsupported),
                Source::Off => Err(UpstreamError::Off),
            };
            let err = match result {
                Ok(fetched) => return Ok(fetched),
                Err(e) => e,
            };
            if matches!(err, UpstreamError::Off) {
                not_found.push(err);
                break;
            }
            if err.is_not_found() {
                tracing::debug!(%err, "falling through");
                not_found.push(err);
                continue;
            }
            tracing::warn!(%err, "upstream failed");
            if !fall_through_on_error {
                return Err(first_failure.unwrap_or(err));
            }
            first_failure.get_or_insert(err);
        }
        // Like the go command: a real failure says more than "not found".
        Err(first_failure.unwrap_or_else(|| match not_found.len() {
            0 => UpstreamError::Off,
            1 => not_found.remove(0),
            _ => UpstreamError::NoneHas(not_found),
        }))
    }
}
