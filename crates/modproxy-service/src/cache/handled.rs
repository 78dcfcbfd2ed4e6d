//! Hits that need no prefetch bookkeeping again. A served `.mod`, `.info`
//! or zip goes through the prefetcher's books once (was it a prefetched
//! file a client now uses? which requirements come next?), under locks
//! shared by every request; asked again, it would find everything already
//! noted. This lossy, lock-free set remembers the keys that went through,
//! so their later hits skip the books entirely.
//!
//! Entries hold the generation they were noted in: anything that could
//! change a repeat's outcome (a scheduled version forgotten, a module graph
//! walked anew, a file prefetched) starts a new generation, and every key
//! goes through the books once more. A key whose slot another key took
//! just goes through again.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// Slots (8 bytes each), direct-mapped by the key's hash.
const SLOTS: usize = 8192;
/// Low bits of a slot: the generation (1 to this, cycling; every slot is
/// cleared when the cycle starts over, so an old entry never matches
/// again); the rest: the key's hash.
const GENERATION: u64 = (1 << 24) - 1;

pub(super) struct Handled {
    slots: Box<[AtomicU64]>,
    generation: AtomicU64,
}

/// What a key's slot holds once noted in the generation it was read in.
#[derive(Clone, Copy)]
pub(super) struct Token {
    slot: usize,
    value: u64,
}

impl Handled {
    pub(super) fn new() -> Handled {
        Handled {
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            generation: AtomicU64::new(0),
        }
    }

    /// `key`'s token in the current generation. Taken before the books
    /// are done, so a new generation started meanwhile makes it stale.
    pub(super) fn token(&self, key: &str) -> Token {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        let hash = h.finish();
        // 1 or more: an empty slot (0) never matches.
        let generation = 1 + self.generation.load(Ordering::Acquire) % GENERATION;
        Token {
            slot: hash as usize % SLOTS,
            value: (hash & !GENERATION) | generation,
        }
    }

    /// Whether the key went through the books in this generation.
    pub(super) fn contains(&self, token: Token) -> bool {
        self.slots[token.slot].load(Ordering::Acquire) == token.value
    }

    /// Notes that the key went through the books.
    pub(super) fn insert(&self, token: Token) {
        self.slots[token.slot].store(token.value, Ordering::Release);
    }

    /// Every key goes through the books again.
    pub(super) fn forget_all(&self) {
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        if generation.is_multiple_of(GENERATION) {
            // The cycle starts over: entries of its first generation
            // must not match again.
            for slot in &self.slots {
                slot.store(0, Ordering::Release);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_keys_until_a_new_generation() {
        let handled = Handled::new();
        let a = handled.token("example.com/a/@v/v1.0.0.mod");
        let b = handled.token("example.com/b/@v/v1.0.0.mod");
        assert!(!handled.contains(a));
        handled.insert(a);
        assert!(handled.contains(handled.token("example.com/a/@v/v1.0.0.mod")));
        assert!(!handled.contains(b));

        // A token taken before a new generation is stale: noting it does
        // not make the key skip the books.
        let old = handled.token("example.com/b/@v/v1.0.0.mod");
        handled.forget_all();
        assert!(!handled.contains(handled.token("example.com/a/@v/v1.0.0.mod")));
        handled.insert(old);
        assert!(!handled.contains(handled.token("example.com/b/@v/v1.0.0.mod")));
    }

    #[test]
    fn an_entry_does_not_match_again_when_the_generations_cycle() {
        let handled = Handled::new();
        handled.generation.store(5, Ordering::Relaxed);
        let key = "example.com/a/@v/v1.0.0.info";
        handled.insert(handled.token(key));
        assert!(handled.contains(handled.token(key)));
        // Resets up to the end of the cycle, then one more: all cleared.
        handled.generation.store(GENERATION - 1, Ordering::Relaxed);
        handled.forget_all();
        // A whole cycle after the entry was made, its token is the same
        // again, and still nothing matches.
        handled.generation.store(GENERATION + 5, Ordering::Relaxed);
        assert_eq!(handled.token(key).value & GENERATION, 6);
        assert!(!handled.contains(handled.token(key)));
    }
}
