//! Daily budgets that hold across replicas: calls and credits per principal, and credits for
//! the whole deployment. The counts live in a shared store (the `BudgetStore` port); each
//! replica takes a chunk of a budget at a time and spends it locally, so most calls cost no
//! store round trip. Calls never exceed a budget (one is taken before the call); credits are
//! known only after the call, so the calls in flight when a credit budget runs out may
//! overshoot it by what each costs beyond the one credit taken up front.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
};

use async_trait::async_trait;

use super::{search::Caller, time::Timestamp};

/// Seconds in a budget's day (UTC).
const DAY_SECS: i64 = 86_400;
/// The deployment's credit counter.
const TOTAL_CREDITS: &str = "credits:*";

/// The limits, each per UTC day; zero turns one off.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BudgetPolicy {
    /// Tool calls each principal may make.
    pub calls_per_day: u64,
    /// Credits each principal may spend.
    pub credits_per_day: f64,
    /// Credits the whole deployment may spend.
    pub total_credits_per_day: f64,
}

impl BudgetPolicy {
    /// Whether any budget is set.
    pub fn is_on(&self) -> bool {
        self.calls_per_day > 0 || self.credits_per_day > 0.0 || self.total_credits_per_day > 0.0
    }
}

/// One counter of one day: `calls:<principal>`, `credits:<principal>` or `credits:*`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BudgetKey {
    /// What is counted, and for whom.
    pub scope: String,
    /// The UTC day (days since 1970-01-01).
    pub day: i64,
}

/// What one take got: the units granted, and the counter's total after it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Taken {
    /// Units granted, `0..=want`.
    pub granted: f64,
    /// The counter's total for the day, all replicas together.
    pub used: f64,
}

/// Where budgets are counted, shared by every replica.
///
/// Contract: `take` MUST be atomic across replicas (two replicas never both get the last unit)
/// and MUST grant `min(want, limit - used)` (never negative); `add` adds unconditionally.
#[async_trait]
pub trait BudgetStore: Send + Sync + 'static {
    /// Takes up to `want` units of `key` from `limit`; returns how many were taken.
    ///
    /// # Errors
    /// When the store cannot be reached.
    async fn take(&self, key: &BudgetKey, want: f64, limit: f64) -> anyhow::Result<Taken>;

    /// Adds `amount` spent beyond what was taken (a call that cost more than estimated).
    ///
    /// # Errors
    /// When the store cannot be reached.
    async fn add(&self, key: &BudgetKey, amount: f64) -> anyhow::Result<()>;

    /// Deletes the counters of days before `day`.
    ///
    /// # Errors
    /// When the store cannot be reached.
    async fn prune(&self, day: i64) -> anyhow::Result<()>;
}

/// Which budget ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetScope {
    /// The principal's.
    Principal,
    /// The whole deployment's.
    Total,
}

impl BudgetScope {
    /// A label for metrics and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Principal => "principal",
            Self::Total => "total",
        }
    }
}

/// A refused call: which budget is spent and when it renews.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exhausted {
    /// The budget.
    pub scope: BudgetScope,
    /// The next UTC midnight.
    pub resets_at: Timestamp,
}

/// What a replica holds of one counter: units taken from the store and not yet spent.
#[derive(Debug, Default)]
struct Lease {
    left: f64,
    /// The store had nothing left for the day: used only grows until the day ends, so the
    /// store is not asked again (a spent principal cannot make every call a round trip).
    spent: bool,
}

/// The budgets in front of the tools.
pub struct Budgets {
    policy: BudgetPolicy,
    store: Arc<dyn BudgetStore>,
    leases: Mutex<HashMap<BudgetKey, Lease>>,
    /// The deployment's credits used today as a share of its budget (f64 bits), as of the
    /// last chunk taken.
    total_used: AtomicU64,
    /// Calls refused, by budget: principal, total.
    refused: [AtomicU64; 2],
    /// The last day this replica pruned older counters for.
    pruned_day: AtomicI64,
}

/// What a call took, to be settled with its real cost.
#[derive(Debug)]
pub struct Reservation {
    day: i64,
    principal: String,
}

impl Budgets {
    /// Budgets under `policy`, counted in `store`.
    pub fn new(policy: BudgetPolicy, store: Arc<dyn BudgetStore>) -> Self {
        Self {
            policy,
            store,
            leases: Mutex::default(),
            total_used: AtomicU64::new(0),
            refused: [AtomicU64::new(0), AtomicU64::new(0)],
            pruned_day: AtomicI64::new(i64::MIN),
        }
    }

    /// The deployment's credits used today as a share of its budget (0 to 1), as this replica
    /// last saw it; `None` without a deployment budget.
    pub fn total_used_ratio(&self) -> Option<f64> {
        (self.policy.total_credits_per_day > 0.0)
            .then(|| f64::from_bits(self.total_used.load(Ordering::Relaxed)))
    }

    /// Calls refused because `scope`'s budget was spent, by this replica.
    pub fn refused(&self, scope: BudgetScope) -> u64 {
        self.refused[scope as usize].load(Ordering::Relaxed)
    }

    /// The policy.
    pub fn policy(&self) -> &BudgetPolicy {
        &self.policy
    }

    /// Takes one call and one credit (the estimate) from each budget that applies to
    /// `caller`, or says which is spent. A store that cannot be reached refuses the call:
    /// a budget that cannot be checked is not spent blindly.
    ///
    /// # Errors
    /// [`Exhausted`] naming the budget; the store's error as `Err(None)`.
    pub async fn reserve(&self, caller: &Caller) -> Result<Reservation, Option<Exhausted>> {
        let now = Timestamp::now().unix_seconds();
        let day = now.div_euclid(DAY_SECS);
        let resets_at = Timestamp::from_unix_seconds((day + 1) * DAY_SECS);
        let principal = principal_key(caller);
        // Once a day per replica, yesterday's counters go (one round trip, whoever gets there).
        if self.pruned_day.swap(day, Ordering::Relaxed) < day
            && let Err(error) = self.store.prune(day - 1).await
        {
            tracing::warn!(error = %error, "cannot delete old budget counters");
        }
        let wanted = [
            (
                format!("calls:{principal}"),
                self.policy.calls_per_day as f64,
                BudgetScope::Principal,
            ),
            (
                format!("credits:{principal}"),
                self.policy.credits_per_day,
                BudgetScope::Principal,
            ),
            (
                TOTAL_CREDITS.to_owned(),
                self.policy.total_credits_per_day,
                BudgetScope::Total,
            ),
        ];
        let mut taken: Vec<BudgetKey> = Vec::new();
        for (scope, limit, budget) in wanted {
            if limit <= 0.0 {
                continue;
            }
            let key = BudgetKey { scope, day };
            match self.take_one(&key, limit).await {
                Ok(true) => taken.push(key),
                Ok(false) => {
                    self.give_back(&taken, 1.0);
                    self.refused[budget as usize].fetch_add(1, Ordering::Relaxed);
                    return Err(Some(Exhausted {
                        scope: budget,
                        resets_at,
                    }));
                }
                Err(error) => {
                    tracing::error!(error = %error, "cannot reach the budget store; refusing the call");
                    self.give_back(&taken, 1.0);
                    return Err(None);
                }
            }
        }
        Ok(Reservation { day, principal })
    }

    /// Settles `reservation` with the call's real cost in credits: gives back what the
    /// estimate of one overstated, and records what it understated.
    pub async fn settle(&self, reservation: Reservation, credits: f64) {
        let credits = if credits.is_finite() {
            credits.max(0.0)
        } else {
            1.0
        };
        let extra = credits - 1.0;
        for (scope, limit) in [
            (
                format!("credits:{}", reservation.principal),
                self.policy.credits_per_day,
            ),
            (TOTAL_CREDITS.to_owned(), self.policy.total_credits_per_day),
        ] {
            if limit <= 0.0 {
                continue;
            }
            let key = BudgetKey {
                scope,
                day: reservation.day,
            };
            let owed = {
                let mut leases = self.lock();
                let lease = leases.entry(key.clone()).or_default();
                lease.left -= extra;
                // More spent than this replica held: the store must know, so other replicas
                // see it.
                (lease.left < 0.0).then(|| std::mem::take(&mut lease.left).abs())
            };
            if let Some(owed) = owed
                && let Err(error) = self.store.add(&key, owed).await
            {
                tracing::error!(error = %error, "cannot record credits spent beyond a budget lease");
            }
        }
    }

    /// Takes one unit of `key`, from the lease when it holds one, else from the store in a
    /// chunk. `Ok(false)` when the budget is spent.
    async fn take_one(&self, key: &BudgetKey, limit: f64) -> anyhow::Result<bool> {
        if let Some(answer) = self.spend_from_lease(key) {
            return Ok(answer);
        }
        let Taken { granted, used } = self.store.take(key, chunk(limit), limit).await?;
        if key.scope == TOTAL_CREDITS {
            self.total_used
                .store((used / limit).clamp(0.0, 1.0).to_bits(), Ordering::Relaxed);
        }
        let mut leases = self.lock();
        let lease = leases.entry(key.clone()).or_default();
        lease.left += granted;
        if lease.left >= 1.0 {
            lease.left -= 1.0;
            Ok(true)
        } else {
            lease.spent = granted <= 0.0;
            Ok(false)
        }
    }

    /// `Some(true)` when the lease had a unit, `Some(false)` when the day's budget is known
    /// to be spent, `None` when the store must be asked.
    fn spend_from_lease(&self, key: &BudgetKey) -> Option<bool> {
        let mut leases = self.lock();
        // Yesterday's leases are of no use any more.
        leases.retain(|k, _| k.day >= key.day);
        match leases.get_mut(key) {
            Some(lease) if lease.left >= 1.0 => {
                lease.left -= 1.0;
                Some(true)
            }
            Some(lease) if lease.spent => Some(false),
            _ => None,
        }
    }

    fn give_back(&self, keys: &[BudgetKey], amount: f64) {
        let mut leases = self.lock();
        for key in keys {
            leases.entry(key.clone()).or_default().left += amount;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<BudgetKey, Lease>> {
        self.leases.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How much of a budget one replica takes at a time: a fiftieth of it, between 1 and 100
/// units. Unused, it is lost at the end of the day (an undershoot of at most one chunk per
/// replica and counter).
pub fn chunk(limit: f64) -> f64 {
    (limit / 50.0).floor().clamp(1.0, 100.0)
}

/// A principal's budget key: its subject and client, or everyone unauthenticated as one.
fn principal_key(caller: &Caller) -> String {
    match caller {
        Caller::Principal { subject, client_id } => {
            format!("{subject}|{}", client_id.as_deref().unwrap_or(""))
        }
        Caller::Anonymous => "anonymous".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store in memory, shared like a database, counting its round trips.
    #[derive(Default)]
    struct Shared {
        used: Mutex<HashMap<BudgetKey, f64>>,
        trips: Mutex<u32>,
    }

    #[async_trait]
    impl BudgetStore for Shared {
        async fn take(&self, key: &BudgetKey, want: f64, limit: f64) -> anyhow::Result<Taken> {
            *self.trips.lock().unwrap() += 1;
            let mut used = self.used.lock().unwrap();
            let used = used.entry(key.clone()).or_default();
            let granted = want.min((limit - *used).max(0.0));
            *used += granted;
            Ok(Taken {
                granted,
                used: *used,
            })
        }

        async fn add(&self, key: &BudgetKey, amount: f64) -> anyhow::Result<()> {
            *self.used.lock().unwrap().entry(key.clone()).or_default() += amount;
            Ok(())
        }

        async fn prune(&self, day: i64) -> anyhow::Result<()> {
            self.used.lock().unwrap().retain(|key, _| key.day >= day);
            Ok(())
        }
    }

    fn alice() -> Caller {
        Caller::Principal {
            subject: "alice".into(),
            client_id: Some("app".into()),
        }
    }

    #[tokio::test]
    async fn two_replicas_share_a_call_budget_exactly() {
        let store = Arc::new(Shared::default());
        let policy = BudgetPolicy {
            calls_per_day: 120,
            ..BudgetPolicy::default()
        };
        let a = Budgets::new(policy, store.clone());
        let b = Budgets::new(policy, store.clone());
        let mut allowed = 0;
        for n in 0..200 {
            let replica = if n % 3 == 0 { &a } else { &b };
            if let Ok(reservation) = replica.reserve(&alice()).await {
                replica.settle(reservation, 0.0).await;
                allowed += 1;
            }
        }
        // Each replica may hold back at most one chunk it took but did not spend.
        assert!(
            allowed <= 120,
            "never more calls than the budget: {allowed}"
        );
        assert!(allowed >= 120 - 2 * chunk(120.0) as i32, "{allowed}");
        assert!(
            *store.trips.lock().unwrap() <= 120 / chunk(120.0) as u32 + 4,
            "chunks, not a round trip per call, and none once the day's budget is spent"
        );
        let refused = a.reserve(&alice()).await.unwrap_err().unwrap();
        assert_eq!(refused.scope, BudgetScope::Principal);
        assert_eq!(
            refused.resets_at.unix_seconds() % DAY_SECS,
            0,
            "at midnight UTC"
        );
        let bob = Caller::Principal {
            subject: "bob".into(),
            client_id: None,
        };
        assert!(a.reserve(&bob).await.is_ok(), "each principal has its own");
    }

    #[tokio::test]
    async fn credits_are_settled_at_their_real_cost() {
        let store = Arc::new(Shared::default());
        let budgets = Budgets::new(
            BudgetPolicy {
                total_credits_per_day: 10.0,
                ..BudgetPolicy::default()
            },
            store.clone(),
        );
        // Cached answers cost nothing: every estimate comes back.
        for _ in 0..30 {
            let r = budgets.reserve(&alice()).await.unwrap();
            budgets.settle(r, 0.0).await;
        }
        // Calls of 2 credits: five fit in 10.
        let mut paid = 0;
        while let Ok(r) = budgets.reserve(&Caller::Anonymous).await {
            budgets.settle(r, 2.0).await;
            paid += 1;
            assert!(paid < 20, "the budget must run out");
        }
        let spent: f64 = store.used.lock().unwrap().values().sum();
        assert!(
            (10.0..=11.0).contains(&spent),
            "spent {spent}: at most one credit over, the extra of the last call in flight"
        );
        assert_eq!(
            budgets.reserve(&alice()).await.unwrap_err().unwrap().scope,
            BudgetScope::Total
        );
    }

    #[test]
    fn chunks_are_a_fiftieth_within_bounds() {
        assert_eq!(chunk(10.0), 1.0);
        assert_eq!(chunk(1000.0), 20.0);
        assert_eq!(chunk(1e9), 100.0);
    }
}
