//! Hot small immutable objects (`.info`, `.mod`, small zips) kept in
//! memory, so most hits never touch the disk or the blocking pool. Bounded
//! by a byte budget; sharded read-write locks keep hits from contending;
//! oldest entries go first when a shard is full. Only immutable files are
//! kept, so an entry never goes stale.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::RwLock;

use bytes::Bytes;

/// Objects larger than this are not kept.
pub const MAX_OBJECT: usize = 64 * 1024;
const SHARDS: usize = 16;

#[derive(Default)]
struct Shard {
    map: HashMap<String, Bytes>,
    order: VecDeque<String>,
    bytes: usize,
}

pub struct HotCache {
    shards: Vec<RwLock<Shard>>,
    shard_budget: usize,
}

impl HotCache {
    /// A cache holding at most `budget` bytes of objects.
    pub fn new(budget: usize) -> HotCache {
        HotCache {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            shard_budget: budget / SHARDS,
        }
    }

    fn shard(&self, key: &str) -> &RwLock<Shard> {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        &self.shards[h.finish() as usize % SHARDS]
    }

    pub fn get(&self, key: &str) -> Option<Bytes> {
        let shard = self.shard(key).read().unwrap_or_else(|p| p.into_inner());
        shard.map.get(key).cloned()
    }

    pub fn insert(&self, key: &str, value: Bytes) {
        if value.len() > MAX_OBJECT || value.len() > self.shard_budget {
            return;
        }
        let mut shard = self.shard(key).write().unwrap_or_else(|p| p.into_inner());
        if shard.map.contains_key(key) {
            return;
        }
        while shard.bytes + value.len() > self.shard_budget {
            let Some(old) = shard.order.pop_front() else {
                break;
            };
            if let Some(v) = shard.map.remove(&old) {
                shard.bytes -= v.len();
            }
        }
        shard.bytes += value.len();
        shard.order.push_back(key.to_string());
        shard.map.insert(key.to_string(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_within_its_budget() {
        let cache = HotCache::new(SHARDS * 100);
        for i in 0..1000 {
            cache.insert(&format!("k{i}"), Bytes::from(vec![0u8; 30]));
        }
        let total: usize = cache.shards.iter().map(|s| s.read().unwrap().bytes).sum();
        assert!(total <= SHARDS * 100);
        assert!(cache.get("k999").is_some(), "the newest entry is kept");
        cache.insert("big", Bytes::from(vec![0u8; MAX_OBJECT + 1]));
        assert!(cache.get("big").is_none());
    }
}
