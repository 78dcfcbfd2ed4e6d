//! The dashboard at `/`: one page embedded in the binary (no external
//! CDN), which reads `/metrics` and two small JSON endpoints:
//! `/-/api/activity` (most requested modules, recent errors) and
//! `/-/api/search?q=` (module paths in the store).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::sync::Locked;

/// The page.
pub const PAGE: &str = include_str!("index.html");

/// Modules remembered for "most requested"; past this, the rarely
/// requested half is forgotten.
const TOP_LIMIT: usize = 10_000;
/// One module request in this many is counted for "most requested".
const SAMPLE: u64 = 4;
/// Recent errors kept.
const ERRORS_KEPT: usize = 20;

/// What the dashboard lists, gathered as requests are answered.
#[derive(Default)]
pub struct Activity {
    requests: Mutex<HashMap<String, u64>>,
    errors: Mutex<VecDeque<String>>,
}

impl Activity {
    /// A module file was asked for. The list is a sample, not an
    /// account: one request in [`SAMPLE`] per thread is counted (as
    /// [`SAMPLE`]), and never waits (skipped under contention), so the hit
    /// path pays for neither a hash nor a lock most of the time.
    pub fn requested(&self, module: &str) {
        thread_local! {
            static SEEN: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
        }
        let n = SEEN.with(|s| {
            s.set(s.get().wrapping_add(1));
            s.get()
        });
        if n % SAMPLE != 1 % SAMPLE {
            return;
        }
        let Ok(mut requests) = self.requests.try_lock() else {
            return;
        };
        if let Some(n) = requests.get_mut(module) {
            *n += SAMPLE;
            return;
        }
        if requests.len() >= TOP_LIMIT {
            // Keep the more requested half (exactly half, ties or not).
            let mut all: Vec<(String, u64)> = requests.drain().collect();
            all.sort_unstable_by_key(|(_, n)| std::cmp::Reverse(*n));
            all.truncate(TOP_LIMIT / 2);
            requests.extend(all);
        }
        requests.insert(module.to_string(), SAMPLE);
    }

    /// An error answer worth an operator's eye.
    pub fn failed(&self, what: String) {
        let mut errors = self.errors.locked();
        if errors.len() >= ERRORS_KEPT {
            errors.pop_front();
        }
        errors.push_back(what);
    }

    /// `{"top": [{"module", "requests"}…], "errors": […]}`, newest error first.
    pub fn json(&self) -> String {
        let mut top: Vec<(String, u64)> = {
            let requests = self.requests.locked();
            requests.iter().map(|(m, n)| (m.clone(), *n)).collect()
        };
        top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        top.truncate(10);
        let errors: Vec<String> = {
            let errors = self.errors.locked();
            errors.iter().rev().cloned().collect()
        };
        let top: Vec<serde_json::Value> = top
            .into_iter()
            .map(|(module, requests)| serde_json::json!({ "module": module, "requests": requests }))
            .collect();
        serde_json::json!({ "top": top, "errors": errors }).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_requested_first_and_newest_error_first() {
        let a = Activity::default();
        for m in ["b", "a", "b", "c", "b", "a"] {
            // Every call from this thread counts once in SAMPLE.
            for _ in 0..SAMPLE {
                a.requested(m);
            }
        }
        a.failed("first".into());
        a.failed("second".into());
        let json: serde_json::Value = serde_json::from_str(&a.json()).unwrap();
        assert_eq!(json["top"][0]["module"], "b");
        assert_eq!(json["top"][0]["requests"], 3 * SAMPLE);
        assert_eq!(json["top"][1]["module"], "a");
        assert_eq!(json["errors"][0], "second");
    }

    #[test]
    fn a_full_list_forgets_half_even_when_counts_tie() {
        let a = Activity::default();
        for i in 0..TOP_LIMIT + 1 {
            for _ in 0..SAMPLE {
                a.requested(&format!("example.com/m{i}"));
            }
        }
        let kept = a.requests.lock().unwrap().len();
        assert_eq!(kept, TOP_LIMIT / 2 + 1);
    }
}
