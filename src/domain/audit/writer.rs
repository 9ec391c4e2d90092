//! The batched audit writer: the hot path hands events to a bounded queue and moves on; one
//! background task writes them in batches. A full queue makes callers wait (backpressure) rather
//! than drop events, a failed write is retried with the same batch, and shutdown drains the queue.

use std::{sync::Arc, time::Duration};

use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
};

use super::{AuditEvent, AuditLog};

/// Tuning for the writer.
#[derive(Debug, Clone)]
pub struct AuditWriterConfig {
    /// Events the queue holds before `record` waits.
    pub queue_capacity: usize,
    /// Most events written in one transaction.
    pub batch_size: usize,
    /// Write attempts per batch once shutdown has begun, before the batch is reported lost.
    pub shutdown_attempts: u32,
}

impl Default for AuditWriterConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 4096,
            batch_size: 256,
            shutdown_attempts: 5,
        }
    }
}

/// The hot path's handle: cheap to clone, never drops an event while the writer runs.
#[derive(Clone, Debug)]
pub struct AuditSink {
    sender: mpsc::Sender<AuditEvent>,
}

impl AuditSink {
    /// A sink whose events go nowhere (for rendering documents, never for serving).
    pub fn detached() -> Self {
        let (sender, _) = mpsc::channel(1);
        Self { sender }
    }

    /// Queues an event, waiting while the queue is full.
    pub async fn record(&self, event: AuditEvent) {
        if let Err(lost) = self.sender.send(event).await {
            // Only reachable after shutdown closed the queue; say so loudly.
            tracing::error!(request_id = %lost.0.request_id, "audit event arrived after shutdown and was not stored");
        }
    }

    /// Events waiting to be written.
    pub fn queue_depth(&self) -> usize {
        self.sender.max_capacity() - self.sender.capacity()
    }
}

/// What the writer did over its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterReport {
    /// Events stored.
    pub written: u64,
    /// Events that could not be stored before shutdown gave up.
    pub lost: u64,
}

/// The background task; `shutdown` drains and stops it.
#[derive(Debug)]
pub struct AuditWriter {
    close: oneshot::Sender<()>,
    task: JoinHandle<WriterReport>,
}

impl AuditWriter {
    /// Starts the writer task on the current runtime.
    pub fn spawn(log: Arc<dyn AuditLog>, config: AuditWriterConfig) -> (AuditSink, Self) {
        let (sender, receiver) = mpsc::channel(config.queue_capacity.max(1));
        let (close, close_rx) = oneshot::channel();
        let task = tokio::spawn(run(log, config, receiver, close_rx));
        (AuditSink { sender }, Self { close, task })
    }

    /// Stops accepting events, writes every queued one, and reports the totals.
    pub async fn shutdown(self) -> WriterReport {
        let _ = self.close.send(());
        match self.task.await {
            Ok(report) => report,
            Err(error) => {
                tracing::error!(error = %error, "the audit writer task failed");
                WriterReport::default()
            }
        }
    }
}

async fn run(
    log: Arc<dyn AuditLog>,
    config: AuditWriterConfig,
    mut receiver: mpsc::Receiver<AuditEvent>,
    mut close: oneshot::Receiver<()>,
) -> WriterReport {
    let batch_size = config.batch_size.max(1);
    let mut batch = Vec::with_capacity(batch_size);
    let mut report = WriterReport::default();
    let mut closing = false;
    let mut failures = 0u32;
    loop {
        if batch.is_empty() {
            tokio::select! {
                biased;
                _ = &mut close, if !closing => {
                    closing = true;
                    receiver.close();
                    continue;
                }
                received = receiver.recv_many(&mut batch, batch_size) => {
                    if received == 0 {
                        break; // closed and drained
                    }
                }
            }
        }
        match log.append(&batch).await {
            Ok(()) => {
                report.written += batch.len() as u64;
                batch.clear();
                failures = 0;
            }
            Err(error) => {
                failures += 1;
                tracing::error!(error = %error, events = batch.len(), attempt = failures, "audit write failed; will retry the same batch");
                if closing && failures >= config.shutdown_attempts {
                    report.lost += batch.len() as u64;
                    batch.clear();
                    while receiver.try_recv().is_ok() {
                        report.lost += 1;
                    }
                    tracing::error!(
                        lost = report.lost,
                        "audit writer gave up at shutdown; events were lost"
                    );
                    break;
                }
                let delay = backoff(failures);
                tokio::select! {
                    _ = &mut close, if !closing => {
                        closing = true;
                        receiver.close();
                    }
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
    report
}

/// 100 ms doubling up to 5 s.
fn backoff(failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(6);
    Duration::from_millis(100 * 2u64.pow(exponent)).min(Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Mutex,
        atomic::{AtomicU32, Ordering},
    };

    use async_trait::async_trait;

    use super::*;
    use crate::domain::{
        audit::{AuditError, Outcome},
        time::Timestamp,
    };

    /// Stores events in memory; fails the first `failures` appends.
    #[derive(Default)]
    struct MemoryLog {
        stored: Mutex<Vec<AuditEvent>>,
        batches: AtomicU32,
        failures: AtomicU32,
    }

    #[async_trait]
    impl AuditLog for MemoryLog {
        async fn append(&self, events: &[AuditEvent]) -> Result<(), AuditError> {
            if self.failures.load(Ordering::SeqCst) > 0 {
                self.failures.fetch_sub(1, Ordering::SeqCst);
                return Err(AuditError::Unavailable("disk full".into()));
            }
            self.batches.fetch_add(1, Ordering::SeqCst);
            self.stored.lock().unwrap().extend_from_slice(events);
            Ok(())
        }

        async fn check(&self) -> Result<(), AuditError> {
            Ok(())
        }
    }

    fn event(n: usize) -> AuditEvent {
        let mut event = AuditEvent::action(format!("req-{n}"), "tools/call", Outcome::Success, 200);
        event.occurred_at = Timestamp::EPOCH;
        event.tool = Some("web_search".into());
        event.latency = Duration::from_millis(1);
        event
    }

    #[tokio::test]
    async fn shutdown_writes_every_queued_event_in_order_and_in_batches() {
        let log = Arc::new(MemoryLog::default());
        let config = AuditWriterConfig {
            queue_capacity: 8,
            batch_size: 4,
            shutdown_attempts: 3,
        };
        let (sink, writer) = AuditWriter::spawn(log.clone(), config);
        for n in 0..50 {
            sink.record(event(n)).await;
        }
        let report = writer.shutdown().await;
        assert_eq!(
            report,
            WriterReport {
                written: 50,
                lost: 0
            }
        );
        let stored = log.stored.lock().unwrap();
        let ids: Vec<_> = stored.iter().map(|e| e.request_id.clone()).collect();
        let expected: Vec<_> = (0..50).map(|n| format!("req-{n}")).collect();
        assert_eq!(ids, expected, "every event exactly once, in order");
        assert!(
            log.batches.load(Ordering::SeqCst) >= 13,
            "batches hold at most 4 events"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_store_delays_events_but_loses_none() {
        let log = Arc::new(MemoryLog {
            failures: AtomicU32::new(3),
            ..Default::default()
        });
        let config = AuditWriterConfig {
            queue_capacity: 2,
            batch_size: 2,
            shutdown_attempts: 3,
        };
        let (sink, writer) = AuditWriter::spawn(log.clone(), config);
        // With a queue of 2 and a failing store, these sends must wait, not drop.
        for n in 0..10 {
            sink.record(event(n)).await;
        }
        let report = writer.shutdown().await;
        assert_eq!(
            report,
            WriterReport {
                written: 10,
                lost: 0
            }
        );
        assert_eq!(log.stored.lock().unwrap().len(), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn a_store_that_never_recovers_reports_the_loss_at_shutdown() {
        let log = Arc::new(MemoryLog {
            failures: AtomicU32::new(u32::MAX),
            ..Default::default()
        });
        let config = AuditWriterConfig {
            queue_capacity: 16,
            batch_size: 4,
            shutdown_attempts: 2,
        };
        let (sink, writer) = AuditWriter::spawn(log, config);
        for n in 0..6 {
            sink.record(event(n)).await;
        }
        let report = writer.shutdown().await;
        assert_eq!(
            report,
            WriterReport {
                written: 0,
                lost: 6
            },
            "the loss is counted, not hidden"
        );
    }

    #[tokio::test]
    async fn events_recorded_after_shutdown_are_refused_without_panicking() {
        let log = Arc::new(MemoryLog::default());
        let (sink, writer) = AuditWriter::spawn(log.clone(), AuditWriterConfig::default());
        writer.shutdown().await;
        sink.record(event(1)).await;
        assert!(log.stored.lock().unwrap().is_empty());
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(20), Duration::from_secs(5));
    }
}
