//! The store's size budget, kept while the server runs: least recently
//! used module versions (and git mirrors) are evicted when `--max-size` is
//! passed, and a store shared by replicas is re-measured now and then.
//! `modproxy gc` runs the same eviction ([`super::evict`]) once.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::{evict, Store};
use crate::error::chain;
use crate::metrics::Metrics;

/// How often the store's size is held against `--max-size`.
const BUDGET_CHECK: Duration = Duration::from_secs(5);
/// How often the git mirrors are measured for it.
const MIRRORS_MEASURED: Duration = Duration::from_secs(60);

/// Evicts least recently used module versions whenever the store is over
/// `max` bytes (checked every [`BUDGET_CHECK`], from the store's running
/// count, so an idle check costs nothing), down to 90% of `max` so the
/// next few fetches do not trigger another scan. Versions used in the last
/// minute go only if the store cannot get under `max` otherwise.
pub(crate) async fn keep_under_budget(
    store: Arc<dyn Store>,
    vcs: PathBuf,
    max: u64,
    metrics: Arc<Metrics>,
) {
    // The git mirrors' size, measured now and then (a walk of `.vcs`).
    let mut mirrors = 0u64;
    let mut measured: Option<std::time::Instant> = None;
    loop {
        if measured.is_none_or(|at| at.elapsed() >= MIRRORS_MEASURED) {
            let dir = vcs.clone();
            let found = tokio::task::spawn_blocking(move || evict::mirrors(&dir))
                .await
                .unwrap_or_default();
            mirrors = found.iter().map(|m| m.bytes).sum();
            measured = Some(std::time::Instant::now());
        }
        if store
            .usage()
            .is_some_and(|(bytes, _)| bytes + mirrors > max)
        {
            measured = None;
            let policy = evict::Policy {
                max_size: Some(max),
                low_water: Some(max / 10 * 9),
                spare_used_within: Some(Duration::from_secs(60)),
                ..evict::Policy::default()
            };
            let now = std::time::SystemTime::now();
            match evict::run(store.as_ref(), Some(&vcs), policy, now).await {
                Ok(report) => {
                    for failure in &report.failed {
                        tracing::warn!(%failure, "eviction could not remove a file");
                    }
                    metrics
                        .evictions
                        .fetch_add(report.evicted.len() as u64, Ordering::Relaxed);
                    metrics
                        .evicted_bytes
                        .fetch_add(report.bytes_evicted, Ordering::Relaxed);
                    tracing::info!(
                        versions = report.evicted.len(),
                        bytes = report.bytes_evicted,
                        max,
                        "evicted least recently used module versions"
                    );
                }
                Err(e) => tracing::warn!(error = %chain(&e), "eviction failed"),
            }
        }
        tokio::time::sleep(BUDGET_CHECK).await;
    }
}

/// Replaces the store's running count with a full listing every `every`
/// (a bucket shared by replicas grows by their writes too).
pub(crate) async fn remeasure(store: Arc<dyn Store>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        match store.entries().await {
            Ok(entries) => {
                let bytes = entries.iter().map(|e| e.size).sum();
                store.measured(bytes, entries.len() as u64);
            }
            Err(e) => tracing::warn!(error = %chain(&e), "cannot list the store to count it"),
        }
    }
}
