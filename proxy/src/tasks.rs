//! The proxy's shutdown protocol, made here and handed to every long-lived task.
//!
//! As in tokio's mini-redis: one signal tells every task to stop, and the proxy waits until all
//! have ended. The signal is a [`CancellationToken`]; completion is tracked by a [`TaskTracker`].
//! Each task is spawned through [`Tasks::spawn`], which races it against the token: on
//! shutdown the task's future is dropped at its next await point. Every task is written so that
//! this is safe: an accepted device message is journaled (fsync) before it is acknowledged, so
//! what a dropped task leaves undone is redone from the journal at the next start. Connection
//! handlers spawned by the accept loops end with their listener's task (their sockets close).

use std::future::Future;
use std::time::Duration;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// Spawns tasks that end on shutdown, and shuts them down.
#[derive(Debug, Clone, Default)]
pub struct Tasks {
    token: CancellationToken,
    tracker: TaskTracker,
}

impl Tasks {
    /// A new set with no task.
    pub fn new() -> Self {
        Self::default()
    }

    /// A token cancelled when shutdown begins (for tasks spawned elsewhere, such as the metrics
    /// listener).
    pub fn token(&self) -> CancellationToken {
        self.token.child_token()
    }

    /// Runs `task` until it ends or shutdown begins.
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let token = self.token.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                _ = token.cancelled() => {}
                _ = task => {}
            }
        });
    }

    /// Signals every task to stop and waits until all have ended, at most `timeout`; returns
    /// whether they all did.
    pub async fn shutdown(&self, timeout: Duration) -> bool {
        self.token.cancel();
        self.tracker.close();
        tokio::time::timeout(timeout, self.tracker.wait()).await.is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shutdown_ends_every_task_and_waits_for_them() {
        let tasks = Tasks::new();
        let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<()>(1);
        // A task that never ends by itself; it holds the sender until it is dropped.
        tasks.spawn(async move {
            let _keep = done_tx;
            std::future::pending::<()>().await
        });
        // A task that ends by itself.
        tasks.spawn(async {});
        assert!(tasks.shutdown(Duration::from_secs(10)).await);
        // The pending task's future was dropped: its sender is gone.
        assert!(done_rx.recv().await.is_none());
        // Spawning after shutdown starts nothing that outlives it.
        tasks.spawn(std::future::pending());
        assert!(tasks.shutdown(Duration::from_secs(10)).await);
    }
}
