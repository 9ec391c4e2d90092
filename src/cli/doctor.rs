//! `searchgate doctor URL`: connects to a running MCP server the way remote clients do (401
//! challenge, protected-resource metadata, authorization-server discovery, CORS, TLS, and with a
//! token a tool call) and reports each step as pass, fail, warn or skip, with the fix for every
//! failure. [`diagnose`] returns the structured [`Report`]; [`run`] prints it as text or JSON.
//! The steps live in the files under `doctor/`, in the order clients take them.

mod browser;
mod challenge;
mod endpoints;
mod metadata;
mod session;
mod wire;

use std::{fmt, process::ExitCode};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use crate::adapters::http_client;

/// The origin checked when `--origin` is not given: the MCP Inspector's.
pub const INSPECTOR_ORIGIN: &str = "http://localhost:6274";

/// What to check and how.
#[derive(Clone, Default)]
pub struct Options {
    /// The MCP endpoint's URL, exactly as clients are given it.
    pub url: String,
    /// An access token for this resource: enables the authenticated steps.
    pub token: Option<String>,
    /// An access token issued for another resource, which must be refused.
    pub other_audience_token: Option<String>,
    /// Whether to register a throw-away client at the registration endpoint.
    pub register: bool,
    /// The browser origin for the CORS steps; the MCP Inspector's when `None`.
    pub origin: Option<String>,
}

// Tokens stay out of debug output.
impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("url", &self.url)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field(
                "other_audience_token",
                &self.other_audience_token.as_ref().map(|_| "[redacted]"),
            )
            .field("register", &self.register)
            .field("origin", &self.origin)
            .finish()
    }
}

/// The outcome of one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The step passed.
    Pass,
    /// A required step failed: the exit code is 1.
    Fail,
    /// Something clients may trip over, which does not fail the run.
    Warn,
    /// The step does not apply (or was not asked for).
    Skip,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Pass => "PASS",
            Self::Fail => "FAIL",
            Self::Warn => "WARN",
            Self::Skip => "SKIP",
        })
    }
}

/// One step of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// A stable identifier, such as `challenge-legacy`.
    pub step: String,
    /// The outcome.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// For a failure or warning: what to change, in one sentence.
    pub fix: Option<String>,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The URL checked, as given.
    pub url: String,
    /// Whether no step failed.
    pub passed: bool,
    /// The steps, in the order they ran.
    pub steps: Vec<Step>,
}

impl Report {
    /// The step named `step`, if it ran.
    pub fn step(&self, step: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.step == step)
    }

    /// The report as text: one line per step, its fix under it, and a verdict.
    pub fn text(&self) -> String {
        let mut out = format!("searchgate doctor {}\n", self.url);
        for step in &self.steps {
            out.push_str(&format!("{} {}: {}\n", step.status, step.step, step.detail));
            if let Some(fix) = &step.fix {
                out.push_str(&format!("     fix: {fix}\n"));
            }
        }
        let count = |status| self.steps.iter().filter(|s| s.status == status).count();
        let verdict = if self.passed { "PASSED" } else { "FAILED" };
        out.push_str(&format!(
            "{verdict}: {} passed, {} failed, {} warnings, {} skipped\n",
            count(Status::Pass),
            count(Status::Fail),
            count(Status::Warn),
            count(Status::Skip)
        ));
        out
    }
}

/// Runs every step against `options.url` and returns the report. Never fails: what goes wrong
/// is a failed step.
pub async fn diagnose(options: &Options) -> Report {
    let given = options.url.trim().to_owned();
    let url = match Url::parse(&given) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => url,
        _ => {
            return finish(
                given.clone(),
                vec![Step::fail(
                    "url",
                    format!("{given:?} is not an absolute http or https URL"),
                    "Give the MCP endpoint's full URL, such as https://search.example.com/web-search/mcp.",
                )],
            );
        }
    };
    let mut doctor = Doctor {
        options,
        given: given.clone(),
        url,
        http: http_client::outbound(),
        steps: Vec::new(),
        resource_metadata_url: None,
        authorization_server: None,
        as_metadata: None,
    };
    doctor.challenges().await;
    doctor.resource_metadata().await;
    doctor.authorization_server().await;
    doctor.cors().await;
    doctor.transport_security().await;
    doctor.authenticated().await;
    doctor.other_audience().await;
    doctor.registration().await;
    finish(given, doctor.steps)
}

fn finish(url: String, steps: Vec<Step>) -> Report {
    let passed = steps.iter().all(|s| s.status != Status::Fail);
    Report { url, passed, steps }
}

/// Runs the doctor and prints the report (text, or JSON with `json`); exit 0 when no required
/// step failed, 1 otherwise.
pub async fn run(options: Options, json: bool) -> ExitCode {
    let report = diagnose(&options).await;
    if json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(error) => {
                eprintln!("searchgate: cannot print the report: {error}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", report.text());
    }
    if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

impl Step {
    fn pass(step: &str, detail: impl Into<String>) -> Self {
        Self::new(step, Status::Pass, detail.into(), None)
    }

    fn fail(step: &str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(step, Status::Fail, detail.into(), Some(fix.into()))
    }

    fn warn(step: &str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(step, Status::Warn, detail.into(), Some(fix.into()))
    }

    fn skip(step: &str, detail: impl Into<String>) -> Self {
        Self::new(step, Status::Skip, detail.into(), None)
    }

    fn new(step: &str, status: Status, detail: String, fix: Option<String>) -> Self {
        Self {
            step: step.to_owned(),
            status,
            detail,
            fix,
        }
    }
}

/// The state the steps share: what earlier steps found is what later ones start from, as in a
/// client.
struct Doctor<'a> {
    options: &'a Options,
    /// The URL exactly as given (the resource must equal it).
    given: String,
    url: Url,
    http: reqwest::Client,
    steps: Vec<Step>,
    /// From the 401 challenge.
    resource_metadata_url: Option<String>,
    /// The first entry of the resource metadata's `authorization_servers`.
    authorization_server: Option<String>,
    /// The authorization server's metadata, once found.
    as_metadata: Option<Value>,
}

impl Doctor<'_> {
    fn push(&mut self, step: Step) {
        self.steps.push(step);
    }

    /// A string member of the authorization server's metadata.
    fn as_field(&self, name: &str) -> Option<String> {
        self.as_metadata
            .as_ref()
            .and_then(|m| m.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    /// Whether the URL's host is a loopback name or address.
    fn is_loopback(&self) -> bool {
        match self.url.host() {
            Some(url::Host::Domain(name)) => {
                name.eq_ignore_ascii_case("localhost") || name.ends_with(".localhost")
            }
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warning_or_skip_does_not_fail_the_report_but_a_failure_does() {
        let warned = finish(
            "u".into(),
            vec![
                Step::pass("a", "ok"),
                Step::warn("b", "w", "f"),
                Step::skip("c", "s"),
            ],
        );
        assert!(warned.passed, "warnings and skips are not failures");
        let failed = finish(
            "u".into(),
            vec![Step::pass("a", "ok"), Step::fail("b", "x", "f")],
        );
        assert!(!failed.passed, "one failure fails the report");
        assert!(
            failed.text().contains("FAIL b: x\n     fix: f\n"),
            "the fix is printed under its step: {}",
            failed.text()
        );
    }

    #[tokio::test]
    async fn a_url_that_is_not_http_fails_at_once() {
        let report = diagnose(&Options {
            url: "ftp://example.com/mcp".into(),
            ..Options::default()
        })
        .await;
        assert!(!report.passed);
        assert_eq!(report.steps.len(), 1, "nothing else is tried");
        assert_eq!(report.steps[0].step, "url");
    }

    #[test]
    fn tokens_are_not_in_debug_output() {
        let options = Options {
            token: Some("secret-token".into()),
            ..Options::default()
        };
        assert!(!format!("{options:?}").contains("secret-token"));
    }
}
