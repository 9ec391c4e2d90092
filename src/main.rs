//! The `searchgate` binary: read `.env`, parse the command line, run.

use std::process::ExitCode;

use clap::Parser;
use searchgate::cli::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    // A missing .env is normal; a malformed one is worth saying.
    if let Err(error) = dotenvy::dotenv()
        && !error.not_found()
    {
        eprintln!("searchgate: ignoring .env: {error}");
    }
    Cli::parse().run().await
}
