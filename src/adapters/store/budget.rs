//! Budget counters (`budget_counters`): one row per counter and UTC day, taken from in one
//! statement each time so replicas sharing the database share the budget.

use async_trait::async_trait;

use super::{
    SqlStore,
    dialect::{Driver, On},
    statement::Statement,
};
use crate::domain::budget::{BudgetKey, BudgetStore, Taken};

#[async_trait]
impl<D: Driver> BudgetStore for SqlStore<D> {
    async fn take(&self, key: &BudgetKey, want: f64, limit: f64) -> anyhow::Result<Taken> {
        let statement = Statement::new(
            D::TAKE_BUDGET,
            [
                key.scope.as_str().into(),
                key.day.into(),
                want.into(),
                limit.into(),
            ],
        );
        let row = D::fetch_optional(On::Pool(&self.pool), statement)
            .await?
            .ok_or_else(|| anyhow::anyhow!("taking from a budget returned no row"))?;
        Ok(Taken {
            granted: D::opt_real(&row, "granted")?.unwrap_or(0.0).max(0.0),
            used: D::opt_real(&row, "used")?.unwrap_or(0.0),
        })
    }

    async fn add(&self, key: &BudgetKey, amount: f64) -> anyhow::Result<()> {
        let statement = Statement::new(
            "INSERT INTO budget_counters (scope, day, used, granted) VALUES ($1, $2, $3, 0.0) \
             ON CONFLICT (scope, day) DO UPDATE SET used = budget_counters.used + $3",
            [key.scope.as_str().into(), key.day.into(), amount.into()],
        );
        D::execute(On::Pool(&self.pool), statement).await?;
        Ok(())
    }

    async fn prune(&self, day: i64) -> anyhow::Result<()> {
        let statement = Statement::new("DELETE FROM budget_counters WHERE day < $1", [day.into()]);
        D::execute(On::Pool(&self.pool), statement).await?;
        Ok(())
    }
}
