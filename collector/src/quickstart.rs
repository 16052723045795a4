//! `vakt-collector quickstart`: a collector and an in-process agent on a built-in config that
//! watches this collector itself. Nothing to write first.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tokio_util::sync::CancellationToken;
use vakt_config::{AgentConfig, CollectorConfig};

use crate::auth::{generate_token, hash_token};
use crate::server::Server;

/// The agent name the built-in config uses.
pub const AGENT: &str = "local";
/// The API token's name the built-in config prints (the user name in a browser).
pub const ADMIN: &str = "admin";

/// What `configs` builds: both configs, the agent's token and the admin's API token.
pub struct Quickstart {
    pub collector: CollectorConfig,
    pub agent: AgentConfig,
    pub agent_token: String,
    pub admin_token: String,
}

/// The built-in collector and agent configs, validated like any file.
pub fn configs(listen: SocketAddr, data_dir: &Path) -> Result<Quickstart, vakt_config::ConfigErrors> {
    let token = generate_token();
    let admin_token = generate_token();
    let collector = format!(
        r#"listen = {listen}
data_dir = {data}

[api_tokens.{ADMIN}]
token_hash = {admin_hash}
scope = "admin"

[agents.{AGENT}]
token_hash = {hash}
labels = {{ role = "quickstart" }}

[checks.collector-http]
kind = "http"
target = {http}
interval = "10s"
timeout = "5s"
fail_after = 2
recover_after = 1
agents = ["{AGENT}"]

[checks.collector-tcp]
kind = "tcp"
target = {tcp}
interval = "10s"
selector = "role=quickstart"

[services.vakt]
description = "This Vakt collector"
checks = ["collector-http", "collector-tcp"]
"#,
        listen = vakt_config::toml_quote(&listen.to_string()),
        data = vakt_config::toml_quote(&data_dir.display().to_string()),
        hash = vakt_config::toml_quote(&hash_token(&token)),
        admin_hash = vakt_config::toml_quote(&hash_token(&admin_token)),
        http = vakt_config::toml_quote(&format!("http://{listen}/healthz")),
        tcp = vakt_config::toml_quote(&listen.to_string()),
    );
    let agent = format!(
        "name = \"{AGENT}\"\ncollector = {url}\ntoken = {token}\nspool_dir = {spool}\n",
        url = vakt_config::toml_quote(&format!("http://{listen}")),
        token = vakt_config::toml_quote(&token),
        spool = vakt_config::toml_quote(&data_dir.join("agent").display().to_string()),
    );
    let c = CollectorConfig::parse(&collector, Path::new("<quickstart collector.toml>"))?;
    let a = AgentConfig::parse(&agent, Path::new("<quickstart agent.toml>"))?;
    Ok(Quickstart { collector: c, agent: a, agent_token: token, admin_token })
}

/// Runs until `shutdown`; the agent stops first so its last samples reach the collector.
pub async fn run(listen: SocketAddr, data_dir: PathBuf, shutdown: CancellationToken) -> anyhow::Result<()> {
    let data_dir = if data_dir.is_absolute() { data_dir } else { std::env::current_dir()?.join(data_dir) };
    let Quickstart { collector: collector_cfg, agent: agent_cfg, agent_token: token, admin_token } =
        configs(listen, &data_dir)?;
    let server = Server::bind(collector_cfg).await?;
    let addr = server.local_addr();
    let server_stop = CancellationToken::new();
    let server_task = tokio::spawn(server.serve(server_stop.clone()));
    let agent_task = tokio::spawn(vakt_agent::run(agent_cfg, token, shutdown.clone()));
    println!("Vakt quickstart is running: a collector and an agent watching it.");
    println!("  Status      http://{addr}/");
    println!("  Incidents   http://{addr}/incidents");
    println!("  SLA         http://{addr}/sla");
    println!("  Agents      http://{addr}/agents");
    println!("  Checks      http://{addr}/api/v1/checks");
    println!("  API         http://{addr}/api/v1/incidents");
    println!("  Metrics     http://{addr}/metrics");
    println!("  Health      http://{addr}/healthz");
    println!("  Data        {}", data_dir.display());
    println!("Everything but the status page needs the API token below: in a browser, user \"{ADMIN}\"");
    println!("with the token as password; with curl, -H \"Authorization: Bearer TOKEN\".");
    println!("  API token   {admin_token}");
    println!("Press Ctrl-C to stop.");
    let agent_result = agent_task.await;
    server_stop.cancel();
    server_task.await??;
    agent_result??;
    println!("Vakt quickstart stopped.");
    Ok(())
}
