//! The command line of the `vakt-collector` binary: its subcommands and what each does with
//! the library. Compiled into the binary only (`main.rs` parses and dispatches).

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use tokio_util::sync::CancellationToken;
use vakt_collector::auth::{generate_token, hash_token};
use vakt_config::{CollectorConfig, LoadError};

#[derive(Parser)]
#[command(
    name = "vakt-collector",
    version,
    about = "Vakt collector: samples in, check states, incidents and metrics out"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Run the collector.
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a config file: exit 0, or print every problem as file:line:col and exit 1.
    CheckConfig { file: PathBuf },
    /// Make an agent token: without arguments, a new random token and its hash; with --stdin,
    /// the hash of the token read from standard input.
    HashToken {
        #[arg(long)]
        stdin: bool,
    },
    /// Print an SLA report for a calendar period from the collector's database.
    Report {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long, group = "scope")]
        service: Option<String>,
        #[arg(long, group = "scope")]
        customer: Option<String>,
        #[arg(long, group = "scope")]
        vendor: Option<String>,
        /// "2026-10" (a month) or "2026-Q4" (a quarter).
        #[arg(long)]
        period: String,
        /// json, csv or html.
        #[arg(long, default_value = "json")]
        format: String,
        /// IANA time zone the period is in (default: the SLOs' own).
        #[arg(long)]
        timezone: Option<String>,
    },
    /// Plan a one-off maintenance window (written to the collector's database; a running
    /// collector sees it at once).
    Maintenance(MaintenanceArgs),
    /// Tell customers: write a status page post, add an update, list posts (written to the
    /// collector's database; a running collector shows it and tells its subscribers).
    #[command(subcommand)]
    StatusPost(StatusPostCommand),
    /// Copy the collector's database to FILE, safely while it runs (a consistent, checked
    /// snapshot). Restore: stop the collector, put FILE in data_dir as vakt.db, start it.
    Backup {
        #[arg(long, short)]
        config: PathBuf,
        /// A new file; an existing one is never overwritten.
        file: PathBuf,
    },
    /// Move the collector's data between stores.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Send a test message to a receiver and report the outcome.
    NotifyTest {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long)]
        receiver: String,
    },
    /// Run a collector and an agent watching it, on a built-in config. Nothing to set up.
    Quickstart {
        #[arg(long, default_value = vakt_config::collector::DEFAULT_LISTEN)]
        listen: SocketAddr,
        #[arg(long, default_value = "vakt-data")]
        data_dir: PathBuf,
    },
}

#[derive(Subcommand)]
pub(crate) enum StatusPostCommand {
    /// A new post with its first update.
    New {
        #[arg(long, short)]
        config: PathBuf,
        /// The title customers read (default: from the template, or "Problems with SERVICES").
        #[arg(long, default_value = "")]
        title: String,
        /// Affected services (repeatable).
        #[arg(long = "service")]
        services: Vec<String>,
        /// degraded, partial_outage or major_outage.
        #[arg(long)]
        impact: Option<String>,
        /// investigating (default), identified, monitoring or resolved.
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value = "")]
        message: String,
        /// A [status_templates.NAME] for the words.
        #[arg(long)]
        template: Option<String>,
        /// Prefill from this incident (its services and start).
        #[arg(long)]
        incident: Option<i64>,
    },
    /// An update to post ID.
    Update {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long)]
        id: i64,
        #[arg(long)]
        status: String,
        #[arg(long, default_value = "")]
        message: String,
        #[arg(long)]
        template: Option<String>,
        /// With --status resolved: resolve the post's incident too.
        #[arg(long)]
        resolve_incident: bool,
    },
    /// The posts, newest first.
    List {
        #[arg(long, short)]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
pub(crate) enum StoreCommand {
    /// Copy every sample, state, incident and notification from a SQLite data directory into
    /// an empty PostgreSQL database, in one transaction. Stop the collector first.
    Copy {
        /// `sqlite:DATA_DIR` (the directory holding vakt.db, or the file itself).
        #[arg(long)]
        from: String,
        /// `postgres:URL` (postgres://user@host:5432/db), or `postgres:env:NAME` to read the URL
        /// from an environment variable (keeps a password out of the process list).
        #[arg(long)]
        to: String,
    },
}

pub(crate) fn store_command(command: StoreCommand) -> anyhow::Result<()> {
    let StoreCommand::Copy { from, to } = command;
    let Some(from) = from.strip_prefix("sqlite:") else {
        anyhow::bail!("--from is sqlite:DATA_DIR (e.g. sqlite:/var/lib/vakt)");
    };
    let mut dir = PathBuf::from(from);
    if dir.is_file() {
        dir = dir.parent().map(PathBuf::from).unwrap_or_default();
    }
    let url = match to.strip_prefix("postgres:") {
        Some(rest) => match rest.strip_prefix("env:") {
            Some(name) => std::env::var(name).with_context(|| format!("environment variable {name} is not set"))?,
            None => rest.to_string(),
        },
        None => anyhow::bail!("--to is postgres:URL or postgres:env:NAME"),
    };
    let copied = vakt_collector::store::copy::sqlite_to_postgres(&dir, &url)?;
    let total: u64 = copied.tables.iter().map(|(_, n)| n).sum();
    for (table, n) in &copied.tables {
        println!("{table:>20}  {n} rows");
    }
    println!(
        "copied {total} rows from {} into PostgreSQL; point [store] at it and start the collectors",
        dir.display()
    );
    Ok(())
}

pub(crate) fn report_command(
    config_path: &std::path::Path,
    service: Option<String>,
    customer: Option<String>,
    vendor: Option<String>,
    period: &str,
    format: &str,
    timezone: Option<&str>,
) -> anyhow::Result<()> {
    use vakt_collector::evaluate::report::{build, render, Format, Scope};
    let config = match CollectorConfig::load(config_path) {
        Ok(c) => c,
        Err(LoadError::Invalid(errors)) => anyhow::bail!("invalid configuration:\n{errors}"),
        Err(e) => return Err(e.into()),
    };
    let scope = match (service, customer, vendor) {
        (Some(s), None, None) => Scope::Service(s),
        (None, Some(c), None) => Scope::Customer(c),
        (None, None, Some(v)) => Scope::Vendor(v),
        _ => anyhow::bail!("give one of --service, --customer, --vendor"),
    };
    let format = Format::parse(format).ok_or_else(|| anyhow::anyhow!("--format is one of json, csv, html"))?;
    let store = vakt_collector::store::open(&config, Default::default())?;
    let report = build(store.as_ref(), &config, &scope, period, timezone, vakt_collector::core::time::now_ms())?;
    print!("{}", render(&report, format));
    Ok(())
}

#[derive(clap::Args)]
pub(crate) struct MaintenanceArgs {
    #[arg(long, short)]
    config: PathBuf,
    #[arg(long)]
    name: String,
    /// RFC 3339 with an offset, e.g. 2026-12-01T22:00:00+01:00.
    #[arg(long)]
    start: String,
    #[arg(long)]
    end: String,
    /// Services it covers (repeatable); none means all.
    #[arg(long = "service")]
    services: Vec<String>,
    #[arg(long)]
    change_id: Option<String>,
    /// Count its time in the SLA anyway.
    #[arg(long)]
    keep_in_sla: bool,
    /// The window starts in the past: take recorded downtime out of the SLA on purpose.
    #[arg(long)]
    retroactive: bool,
}

pub(crate) fn plan_maintenance(args: MaintenanceArgs) -> anyhow::Result<()> {
    let MaintenanceArgs { config: config_path, name, start, end, services, change_id, keep_in_sla, retroactive } = args;
    let (start, end, exclude_from_sla) = (start.as_str(), end.as_str(), !keep_in_sla);
    let config = match CollectorConfig::load(&config_path) {
        Ok(c) => c,
        Err(LoadError::Invalid(errors)) => anyhow::bail!("invalid configuration:\n{errors}"),
        Err(e) => return Err(e.into()),
    };
    let parse = |what: &str, t: &str| {
        t.parse::<jiff::Timestamp>().map(|t| t.as_millisecond()).map_err(|e| {
            anyhow::anyhow!("--{what} {t:?} is not RFC 3339 with an offset (e.g. 2026-12-01T22:00:00+01:00): {e}")
        })
    };
    let (start_ms, end_ms) = (parse("start", start)?, parse("end", end)?);
    anyhow::ensure!(end_ms > start_ms, "--end must be after --start");
    let now = vakt_collector::core::time::now_ms();
    vakt_collector::core::maintenance::check_start(start_ms, now, retroactive)
        .map_err(|e| anyhow::anyhow!("{}", e.replace("retroactive = true (needs an admin token)", "--retroactive")))?;
    if let Some(s) = services.iter().find(|s| !config.services.contains_key(s.as_str())) {
        anyhow::bail!("unknown service {s:?}");
    }
    let store = vakt_collector::store::open(&config, Default::default())?;
    let window = vakt_collector::core::maintenance::Occurrence {
        name,
        start_ms,
        end_ms,
        services,
        change_id,
        exclude_from_sla,
        source: "api",
        created: Some(vakt_collector::core::maintenance::Created { by: "cli".into(), at_ms: now, retroactive }),
    };
    let id = store.add_maintenance(&window)?;
    println!(
        "maintenance window {id} planned: {} to {}",
        vakt_collector::core::time::rfc3339(start_ms),
        vakt_collector::core::time::rfc3339(end_ms)
    );
    Ok(())
}

pub(crate) fn status_post_command(cmd: StatusPostCommand) -> anyhow::Result<()> {
    use vakt_collector::core::status_post::{NewPost, NewUpdate};
    use vakt_collector::notify::status_posts as posts;
    let path = match &cmd {
        StatusPostCommand::New { config, .. }
        | StatusPostCommand::Update { config, .. }
        | StatusPostCommand::List { config } => config.clone(),
    };
    let config = match CollectorConfig::load(&path) {
        Ok(c) => c,
        Err(LoadError::Invalid(errors)) => anyhow::bail!("invalid configuration:\n{errors}"),
        Err(e) => return Err(e.into()),
    };
    let store = vakt_collector::store::open(&config, Default::default())?;
    let now = vakt_collector::core::time::now_ms();
    let post = match cmd {
        StatusPostCommand::New { title, services, impact, status, message, template, incident, .. } => {
            let req = NewPost { title, impact, services, incident_id: incident, status, message, template };
            posts::create(store.as_ref(), &config, req, "cli", now)?
        }
        StatusPostCommand::Update { id, status, message, template, resolve_incident, .. } => {
            let req = NewUpdate { status, message, template, resolve_incident };
            posts::update(store.as_ref(), &config, id, req, "cli", now)?
        }
        StatusPostCommand::List { .. } => {
            for p in store.posts(None, 1000)? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    p.id,
                    p.status.as_str(),
                    p.impact.as_str(),
                    vakt_collector::core::time::rfc3339(p.created_ms),
                    p.title
                );
            }
            return Ok(());
        }
    };
    let latest = post.latest().map_or("", |u| u.status.as_str());
    println!("status post {}: {} ({latest}); subscribers are told by the running collector", post.id, post.title);
    Ok(())
}

pub(crate) fn backup_command(config_path: &std::path::Path, file: &std::path::Path) -> anyhow::Result<()> {
    let config = match CollectorConfig::load(config_path) {
        Ok(c) => c,
        Err(LoadError::Invalid(errors)) => anyhow::bail!("invalid configuration:\n{errors}"),
        Err(e) => return Err(e.into()),
    };
    let done = vakt_collector::store::backup(&config.data_dir, file)?;
    println!(
        "{}: backup of {} written and checked ({} bytes, schema version {})",
        file.display(),
        config.data_dir.join("vakt.db").display(),
        done.bytes,
        done.schema_version
    );
    Ok(())
}

pub(crate) fn notify_test(config_path: &std::path::Path, receiver: &str) -> anyhow::Result<()> {
    use vakt_collector::notify::receivers;
    let config = match CollectorConfig::load(config_path) {
        Ok(c) => c,
        Err(LoadError::Invalid(errors)) => anyhow::bail!("invalid configuration:\n{errors}"),
        Err(e) => return Err(e.into()),
    };
    let receivers = receivers::receivers(&config).map_err(anyhow::Error::msg)?;
    let Some(r) = receivers.get(receiver) else {
        let mut known: Vec<&String> = receivers.keys().collect();
        known.sort();
        anyhow::bail!(
            "no receiver {receiver:?} (known: {})",
            known.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        );
    };
    vakt_agent::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let http = reqwest::Client::builder().timeout(std::time::Duration::from_secs(10)).build()?;
    let message = receivers::test_message(&config, receiver, vakt_collector::core::time::now_ms());
    match runtime.block_on(receivers::send(&http, r, &message)) {
        Ok(_) if r.kind.follows_lifecycle() => {
            // A pager keeps the test alert open until told otherwise: resolve it at once.
            let resolved = vakt_collector::notify::payload::Message { event: "resolved".into(), ..message };
            match runtime.block_on(receivers::send(&http, r, &resolved)) {
                Ok(_) => {
                    println!("{receiver}: delivered (a test alert or ticket, opened and resolved)");
                    Ok(())
                }
                Err(e) => anyhow::bail!("{receiver}: the test alert was triggered but not resolved: {e}"),
            }
        }
        Ok(_) => {
            println!("{receiver}: delivered");
            Ok(())
        }
        Err(e) => anyhow::bail!("{receiver}: not delivered: {e}"),
    }
}

pub(crate) fn hash_token_command(stdin: bool) -> anyhow::Result<()> {
    if stdin {
        let mut token = String::new();
        std::io::stdin().read_to_string(&mut token).context("reading the token from stdin")?;
        // What surrounds the token on stdin (a newline) is not part of it, as in a token_file.
        let token = token.trim();
        anyhow::ensure!(!token.is_empty(), "no token on stdin");
        println!("{}", hash_token(token));
    } else {
        let token = generate_token();
        println!("token      = {token}");
        println!("token_hash = {}", hash_token(&token));
        eprintln!(
            "Give the token to the agent (its token_file); put token_hash under [agents.NAME] in collector.toml."
        );
    }
    Ok(())
}

/// Builds the runtime, cancels the token on SIGTERM/SIGINT, runs `f` to completion.
pub(crate) fn with_runtime<F, Fut>(f: F) -> anyhow::Result<()>
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    vakt_agent::install_crypto_provider();
    // Store work runs on blocking threads behind one connection: a few threads are enough, and
    // each extra one would keep memory of its own (a malloc arena, a stack).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let signal_token = shutdown.clone();
        tokio::spawn(async move {
            vakt_agent::signals::shutdown_signal().await;
            tracing::info!("signal received, shutting down");
            signal_token.cancel();
        });
        f(shutdown).await
    })
}

pub(crate) fn run(config_path: PathBuf) -> anyhow::Result<()> {
    let config = match CollectorConfig::load(&config_path) {
        Ok(c) => c,
        Err(LoadError::Invalid(errors)) => anyhow::bail!("invalid configuration:\n{errors}"),
        Err(e) => return Err(e.into()),
    };
    with_runtime(|shutdown| async move {
        let server = vakt_collector::server::Server::bind(config).await?;
        server.serve_reloading(Some(&config_path), shutdown).await?;
        Ok(())
    })
}

/// `check-config`: every problem of the file, or a one-line summary (and DST warnings).
pub(crate) fn check_config(file: &std::path::Path) -> Result<(), LoadError> {
    let cfg = CollectorConfig::load(file)?;
    for w in vakt_collector::core::maintenance::dst_warnings_ahead(&cfg, vakt_collector::core::time::now_ms()) {
        eprintln!("{}: warning: {w}", file.display());
    }
    println!(
        "{}: ok ({} agents, {} checks, {} services)",
        file.display(),
        cfg.agents.len(),
        cfg.checks.len(),
        cfg.services.len()
    );
    Ok(())
}
