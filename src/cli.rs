//! The `searchgate` command line: `serve` (the default), `check-config`, `openapi`, `audit`
//! (the audit trail in the terminal), `doctor` (a running server checked as clients see it),
//! `healthcheck` (its liveness, for container health checks), and for the embedded development
//! authorization server `token` and `keys`. The command bodies live in the files under `cli/`.

mod audit;
/// `searchgate doctor URL`: the checks, as a report tests can read.
pub mod doctor;
mod healthcheck;
mod keys;
mod token;

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};

use crate::{
    config::Settings,
    http::{self, openapi},
    startup, telemetry,
};

/// Exit code for a configuration that cannot be used.
pub const EXIT_CONFIG: u8 = 2;

/// searchgate: MCP web search for AI agents, behind OAuth 2.1.
#[derive(Debug, Parser)]
#[command(name = "searchgate", version, about)]
pub struct Cli {
    /// A TOML configuration file (also SEARCHGATE_CONFIG).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Print the effective configuration (secrets redacted); exit 0 when valid, 2 when not.
    CheckConfig,
    /// Print the OpenAPI document of the HTTP surface.
    Openapi,
    /// Print an access token from the embedded authorization server, for curl and scripts.
    Token {
        /// Scopes to grant (repeat the flag or separate with spaces); default: every tool's.
        #[arg(long, value_name = "SCOPE")]
        scope: Vec<String>,
        /// Lifetime: seconds, or a number with s, m, h or d (at most 24h).
        #[arg(long, default_value = "1h", value_parser = parse_ttl)]
        ttl: Duration,
        /// The client id the token names.
        #[arg(long, value_name = "NAME", default_value = "searchgate-cli")]
        client: String,
    },
    /// Manage the embedded authorization server's signing keys.
    Keys {
        /// What to do.
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Read the audit trail from the terminal (one JSON object per line).
    Audit {
        /// What to do.
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Print tool calls, errors and credits per subject, client, backend or tool (the admin
    /// API's `/api/v1/usage` as a table), read from the configured database.
    Usage {
        /// Window start (RFC 3339 or Unix seconds); default 24 hours before the end.
        #[arg(long)]
        since: Option<String>,
        /// Window end (RFC 3339 or Unix seconds); default now.
        #[arg(long)]
        until: Option<String>,
        /// `subject`, `client`, `provider` or `tool`.
        #[arg(long, default_value = "subject")]
        group_by: String,
    },
    /// Connect to a running MCP server as remote clients do and report each step with
    /// PASS/FAIL/WARN/SKIP and the fix for each failure; exit 0 when no step failed, 1 otherwise.
    Doctor {
        /// The MCP endpoint's URL, exactly as clients are given it.
        url: String,
        /// An access token for this resource: also check initialize, tools/list and a search.
        #[arg(long, env = "SEARCHGATE_DOCTOR_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// A token issued for another resource: check that it is refused with 401.
        #[arg(long, value_name = "TOKEN")]
        other_audience_token: Option<String>,
        /// Register a throw-away client ("searchgate doctor (throw-away)") at the registration
        /// endpoint.
        #[arg(long)]
        register: bool,
        /// The browser origin for the CORS checks [default: http://localhost:6274, the MCP
        /// Inspector's].
        #[arg(long)]
        origin: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// GET a running server's /healthz (for container health checks: the image has no curl);
    /// exit 0 on a 2xx answer, 1 otherwise with the reason on stderr.
    Healthcheck {
        /// The URL to GET [default: http://<server.bind>/healthz from the same settings as
        /// `serve`, on loopback when bound to every interface].
        #[arg(long)]
        url: Option<String>,
        /// Seconds to wait for the answer, connecting included.
        #[arg(long, value_name = "SECS", default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=300))]
        timeout: u64,
    },
}

/// `searchgate audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditAction {
    /// Print the events matching the filters, oldest first.
    Query {
        /// The filters.
        #[command(flatten)]
        filters: AuditFilters,
        /// At most this many.
        #[arg(long, default_value_t = 1000)]
        limit: u32,
    },
    /// Print the last events, then (with --follow) new ones as they are written.
    Tail {
        /// The filters.
        #[command(flatten)]
        filters: AuditFilters,
        /// How many past events to print first.
        #[arg(short = 'n', long, default_value_t = 10)]
        lines: u32,
        /// Keep printing new events until interrupted.
        #[arg(short, long)]
        follow: bool,
    },
}

/// The filters of the admin API's `GET /api/v1/audit`.
#[derive(Debug, Clone, clap::Args)]
pub struct AuditFilters {
    /// At or after this time (RFC 3339, or Unix seconds).
    #[arg(long)]
    pub since: Option<String>,
    /// Before this time (RFC 3339, or Unix seconds).
    #[arg(long)]
    pub until: Option<String>,
    /// The caller's subject.
    #[arg(long)]
    pub subject: Option<String>,
    /// The caller's client id.
    #[arg(long)]
    pub client_id: Option<String>,
    /// The tool.
    #[arg(long)]
    pub tool: Option<String>,
    /// The outcome (success, tool_error, protocol_error, rejected, unauthenticated, forbidden,
    /// failed).
    #[arg(long)]
    pub outcome: Option<String>,
}

/// `searchgate keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// List the keys and their state.
    List,
    /// Make a new signing key; the old one stays published until its tokens expire.
    Rotate,
    /// Withdraw a key now: tokens it signed are refused from then on.
    Retire {
        /// The key id (see `searchgate keys list`); older ids may start with `-`.
        #[arg(allow_hyphen_values = true)]
        kid: String,
    },
}

/// Reads `90`, `90s`, `15m`, `1h` or `1d`; between 1 second and 24 hours.
fn parse_ttl(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, "s"),
    };
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 3600, 90m or 1h"))?;
    let seconds = match unit {
        "s" => number,
        "m" => number.saturating_mul(60),
        "h" => number.saturating_mul(3600),
        "d" => number.saturating_mul(86_400),
        _ => return Err(format!("{text:?}: the unit must be s, m, h or d")),
    };
    if !(1..=86_400).contains(&seconds) {
        return Err(format!("{text:?}: the lifetime must be between 1s and 24h"));
    }
    Ok(Duration::from_secs(seconds))
}

impl Cli {
    /// Runs the chosen command and returns the process exit code.
    pub async fn run(self) -> ExitCode {
        match self.command.unwrap_or(Command::Serve) {
            Command::Openapi => {
                println!("{}", openapi::document_json());
                ExitCode::SUCCESS
            }
            Command::CheckConfig => match load(self.config) {
                Ok(settings) => check_config(&settings).await,
                Err(code) => code,
            },
            Command::Serve => match load(self.config) {
                Ok(settings) => serve(settings).await,
                Err(code) => code,
            },
            Command::Token { scope, ttl, client } => match load(self.config) {
                Ok(settings) => report(token::run(&settings, &scope, ttl, &client).await),
                Err(code) => code,
            },
            Command::Keys { action } => match load(self.config) {
                Ok(settings) => report(keys::run(&settings, action).await),
                Err(code) => code,
            },
            Command::Audit { action } => match load(self.config) {
                Ok(settings) => report(audit::run(&settings, action).await),
                Err(code) => code,
            },
            Command::Usage {
                since,
                until,
                group_by,
            } => match load(self.config) {
                Ok(settings) => report(
                    audit::usage(&settings, since.as_deref(), until.as_deref(), &group_by).await,
                ),
                Err(code) => code,
            },
            // A client's view of a server: no configuration of this machine is read.
            Command::Doctor {
                url,
                token,
                other_audience_token,
                register,
                origin,
                json,
            } => {
                let options = doctor::Options {
                    url,
                    token,
                    other_audience_token,
                    register,
                    origin,
                };
                doctor::run(options, json).await
            }
            // Exit 1 for every failure, a configuration that cannot be read included: Docker
            // reserves 2.
            Command::Healthcheck { url, timeout } => {
                healthcheck::run(url, self.config, Duration::from_secs(timeout)).await
            }
        }
    }
}

/// The exit code for a command's outcome: 0, 2 for configuration problems, 1 otherwise.
fn report(outcome: Result<(), startup::StartupError>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(startup::StartupError::Config(error)) => {
            eprintln!("searchgate: {error}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(error) => {
            eprintln!("searchgate: {error}");
            ExitCode::FAILURE
        }
    }
}

fn load(config: Option<PathBuf>) -> Result<Settings, ExitCode> {
    Settings::load(config).map_err(|error| {
        eprintln!("searchgate: {error}");
        ExitCode::from(EXIT_CONFIG)
    })
}

/// Prints the effective configuration, then what probing the identity provider and the search
/// backend found. Exit 0 when all is well, 1 when a probe failed (the configuration is valid but
/// the IdP or the search key is not usable as configured).
async fn check_config(settings: &Settings) -> ExitCode {
    let providers = match settings.validate() {
        Ok(providers) => providers,
        Err(error) => {
            eprintln!("searchgate: {error}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let mut shown = settings.resolved(settings.server.bind);
    shown.database.url = crate::adapters::store::redact_url(&shown.database.url);
    match toml::to_string_pretty(&shown) {
        Ok(text) => println!("{text}"),
        Err(error) => {
            eprintln!("searchgate: cannot print the configuration: {error}");
            return ExitCode::FAILURE;
        }
    }
    let mut failed = false;
    for (title, findings) in [
        (
            "Identity provider",
            startup::probe_auth(settings, &providers.auth).await,
        ),
        (
            "Search backend",
            startup::probe_search(settings, &providers.search).await,
        ),
    ] {
        println!("# {title}");
        for finding in &findings {
            match &finding.result {
                Ok(found) => println!("# ok      {}: {found}", finding.check),
                Err(problem) => {
                    failed = true;
                    println!("# PROBLEM {}: {problem}", finding.check);
                }
            }
        }
    }
    if let Some(lines) = tls_report(settings, chrono::Utc::now().timestamp()) {
        println!("# TLS certificate");
        for line in lines {
            failed |= line.starts_with("PROBLEM");
            println!("# {line}");
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Days before expiry from which `check-config` warns (certbot renews at 30).
const EXPIRY_WARNING_DAYS: i64 = 14;

/// What `check-config` says about the TLS certificate, one line each (`ok`, `WARNING`,
/// `PROBLEM`); `None` when TLS is off.
fn tls_report(settings: &Settings, now: i64) -> Option<Vec<String>> {
    let (cert, key) = settings.server.tls.files()?;
    let files = http::tls::CertificateFiles {
        cert: cert.to_owned(),
        key: key.to_owned(),
    };
    let certificate = match files
        .load(&http::tls::provider())
        .map(|(certificate, _)| certificate)
    {
        Ok(certificate) => certificate,
        Err(why) => return Some(vec![format!("PROBLEM files: {why}")]),
    };
    let info = certificate.info;
    let days = info.days_left(now);
    let expiry = format!(
        "expires: {} (in {days} days)",
        http::tls::rfc3339(info.not_after)
    );
    let mut lines = vec![
        format!("ok      files: {} and {}", cert.display(), key.display()),
        format!("ok      subject: {}", info.subject),
        format!("ok      names: {}", info.names.join(", ")),
        if days < EXPIRY_WARNING_DAYS {
            format!("WARNING {expiry}: renew it")
        } else {
            format!("ok      {expiry}")
        },
    ];
    let public_url = settings.server.public_url_or(settings.server.bind);
    if let Some(host) = public_url.host_str() {
        lines.push(if info.covers(host) {
            format!("ok      matches the public URL's host {host}")
        } else {
            format!(
                "PROBLEM the public URL's host {host} is not among the certificate's names: \
                 clients will refuse it; get a certificate for {host} or fix server.public_url"
            )
        });
    }
    Some(lines)
}

async fn serve(settings: Settings) -> ExitCode {
    let tracing = telemetry::init(&settings.telemetry);
    let served = startup::serve(settings).await;
    // After the server and the audit writer stopped: their last spans go out too.
    tracing.shutdown().await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(startup::StartupError::Config(error)) => {
            eprintln!("searchgate: {error}");
            ExitCode::from(EXIT_CONFIG)
        }
        Err(error) => {
            tracing::error!(error = %error, "searchgate stopped");
            eprintln!("searchgate: {error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn check_config_warns_two_weeks_before_the_certificate_expires() {
        let dir = tempfile::tempdir().unwrap();
        let params = rcgen::CertificateParams::new(vec!["search.example.com".to_owned()]).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.path().join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).unwrap();
        let mut settings = Settings::default();
        settings.server.public_url = Some("https://search.example.com".parse().unwrap());
        settings.server.tls.cert_path = Some(dir.path().join("cert.pem"));
        settings.server.tls.key_path = Some(dir.path().join("key.pem"));
        // rcgen's certificates are valid until 4096-01-01.
        let not_after = chrono::DateTime::parse_from_rfc3339("4096-01-01T00:00:00Z")
            .unwrap()
            .timestamp();
        let report = |days: i64| tls_report(&settings, not_after - days * 86_400).unwrap();
        let early = report(30);
        assert!(
            early
                .iter()
                .any(|l| l.starts_with("ok      expires: 4096-01-01")),
            "{early:?}"
        );
        assert!(
            early
                .iter()
                .any(|l| l.contains("matches the public URL's host")),
            "{early:?}"
        );
        let late = report(13);
        assert!(
            late.iter()
                .any(|l| l.starts_with("WARNING expires") && l.contains("in 13 days")),
            "{late:?}"
        );
        assert!(
            late.iter().all(|l| !l.starts_with("PROBLEM")),
            "a warning, not a failure"
        );
    }

    #[test]
    fn a_key_id_starting_with_a_hyphen_is_a_key_id() {
        let cli = Cli::try_parse_from(["searchgate", "keys", "retire", "-UJpP5tlA2fE3_uY"])
            .expect("parses");
        match cli.command {
            Some(Command::Keys {
                action: KeysAction::Retire { kid },
            }) => assert_eq!(kid, "-UJpP5tlA2fE3_uY"),
            other => panic!("{other:?}"),
        }
    }
}
