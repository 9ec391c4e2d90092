//! The batched audit writer: the hot path hands events to a bounded queue and moves on; one
//! background task writes them in batches.
//!
//! - A request takes a queue slot before it is served ([`AuditSink::reserve`]), waiting at most
//!   the enqueue timeout; when none frees up it is refused (503), so nothing is done unaudited
//!   and nothing hangs.
//! - A batch the store cannot write now (no connection, a timeout) is retried with backoff,
//!   rows kept. A batch the store refuses (a constraint, a value it cannot hold) is split
//!   until every good row is stored and the bad one is set aside: logged at error level as
//!   JSON and counted, never retried forever.
//! - Shutdown drains the queue.

use std::{
    cell::RefCell,
    collections::VecDeque,
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
    time::Instant,
};

use tracing::{Instrument, field::Empty};

use super::{AuditError, AuditEvent, AuditLog, BoundedEvent};
use crate::domain::TRACE_TARGET;

/// Tuning for the writer.
#[derive(Debug, Clone)]
pub struct AuditWriterConfig {
    /// Events the queue holds (queued or reserved by requests in flight) before requests wait.
    pub queue_capacity: usize,
    /// Most events written in one transaction.
    pub batch_size: usize,
    /// After writing a batch that was not full, the writer waits this long before it takes the
    /// next: under load each transaction then carries many rows (one commit, one wake-up of
    /// the database thread, for all of them); when idle, an event is still written at once.
    pub flush_interval: Duration,
    /// Write attempts per batch once shutdown has begun, before the batch is reported lost.
    pub shutdown_attempts: u32,
    /// Longest a request waits for a queue slot before it is refused.
    pub enqueue_timeout: Duration,
    /// Longest shutdown waits for requests still holding a slot to hand in their event.
    pub shutdown_wait: Duration,
}

impl Default for AuditWriterConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 4096,
            batch_size: 2048,
            flush_interval: Duration::from_millis(10),
            shutdown_attempts: 5,
            enqueue_timeout: Duration::from_secs(5),
            shutdown_wait: Duration::from_secs(10),
        }
    }
}

/// What the writer shares with the sink, readiness and metrics.
#[derive(Debug, Default)]
struct Shared {
    /// Since when writes have been failing for want of the store; `None` while they succeed.
    failing_since: Mutex<Option<Instant>>,
    transient_failures: AtomicU64,
    permanent_failures: AtomicU64,
    set_aside: AtomicU64,
}

impl Shared {
    fn failing_since(&self) -> Option<Instant> {
        *self
            .failing_since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn set_failing(&self, failing: bool) {
        let mut since = self
            .failing_since
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match (failing, *since) {
            (true, None) => *since = Some(Instant::now()),
            (false, Some(_)) => *since = None,
            _ => {}
        }
    }
}

/// The writer's state, for `/readyz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterHealth {
    /// How long writes have been failing for want of the store; `None` while they succeed.
    pub failing_for: Option<Duration>,
    /// Slots in use (events queued, and slots reserved by requests in flight).
    pub depth: usize,
    /// Slots in all.
    pub capacity: usize,
}

impl WriterHealth {
    /// How long the writer may fail before the replica is reported unready.
    pub const FAILING_GRACE: Duration = Duration::from_secs(3);

    /// Why the writer cannot keep up, if it cannot: `failing` (writes have failed for longer
    /// than [`Self::FAILING_GRACE`]) or `queue_full` (over 90% of the slots in use).
    pub fn problem(&self) -> Option<&'static str> {
        if self.failing_for.is_some_and(|f| f > Self::FAILING_GRACE) {
            Some("failing")
        } else if self.depth * 10 > self.capacity * 9 {
            Some("queue_full")
        } else {
            None
        }
    }
}

/// The writer's counters, for the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Writes that failed because the store could not be written (retried).
    pub transient_failures: u64,
    /// Writes the store refused for their rows (split, then set aside).
    pub permanent_failures: u64,
    /// Events that could not be stored and were logged instead.
    pub set_aside: u64,
}

/// No queue slot freed up within the enqueue timeout: answer 503 and let the client retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the audit queue is full; retry after {retry_after_secs} s")]
pub struct QueueFull {
    /// What to send in `Retry-After`.
    pub retry_after_secs: u64,
}

/// A queue slot a request holds while it is served; its event goes in without waiting.
#[derive(Debug)]
pub struct AuditSlot(mpsc::OwnedPermit<BoundedEvent>);

impl AuditSlot {
    /// Queues the request's event in the slot.
    pub fn record(self, event: AuditEvent) {
        self.0.send(BoundedEvent::from(event));
    }

    /// Runs `serve` with this slot as the one [`AuditSink::record`] uses, for handlers that
    /// record through the sink (registration, the admin API). An unused slot is released.
    pub async fn serve<F: Future>(self, serve: F) -> F::Output {
        SLOT.scope(RefCell::new(Some(self)), serve).await
    }
}

tokio::task_local! {
    /// The slot reserved for the request being served, see [`AuditSlot::serve`].
    static SLOT: RefCell<Option<AuditSlot>>;
}

/// The hot path's handle: cheap to clone, never drops an event while the writer runs.
#[derive(Clone, Debug)]
pub struct AuditSink {
    sender: mpsc::Sender<BoundedEvent>,
    shared: Arc<Shared>,
    enqueue_timeout: Duration,
}

impl AuditSink {
    /// A sink whose events go nowhere (for rendering documents, never for serving).
    pub fn detached() -> Self {
        let (sender, _) = mpsc::channel(1);
        Self {
            sender,
            shared: Arc::default(),
            enqueue_timeout: Duration::ZERO,
        }
    }

    /// A queue slot for one request's event, waiting at most the enqueue timeout.
    ///
    /// # Errors
    /// [`QueueFull`] when no slot frees up in time (or the writer has stopped).
    pub async fn reserve(&self) -> Result<AuditSlot, QueueFull> {
        let full = QueueFull {
            retry_after_secs: self.enqueue_timeout.as_secs().max(1),
        };
        // A free slot is the common case: taken without arming a timer.
        if let Ok(permit) = self.sender.clone().try_reserve_owned() {
            return Ok(AuditSlot(permit));
        }
        match tokio::time::timeout(self.enqueue_timeout, self.sender.clone().reserve_owned()).await
        {
            Ok(Ok(permit)) => Ok(AuditSlot(permit)),
            Ok(Err(_)) => {
                tracing::error!("the audit writer has stopped; request refused");
                Err(full)
            }
            Err(_) => {
                tracing::warn!(
                    depth = self.queue_depth(),
                    "the audit queue stayed full; request refused"
                );
                Err(full)
            }
        }
    }

    /// Queues an event: in the slot reserved for this request when there is one (see
    /// [`AuditSlot::serve`]), else waiting at most the enqueue timeout. An event that cannot be
    /// queued is set aside (logged at error level as JSON, and counted).
    pub async fn record(&self, event: AuditEvent) {
        let reserved = SLOT
            .try_with(|slot| slot.borrow_mut().take())
            .ok()
            .flatten();
        if let Some(slot) = reserved {
            slot.record(event);
            return;
        }
        match tokio::time::timeout(self.enqueue_timeout, self.sender.reserve()).await {
            Ok(Ok(permit)) => permit.send(BoundedEvent::from(event)),
            Ok(Err(_)) => set_aside(&self.shared, &event, "it arrived after shutdown"),
            Err(_) => set_aside(&self.shared, &event, "the audit queue stayed full"),
        }
    }

    /// Slots in use: events waiting to be written, and slots reserved by requests in flight.
    pub fn queue_depth(&self) -> usize {
        self.sender.max_capacity() - self.sender.capacity()
    }

    /// The writer's state, for readiness.
    pub fn health(&self) -> WriterHealth {
        WriterHealth {
            failing_for: self.shared.failing_since().map(|since| since.elapsed()),
            depth: self.queue_depth(),
            capacity: self.sender.max_capacity(),
        }
    }

    /// The writer's counters, for the metrics.
    pub fn stats(&self) -> WriterStats {
        WriterStats {
            transient_failures: self.shared.transient_failures.load(Ordering::Relaxed),
            permanent_failures: self.shared.permanent_failures.load(Ordering::Relaxed),
            set_aside: self.shared.set_aside.load(Ordering::Relaxed),
        }
    }
}

/// Logs an event that will not be stored, whole, where an operator finds it, and counts it.
fn set_aside(shared: &Shared, event: &AuditEvent, why: &str) {
    shared.set_aside.fetch_add(1, Ordering::Relaxed);
    tracing::error!(
        request_id = %event.request_id,
        why,
        event = %event.to_json(),
        "audit event set aside: it is not stored"
    );
}

/// What the writer did over its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterReport {
    /// Events stored.
    pub written: u64,
    /// Events the store refused, logged instead (see [`WriterStats::set_aside`]).
    pub set_aside: u64,
    /// Events that could not be stored before shutdown gave up (logged too).
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
        let shared = Arc::new(Shared::default());
        let sink = AuditSink {
            sender,
            shared: shared.clone(),
            enqueue_timeout: config.enqueue_timeout,
        };
        let writer = Writer {
            log,
            shared,
            report: WriterReport::default(),
        };
        let task = tokio::spawn(writer.run(config, receiver, close_rx));
        (sink, Self { close, task })
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

/// The writer task's state.
struct Writer {
    log: Arc<dyn AuditLog>,
    shared: Arc<Shared>,
    report: WriterReport,
}

impl Writer {
    async fn run(
        mut self,
        config: AuditWriterConfig,
        mut receiver: mpsc::Receiver<BoundedEvent>,
        mut close: oneshot::Receiver<()>,
    ) -> WriterReport {
        let batch_size = config.batch_size.max(1);
        // Batches still to write, oldest first; a refused batch is replaced by its halves.
        let mut pending: VecDeque<Vec<BoundedEvent>> = VecDeque::new();
        let mut closing = false;
        let mut failures = 0u32;
        loop {
            if pending.is_empty() {
                let mut batch = Vec::with_capacity(batch_size);
                tokio::select! {
                    biased;
                    _ = &mut close, if !closing => {
                        closing = true;
                        receiver.close();
                        continue;
                    }
                    received = receive(&mut receiver, &mut batch, batch_size, closing, config.shutdown_wait) => {
                        if received == 0 {
                            break; // closed and drained
                        }
                    }
                }
                pending.push_back(batch);
            }
            let Some(batch) = pending.pop_front() else {
                continue;
            };
            // Each write is a trace of its own: a batch serves many requests.
            let span = tracing::info_span!(
                target: TRACE_TARGET,
                "audit write",
                otel.status_code = Empty,
                searchgate.audit.events = batch.len(),
                error.type = Empty,
            );
            let written = self.log.append(&batch).instrument(span.clone()).await;
            if let Err(error) = &written
                && !span.is_disabled()
            {
                let kind = match error {
                    AuditError::Refused(_) => "refused",
                    _ => "unavailable",
                };
                span.record("error.type", kind);
                span.record("otel.status_code", "ERROR");
            }
            drop(span);
            match written {
                Ok(()) => {
                    self.report.written += batch.len() as u64;
                    self.shared.set_failing(false);
                    failures = 0;
                    // While the writer waits here it is not woken by each event queued.
                    if batch.len() < batch_size && pending.is_empty() && !closing {
                        tokio::select! {
                            biased;
                            _ = &mut close => {
                                closing = true;
                                receiver.close();
                            }
                            () = tokio::time::sleep(config.flush_interval) => {}
                        }
                    }
                }
                Err(AuditError::Refused(error)) => {
                    // The store answers: this is no outage, and retrying these rows is futile.
                    self.shared.set_failing(false);
                    self.shared
                        .permanent_failures
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %format!("{error:#}"), events = batch.len(), "the audit store refused a batch; writing it in parts");
                    self.split(batch, &mut pending);
                }
                Err(error) => {
                    failures += 1;
                    self.shared.set_failing(true);
                    self.shared
                        .transient_failures
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::error!(error = %error, events = batch.len(), attempt = failures, "audit write failed; will retry the same events");
                    pending.push_front(batch);
                    if closing && failures >= config.shutdown_attempts {
                        self.give_up(pending, &mut receiver);
                        break;
                    }
                    tokio::select! {
                        _ = &mut close, if !closing => {
                            closing = true;
                            receiver.close();
                        }
                        () = tokio::time::sleep(backoff(failures)) => {}
                    }
                }
            }
        }
        self.report
    }

    /// A refused batch: its halves go back to the front (in order), a single row is set aside.
    fn split(&mut self, mut batch: Vec<BoundedEvent>, pending: &mut VecDeque<Vec<BoundedEvent>>) {
        if batch.len() == 1 {
            let event = batch.remove(0);
            set_aside(&self.shared, &event, "the audit store refused it");
            self.report.set_aside += 1;
            return;
        }
        let second = batch.split_off(batch.len() / 2);
        pending.push_front(second);
        pending.push_front(batch);
    }

    /// Shutdown while the store stays unavailable: every event not stored is logged, so an
    /// operator can still find it.
    fn give_up(
        &mut self,
        pending: VecDeque<Vec<BoundedEvent>>,
        receiver: &mut mpsc::Receiver<BoundedEvent>,
    ) {
        let mut lost = |event: &AuditEvent| {
            self.report.lost += 1;
            tracing::error!(
                request_id = %event.request_id,
                event = %event.to_json(),
                "audit event lost at shutdown: the store stayed unavailable"
            );
        };
        for event in pending.iter().flatten() {
            lost(event);
        }
        while let Ok(event) = receiver.try_recv() {
            lost(&event);
        }
        tracing::error!(
            lost = self.report.lost,
            "audit writer gave up at shutdown; the events above were not stored"
        );
    }
}

/// The next events into `batch`. Once closing, requests still holding a slot get
/// `shutdown_wait` to hand in their event; after that the queue counts as drained.
async fn receive(
    receiver: &mut mpsc::Receiver<BoundedEvent>,
    batch: &mut Vec<BoundedEvent>,
    batch_size: usize,
    closing: bool,
    shutdown_wait: Duration,
) -> usize {
    if !closing {
        return receiver.recv_many(batch, batch_size).await;
    }
    match tokio::time::timeout(shutdown_wait, receiver.recv_many(batch, batch_size)).await {
        Ok(received) => received,
        Err(_) => {
            let held = receiver.max_capacity() - receiver.capacity() - receiver.len();
            tracing::error!(
                held,
                "requests still running after shutdown hold audit slots; their events are not stored"
            );
            0
        }
    }
}

/// 100 ms doubling up to 5 s.
fn backoff(failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(6);
    Duration::from_millis(100 * 2u64.pow(exponent)).min(Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use async_trait::async_trait;

    use super::*;
    use crate::domain::{audit::Outcome, time::Timestamp};

    /// Stores events in memory; fails the first `failures` appends as unavailable, and
    /// refuses every batch holding a `poisoned` event.
    #[derive(Default)]
    struct MemoryLog {
        stored: Mutex<Vec<AuditEvent>>,
        batches: AtomicU32,
        failures: AtomicU32,
        poisoned: Vec<String>,
    }

    #[async_trait]
    impl AuditLog for MemoryLog {
        async fn append(&self, events: &[BoundedEvent]) -> Result<(), AuditError> {
            if self.failures.load(Ordering::SeqCst) > 0 {
                self.failures.fetch_sub(1, Ordering::SeqCst);
                return Err(AuditError::Unavailable("disk full".into()));
            }
            if events.iter().any(|e| self.poisoned.contains(&e.request_id)) {
                return Err(AuditError::Refused(anyhow::anyhow!(
                    "index row size exceeds btree maximum"
                )));
            }
            self.batches.fetch_add(1, Ordering::SeqCst);
            self.stored
                .lock()
                .unwrap()
                .extend(events.iter().map(|e| (**e).clone()));
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

    fn config(
        queue_capacity: usize,
        batch_size: usize,
        shutdown_attempts: u32,
    ) -> AuditWriterConfig {
        AuditWriterConfig {
            queue_capacity,
            batch_size,
            shutdown_attempts,
            ..AuditWriterConfig::default()
        }
    }

    fn ids(log: &MemoryLog) -> Vec<String> {
        let stored = log.stored.lock().unwrap();
        stored.iter().map(|e| e.request_id.clone()).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn events_arriving_while_the_writer_pauses_share_one_write() {
        let log = Arc::new(MemoryLog::default());
        let (sink, writer) = AuditWriter::spawn(
            log.clone(),
            AuditWriterConfig {
                flush_interval: Duration::from_millis(10),
                ..config(64, 16, 3)
            },
        );
        // Idle: the first event is written at once.
        sink.record(event(0)).await;
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(ids(&log), ["req-0"]);
        // Events arriving during the pause that follows wait for it to end, then go in
        // batches of at most 16.
        for n in 1..=20 {
            sink.record(event(n)).await;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(ids(&log).len(), 1, "nothing written during the pause");
        tokio::time::sleep(Duration::from_millis(6)).await;
        // A full batch is followed by no pause: 16, then the other 4 at once.
        assert_eq!(ids(&log).len(), 21, "all written when the pause ends");
        assert_eq!(log.batches.load(Ordering::SeqCst), 3, "in two writes");
        assert_eq!(writer.shutdown().await.written, 21);
    }

    #[tokio::test]
    async fn shutdown_writes_every_queued_event_in_order_and_in_batches() {
        let log = Arc::new(MemoryLog::default());
        let (sink, writer) = AuditWriter::spawn(log.clone(), config(8, 4, 3));
        for n in 0..50 {
            sink.record(event(n)).await;
        }
        let report = writer.shutdown().await;
        assert_eq!(
            report,
            WriterReport {
                written: 50,
                ..WriterReport::default()
            }
        );
        let expected: Vec<_> = (0..50).map(|n| format!("req-{n}")).collect();
        assert_eq!(ids(&log), expected, "every event exactly once, in order");
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
        let (sink, writer) = AuditWriter::spawn(log.clone(), config(2, 2, 3));
        // With a queue of 2 and a failing store, these sends must wait, not drop.
        for n in 0..10 {
            sink.record(event(n)).await;
        }
        let report = writer.shutdown().await;
        assert_eq!(report.written, 10);
        assert_eq!(log.stored.lock().unwrap().len(), 10);
        assert_eq!(
            sink.stats().transient_failures,
            3,
            "each failed write is counted"
        );
        assert_eq!(sink.health().failing_for, None, "recovered");
    }

    #[tokio::test]
    async fn a_refused_row_is_set_aside_and_every_other_row_of_its_batch_is_stored() {
        let log = Arc::new(MemoryLog {
            poisoned: vec!["req-5".into(), "req-13".into()],
            ..Default::default()
        });
        let (sink, writer) = AuditWriter::spawn(log.clone(), config(64, 16, 3));
        for n in 0..40 {
            sink.record(event(n)).await;
        }
        let report = writer.shutdown().await;
        assert_eq!(
            report,
            WriterReport {
                written: 38,
                set_aside: 2,
                lost: 0
            }
        );
        let expected: Vec<_> = (0..40)
            .filter(|n| ![5, 13].contains(n))
            .map(|n| format!("req-{n}"))
            .collect();
        assert_eq!(ids(&log), expected, "the good rows, once each, in order");
        let stats = sink.stats();
        assert_eq!(stats.set_aside, 2);
        assert!(stats.permanent_failures >= 2, "{stats:?}");
        assert_eq!(stats.transient_failures, 0);
        assert_eq!(
            sink.health().failing_for,
            None,
            "a store that refuses rows is not an outage"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_refuses_a_request_after_the_enqueue_timeout_and_recovers() {
        let log = Arc::new(MemoryLog {
            failures: AtomicU32::new(u32::MAX),
            ..Default::default()
        });
        let config = AuditWriterConfig {
            enqueue_timeout: Duration::from_secs(2),
            ..config(2, 1, 1)
        };
        let (sink, writer) = AuditWriter::spawn(log.clone(), config);
        // The writer holds one event (retrying it); two more fill the queue.
        for n in 0..3 {
            sink.reserve().await.unwrap().record(event(n));
            tokio::task::yield_now().await;
        }
        let started = tokio::time::Instant::now();
        let refused = sink.reserve().await.unwrap_err();
        assert_eq!(
            started.elapsed(),
            Duration::from_secs(2),
            "waited the timeout"
        );
        assert_eq!(refused.retry_after_secs, 2);
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(sink.health().problem(), Some("failing"));
        log.failures.store(0, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(sink.health().problem(), None, "recovered by itself");
        assert!(sink.reserve().await.is_ok());
        assert_eq!(writer.shutdown().await.written, 3, "no queued event lost");
    }

    #[tokio::test]
    async fn a_slot_serves_the_sink_inside_its_request() {
        let log = Arc::new(MemoryLog::default());
        let (sink, writer) = AuditWriter::spawn(log.clone(), config(1, 1, 1));
        let slot = sink.reserve().await.unwrap();
        assert_eq!(sink.queue_depth(), 1, "the slot is taken");
        // The queue is full, yet the request's own event goes in at once, in its slot.
        slot.serve(sink.record(event(1))).await;
        assert_eq!(writer.shutdown().await.written, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_store_that_never_recovers_reports_the_loss_at_shutdown() {
        let log = Arc::new(MemoryLog {
            failures: AtomicU32::new(u32::MAX),
            ..Default::default()
        });
        let (sink, writer) = AuditWriter::spawn(log, config(16, 4, 2));
        for n in 0..6 {
            sink.record(event(n)).await;
        }
        let report = writer.shutdown().await;
        assert_eq!(
            report,
            WriterReport {
                written: 0,
                set_aside: 0,
                lost: 6
            },
            "the loss is counted, not hidden"
        );
    }

    #[tokio::test]
    async fn events_recorded_after_shutdown_are_set_aside_without_panicking() {
        let log = Arc::new(MemoryLog::default());
        let (sink, writer) = AuditWriter::spawn(log.clone(), AuditWriterConfig::default());
        writer.shutdown().await;
        sink.record(event(1)).await;
        assert!(log.stored.lock().unwrap().is_empty());
        assert_eq!(sink.stats().set_aside, 1, "counted");
        assert!(sink.reserve().await.is_err(), "requests are refused");
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(20), Duration::from_secs(5));
    }

    #[test]
    fn the_writer_is_unready_when_failing_for_a_while_or_nearly_full() {
        let health = |failing_for: Option<u64>, depth| WriterHealth {
            failing_for: failing_for.map(Duration::from_secs),
            depth,
            capacity: 100,
        };
        assert_eq!(health(None, 0).problem(), None);
        assert_eq!(health(Some(1), 0).problem(), None, "a blip");
        assert_eq!(health(Some(10), 0).problem(), Some("failing"));
        assert_eq!(health(None, 90).problem(), None);
        assert_eq!(health(None, 91).problem(), Some("queue_full"));
    }
}
