//! The fetch task behind a flight: upstream → validation → store.
//!
//! Small files (`.info`, `.mod`, lists) are read whole (under a size limit),
//! checked, handed to the waiting clients and then published; zips (see
//! [`super::zip`]) are spooled, verified, handed over and then published.
//! The endpoint is matched once, and each kind of file has its own fetch
//! function, which returns how the fetch landed and what to store; the
//! store writes follow the answer. On any failure nothing is published.

use std::sync::Arc;

use bytes::Bytes;
use modproxy_module::{pseudo, semver};

use super::flight::{FlightState, Landed, Progress, Relay};
use super::zip::VerifiedZip;
use super::Cache;
use crate::error::{chain, ServeError};
use crate::metrics::Metrics;
use crate::replica_lock::{FetchLocks, Taken, LOCK_TTL};
use crate::request::{Endpoint, ModuleRequest};

/// Largest `.mod` accepted (the go command's own limit for go.mod files).
const MOD_LIMIT: u64 = 16 << 20;
/// Largest `.info`, `@latest` or version list accepted.
const META_LIMIT: u64 = 16 << 20;
/// Longest wait for another replica's fetch of the same file.
/// The holder renews its lock while it fetches; waiting longer than a
/// whole fetch may take makes no sense.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(300);

impl Cache {
    /// Runs one fetch of `request` to its end, reporting on `progress`.
    /// `seen` is [`Flights::landed`](super::flight::Flights::landed) when
    /// the caller found no fresh copy in the store, if it looked.
    pub(super) async fn run_fetch(
        self: Arc<Self>,
        request: ModuleRequest,
        progress: Progress,
        relay: Relay,
        seen: Option<u64>,
    ) {
        let key = request.protocol_path();
        let look_holds = seen.is_some_and(|n| n == self.flights.landed());
        if !look_holds && self.has_usable(&request, &key).await {
            progress.send_replace(FlightState::Done(Ok(Landed::Stored)));
            return;
        }
        // Replicas on one store: one fetches, the others wait for its file.
        let mut held = None;
        if let Some(locks) = self
            .locks
            .as_ref()
            .filter(|_| request.endpoint.is_immutable())
        {
            match locks.take(&key).await {
                Taken::Mine(token) => {
                    // It may have landed between our look and the lock.
                    if self.store.exists(&key).await {
                        locks.release(&key, &token).await;
                        progress.send_replace(FlightState::Done(Ok(Landed::Stored)));
                        return;
                    }
                    held = Some(Held::start(Arc::clone(locks), key.clone(), token));
                }
                Taken::Theirs => {
                    if self.wait_for_other_replica(locks, &request, &key).await {
                        progress.send_replace(FlightState::Done(Ok(Landed::Stored)));
                        return;
                    }
                }
                Taken::Unavailable(e) => {
                    tracing::warn!(%request, error = %e, "fetch lock unavailable; fetching without it");
                }
            }
        }
        let (result, to_store) = match self.fetch_upstream(&request, &key, &progress, &relay).await
        {
            Ok((landed, to_store)) => (Ok(landed), to_store),
            Err(e) => (Err(e), None),
        };
        match &result {
            Ok(_) => self.negative.remove(&key),
            Err(e) if e.kind().is_not_found() => {
                let message = chain(e).to_string();
                self.negative
                    .insert(&key, message, self.policy.negative_ttl);
            }
            Err(e) => tracing::warn!(%request, error = %chain(e), "fetch failed"),
        }
        let fetched = result.is_ok();
        progress.send_replace(FlightState::Done(result));
        if fetched {
            // Logged once the waiters have their answer, not before.
            tracing::info!(%request, "fetched");
        }
        // Answered (from memory or the spool file); now the store. The
        // flight stays joinable (answering the same way) until this is
        // done, so nobody fetches the same object again meanwhile. The
        // write may wait for a burst of writes to end, unless other
        // replicas wait for it (they poll the store while the lock is
        // held).
        let now = held.is_some();
        if let Some(item) = to_store {
            match item {
                ToStore::Bytes(body) => {
                    if request.endpoint.is_immutable() {
                        // The go command asks for what it was just
                        // answered again soon (and a prefetched go.mod is
                        // asked for the first time): answer from memory
                        // rather than a read queued behind store writes.
                        // Within the budget of copies read whole.
                        let kept = match self.store.whole_reads() {
                            Some(whole) => whole.charged(&body),
                            None => Some(body.clone()),
                        };
                        if let Some(kept) = kept {
                            self.hot.insert(&key, kept);
                        }
                    }
                    self.publish(&key, body, now).await
                }
                ToStore::Zip(zip) => self.publish_zip(zip, now).await,
            }
            self.flights.note_landed();
        }
        if let Some(held) = held {
            held.release().await;
        }
    }

    /// Another replica holds the fetch lock of `key`: waits (bounded) for
    /// its file to appear in the store. False when it did not (the other
    /// replica failed or is slow, or the lock went away): fetch here.
    async fn wait_for_other_replica(
        &self,
        locks: &FetchLocks,
        request: &ModuleRequest,
        key: &str,
    ) -> bool {
        let started = std::time::Instant::now();
        let mut polls = 0u32;
        while started.elapsed() < LOCK_WAIT {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            // Immutable files only: there is nothing to check but presence.
            if self.store.exists(key).await {
                Metrics::inc(&self.metrics.coalesced);
                return true;
            }
            polls += 1;
            // Every second: is anyone still fetching it? (Its holder renews
            // it; a lock that went away without the file means: fetch here.)
            if polls.is_multiple_of(10) && locks.held(key).await != Some(true) {
                return self.store.exists(key).await;
            }
        }
        tracing::warn!(%request, "another replica's fetch did not land in time; fetching here");
        false
    }

    /// Whether the store already holds a usable copy: a request that missed
    /// may start its fetch just after another fetch of the same key published.
    async fn has_usable(&self, request: &ModuleRequest, key: &str) -> bool {
        if request.endpoint.is_immutable() {
            return self.store.exists(key).await;
        }
        match self.store.get(key).await {
            Ok(Some(object)) => {
                request.endpoint.is_immutable()
                    || super::age(object.modified) < self.policy.fresh_for
            }
            _ => false,
        }
    }

    /// Fetches `request` from the upstreams and checks it: how it landed,
    /// and what to store once the waiters have their answer.
    async fn fetch_upstream(
        &self,
        request: &ModuleRequest,
        key: &str,
        progress: &Progress,
        relay: &Relay,
    ) -> Result<(Landed, Option<ToStore>), ServeError> {
        let small = match &request.endpoint {
            Endpoint::Zip(version) => {
                let (landed, zip) = self
                    .fetch_zip(request, version, key, progress, relay)
                    .await?;
                return Ok((landed, zip.map(ToStore::Zip)));
            }
            Endpoint::Mod(version) => self.fetch_mod(request, version, key).await?,
            Endpoint::List => self.fetch_meta(request, key, Meta::List).await?,
            Endpoint::Info(version) => self.fetch_meta(request, key, Meta::Info(version)).await?,
            Endpoint::Latest | Endpoint::Query(_) => {
                self.fetch_meta(request, key, Meta::Resolved).await?
            }
        };
        Ok((Landed::Bytes(small.clone()), Some(ToStore::Bytes(small))))
    }

    /// Fetches a `.mod` and checks it against the checksum database.
    async fn fetch_mod(
        &self,
        request: &ModuleRequest,
        version: &str,
        key: &str,
    ) -> Result<Bytes, ServeError> {
        // The checksum database lookup runs alongside the download: one
        // round trip to the upstream instead of two in a row. A failed
        // download ends it at once and is what is reported.
        let download = self.download_small(request, key, MOD_LIMIT);
        let lookup = self.expected(&request.module, version);
        tokio::pin!(download, lookup);
        let ((body, upstream), expected) = tokio::select! {
            d = &mut download => (d?, lookup.await),
            e = &mut lookup => (download.await?, e),
        };
        self.check_gomod(&request.module, version, &body, expected?)?;
        self.note_module_line(request, &body, &upstream);
        Ok(body)
    }

    /// Fetches and checks a version list, an `.info` or a query answer.
    async fn fetch_meta(
        &self,
        request: &ModuleRequest,
        key: &str,
        meta: Meta<'_>,
    ) -> Result<Bytes, ServeError> {
        let (body, upstream) = self.download_small(request, key, META_LIMIT).await?;
        let what = request.to_string();
        let (body, canonical_info) = match meta {
            Meta::List => (clean_list(&body), None),
            Meta::Info(version) => {
                let info = info_version(&body, &upstream, &what)?;
                if info != version {
                    let reason = format!("names version {info:?}, not {version:?}");
                    return Err(invalid(&upstream, &what, reason));
                }
                (body, None)
            }
            Meta::Resolved => {
                let info = info_version(&body, &upstream, &what)?;
                if !semver::is_canonical_module_version(&info) {
                    let reason = format!("names non-canonical version {info:?}");
                    return Err(invalid(&upstream, &what, reason));
                }
                (body, Some(info))
            }
        };
        if let Some(version) = canonical_info {
            // The canonical .info is immutable: store it too, so the go
            // command's next request (for that version) is a hit.
            let info = ModuleRequest {
                module: request.module.clone(),
                endpoint: Endpoint::Info(version),
            };
            let info_key = info.protocol_path();
            // Stored before the answer, at once: no flight covers this
            // key, and the go command asks for it next.
            if matches!(self.store.get(&info_key).await, Ok(None)) {
                self.publish(&info_key, body.clone(), true).await;
                self.flights.note_landed();
            }
        }
        Ok(body)
    }

    /// Downloads `request` whole (at most `limit` bytes); returns the body
    /// and the upstream that answered.
    async fn download_small(
        &self,
        request: &ModuleRequest,
        key: &str,
        limit: u64,
    ) -> Result<(Bytes, String), ServeError> {
        let fetched = self
            .upstreams
            .fetch(&request.module, key)
            .await?
            .resumable(request.endpoint.is_immutable());
        let upstream = fetched.upstream.clone();
        Ok((fetched.bytes(&request.to_string(), limit).await?, upstream))
    }

    /// Publishes a small object (`now`: someone waits for it, so not
    /// deferred). A store failure is logged, not fatal: the client is
    /// still answered with the bytes it asked for.
    async fn publish(&self, key: &str, body: Bytes, now: bool) {
        match self.put(key, body, now).await {
            Ok(()) => self.store_health.succeeded(),
            Err(e) => self.store_health.failed(e.failure(), &e),
        }
    }

    /// Stores `body` at `key`, at once when `now` (someone waits for it),
    /// else whenever the store likes ([`crate::store::Store::put`]).
    pub(super) async fn put(
        &self,
        key: &str,
        body: Bytes,
        now: bool,
    ) -> Result<(), crate::store::StoreError> {
        if now {
            self.store.put_now(key, body).await
        } else {
            self.store.put(key, body).await
        }
    }
}

/// What a fetch writes to the store once its waiters have their answer.
enum ToStore {
    /// A small object.
    Bytes(Bytes),
    /// A verified zip (in its spool file or memory).
    Zip(VerifiedZip),
}

/// Which metadata file a fetch is for.
enum Meta<'a> {
    /// `@v/list`
    List,
    /// A canonical version's `.info`.
    Info(&'a str),
    /// `@latest` or a query: the answer names the canonical version.
    Resolved,
}

pub(super) fn invalid(upstream: &str, what: &str, reason: String) -> ServeError {
    crate::upstream::UpstreamError::Invalid {
        upstream: upstream.to_string(),
        what: what.to_string(),
        reason,
    }
    .into()
}

/// The version an `.info` body (or `@latest`, a query answer) names.
pub(super) fn parse_info(body: &[u8]) -> Result<String, serde_json::Error> {
    #[derive(serde::Deserialize)]
    struct Info {
        #[serde(rename = "Version")]
        version: String,
    }
    serde_json::from_slice::<Info>(body).map(|info| info.version)
}

/// [`parse_info`], an upstream's fault when it fails.
fn info_version(body: &[u8], upstream: &str, what: &str) -> Result<String, ServeError> {
    parse_info(body).map_err(|e| invalid(upstream, what, format!("not .info JSON: {e}")))
}

/// Keeps the lines of a version list the go command would use: valid
/// semantic versions that are not pseudo-versions, one per line.
fn clean_list(body: &[u8]) -> Bytes {
    let text = String::from_utf8_lossy(body);
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if let Some(v) = line.split_whitespace().next() {
            if semver::is_valid(v) && !pseudo::is_pseudo_version(v) {
                out.push_str(v);
                out.push('\n');
            }
        }
    }
    Bytes::from(out)
}

/// A fetch lock this replica holds, renewed in the background until
/// released.
struct Held {
    locks: Arc<FetchLocks>,
    key: String,
    token: String,
    renewing: tokio::task::JoinHandle<()>,
}

impl Held {
    fn start(locks: Arc<FetchLocks>, key: String, token: String) -> Held {
        let (l, k, t) = (Arc::clone(&locks), key.clone(), token.clone());
        let renewing = tokio::spawn(async move {
            loop {
                tokio::time::sleep(LOCK_TTL / 3).await;
                if !l.renew(&k, &t).await {
                    break; // lost (or Redis gone): others may fetch too
                }
            }
        });
        Held {
            locks,
            key,
            token,
            renewing,
        }
    }

    async fn release(self) {
        self.renewing.abort();
        self.locks.release(&self.key, &self.token).await;
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // A fetch task that ends without `release` stops renewing; the
        // lock then expires on its own.
        self.renewing.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_keeps_release_and_prerelease_versions_only() {
        let body = b"v1.0.0\nv1.1.0 2019-01-01T00:00:00Z\n\nnot-a-version\nv0.0.0-20180628003336-dd9747d19b04\nv1.2.0-pre\n";
        assert_eq!(&clean_list(body)[..], b"v1.0.0\nv1.1.0\nv1.2.0-pre\n");
    }
}
