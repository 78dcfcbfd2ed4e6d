//! Locks that stay usable after a panic elsewhere. Every guarded value in
//! the service is left consistent between statements (counters, maps of
//! waiters, caches), so a panic while holding a lock is no reason to fail
//! every later request: these take the lock whether or not it is
//! poisoned.

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// [`Mutex::lock`], ignoring poisoning.
pub trait Locked<T: ?Sized> {
    fn locked(&self) -> MutexGuard<'_, T>;
}

impl<T: ?Sized> Locked<T> for Mutex<T> {
    fn locked(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// [`RwLock::read`] and [`RwLock::write`], ignoring poisoning.
pub trait RwLocked<T: ?Sized> {
    fn read_locked(&self) -> RwLockReadGuard<'_, T>;
    fn write_locked(&self) -> RwLockWriteGuard<'_, T>;
}

impl<T: ?Sized> RwLocked<T> for RwLock<T> {
    fn read_locked(&self) -> RwLockReadGuard<'_, T> {
        self.read().unwrap_or_else(PoisonError::into_inner)
    }
    fn write_locked(&self) -> RwLockWriteGuard<'_, T> {
        self.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// [`Mutex::into_inner`], ignoring poisoning.
pub fn into_inner<T>(mutex: Mutex<T>) -> T {
    mutex.into_inner().unwrap_or_else(PoisonError::into_inner)
}

/// Resolves once every task `tracker` spawned has ended, also those they
/// spawn meanwhile: the end of work that outlives its request (fetches,
/// store writes made after the answer went out), waited for by a graceful
/// stop or the end of `modproxy warm` so verified data is not dropped.
/// Tasks spawned afterwards are still tracked. One caller at a time per
/// tracker (the end of a server or of a warm run).
pub async fn settled(tracker: &tokio_util::task::TaskTracker) {
    tracker.close();
    tracker.wait().await;
    tracker.reopen();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn settled_waits_for_every_task_and_those_they_spawn() {
        let tracker = tokio_util::task::TaskTracker::new();
        let done = Arc::new(AtomicUsize::new(0));
        for ms in [30, 10, 20] {
            let (done, inner) = (Arc::clone(&done), tracker.clone());
            tracker.spawn(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                // A task spawned while `settled` waits is waited for too.
                let later = Arc::clone(&done);
                inner.spawn(async move {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    later.fetch_add(1, Ordering::SeqCst);
                });
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        settled(&tracker).await;
        assert_eq!(done.load(Ordering::SeqCst), 6);
        // Nothing running: at once; and the tracker still takes tasks.
        tokio::time::timeout(Duration::from_millis(100), settled(&tracker))
            .await
            .unwrap();
        assert!(!tracker.is_closed());
    }
}
