//! One per-key rate limit (callers of the web tools, source addresses of registrations): a
//! GCRA allowance per key, and a bounded table of keys. The table forgets keys whose allowance
//! has recovered, at most once a minute and only once it holds many keys, so a flood from many
//! keys cannot grow it without bound and a busy server does not scan it on every call.
//!
//! Time is tokio's clock, so tests drive it with paused time instead of sleeping.

use std::{hash::Hash, num::NonZeroU32, ops::Add, sync::Mutex, time::Duration};

use governor::{
    Quota, RateLimiter,
    clock::{Clock, Reference},
    middleware::NoOpMiddleware,
    nanos::Nanos,
    state::keyed::DefaultKeyedStateStore,
};
use tokio::time::Instant;

/// Keys remembered before those whose allowance has recovered are forgotten.
const KEYS_SOFT_MAX: usize = 10_000;
/// Shortest time between two trims of the key table.
const TRIM_EVERY: Duration = Duration::from_secs(60);

/// A number of calls per minute for each key.
pub struct KeyedLimiter<K: Hash + Eq + Clone> {
    limiter: RateLimiter<K, DefaultKeyedStateStore<K>, TokioClock, NoOpMiddleware<TokioInstant>>,
    /// When the table was last trimmed; a lock held only while trimming.
    last_trim: Mutex<Instant>,
    soft_max: usize,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    /// At most `calls` per minute per key, refilled evenly (one every `60 / calls` seconds),
    /// with a burst of `calls`.
    pub fn per_minute(calls: NonZeroU32) -> Self {
        Self::with_soft_max(calls, KEYS_SOFT_MAX)
    }

    fn with_soft_max(calls: NonZeroU32, soft_max: usize) -> Self {
        Self {
            limiter: RateLimiter::new(
                Quota::per_minute(calls),
                DefaultKeyedStateStore::default(),
                TokioClock,
            ),
            last_trim: Mutex::new(Instant::now()),
            soft_max,
        }
    }

    /// Takes one call from `key`'s allowance.
    ///
    /// # Errors
    /// How long until `key` may call again, when its allowance is used up.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        self.trim();
        self.limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(TokioClock.now()))
    }

    /// The number of keys remembered.
    pub fn len(&self) -> usize {
        self.limiter.len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets keys whose allowance has recovered, when the table is large and was not trimmed
    /// in the last minute. Another call trimming right now is enough: this one does not wait.
    fn trim(&self) {
        if self.limiter.len() <= self.soft_max {
            return;
        }
        if let Ok(mut last) = self.last_trim.try_lock()
            && last.elapsed() >= TRIM_EVERY
        {
            self.limiter.retain_recent();
            *last = Instant::now();
        }
    }
}

/// governor's view of tokio's clock.
#[derive(Debug, Clone, Copy, Default)]
struct TokioClock;

impl Clock for TokioClock {
    type Instant = TokioInstant;

    fn now(&self) -> TokioInstant {
        TokioInstant(Instant::now())
    }
}

/// A tokio instant that governor can measure with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct TokioInstant(Instant);

impl Add<Nanos> for TokioInstant {
    type Output = Self;

    fn add(self, other: Nanos) -> Self {
        Self(self.0 + Duration::from_nanos(other.as_u64()))
    }
}

impl Reference for TokioInstant {
    fn duration_since(&self, earlier: Self) -> Nanos {
        self.0.saturating_duration_since(earlier.0).into()
    }

    fn saturating_sub(&self, duration: Nanos) -> Self {
        self.0
            .checked_sub(Duration::from_nanos(duration.as_u64()))
            .map_or(*self, Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).expect("not zero")
    }

    #[tokio::test(start_paused = true)]
    async fn each_key_has_its_own_allowance_and_is_told_when_to_retry() {
        let limiter = KeyedLimiter::per_minute(calls(2));
        assert_eq!(limiter.check(&"alice"), Ok(()));
        assert_eq!(limiter.check(&"alice"), Ok(()), "a burst of two");
        let wait = limiter
            .check(&"alice")
            .expect_err("the third call is refused");
        assert_eq!(
            wait,
            Duration::from_secs(30),
            "two a minute refill one every 30 s"
        );
        assert_eq!(limiter.check(&"bob"), Ok(()), "another key is unaffected");
    }

    #[tokio::test(start_paused = true)]
    async fn the_allowance_refills_with_time() {
        let limiter = KeyedLimiter::per_minute(calls(1));
        assert!(limiter.check(&1).is_ok());
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(
            limiter.check(&1),
            Err(Duration::from_secs(1)),
            "one second to go"
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(limiter.check(&1).is_ok(), "refilled after a minute");
    }

    #[tokio::test(start_paused = true)]
    async fn recovered_keys_are_forgotten_at_most_once_a_minute_when_the_table_is_large() {
        // 60 a minute: one call's allowance has recovered after two seconds.
        let limiter = KeyedLimiter::with_soft_max(calls(60), 3);
        for key in 0..5 {
            assert!(limiter.check(&key).is_ok());
        }
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(limiter.check(&10).is_ok());
        assert_eq!(limiter.len(), 6, "no trim within a minute of the last");

        tokio::time::advance(Duration::from_secs(29)).await;
        for _ in 0..60 {
            assert!(limiter.check(&99).is_ok(), "a burst of sixty");
        }
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(limiter.check(&11).is_ok());
        assert_eq!(
            limiter.len(),
            2,
            "recovered keys are dropped, the busy one stays"
        );
        for _ in 0..2 {
            assert!(
                limiter.check(&99).is_ok(),
                "two calls refilled in two seconds"
            );
        }
        assert!(
            limiter.check(&99).is_err(),
            "the busy key kept its state through the trim"
        );

        for key in 20..23 {
            assert!(limiter.check(&key).is_ok());
        }
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(limiter.check(&30).is_ok());
        assert_eq!(limiter.len(), 6, "the next trim waits a minute");
    }

    #[tokio::test(start_paused = true)]
    async fn a_small_table_is_never_scanned() {
        let limiter = KeyedLimiter::with_soft_max(calls(1), 10);
        for key in 0..5 {
            assert!(limiter.check(&key).is_ok());
        }
        tokio::time::advance(Duration::from_secs(120)).await;
        assert!(limiter.check(&9).is_ok());
        assert_eq!(
            limiter.len(),
            6,
            "below the soft maximum nothing is dropped"
        );
    }
}
