//! The `linechat` binary: parse the command line, then hand over to the library.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = linechat::cli::Cli::parse();
    match linechat::cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, with its causes, and no backtrace: this is for an operator.
            eprintln!("linechat: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
