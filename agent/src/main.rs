//! `vakt-agent`: probes hosts and services and pushes the results to the Vakt collector.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;
use vakt_config::{AgentConfig, LoadError};

#[derive(Parser)]
#[command(
    name = "vakt-agent",
    version,
    about = "Vakt agent: probes hosts and services, pushes samples to the collector"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent.
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a config file: exit 0, or print every problem as file:line:col and exit 1.
    CheckConfig { file: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { file } => match AgentConfig::load(&file) {
            Ok(cfg) => {
                println!("{}: ok ({} local checks)", file.display(), cfg.checks.len());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Command::Run { config } => {
            init_tracing();
            match run(config) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("vakt-agent: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VAKT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

fn run(config_path: PathBuf) -> anyhow::Result<()> {
    let config = match AgentConfig::load(&config_path) {
        Ok(c) => c,
        Err(LoadError::Invalid(errors)) => anyhow::bail!("invalid configuration:\n{errors}"),
        Err(e) => return Err(e.into()),
    };
    let token = config.read_token()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(vakt_agent_signals(shutdown.clone()));
        vakt_agent::run(config, token, shutdown).await
    })?;
    Ok(())
}

/// Cancels on SIGTERM or SIGINT.
async fn vakt_agent_signals(shutdown: CancellationToken) {
    vakt_agent::signals::shutdown_signal().await;
    tracing::info!("signal received, shutting down");
    shutdown.cancel();
}
