//! Hot immutable objects (`.info`, `.mod`, small zips) kept in
//! memory, so most hits never touch the disk or the blocking pool and are
//! answered without a copy on our side. Two tiers, each with its own byte
//! budget, so a few zips never push out thousands of go.mod files; sharded
//! read-write locks keep hits from contending; oldest entries go first when
//! a shard is full. Only immutable files are kept, so an entry never goes
//! stale.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::RwLock;

use bytes::Bytes;

use crate::sync::RwLocked;

/// Small objects (`.info`, `.mod`, tiny zips): up to 64 KiB each, 16 MiB.
const SMALL: (usize, usize) = (64 << 10, 16 << 20);
/// Larger zips: up to 1 MiB each, 32 MiB: what an object store reads
/// whole. A local disk's files over 64 KiB are not kept here: `sendfile`
/// sends them faster than a copy from memory ([`super::whole`]).
const LARGE: (usize, usize) = (1 << 20, 32 << 20);
const SHARDS: usize = 16;
/// What the tiers keep at most, together.
pub const HOT_BYTES: usize = SMALL.1 + LARGE.1;

#[derive(Default)]
struct Shard {
    map: HashMap<String, Bytes>,
    order: VecDeque<String>,
    bytes: usize,
}

/// Objects up to `max_object` bytes, within a byte budget.
struct Tier {
    shards: Vec<RwLock<Shard>>,
    shard_budget: usize,
    max_object: usize,
}

impl Tier {
    fn new((max_object, budget): (usize, usize)) -> Tier {
        Tier {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            shard_budget: budget / SHARDS,
            max_object,
        }
    }

    fn shard(&self, key: &str) -> &RwLock<Shard> {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        &self.shards[h.finish() as usize % SHARDS]
    }

    fn get(&self, key: &str) -> Option<Bytes> {
        let shard = self.shard(key).read_locked();
        shard.map.get(key).cloned()
    }

    fn insert(&self, key: &str, value: Bytes) {
        if value.len() > self.shard_budget {
            return;
        }
        let mut shard = self.shard(key).write_locked();
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

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.shards.iter().map(|s| s.read_locked().bytes).sum()
    }
}

pub struct HotCache {
    tiers: Vec<Tier>,
}

impl Default for HotCache {
    /// Module files: go.mod and .info files, and larger zips apart.
    fn default() -> HotCache {
        HotCache::with_tiers(&[SMALL, LARGE])
    }
}

impl HotCache {
    /// Tiers of `(largest object, byte budget)`, smallest objects first.
    pub fn with_tiers(tiers: &[(usize, usize)]) -> HotCache {
        HotCache {
            tiers: tiers.iter().map(|t| Tier::new(*t)).collect(),
        }
    }

    pub fn get(&self, key: &str) -> Option<Bytes> {
        self.tiers.iter().find_map(|t| t.get(key))
    }

    /// Keeps `value` in the first tier it fits; larger ones are not kept.
    pub fn insert(&self, key: &str, value: Bytes) {
        if let Some(tier) = self.tiers.iter().find(|t| value.len() <= t.max_object) {
            tier.insert(key, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_within_its_budget() {
        let tier = Tier::new((64, SHARDS * 100));
        for i in 0..1000 {
            tier.insert(&format!("k{i}"), Bytes::from(vec![0u8; 30]));
        }
        assert!(tier.bytes() <= SHARDS * 100);
        assert!(tier.get("k999").is_some(), "the newest entry is kept");
    }

    #[test]
    fn zips_do_not_push_out_small_objects() {
        let cache = HotCache::default();
        cache.insert("small", Bytes::from_static(b"module m\n"));
        for i in 0..100 {
            cache.insert(&format!("zip{i}"), Bytes::from(vec![0u8; 1 << 20]));
        }
        assert!(cache.get("small").is_some());
        assert!(cache.get("zip99").is_some());
        assert!(cache.tiers[1].bytes() <= LARGE.1);
        cache.insert("huge", Bytes::from(vec![0u8; LARGE.0 + 1]));
        assert!(cache.get("huge").is_none());
    }
}
