//! Process metrics in Prometheus text format, `modproxy_` prefix: the one
//! place every metric is defined and rendered. Everything on the request
//! path is a relaxed atomic in a fixed-size table: no locks, no
//! allocation per request.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Endpoints requests are counted by (the last is everything else:
/// `/`, `/metrics`, health checks, bad paths). A query (`@v/master.info`)
/// counts as `info`.
const ENDPOINTS: [&str; 7] = ["list", "latest", "info", "mod", "zip", "sumdb", "other"];
/// Statuses requests are counted by; anything else counts as "other".
const STATUSES: [u16; 12] = [200, 400, 401, 403, 404, 405, 410, 500, 502, 503, 504, 0];
/// `X-Cache-Status` values of module file answers.
const CACHE_STATUSES: [&str; 5] = ["HIT", "MISS", "STALE", "UPDATING", "BYPASS"];

/// What an upstream served that the go command accepts but a stricter
/// reader might not: served, logged and counted, never refused.
#[derive(Debug, Clone, Copy)]
pub enum Anomaly {
    /// A `.mod` with no `module` line naming its module (toolchain
    /// modules have none; the go command reads `.mod` files laxly).
    GoModModuleLine = 0,
    /// A zip whose own go.mod is not the `.mod` file the checksum
    /// database vouches for (`+incompatible` versions, hand-made ones).
    ZipGoModDiffers = 1,
}

/// [`Anomaly`] label values, in order.
const ANOMALIES: [&str; 2] = ["gomod_module_line", "zip_gomod_differs"];

/// Upstream time to response headers, in seconds. A cache miss on a LAN
/// mirror answers in a few ms, proxy.golang.org in 20–300 ms from most
/// places, a cold fetch by a Go-based proxy in seconds; 10 s is the
/// default headers timeout, past which the request has failed anyway.
pub const UPSTREAM_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Time to answer a cache hit (to its response headers), in seconds: a
/// hit is a store read, well under a millisecond when the page cache
/// has it, milliseconds from a disk or a bucket.
const HIT_BUCKETS: [f64; 11] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

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
    /// Requests that joined a fetch another request had started.
    pub coalesced: AtomicU64,
    /// Module versions evicted to keep the store under its budget.
    pub evictions: AtomicU64,
    pub evicted_bytes: AtomicU64,
    /// When the process started (seconds since the Unix epoch).
    pub started: AtomicU64,
    /// Time to answer hits.
    hits: Histogram<{ HIT_BUCKETS.len() }>,
    /// Accepted oddities by [`Anomaly`].
    anomalies: [AtomicU64; ANOMALIES.len()],
    /// Requests by endpoint × status.
    requests: [[AtomicU64; STATUSES.len()]; ENDPOINTS.len()],
    /// Module file answers by cache status.
    cache: [AtomicU64; CACHE_STATUSES.len()],
    /// Response body bytes (as announced) by endpoint.
    bytes: [AtomicU64; ENDPOINTS.len()],
}

/// What one upstream has done; shared by every handle on that upstream.
#[derive(Debug, Default)]
pub struct UpstreamStats {
    requests: AtomicU64,
    /// Failures other than "not found" (timeouts, connection errors, 5xx).
    errors: AtomicU64,
    latency: Histogram<{ UPSTREAM_BUCKETS.len() }>,
}

impl UpstreamStats {
    /// One request finished (headers in, or failed) after `took`.
    pub fn observe(&self, took: Duration, failed: bool) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.latency.observe(took, &UPSTREAM_BUCKETS);
    }
}

/// A cumulative histogram with fixed bucket bounds.
#[derive(Debug)]
struct Histogram<const N: usize> {
    /// Per bucket (not yet cumulative), plus +Inf.
    counts: [AtomicU64; N],
    over: AtomicU64,
    sum_micros: AtomicU64,
}

impl<const N: usize> Default for Histogram<N> {
    fn default() -> Self {
        Histogram {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            over: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }
}

impl<const N: usize> Histogram<N> {
    fn observe(&self, took: Duration, bounds: &[f64; N]) {
        let secs = took.as_secs_f64();
        match bounds.iter().position(|b| secs <= *b) {
            Some(i) => self.counts[i].fetch_add(1, Ordering::Relaxed),
            None => self.over.fetch_add(1, Ordering::Relaxed),
        };
        self.sum_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str, bounds: &[f64; N]) {
        let mut total = 0;
        for (bound, count) in bounds.iter().zip(&self.counts) {
            total += count.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {total}");
        }
        total += self.over.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {total}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {total}");
    }
}

/// The endpoint label of a request path (after the path prefix).
pub fn endpoint_of(path: &str) -> usize {
    let label = if path.starts_with("/sumdb/") {
        "sumdb"
    } else if path.ends_with("/@v/list") {
        "list"
    } else if path.ends_with("/@latest") {
        "latest"
    } else if path.ends_with(".mod") && path.contains("/@v/") {
        "mod"
    } else if path.ends_with(".zip") && path.contains("/@v/") {
        "zip"
    } else if path.ends_with(".info") && path.contains("/@v/") {
        "info"
    } else {
        "other"
    };
    ENDPOINTS
        .iter()
        .position(|e| *e == label)
        .unwrap_or(ENDPOINTS.len() - 1)
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A cache hit answered (headers ready) after `took`.
    pub fn hit(&self, took: Duration) {
        self.hits.observe(took, &HIT_BUCKETS);
    }

    /// One answer served despite `anomaly`.
    pub fn anomaly(&self, anomaly: Anomaly) {
        Self::inc(&self.anomalies[anomaly as usize]);
    }

    /// One answered request. `cache` is its `X-Cache-Status` when it was a
    /// module file (or checksum database) answer; `bytes`, the body sent.
    /// Cache results count module files only (the hit ratio operators
    /// watch): the go command's checksum database traffic is mostly
    /// tiles that are fetched once and would skew it.
    pub fn request(&self, endpoint: usize, status: u16, cache: Option<&str>, bytes: Option<u64>) {
        let s = STATUSES
            .iter()
            .position(|x| *x == status)
            .unwrap_or(STATUSES.len() - 1);
        self.requests[endpoint][s].fetch_add(1, Ordering::Relaxed);
        let module_file = ENDPOINTS[endpoint] != "sumdb";
        if let Some(i) = cache
            .filter(|_| module_file)
            .and_then(|c| CACHE_STATUSES.iter().position(|x| *x == c))
        {
            self.cache[i].fetch_add(1, Ordering::Relaxed);
        }
        if let Some(n) = bytes {
            self.bytes[endpoint].fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The Prometheus text exposition; `upstreams` are (name, stats) and
    /// `store` the store's (bytes, objects) if known.
    pub fn render(
        &self,
        upstreams: &[(&str, &UpstreamStats, bool)],
        store: Option<(u64, u64)>,
        budget: Option<u64>,
        writable: Option<bool>,
    ) -> String {
        let mut out = String::new();
        header(
            &mut out,
            "start_time_seconds",
            "gauge",
            "When the process started, in seconds since the Unix epoch.",
        );
        let started = self.started.load(Ordering::Relaxed);
        let _ = writeln!(out, "modproxy_start_time_seconds {started}");
        if let Some(writable) = writable {
            header(
                &mut out,
                "store_writable",
                "gauge",
                "1 when the store takes writes now (what /readyz checks), else 0.",
            );
            let _ = writeln!(out, "modproxy_store_writable {}", u8::from(writable));
        }
        header(
            &mut out,
            "hit_duration_seconds",
            "histogram",
            "Time to answer a cache hit (to its response headers).",
        );
        self.hits.render(
            &mut out,
            "modproxy_hit_duration_seconds",
            "cache=\"HIT\"",
            &HIT_BUCKETS,
        );
        header(
            &mut out,
            "upstream_breaker_open",
            "gauge",
            "1 while an upstream's circuit breaker is open or waiting for its probe: its recent fetches failed and none succeeded since.",
        );
        for (name, _, open) in upstreams {
            let _ = writeln!(
                out,
                "modproxy_upstream_breaker_open{{upstream=\"{}\"}} {}",
                escape_label(name),
                u8::from(*open)
            );
        }
        header(
            &mut out,
            "requests_total",
            "counter",
            "Requests answered, by endpoint and status (0: any other status).",
        );
        for (e, endpoint) in ENDPOINTS.iter().enumerate() {
            for (s, status) in STATUSES.iter().enumerate() {
                let n = self.requests[e][s].load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "modproxy_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} {n}"
                    );
                }
            }
        }
        header(
            &mut out,
            "cache_results_total",
            "counter",
            "Module file answers by X-Cache-Status.",
        );
        for (i, status) in CACHE_STATUSES.iter().enumerate() {
            let n = self.cache[i].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "modproxy_cache_results_total{{status=\"{status}\"}} {n}"
            );
        }
        header(
            &mut out,
            "accepted_anomalies_total",
            "counter",
            "Upstream answers the go command accepts that look odd: served, logged, not refused.",
        );
        for (i, kind) in ANOMALIES.iter().enumerate() {
            let n = self.anomalies[i].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "modproxy_accepted_anomalies_total{{kind=\"{kind}\"}} {n}"
            );
        }
        header(
            &mut out,
            "served_bytes_total",
            "counter",
            "Response body bytes sent, by endpoint.",
        );
        for (e, endpoint) in ENDPOINTS.iter().enumerate() {
            let n = self.bytes[e].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "modproxy_served_bytes_total{{endpoint=\"{endpoint}\"}} {n}"
            );
        }
        let counters: [(&str, &str, &AtomicU64); 8] = [
            (
                "evictions_total",
                "Module versions evicted to keep the store under --max-size.",
                &self.evictions,
            ),
            (
                "evicted_bytes_total",
                "Bytes of the module versions evicted.",
                &self.evicted_bytes,
            ),
            (
                "coalesced_waiters_total",
                "Requests that joined a fetch already under way instead of starting one.",
                &self.coalesced,
            ),
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
        for (name, help, value) in counters {
            header(&mut out, name, "counter", help);
            let _ = writeln!(out, "modproxy_{name} {}", value.load(Ordering::Relaxed));
        }
        header(
            &mut out,
            "upstream_requests_total",
            "counter",
            "Requests sent to each upstream (after retries).",
        );
        for (name, stats, _) in upstreams {
            let n = stats.requests.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "modproxy_upstream_requests_total{{upstream=\"{}\"}} {n}",
                escape_label(name)
            );
        }
        header(
            &mut out,
            "upstream_errors_total",
            "counter",
            "Upstream requests that failed other than with \"not found\".",
        );
        for (name, stats, _) in upstreams {
            let n = stats.errors.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "modproxy_upstream_errors_total{{upstream=\"{}\"}} {n}",
                escape_label(name)
            );
        }
        header(
            &mut out,
            "upstream_headers_seconds",
            "histogram",
            "Upstream time to response headers (retries included).",
        );
        for (name, stats, _) in upstreams {
            let labels = format!("upstream=\"{}\"", escape_label(name));
            stats.latency.render(
                &mut out,
                "modproxy_upstream_headers_seconds",
                &labels,
                &UPSTREAM_BUCKETS,
            );
        }
        if let Some((bytes, objects)) = store {
            header(
                &mut out,
                "store_bytes",
                "gauge",
                "Bytes of the objects in the store.",
            );
            let _ = writeln!(out, "modproxy_store_bytes {bytes}");
            header(
                &mut out,
                "store_objects",
                "gauge",
                "Objects in the store (module files, lists, checksum database answers).",
            );
            let _ = writeln!(out, "modproxy_store_objects {objects}");
        }
        if let Some(max) = budget {
            header(
                &mut out,
                "store_budget_bytes",
                "gauge",
                "The store's size budget (--max-size).",
            );
            let _ = writeln!(out, "modproxy_store_budget_bytes {max}");
        }
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(
        out,
        "# HELP modproxy_{name} {help}\n# TYPE modproxy_{name} {kind}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_histograms_and_store_render() {
        let m = Metrics::default();
        m.request(
            endpoint_of("/rsc.io/quote/@v/v1.5.2.zip"),
            200,
            Some("MISS"),
            Some(100),
        );
        m.request(
            endpoint_of("/rsc.io/quote/@v/v1.5.2.zip"),
            200,
            Some("HIT"),
            Some(100),
        );
        m.request(endpoint_of("/nope"), 404, None, None);
        let up = UpstreamStats::default();
        up.observe(Duration::from_millis(30), false);
        up.observe(Duration::from_secs(20), true);
        m.started.store(1_700_000_000, Ordering::Relaxed);
        let text = m.render(
            &[("proxy.golang.org", &up, true)],
            Some((1234, 5)),
            Some(4096),
            Some(false),
        );
        for want in [
            "modproxy_requests_total{endpoint=\"zip\",status=\"200\"} 2",
            "modproxy_requests_total{endpoint=\"other\",status=\"404\"} 1",
            "modproxy_cache_results_total{status=\"HIT\"} 1",
            "modproxy_served_bytes_total{endpoint=\"zip\"} 200",
            "modproxy_upstream_requests_total{upstream=\"proxy.golang.org\"} 2",
            "modproxy_upstream_breaker_open{upstream=\"proxy.golang.org\"} 1",
            "modproxy_store_writable 0",
            "modproxy_start_time_seconds 1700000000",
            "modproxy_upstream_errors_total{upstream=\"proxy.golang.org\"} 1",
            "modproxy_upstream_headers_seconds_bucket{upstream=\"proxy.golang.org\",le=\"0.025\"} 0",
            "modproxy_upstream_headers_seconds_bucket{upstream=\"proxy.golang.org\",le=\"0.05\"} 1",
            "modproxy_upstream_headers_seconds_bucket{upstream=\"proxy.golang.org\",le=\"+Inf\"} 2",
            "modproxy_store_bytes 1234",
            "modproxy_store_budget_bytes 4096",
        ] {
            assert!(text.contains(want), "{want} missing from:\n{text}");
        }
    }
}
