//! The `searchgate` command line: `serve` (the default), `check-config` and `openapi`.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

use crate::{config::Settings, http::openapi, startup, telemetry};

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
    match toml::to_string_pretty(&settings.resolved(settings.server.bind)) {
        Ok(text) => println!("{text}"),
        Err(error) => {
            eprintln!("searchgate: cannot print the configuration: {error}");
            return ExitCode::FAILURE;
        }
    }
    let mut failed = false;
    for (title, findings) in [
        ("Identity provider", startup::probe_auth(settings).await),
        ("Search backend", startup::probe_search(settings).await),
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
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

async fn serve(settings: Settings) -> ExitCode {
    telemetry::init(&settings.telemetry);
    match startup::serve(settings).await {
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
