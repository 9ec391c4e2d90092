//! What `web_crawl` and `web_map` share: the scope arguments (where to start, how far to go,
//! which paths and domains) and progress notifications while a long call runs.

use std::{future::Future, time::Duration};

use rmcp::{
    Peer, RoleServer,
    model::{ProgressNotificationParam, ProgressToken},
};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::domain::search::{InvalidInput, SiteScope};

/// How often progress is reported while waiting on the backend.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// The scope arguments, flattened into both tools' arguments.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ScopeArgs {
    /// The page to start from, an absolute http(s) URL such as "https://docs.rs/tokio".
    #[schemars(length(min = 1, max = 2048))]
    pub url: String,
    /// How many links deep to go from the start page, from 1 (the default; only pages linked
    /// from it) to 5. Each level multiplies the time taken.
    #[serde(default)]
    #[schemars(with = "i64", range(min = 1, max = 5))]
    pub max_depth: Option<i64>,
    /// How many links to follow from each page, from 1 to 500 (default 20).
    #[serde(default)]
    #[schemars(with = "i64", range(min = 1, max = 500))]
    pub max_breadth: Option<i64>,
    /// The most pages to visit in all, from 1 to 500 (default 50).
    #[serde(default)]
    #[schemars(with = "i64", range(min = 1, max = 500))]
    pub limit: Option<i64>,
    /// Which pages you want, in plain words, such as "pages about authentication" (the backend
    /// then picks links accordingly; this costs more).
    #[serde(default)]
    #[schemars(with = "String", length(min = 1, max = 400))]
    pub instructions: Option<String>,
    /// Only visit paths matching these regular expressions, such as ["/docs/.*"].
    #[serde(default)]
    #[schemars(with = "Vec<String>", length(max = 50))]
    pub select_paths: Option<Vec<String>>,
    /// Only visit domains matching these regular expressions, such as ["^docs\\.example\\.com$"].
    #[serde(default)]
    #[schemars(with = "Vec<String>", length(max = 50))]
    pub select_domains: Option<Vec<String>>,
    /// Skip paths matching these regular expressions, such as ["/blog/.*"].
    #[serde(default)]
    #[schemars(with = "Vec<String>", length(max = 50))]
    pub exclude_paths: Option<Vec<String>>,
    /// Skip domains matching these regular expressions.
    #[serde(default)]
    #[schemars(with = "Vec<String>", length(max = 50))]
    pub exclude_domains: Option<Vec<String>>,
    /// Whether to follow links to other domains (the default is true).
    #[serde(default)]
    #[schemars(with = "bool")]
    pub allow_external: Option<bool>,
    /// Seconds the backend may spend, from 10 to 150. Leave it out normally.
    #[serde(default)]
    #[schemars(with = "i64", range(min = 10, max = 150))]
    pub timeout: Option<i64>,
}

/// The scope argument names.
pub const SCOPE_FIELDS: &[&str] = &[
    "url",
    "max_depth",
    "max_breadth",
    "limit",
    "instructions",
    "select_paths",
    "select_domains",
    "exclude_paths",
    "exclude_domains",
    "allow_external",
    "timeout",
];

impl ScopeArgs {
    /// The validated scope.
    ///
    /// # Errors
    /// [`InvalidInput`] naming the first argument that breaks a rule.
    pub fn into_scope(self) -> Result<SiteScope, InvalidInput> {
        let mut scope = SiteScope::new(&self.url)?;
        if let Some(n) = self.max_depth {
            scope = scope.with_max_depth(n)?;
        }
        if let Some(n) = self.max_breadth {
            scope = scope.with_max_breadth(n)?;
        }
        if let Some(n) = self.limit {
            scope = scope.with_limit(n)?;
        }
        if let Some(text) = self.instructions {
            scope = scope.with_instructions(&text)?;
        }
        if let Some(list) = self.select_paths {
            scope = scope.with_select_paths(&list)?;
        }
        if let Some(list) = self.select_domains {
            scope = scope.with_select_domains(&list)?;
        }
        if let Some(list) = self.exclude_paths {
            scope = scope.with_exclude_paths(&list)?;
        }
        if let Some(list) = self.exclude_domains {
            scope = scope.with_exclude_domains(&list)?;
        }
        if let Some(allow) = self.allow_external {
            scope = scope.with_allow_external(allow);
        }
        if let Some(secs) = self.timeout {
            scope = scope.with_timeout_secs(secs)?;
        }
        Ok(scope)
    }
}

/// Where to send `notifications/progress` for one request: present only when the client sent
/// a progress token (MCP: progress is opt-in per request).
pub struct Progress {
    peer: Peer<RoleServer>,
    token: ProgressToken,
    sent: u32,
}

impl Progress {
    /// Progress for a request whose `_meta` carried `token`.
    pub fn new(peer: Peer<RoleServer>, token: ProgressToken) -> Self {
        Self {
            peer,
            token,
            sent: 0,
        }
    }

    async fn notify(&mut self, message: String) {
        // MCP: `progress` must increase with every notification.
        self.sent += 1;
        let param = ProgressNotificationParam::new(self.token.clone(), f64::from(self.sent))
            .with_message(message);
        if let Err(error) = self.peer.notify_progress(param).await {
            tracing::debug!(error = %error, "cannot send a progress notification");
        }
    }
}

/// Awaits `work`, reporting start, a heartbeat every few seconds, and the end (described by
/// `done`) when `progress` is present.
pub async fn with_progress<T>(
    progress: Option<Progress>,
    what: &str,
    work: impl Future<Output = T>,
    done: impl FnOnce(&T) -> String,
) -> T {
    let Some(mut progress) = progress else {
        return work.await;
    };
    progress.notify(format!("{what} started")).await;
    let mut heartbeat = tokio::time::interval(PROGRESS_EVERY);
    heartbeat.tick().await;
    let started = tokio::time::Instant::now();
    tokio::pin!(work);
    let output = loop {
        tokio::select! {
            output = &mut work => break output,
            _ = heartbeat.tick() => {
                let secs = started.elapsed().as_secs();
                progress.notify(format!("{what} running for {secs} s")).await;
            }
        }
    };
    progress.notify(done(&output)).await;
    output
}
