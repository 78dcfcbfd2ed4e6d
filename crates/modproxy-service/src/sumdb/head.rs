//! The checksum database's tree head: each new signed head is checked
//! against the newest one accepted (no fork), accepted, and saved in the
//! store for the next run and other replicas.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use tlog_tiles::tree_hash;

use super::record::open_tree_note;
use super::tiles::{self, Tiles};
use super::{SumDb, SumDbError, Tree};

impl SumDb {
    /// Accepts a signed tree head if it is consistent with the newest one
    /// accepted so far (and moves that forward); returns the newest. Like
    /// Go's client, the lock is not held while tiles are fetched: the
    /// proof runs against a snapshot, and the install retries if the
    /// snapshot moved meanwhile.
    pub async fn merge_latest(self: &Arc<Self>, note: &[u8]) -> Result<Tree, SumDbError> {
        let first = self.current_latest().await?;
        let tree = if !note.is_empty() && note == first.1 {
            // Byte for byte the note accepted: its signature was checked
            // then (most lookup answers carry the same head).
            first.0
        } else {
            open_tree_note(note, &self.key).map_err(SumDbError::Invalid)?
        };
        // The snapshot taken above, then a fresh one on every retry.
        let mut snapshot = Some(first);
        loop {
            let (current, current_note) = match snapshot.take() {
                Some(s) => s,
                None => self.current_latest().await?,
            };
            if tree == current {
                // The tree head already accepted: nothing to prove.
                if self.unsaved.swap(false, Ordering::SeqCst) {
                    self.persist_latest(current, current_note);
                }
                return Ok(current);
            }
            if tree.n <= current.n {
                let saved = self.check_trees(tree, current).await?;
                self.save_tiles(saved);
                return Ok(current);
            }
            let saved = self.check_trees(current, tree).await?;
            let mut latest = self.latest.lock().await;
            if latest.as_ref().map(|(t, _)| *t) != Some(current) {
                continue; // moved underfoot: check against the new one
            }
            // Another process on the same store may have gone further.
            let stored = self.load_latest().await?;
            if stored.0.n > current.n {
                // Another replica's head must extend the one accepted here.
                drop(latest);
                let saved = self.check_trees(current, stored.0).await?;
                self.save_tiles(saved);
                let mut latest = self.latest.lock().await;
                if latest.as_ref().map(|(t, _)| *t) == Some(current) {
                    *latest = Some(stored);
                }
                continue;
            }
            let note = Bytes::copy_from_slice(note);
            *latest = Some((tree, note.clone()));
            drop(latest);
            self.persist_latest(tree, note);
            self.save_tiles(saved);
            return Ok(tree);
        }
    }

    /// Writes an accepted tree head to the store in the background, so a
    /// lookup does not wait for the disk; only if it is newer than the
    /// last one this process wrote and the one stored (by another replica
    /// too), so writes finishing out of order do not move the stored head
    /// back (replicas may still race between that read and the write, as
    /// they always could). A failed write (a full disk) is logged: the head
    /// stays accepted in memory, and the next lookup naming it (or a newer
    /// one) writes it again; until then a restart checks new heads against
    /// the last one saved.
    fn persist_latest(self: &Arc<Self>, tree: Tree, note: Bytes) {
        let db = Arc::clone(self);
        self.background.spawn(async move {
            let mut persisted = db.persisted.lock().await;
            if tree.n <= *persisted {
                return;
            }
            // Another process on the same store may have saved a newer one.
            if let Ok((stored, _)) = db.load_latest().await {
                if stored.n >= tree.n {
                    *persisted = stored.n;
                    return;
                }
            }
            let key = format!("sumdb/{}/latest", db.name);
            match db.store.put(&key, note).await {
                Ok(()) => *persisted = tree.n,
                Err(e) => {
                    db.unsaved.store(true, Ordering::SeqCst);
                    tracing::warn!(error = %crate::error::chain(&e), "checksum database tree head not saved (kept in memory)");
                }
            }
        });
    }

    /// A snapshot of the newest accepted tree head (loaded on first use).
    pub(super) async fn current_latest(&self) -> Result<(Tree, Bytes), SumDbError> {
        let mut latest = self.latest.lock().await;
        if latest.is_none() {
            *latest = Some(self.load_latest().await?);
        }
        Ok(latest.clone().unwrap_or((Tree::EMPTY, Bytes::new())))
    }

    /// Checks that `older` is a prefix of `newer` (same hash at its size);
    /// returns the tiles the check authenticated.
    async fn check_trees(&self, older: Tree, newer: Tree) -> Result<tiles::Saved, SumDbError> {
        if older.n == 0 {
            return Ok(Vec::new());
        }
        let (hash, saved) = Tiles::run(self, newer, |thr| tree_hash(older.n, thr)).await?;
        if hash == older.hash {
            return Ok(saved);
        }
        let err = SumDbError::Fork {
            db: self.name.clone(),
            older: older.n,
            newer: newer.n,
        };
        tracing::error!(target: "security", error = %err, "checksum database fork");
        Err(err)
    }

    /// The newest tree head accepted by an earlier run, from the store.
    async fn load_latest(&self) -> Result<(Tree, Bytes), SumDbError> {
        let key = format!("sumdb/{}/latest", self.name);
        // Mutable (other replicas advance it): never from memory.
        match self.read_store(&key).await? {
            None => Ok((Tree::EMPTY, Bytes::new())),
            Some(note) => {
                let tree = open_tree_note(&note, &self.key).map_err(SumDbError::Invalid)?;
                Ok((tree, note))
            }
        }
    }

    /// The signed note of the newest accepted tree head, if any.
    pub async fn latest_note(&self) -> Result<Option<Bytes>, SumDbError> {
        let (_, note) = self.current_latest().await?;
        Ok(Some(note).filter(|n| !n.is_empty()))
    }
}
