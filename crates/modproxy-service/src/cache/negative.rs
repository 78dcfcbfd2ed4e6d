//! The negative cache: "not found" answers remembered for a short while, so a
//! go command probing many module path prefixes does not hit the upstream
//! again for each probe.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Past this many entries, expired ones are swept on insert.
const SWEEP_AT: usize = 10_000;

#[derive(Debug, Default)]
pub struct NegativeCache {
    entries: Mutex<HashMap<String, (Instant, String)>>,
}

impl NegativeCache {
    /// The remembered message for `key`, while it has not expired.
    pub fn get(&self, key: &str) -> Option<String> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(key) {
            Some((until, message)) if *until > Instant::now() => Some(message.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    pub fn insert(&self, key: &str, message: String, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= SWEEP_AT {
            entries.retain(|_, (until, _)| *until > now);
        }
        entries.insert(key.to_string(), (now + ttl, message));
    }

    pub fn remove(&self, key: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire() {
        let cache = NegativeCache::default();
        cache.insert("a", "gone".into(), Duration::from_secs(60));
        cache.insert("b", "gone".into(), Duration::from_nanos(1));
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(cache.get("a").as_deref(), Some("gone"));
        assert_eq!(cache.get("b"), None);
    }
}
