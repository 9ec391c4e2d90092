//! One connection's clock: which limit applies now (headers, idle, or none while a request is
//! being served), and closing the connection when it runs out.

use std::sync::{
    Arc, Mutex, PoisonError,
    atomic::{AtomicBool, AtomicU64, Ordering},
};

use futures::task::AtomicWaker;
use tokio::{
    sync::Notify,
    time::{Instant, sleep_until},
};
use tokio_util::sync::CancellationToken;

use super::ConnectionLimits;

/// What the connection is doing.
#[derive(Debug)]
struct Activity {
    /// Requests being served (more than one only on HTTP/2).
    busy: usize,
    /// For each answer whose next part waits for the client to take it (for hyper to write
    /// it): since when. Each answer has its own clock, so answers the client takes on other
    /// HTTP/2 streams do not keep an untaken one alive. At most `http2_max_streams` long.
    waiting: Vec<Instant>,
    /// When the last request's answer ended, or the connection opened.
    idle_since: Instant,
    /// Whether a request has been served: before the first, the header limit applies from
    /// connecting.
    served: bool,
    /// When the first byte of the next request arrived.
    head_started: Option<Instant>,
    /// Whether the connection speaks HTTP/2: between its requests come frames that are no
    /// request's headers (PING, WINDOW_UPDATE, SETTINGS), so bytes do not start the header
    /// limit there and an idle connection keeps the idle limit.
    multiplexed: bool,
    /// The deadline the timer task sleeps until (`None`: it waits for a change only). It is
    /// never later than the real deadline: a change that brings the deadline closer wakes the
    /// task, while one that pushes it further (most changes, on a busy keep-alive connection)
    /// is left for the task to find when its timer fires, so a request costs no wake-up.
    armed: Option<Instant>,
}

impl Activity {
    /// When the connection must close if nothing changes; `None` while a request is served
    /// and no answer waits for the client.
    fn deadline(&self, limits: &ConnectionLimits) -> Option<Instant> {
        if self.busy > 0 {
            // A client that takes nothing of a ready answer (one that does not read, or an
            // HTTP/2 client that never opens its flow-control window) is idle too.
            return self
                .waiting
                .iter()
                .min()
                .map(|since| *since + limits.idle_timeout);
        }
        Some(match self.head_started {
            Some(started) => started + limits.header_timeout,
            None if self.served => self.idle_since + limits.idle_timeout,
            None => self.idle_since + limits.header_timeout,
        })
    }

    /// Whether the timer task must be woken: the deadline is now earlier than the one it
    /// sleeps until.
    fn sooner(&self, limits: &ConnectionLimits) -> bool {
        match (self.deadline(limits), self.armed) {
            (Some(deadline), Some(armed)) => deadline < armed,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }
}

/// See the module documentation.
#[derive(Debug)]
pub(super) struct Watch {
    limits: ConnectionLimits,
    activity: Mutex<Activity>,
    changed: Notify,
    expired: AtomicBool,
    /// Writes that went out after waiting for room: the client reading what it was sent
    /// (control frames such as a PING's answer never wait). Read by the timer task only when
    /// its timer fires.
    drained: AtomicU64,
    /// Whether it expired with an answer the client did not take.
    untaken: AtomicBool,
    /// The task reading the connection, woken to see that it expired.
    reader: AtomicWaker,
    /// Cancelled when the connection closes.
    closed: CancellationToken,
}

impl Watch {
    /// A watch for a connection opened now, with its timer task running.
    pub(super) fn start(limits: ConnectionLimits) -> Arc<Self> {
        let watch = Arc::new(Self {
            limits,
            activity: Mutex::new(Activity {
                busy: 0,
                waiting: Vec::new(),
                idle_since: Instant::now(),
                served: false,
                head_started: None,
                multiplexed: false,
                armed: None,
            }),
            changed: Notify::new(),
            expired: AtomicBool::new(false),
            drained: AtomicU64::new(0),
            untaken: AtomicBool::new(false),
            reader: AtomicWaker::new(),
            closed: CancellationToken::new(),
        });
        tokio::spawn(watch.clone().run());
        watch
    }

    fn activity(&self) -> std::sync::MutexGuard<'_, Activity> {
        self.activity.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// When the connection must close if nothing changes; `None` while a request is served.
    fn deadline(&self) -> Option<Instant> {
        self.activity().deadline(&self.limits)
    }

    /// Wakes the timer task when `activity`'s change brought the deadline closer.
    fn changed(&self, activity: std::sync::MutexGuard<'_, Activity>) {
        let sooner = activity.sooner(&self.limits);
        drop(activity);
        if sooner {
            self.changed.notify_one();
        }
    }

    /// Closes the connection when its deadline passes.
    async fn run(self: Arc<Self>) {
        loop {
            let drained = self.drained.load(Ordering::Relaxed);
            let deadline = {
                let mut activity = self.activity();
                activity.armed = activity.deadline(&self.limits);
                activity.armed
            };
            let timer = async {
                match deadline {
                    Some(deadline) => sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = self.closed.cancelled() => return,
                () = self.changed.notified() => {}
                () = timer => {
                    let due = self.deadline().is_some_and(|d| d <= Instant::now());
                    let sending = self.drained.load(Ordering::Relaxed) != drained;
                    if due && !(sending && self.still_sending()) {
                        self.expire();
                        return;
                    }
                }
            }
        }
    }

    /// Between requests, an answer still leaving since the timer was armed (the end of a large
    /// one, written as a slow reader makes room) is progress: the idle limit starts again from
    /// now. Whether that applied.
    fn still_sending(&self) -> bool {
        let mut activity = self.activity();
        let idle = activity.busy == 0 && activity.served && activity.head_started.is_none();
        if idle {
            activity.idle_since = Instant::now();
        }
        idle
    }

    fn expire(&self) {
        let activity = self.activity();
        let untaken = activity.busy > 0;
        let phase = if untaken {
            "not reading the answer"
        } else if activity.head_started.is_some() || !activity.served {
            "sending headers"
        } else {
            "idle"
        };
        drop(activity);
        tracing::debug!(phase, "closing a connection that timed out");
        self.untaken.store(untaken, Ordering::Release);
        self.expired.store(true, Ordering::Release);
        self.reader.wake();
    }

    /// Whether the connection timed out: reads then end it.
    pub(super) fn expired(&self) -> bool {
        self.expired.load(Ordering::Acquire)
    }

    /// Whether it timed out with an answer the client did not take.
    pub(super) fn expired_untaken(&self) -> bool {
        self.expired() && self.untaken.load(Ordering::Acquire)
    }

    /// Registers the reading task, to be woken when the connection expires.
    pub(super) fn register_reader(&self, waker: &std::task::Waker) {
        self.reader.register(waker);
    }

    /// Bytes arrived: between HTTP/1 requests, they start the next request's headers.
    pub(super) fn bytes_read(&self) {
        let mut activity = self.activity();
        if activity.busy == 0 && activity.head_started.is_none() && !activity.multiplexed {
            activity.head_started = Some(Instant::now());
            self.changed(activity);
        }
    }

    /// A write that had to wait for room went out: the client is reading.
    pub(super) fn drained(&self) {
        self.drained.fetch_add(1, Ordering::Relaxed);
    }

    /// The connection closed.
    pub(super) fn close(&self) {
        self.closed.cancel();
    }

    /// A request's headers arrived (on HTTP/2 when `multiplexed`); it is served until the
    /// returned guard drops.
    pub(super) fn request_started(self: &Arc<Self>, multiplexed: bool) -> Busy {
        let mut activity = self.activity();
        activity.busy += 1;
        activity.multiplexed |= multiplexed;
        activity.head_started = None;
        self.changed(activity);
        Busy {
            watch: self.clone(),
            waiting_since: None,
        }
    }
}

/// A request being served; see [`Watch::request_started`].
pub(super) struct Busy {
    watch: Arc<Watch>,
    /// Since when its answer waits for the client (its entry in `Activity::waiting`).
    waiting_since: Option<Instant>,
}

impl Busy {
    /// Part of the answer is ready for the client (its head, or a body frame just taken): the
    /// client has the idle limit to take it.
    pub(super) fn answer_ready(&mut self) {
        let now = Instant::now();
        let mut activity = self.watch.activity();
        match self.waiting_since.replace(now) {
            Some(since) => replace(&mut activity.waiting, since, now),
            None => activity.waiting.push(now),
        }
        self.watch.changed(activity);
    }

    /// The answer's next part is being made (or there is none): nothing waits for the client.
    pub(super) fn answer_pending(&mut self) {
        if let Some(since) = self.waiting_since.take() {
            let mut activity = self.watch.activity();
            remove(&mut activity.waiting, since);
            self.watch.changed(activity);
        }
    }
}

/// `waiting` with one `old` replaced by `new`.
fn replace(waiting: &mut [Instant], old: Instant, new: Instant) {
    if let Some(entry) = waiting.iter_mut().find(|since| **since == old) {
        *entry = new;
    }
}

/// `waiting` without one `since`.
fn remove(waiting: &mut Vec<Instant>, since: Instant) {
    if let Some(at) = waiting.iter().position(|entry| *entry == since) {
        waiting.swap_remove(at);
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut activity = self.watch.activity();
        activity.busy = activity.busy.saturating_sub(1);
        if let Some(since) = self.waiting_since.take() {
            remove(&mut activity.waiting, since);
        }
        if activity.busy == 0 {
            activity.idle_since = Instant::now();
            activity.served = true;
        }
        self.watch.changed(activity);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn only_a_sooner_deadline_wakes_the_timer() {
        let limits = ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            max_connections: 1,
        };
        let mut activity = Activity {
            busy: 0,
            waiting: Vec::new(),
            idle_since: Instant::now(),
            served: true,
            head_started: None,
            multiplexed: false,
            armed: None,
        };
        assert!(activity.sooner(&limits), "idle with no timer armed");
        activity.armed = activity.deadline(&limits);
        activity.head_started = Some(Instant::now());
        assert!(
            activity.sooner(&limits),
            "headers due before the idle limit"
        );
        activity.armed = activity.deadline(&limits);
        // A keep-alive request: served, answered, the next one's headers start.
        activity.busy = 1;
        activity.head_started = None;
        assert!(!activity.sooner(&limits), "no limit while serving");
        tokio::time::advance(Duration::from_secs(1)).await;
        activity.busy = 0;
        activity.idle_since = Instant::now();
        assert!(
            !activity.sooner(&limits),
            "the idle limit is later than the armed one"
        );
        activity.head_started = Some(Instant::now());
        assert!(
            !activity.sooner(&limits),
            "the next headers are due after the armed limit"
        );
        activity.armed = None;
        assert!(
            activity.sooner(&limits),
            "a timer waiting for no limit must hear of one"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_limit_follows_what_the_connection_does() {
        let watch = Watch::start(ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            max_connections: 1,
        });
        let opened = Instant::now();
        assert_eq!(watch.deadline(), Some(opened + Duration::from_secs(10)));
        // A request being served has no limit here, however long it takes.
        let busy = watch.request_started(false);
        assert_eq!(watch.deadline(), None);
        tokio::time::advance(Duration::from_secs(300)).await;
        settle().await;
        assert!(!watch.expired());
        drop(busy);
        let answered = Instant::now();
        assert_eq!(watch.deadline(), Some(answered + Duration::from_secs(75)));
        // The next request's first byte starts its header limit.
        tokio::time::advance(Duration::from_secs(60)).await;
        watch.bytes_read();
        assert_eq!(
            watch.deadline(),
            Some(answered + Duration::from_secs(70)),
            "60 s idle, then 10 s for the headers"
        );
        tokio::time::advance(Duration::from_secs(9)).await;
        settle().await;
        assert!(!watch.expired());
        tokio::time::advance(Duration::from_secs(2)).await;
        settle().await;
        assert!(watch.expired());
    }

    #[tokio::test(start_paused = true)]
    async fn frames_between_http2_requests_leave_the_idle_limit() {
        let watch = Watch::start(ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            max_connections: 1,
        });
        // The preface and settings before the first request are its headers' time.
        watch.bytes_read();
        drop(watch.request_started(true));
        let answered = Instant::now();
        // A PING or WINDOW_UPDATE later is no request's headers.
        tokio::time::advance(Duration::from_secs(30)).await;
        watch.bytes_read();
        assert_eq!(watch.deadline(), Some(answered + Duration::from_secs(75)));
        tokio::time::advance(Duration::from_secs(44)).await;
        settle().await;
        assert!(!watch.expired());
        tokio::time::advance(Duration::from_secs(2)).await;
        settle().await;
        assert!(watch.expired(), "closed when idle, not before");
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_the_client_does_not_take_gets_the_idle_limit() {
        let watch = Watch::start(ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            max_connections: 1,
        });
        let mut busy = watch.request_started(true);
        // Made slowly: no limit.
        tokio::time::advance(Duration::from_secs(200)).await;
        settle().await;
        assert!(!watch.expired());
        busy.answer_ready();
        let ready = Instant::now();
        assert_eq!(watch.deadline(), Some(ready + Duration::from_secs(75)));
        // The client takes a part; the next is made, then ready again.
        tokio::time::advance(Duration::from_secs(50)).await;
        busy.answer_ready();
        busy.answer_pending();
        assert_eq!(watch.deadline(), None);
        busy.answer_ready();
        let taken = Instant::now();
        tokio::time::advance(Duration::from_secs(74)).await;
        settle().await;
        assert!(!watch.expired());
        assert_eq!(watch.deadline(), Some(taken + Duration::from_secs(75)));
        tokio::time::advance(Duration::from_secs(2)).await;
        settle().await;
        assert!(
            watch.expired(),
            "the client took nothing for the idle limit"
        );
        drop(busy);
    }

    #[tokio::test(start_paused = true)]
    async fn answers_taken_on_other_streams_do_not_keep_an_untaken_one_alive() {
        let watch = Watch::start(ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            max_connections: 1,
        });
        let mut stuck = watch.request_started(true);
        stuck.answer_ready();
        let stuck_since = Instant::now();
        // Another stream every 10 s, answered and taken at once.
        for _ in 0..7 {
            tokio::time::advance(Duration::from_secs(10)).await;
            let mut other = watch.request_started(true);
            other.answer_ready();
            other.answer_ready();
            drop(other);
            settle().await;
        }
        assert!(!watch.expired());
        assert_eq!(
            watch.deadline(),
            Some(stuck_since + Duration::from_secs(75))
        );
        tokio::time::advance(Duration::from_secs(6)).await;
        settle().await;
        assert!(watch.expired(), "the untaken answer's own clock ran out");
        drop(stuck);
    }

    #[tokio::test(start_paused = true)]
    async fn the_end_of_an_answer_still_leaving_is_not_idleness() {
        let watch = Watch::start(ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            max_connections: 1,
        });
        drop(watch.request_started(false));
        // hyper holds the rest of a large answer and writes it as a slow client makes room.
        for _ in 0..4 {
            tokio::time::advance(Duration::from_secs(50)).await;
            watch.drained();
            settle().await;
        }
        assert!(!watch.expired(), "200 s of a slow but steady reader");
        tokio::time::advance(Duration::from_secs(200)).await;
        settle().await;
        assert!(watch.expired(), "then nothing: idle");
    }
}
