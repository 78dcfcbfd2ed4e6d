//! Store write failures (disk full, read-only, I/O errors) do not fail
//! requests: the client is served without caching. They are logged once per
//! cause, not once per request, and the recovery is logged too.

use std::io;
use std::sync::Mutex;

use crate::sync::Locked;

#[derive(Debug, Default)]
pub struct StoreHealth {
    failing: Mutex<Option<io::ErrorKind>>,
}

impl StoreHealth {
    /// A write failed; logs it unless the same cause was already logged.
    pub fn failed(&self, kind: io::ErrorKind, error: &dyn std::fmt::Display) {
        let mut failing = self.failing.locked();
        if *failing != Some(kind) {
            tracing::error!(%error, "store write failed; serving without caching until writes work again");
            *failing = Some(kind);
        }
    }

    /// A write worked; if writes were failing, says caching is back.
    pub fn succeeded(&self) {
        let mut failing = self.failing.locked();
        if failing.take().is_some() {
            tracing::info!("store writable again; caching resumed");
        }
    }
}
