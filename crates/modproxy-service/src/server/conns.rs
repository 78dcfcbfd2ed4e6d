//! Client connections, bounded: a cap on how many are open at once (past
//! it new ones wait in the listen backlog, so the process keeps file
//! descriptors for the store, upstreams and git), and accept errors
//! logged at most once per interval, never fatal.

use std::time::{Duration, Instant};

/// Connections allowed when the open-files limit cannot be read.
const FALLBACK_MAX: u32 = 512;
/// At most one accept-error line (and one "limit reached" line) per this.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The default connection cap: half the soft open-files limit (the other
/// half is for store files, upstream connections and git).
pub fn default_max() -> u32 {
    open_files_limit().map_or(FALLBACK_MAX, |n| (n / 2).clamp(16, 1 << 20))
}

/// The soft `RLIMIT_NOFILE`, from `/proc/self/limits` (Linux).
fn open_files_limit() -> Option<u32> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line["Max open files".len()..].split_whitespace().next()?;
    match soft {
        "unlimited" => Some(u32::MAX),
        n => n.parse().ok(),
    }
}

/// A log line that is written at most once per [`LOG_EVERY`], saying how
/// many were left out in between.
#[derive(Default)]
pub struct Throttled {
    last: Option<Instant>,
    suppressed: u64,
}

impl Throttled {
    /// `Some(suppressed since the last line)` when a line is due now.
    pub fn due(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self.last.is_some_and(|t| now.duration_since(t) < LOG_EVERY) {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_cap_follows_the_open_files_limit() {
        let max = default_max();
        assert!((16..=1 << 20).contains(&max), "{max}");
        if let Some(limit) = open_files_limit() {
            assert!(max <= limit, "{max} > {limit}");
        }
    }

    #[test]
    fn a_flood_of_errors_is_one_line_per_interval() {
        let mut log = Throttled::default();
        assert_eq!(log.due(), Some(0));
        for _ in 0..1000 {
            assert_eq!(log.due(), None);
        }
        log.last = Some(Instant::now() - LOG_EVERY);
        assert_eq!(log.due(), Some(1000));
    }
}
