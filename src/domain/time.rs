//! Time as the domain records it: a [`Timestamp`] on the Unix time line (UTC, to the
//! millisecond), read from this process's clock with [`Timestamp::now`] and stored as whole
//! seconds ([`UnixTime`]) or milliseconds. One home for the conversions, so no caller computes
//! `duration_since(UNIX_EPOCH)` and picks its own answer for a clock set before 1970.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Whole seconds since the Unix epoch: how stored records (clients, keys, codes, refresh
/// tokens) hold a [`Timestamp`].
pub type UnixTime = i64;

/// A moment, in milliseconds since the Unix epoch. Moments before the epoch are the epoch
/// itself (a clock that far off is wrong, and 0 sorts first); the far future saturates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    millis: i64,
}

impl Timestamp {
    /// The Unix epoch.
    pub const EPOCH: Self = Self { millis: 0 };

    /// Now, from this process's clock (never the database's, so every replica and database
    /// stamps rows the same way).
    pub fn now() -> Self {
        Self::from(SystemTime::now())
    }

    /// `seconds` since the epoch (negative ones are the epoch).
    pub fn from_unix_seconds(seconds: UnixTime) -> Self {
        Self::from_unix_millis(seconds.saturating_mul(1000))
    }

    /// `millis` milliseconds since the epoch (negative ones are the epoch).
    pub fn from_unix_millis(millis: i64) -> Self {
        Self {
            millis: millis.max(0),
        }
    }

    /// Whole seconds since the epoch, rounded down.
    pub fn unix_seconds(self) -> UnixTime {
        self.millis / 1000
    }

    /// Milliseconds since the epoch.
    pub fn unix_millis(self) -> i64 {
        self.millis
    }

    /// `by` earlier, to the millisecond; the epoch when that would be before it.
    pub fn saturating_sub(self, by: Duration) -> Self {
        let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        Self::from_unix_millis(self.millis.saturating_sub(by))
    }
}

impl From<SystemTime> for Timestamp {
    fn from(at: SystemTime) -> Self {
        at.duration_since(UNIX_EPOCH)
            .map_or(Self::EPOCH, |since| Self {
                millis: i64::try_from(since.as_millis()).unwrap_or(i64::MAX),
            })
    }
}

impl From<Timestamp> for SystemTime {
    fn from(at: Timestamp) -> Self {
        // `millis` is never negative, and i64::MAX milliseconds fit in a SystemTime on every
        // platform searchgate builds for.
        UNIX_EPOCH + Duration::from_millis(at.millis.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_convert_both_ways_and_clamp_at_the_epoch() {
        let at = UNIX_EPOCH + Duration::from_millis(1_764_183_600_123);
        let stamp = Timestamp::from(at);
        assert_eq!(stamp.unix_millis(), 1_764_183_600_123);
        assert_eq!(stamp.unix_seconds(), 1_764_183_600, "seconds round down");
        assert_eq!(
            SystemTime::from(stamp),
            at,
            "no precision lost to the millisecond"
        );
        assert_eq!(
            Timestamp::from_unix_seconds(1_764_183_600),
            Timestamp::from_unix_millis(1_764_183_600_000)
        );
        assert_eq!(
            Timestamp::from(UNIX_EPOCH - Duration::from_secs(5)),
            Timestamp::EPOCH,
            "a clock before 1970 reads as the epoch, not as an error"
        );
        assert_eq!(Timestamp::from_unix_millis(-5), Timestamp::EPOCH);
        assert_eq!(
            Timestamp::from_unix_seconds(i64::MAX).unix_millis(),
            i64::MAX,
            "the far future saturates instead of overflowing"
        );
        assert!(Timestamp::now() > Timestamp::from_unix_seconds(1_700_000_000));
    }

    #[test]
    fn subtracting_a_duration_stops_at_the_epoch() {
        let at = Timestamp::from_unix_millis(1_764_183_600_123);
        for (by, expected, reason) in [
            (Duration::ZERO, 1_764_183_600_123, "nothing to subtract"),
            (
                Duration::from_secs(86_400),
                1_764_097_200_123,
                "one day earlier",
            ),
            (
                Duration::from_micros(1_999),
                1_764_183_600_122,
                "whole milliseconds only",
            ),
            (
                Duration::from_secs(1_764_183_601),
                0,
                "before 1970 is the epoch",
            ),
            (
                Duration::MAX,
                0,
                "a duration past i64 milliseconds is the epoch",
            ),
        ] {
            assert_eq!(at.saturating_sub(by).unix_millis(), expected, "{reason}");
        }
    }
}
