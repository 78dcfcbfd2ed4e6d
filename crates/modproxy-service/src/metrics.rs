//! Process metrics in Prometheus text format, `modproxy_` prefix. Only the
//! counters the service needs so far; one place to add more.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    /// Module files refused because their hash did not match the checksum
    /// database (or the zip was invalid).
    pub checksum_failures: AtomicU64,
    /// Prefetches that fetched something not yet stored.
    pub prefetch_started: AtomicU64,
    /// Prefetched files a client asked for later (or while in flight).
    pub prefetch_used: AtomicU64,
    /// Prefetched files nobody asked for within the window.
    pub prefetch_wasted: AtomicU64,
    /// Prefetches not done: queue full or upstream unhealthy.
    pub prefetch_skipped: AtomicU64,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let counters: [(&str, &str, &AtomicU64); 5] = [
            (
                "checksum_failures_total",
                "Module files refused: hash mismatch with the checksum database or invalid zip.",
                &self.checksum_failures,
            ),
            (
                "prefetch_started_total",
                "Files fetched ahead of the go command (not yet stored when scheduled).",
                &self.prefetch_started,
            ),
            (
                "prefetch_used_total",
                "Prefetched files a client asked for afterwards or while in flight.",
                &self.prefetch_used,
            ),
            (
                "prefetch_wasted_total",
                "Prefetched files nobody asked for within 10 minutes.",
                &self.prefetch_wasted,
            ),
            (
                "prefetch_skipped_total",
                "Prefetches dropped: queue full or every upstream unhealthy.",
                &self.prefetch_skipped,
            ),
        ];
        let mut out = String::new();
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP modproxy_{name} {help}\n# TYPE modproxy_{name} counter\nmodproxy_{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        out
    }
}
