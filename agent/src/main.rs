//! `vakt-agent`: probes hosts and services and pushes the results to the Vakt collector.

use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;
use vakt_config::{AgentConfig, LoadError};

mod cli;
use cli::Command;

fn main() -> ExitCode {
    let command = match cli::parse(std::env::args_os().skip(1)) {
        Ok(c) => c,
        Err(cli::Exit::Print(text)) => {
            println!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(cli::Exit::Usage(message)) => {
            // 3, not 2: for `probe`, 2 means "down".
            eprintln!("vakt-agent: {message}\n\n{}", cli::USAGE);
            return ExitCode::from(3);
        }
    };
    match command {
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
        Command::Probe { kind, target, timeout, set, json } => probe_once(&kind, &target, &timeout, &set, json),
        Command::Status { config, behind_after } => status(&config, &behind_after),
        Command::Run { config } => {
            vakt_agent::init_logging();
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

/// What waits in the spool and which checks are cached, read beside a running agent without
/// touching its files. Exit 0, 1 when delivery is behind (Nagios WARNING), 3 when it cannot tell.
fn status(config_path: &std::path::Path, behind_after: &str) -> ExitCode {
    let behind_after = match vakt_config::duration::parse_duration(behind_after) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("vakt-agent: --behind-after {behind_after:?}: {e}");
            return ExitCode::from(3);
        }
    };
    let config = match AgentConfig::load(config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(3);
        }
    };
    let spool = match vakt_agent::spool::summary(&config.spool_dir.join(vakt_agent::spool::DIR)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("vakt-agent: {e}");
            return ExitCode::from(3);
        }
    };
    println!("vakt-agent {} -> {}", config.name.get_ref(), config.collector_urls().join(", "));
    let waited = spool.oldest.and_then(|t| t.elapsed().ok()).unwrap_or_default();
    let behind = spool.batches > 0 && waited > behind_after;
    if spool.batches == 0 {
        println!("  spool     nothing waiting: everything was delivered");
    } else {
        let age = vakt_config::duration::format_duration(std::time::Duration::from_secs(waited.as_secs()));
        println!(
            "  spool     {} batches, {} samples, {} bytes waiting; the oldest for {age}{}",
            spool.batches,
            spool.samples,
            spool.bytes,
            if behind { " (behind: is the collector reachable? see the agent's log)" } else { "" }
        );
    }
    let assigned = vakt_agent::state_dir::cached_assignments(&config.spool_dir).map_or(0, |a| a.checks.len());
    println!("  checks    {assigned} assigned by the collector (cached), {} local", config.checks.len());
    ExitCode::from(u8::from(behind))
}

fn probe_once(kind: &str, target: &str, timeout: &str, set: &[String], json: bool) -> ExitCode {
    let mut source = format!(
        "kind = {}\ntarget = {}\ntimeout = {}\ninterval = {}\n",
        vakt_config::toml_quote(kind),
        vakt_config::toml_quote(target),
        vakt_config::toml_quote(timeout),
        vakt_config::toml_quote(timeout)
    );
    for item in set {
        let Some((key, value)) = item.split_once('=') else {
            eprintln!("--set {item:?}: expected KEY=VALUE, e.g. --set 'expect_status=[200]'");
            return ExitCode::from(3);
        };
        source.push_str(&format!("{} = {}\n", key.trim(), value.trim()));
    }
    let check = match vakt_config::check::parse_check(&source, std::path::Path::new("<probe arguments>"), "probe") {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(3);
        }
    };
    let spec = check.to_spec("probe");
    vakt_agent::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vakt-agent: starting the runtime: {e}");
            return ExitCode::from(3);
        }
    };
    let sample = match runtime.block_on(vakt_agent::probe_once(&spec)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("vakt-agent: {e}");
            return ExitCode::from(3);
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&sample).unwrap_or_default());
    } else {
        let state = if !sample.success {
            "down"
        } else if sample.degraded {
            "degraded"
        } else {
            "up"
        };
        println!("{kind} {target}: {state}");
        if let Some(l) = sample.latency_seconds {
            println!("  latency  {:.1} ms", l * 1000.0);
        }
        if let Some(e) = &sample.error {
            println!("  reason   {e}");
        }
        for (k, v) in &sample.values {
            println!("  {k} = {v}");
        }
    }
    ExitCode::from(if !sample.success {
        2
    } else if sample.degraded {
        1
    } else {
        0
    })
}

fn run(config_path: PathBuf) -> anyhow::Result<()> {
    let config = match AgentConfig::load(&config_path) {
        Ok(c) => c,
        Err(LoadError::Invalid(errors)) => anyhow::bail!("invalid configuration:\n{errors}"),
        Err(e) => return Err(e.into()),
    };
    let token = config.read_token()?;
    // One thread: the agent waits on sockets and timers; a single thread keeps it small.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(vakt_agent_signals(shutdown.clone()));
        let requested = std::sync::Arc::new(tokio::sync::Notify::new());
        tokio::spawn(reload_on_sighup(requested.clone()));
        let reload = vakt_agent::Reload { path: config_path.clone(), requested };
        vakt_agent::run_with_reload(config, token, shutdown, Some(reload)).await
    })?;
    Ok(())
}

/// Asks for a configuration reload on every SIGHUP.
async fn reload_on_sighup(requested: std::sync::Arc<tokio::sync::Notify>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP; reload needs a restart");
        return;
    };
    while hup.recv().await.is_some() {
        tracing::info!("SIGHUP: reloading the configuration");
        requested.notify_one();
    }
}

/// Cancels on SIGTERM or SIGINT.
async fn vakt_agent_signals(shutdown: CancellationToken) {
    vakt_agent::signals::shutdown_signal().await;
    tracing::info!("signal received, shutting down");
    shutdown.cancel();
}
