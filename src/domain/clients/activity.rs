//! Last-seen times of clients, batched: the hot path only notes a client id in memory; a
//! background task writes the set every few seconds (and once more at shutdown).

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio_util::sync::CancellationToken;

use super::ClientStore;
use crate::domain::time::Timestamp;

/// Notes client ids as their tokens are used. Cheap to clone.
#[derive(Clone, Default)]
pub struct ClientActivity {
    seen: Arc<Mutex<HashSet<String>>>,
}

impl ClientActivity {
    /// Notes that a token of `client_id` was used now.
    pub fn seen(&self, client_id: &str) {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Bounded: a flood of distinct ids between flushes is not worth remembering.
        if seen.len() < 10_000 && !seen.contains(client_id) {
            seen.insert(client_id.to_owned());
        }
    }

    /// Writes what was noted every `every` until `stop`, then once more.
    pub fn spawn_flusher(
        &self,
        store: Arc<dyn ClientStore>,
        every: Duration,
        stop: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let activity = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                let stopping = tokio::select! {
                    _ = tick.tick() => false,
                    () = stop.cancelled() => true,
                };
                activity.flush(store.as_ref()).await;
                if stopping {
                    break;
                }
            }
        })
    }

    /// Writes what was noted since the last flush.
    pub async fn flush(&self, store: &dyn ClientStore) {
        let ids: Vec<String> = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain()
            .collect();
        if ids.is_empty() {
            return;
        }
        let now = Timestamp::now().unix_seconds();
        if let Err(error) = store.touch(&ids, now).await {
            tracing::warn!(error = %format!("{error:#}"), clients = ids.len(), "cannot record when clients were last seen");
        }
    }
}
