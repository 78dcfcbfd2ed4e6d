//! Work that outlives the request that started it (fetches, store writes
//! made after the answer went out), counted so that shutdown can wait for
//! it: a graceful stop, or the end of `modproxy warm`, must not drop
//! verified data on the floor.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// Spawned tasks still running; cheap to clone (shared count).
#[derive(Clone, Default)]
pub struct Background {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    running: AtomicUsize,
    idle: Notify,
}

/// Counts one task down when it ends, even by a panic.
struct Running(Arc<Inner>);

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl Background {
    /// Spawns `task` on the runtime, counted until it ends.
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.inner.running.fetch_add(1, Ordering::AcqRel);
        let running = Running(Arc::clone(&self.inner));
        tokio::spawn(async move {
            let _running = running;
            task.await;
        });
    }

    /// Resolves once no counted task is running.
    pub async fn settled(&self) {
        loop {
            let idle = self.inner.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.inner.running.load(Ordering::Acquire) == 0 {
                return;
            }
            idle.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn settled_waits_for_every_task() {
        let background = Background::default();
        let done = Arc::new(AtomicUsize::new(0));
        for ms in [30, 10, 20] {
            let done = Arc::clone(&done);
            background.spawn(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        background.settled().await;
        assert_eq!(done.load(Ordering::SeqCst), 3);
        // Nothing running: at once.
        tokio::time::timeout(Duration::from_millis(100), background.settled())
            .await
            .unwrap();
    }
}
