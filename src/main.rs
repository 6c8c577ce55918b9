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

/// jemalloc rather than the system's allocator: at full ingest speed malloc and free were
/// ~14 % of the server's CPU, and glibc kept what a burst had freed (the 8 sign-ins of a
/// benchmark, each hashing in 19 MiB, left 74 MB resident; jemalloc gives it back). Measured
/// in docs/BENCHMARKS.md.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
