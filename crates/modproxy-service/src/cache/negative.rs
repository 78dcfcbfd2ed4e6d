//! The negative cache: "not found" answers remembered for a short while, so a
//! go command probing many module path prefixes does not hit the upstream
//! again for each probe.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::sync::Locked;

/// At most this many answers are remembered; past it the oldest go first
/// (every entry lives as long, so the oldest is the first to expire).
const MAX_ENTRIES: usize = 8192;
/// A remembered message is cut to this many bytes (it is an upstream's
/// error text, shown again to the next client asking).
const MAX_MESSAGE: usize = 1024;

#[derive(Debug, Default)]
pub struct NegativeCache {
    inner: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    map: HashMap<String, (Instant, String)>,
    /// Keys in insertion order, with the expiry they were inserted with
    /// (an entry replaced since has a later one, and is not removed).
    order: VecDeque<(String, Instant)>,
}

impl NegativeCache {
    /// The remembered message for `key`, while it has not expired.
    pub fn get(&self, key: &str) -> Option<String> {
        let mut entries = self.inner.locked();
        match entries.map.get(key) {
            Some((until, message)) if *until > Instant::now() => Some(message.clone()),
            Some(_) => {
                entries.map.remove(key);
                None
            }
            None => None,
        }
    }

    pub fn insert(&self, key: &str, mut message: String, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        if message.len() > MAX_MESSAGE {
            let mut end = MAX_MESSAGE;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push('…');
        }
        let now = Instant::now();
        let until = now + ttl;
        let mut entries = self.inner.locked();
        entries.map.insert(key.to_string(), (until, message));
        entries.order.push_back((key.to_string(), until));
        // Drop the expired and, past the bound, the oldest. The queue
        // holds stale keys too (replaced or removed): at most twice the
        // bound, then it is rebuilt from the map.
        while let Some((oldest, inserted)) = entries.order.front() {
            let expired = *inserted <= now;
            let over = entries.map.len() > MAX_ENTRIES || entries.order.len() > 2 * MAX_ENTRIES;
            if !expired && !over {
                break;
            }
            let (oldest, inserted) = (oldest.clone(), *inserted);
            entries.order.pop_front();
            if entries
                .map
                .get(&oldest)
                .is_some_and(|(u, _)| *u == inserted)
            {
                entries.map.remove(&oldest);
            }
        }
    }

    pub fn remove(&self, key: &str) {
        let mut entries = self.inner.locked();
        entries.map.remove(key);
    }

    /// How many answers are remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().unwrap().map.len()
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

    #[test]
    fn a_flood_of_unique_misses_stays_bounded() {
        let cache = NegativeCache::default();
        let long = "x".repeat(4 * MAX_MESSAGE);
        for n in 0..100_000 {
            cache.insert(
                &format!("m{n}/@v/list"),
                long.clone(),
                Duration::from_secs(60),
            );
        }
        assert_eq!(cache.len(), MAX_ENTRIES);
        let queue = cache.inner.lock().unwrap().order.len();
        assert!(queue <= 2 * MAX_ENTRIES, "{queue}");
        // The newest are kept, the oldest went; messages are cut.
        assert_eq!(cache.get("m0/@v/list"), None);
        let kept = cache.get("m99999/@v/list").unwrap();
        assert!(kept.len() <= MAX_MESSAGE + 4, "{}", kept.len());
        // One key inserted again and again takes one entry.
        for _ in 0..3 * MAX_ENTRIES {
            cache.insert("same", "gone".into(), Duration::from_secs(60));
        }
        assert_eq!(cache.get("same").as_deref(), Some("gone"));
        assert!(cache.len() <= MAX_ENTRIES);
    }
}
