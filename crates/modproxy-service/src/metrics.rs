//! Process metrics in Prometheus text format, `modproxy_` prefix. Only the
//! counters the service needs so far; one place to add more.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Metrics {
    /// Module files refused because their hash did not match the checksum
    /// database (or the zip was invalid).
    pub checksum_failures: AtomicU64,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP modproxy_checksum_failures_total Module files refused: hash mismatch with the checksum database or invalid zip.\n\
             # TYPE modproxy_checksum_failures_total counter\n\
             modproxy_checksum_failures_total {}",
            self.checksum_failures.load(Ordering::Relaxed)
        );
        out
    }
}
