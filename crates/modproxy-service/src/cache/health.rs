//! Store write failures (disk full, read-only, I/O errors) do not fail
//! requests: the client is served without caching. They are logged once per
//! cause, not once per request, and the recovery is logged too.

use std::sync::Mutex;

use crate::error::chain;
use crate::store::StoreFailure;
use crate::sync::Locked;

#[derive(Debug, Default)]
pub struct StoreHealth {
    failing: Mutex<Option<StoreFailure>>,
}

impl StoreHealth {
    /// A write failed; logs it unless the same kind of failure was already
    /// logged.
    pub fn failed(&self, failure: StoreFailure, error: &(dyn std::error::Error + 'static)) {
        let mut failing = self.failing.locked();
        if *failing != Some(failure) {
            tracing::error!(error = %chain(error), "store write failed; serving without caching until writes work again");
            *failing = Some(failure);
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
