//! The command line: `serve` (the default), `migrate`, `agent add`.

use std::io::Read;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::{
    app,
    config::{self, Config, LineMode, LogFormat, ServeArgs, StoreArgs},
    password,
    store::{self, agents},
};

#[derive(Parser, Debug)]
#[command(
    name = "linechat",
    version,
    about = "Customer-service live chat for LINE Official Accounts",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// `serve`'s flags, so plain `linechat` serves.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve the webhook, the agent desk and the workers (the default).
    Serve(Box<ServeArgs>),
    /// Apply database migrations and exit.
    Migrate(StoreArgs),
    /// Manage agents.
    #[command(subcommand)]
    Agent(AgentCommand),
}

#[derive(Subcommand, Debug)]
pub enum AgentCommand {
    /// Add an agent; the password is read from standard input.
    Add {
        name: String,
        /// The name shown to other agents (default: the username).
        #[arg(long)]
        display_name: Option<String>,
        /// Make the agent an admin (manages agents and settings).
        #[arg(long)]
        admin: bool,
        /// Read the password from standard input (required, so it never shows in `ps`).
        #[arg(long, required = true)]
        password_stdin: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => serve(cli.serve).await,
        Some(Command::Serve(args)) => serve(*args).await,
        Some(Command::Migrate(store_args)) => {
            init_tracing(LogFormat::Pretty);
            let url = config::database_url(&store_args)?;
            let pool = store::connect(&url, &store_args.data_dir).await?;
            store::migrate(&pool).await?;
            println!("migrations applied");
            Ok(())
        }
        Some(Command::Agent(AgentCommand::Add {
            name,
            display_name,
            admin,
            password_stdin: _,
            store: store_args,
        })) => {
            let display_name = display_name.as_deref().unwrap_or(&name);
            add_agent((&name, display_name), admin, &store_args).await
        }
    }
}

/// Connections the kernel may queue before linechat accepts them. The usual 128 (1,024 in
/// tokio) drops most of a burst of agents reconnecting at once after a restart or a network
/// blip; the kernel caps this at `net.core.somaxconn` (4,096 on current Linux).
const LISTEN_BACKLOG: u32 = 65_535;

fn listen(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // A restart must not wait for the old process's connections to leave TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::from_args(args)?;
    init_tracing(config.log_format);
    let listener =
        listen(config.addr).with_context(|| format!("cannot listen on {}", config.addr))?;
    let addr = listener.local_addr()?;
    let sandbox = matches!(config.line, LineMode::Sandbox);
    let state = app::build(config).await?;
    tracing::info!(
        %addr,
        bus = state.bus.kind(),
        mode = if sandbox { "sandbox" } else { "live" },
        "linechat is listening; give LINE the webhook URL https://<your host>/line/webhook"
    );
    if sandbox {
        // Say where to click: the desk, and the simulator to chat with it as a customer.
        tracing::info!(
            "sandbox mode (no LINE credentials): open http://{addr}/ for the desk and \
             http://{addr}/sandbox to write to it as a simulated LINE customer"
        );
    }
    let token = state.workers.shutdown.clone();
    tokio::spawn(async move {
        app::shutdown_signal().await;
        token.cancel();
    });
    app::run(state, listener).await
}

async fn add_agent(
    (name, display_name): (&str, &str),
    admin: bool,
    store_args: &StoreArgs,
) -> anyhow::Result<()> {
    let (name, display_name) = (name.trim(), display_name.trim());
    if !agents::valid_username(name) {
        bail!(
            "the username must be 2 to 32 lowercase letters, digits, dots, dashes or underscores"
        );
    }
    if !agents::valid_display_name(display_name) {
        bail!("the display name must be 1 to 50 characters with no control characters");
    }
    let mut input = String::new();
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut input)
        .context("reading the password from standard input")?;
    let password = input.lines().next().unwrap_or("").to_owned();
    let hash = password::hash_async(password).await?;
    let url = config::database_url(store_args)?;
    let pool = store::connect(&url, &store_args.data_dir).await?;
    store::migrate(&pool).await?;
    let role = if admin {
        agents::Role::Admin
    } else {
        agents::Role::Agent
    };
    agents::create_named(&pool, name, display_name, &hash, role).await?;
    println!("agent {name} added ({})", role.as_str());
    Ok(())
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    // try_init: tests may start several apps in one process.
    let _ = match format {
        LogFormat::Json => registry.with(fmt::layer().json()).try_init(),
        LogFormat::Pretty => registry.with(fmt::layer()).try_init(),
    };
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// Every environment variable the binary reads (as clap knows them), plus RUST_LOG.
    fn variables() -> Vec<String> {
        let mut vars: Vec<String> = Cli::command()
            .get_arguments()
            .filter_map(|a| a.get_env())
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        vars.push("RUST_LOG".to_owned());
        vars.sort();
        vars.dedup();
        vars
    }

    #[test]
    fn every_variable_is_documented_in_the_readme_and_env_example() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
        let example = std::fs::read_to_string(root.join("deploy/.env.example")).unwrap();
        let vars = variables();
        assert!(vars.len() >= 15, "{vars:?}");
        for var in vars {
            assert!(
                readme.contains(&format!("`{var}`")),
                "README's table lacks {var}"
            );
            assert!(example.contains(&var), "deploy/.env.example lacks {var}");
        }
    }
}
