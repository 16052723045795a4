//! A plugin's WARNING as an incident of severity "warning", with the real binaries: a check
//! with `warning_incidents = true` whose plugin exits 1 opens a `check_warning` incident that
//! goes to the route asking for warnings and not to the catch-all route; when the plugin says
//! OK again the warning resolves, and the check was up all along.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;
use vakt_tests::{token_hash, wait_for, Collector, Hook, Proc};

const TOKEN: &str = "warn-agent-token-0123456789abcdef";
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_warning_is_an_incident_routed_only_where_warnings_are_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    let code = dir.path().join("code");
    std::fs::write(&code, "1").unwrap();
    let plugin = plugins.join("check_raid");
    std::fs::write(
        &plugin,
        format!(
            "#!/bin/sh\nc=$(cat {})\nif [ \"$c\" = 1 ]; then printf 'RAID WARNING - array degraded, rebuilding | rebuild=42%%\\nmd0: [UU_] recovery = 42.0%%\\nmd1: [UU] ok\\n'; else echo 'RAID OK'; fi\nexit $c\n",
            code.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (team, ops) = (Hook::start().await, Hook::start().await);
    let addr: SocketAddr = vakt_tests::loopback_addr();
    let ctoml = dir.path().join("collector.toml");
    std::fs::write(
        &ctoml,
        format!(
            r#"listen = "{addr}"
data_dir = "data"
group_wait = "0s"

[agents.edge]
token_hash = "{hash}"

[checks.raid]
kind = "exec"
target = "{plugin}"
interval = "200ms"
agents = ["edge"]
warning_incidents = true

[receivers.team]
kind = "webhook"
url = {{ value = "http://{team}/" }}

[receivers.ops]
kind = "webhook"
url = {{ value = "http://{ops}/" }}

[[routes]]
severities = ["warning"]
receivers = ["team"]
continue = true

[[routes]]
receivers = ["ops"]
"#,
            hash = token_hash(TOKEN),
            plugin = plugin.display(),
            team = team.addr,
            ops = ops.addr,
        ),
    )
    .unwrap();
    let collector = Collector::start(&ctoml, addr, &dir.path().join("collector.log")).await;
    let allow = format!("exec_allow = [\"{}/*\"]\n", plugins.display());
    let atoml = vakt_tests::agent_toml(dir.path(), "edge", addr, TOKEN, &allow);
    let _agent =
        Proc::spawn("vakt-agent", &["run", "--config", atoml.to_str().unwrap()], &dir.path().join("agent.log"));

    let firing = wait_for("the warning at the team's hook", WAIT, || async {
        team.received().into_iter().find(|b| b["event"] == "firing")
    })
    .await;
    assert_eq!(firing["incident"]["kind"], "check_warning");
    assert_eq!(firing["incident"]["severity"], "warning");
    assert_eq!(firing["incident"]["title"], "raid is degraded: RAID WARNING - array degraded, rebuilding", "one line");
    wait_for("raid up but degraded in /metrics (a warning is not down)", WAIT, || async {
        let up = collector.metric("vakt_check_up{check=\"raid\"}").await;
        let degraded = collector.metric("vakt_check_degraded{check=\"raid\"}").await;
        (up == Some(1.0) && degraded == Some(1.0)).then_some(())
    })
    .await;

    std::fs::write(&code, "0").unwrap();
    wait_for("the warning resolved at the team's hook", WAIT, || async {
        team.received().iter().any(|b| b["event"] == "resolved").then_some(())
    })
    .await;
    let id = firing["incident"]["id"].as_i64().unwrap();
    let incident = collector.get_json(&format!("/api/v1/incidents/{id}")).await;
    assert_eq!(incident["status"], "resolved");
    // The plugin's long output is on the incident, under its opening event.
    let opened = incident["timeline"].as_array().unwrap().iter().find(|e| e["kind"] == "opened").unwrap().clone();
    let message = opened["message"].as_str().unwrap();
    assert!(message.contains("\nmd0: [UU_] recovery = 42.0%\nmd1: [UU] ok"), "{message}");
    assert!(!message.contains("rebuild=42%"), "perfdata is not output: {message}");
    assert!(ops.received().is_empty(), "the catch-all route takes no warnings: {:?}", ops.received());
}

/// A plugin's UNKNOWN (Debian's `check_dummy 3`) told apart from CRITICAL: by default a failure
/// whose reason says UNKNOWN once; with `unknown_counts_as = "unknown"` no data — the check is
/// unknown, no incident opens, and the SLA leaves the time out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugins_unknown_is_down_or_no_data_as_configured() {
    let dummy = "/usr/lib/nagios/plugins/check_dummy";
    if !std::path::Path::new(dummy).exists() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{dummy} is missing: .ci/run must install monitoring-plugins"
        );
        eprintln!("skipping: {dummy} is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = vakt_tests::loopback_addr();
    let ctoml = dir.path().join("collector.toml");
    let check = |name: &str, extra: &str| {
        format!(
            "[checks.{name}]\nkind = \"exec\"\ntarget = \"{dummy}\"\nargs = [\"3\", \"cannot read /proc/mdstat\"]\ninterval = \"200ms\"\nfail_after = 2\nagents = [\"edge\"]\n{extra}\n"
        )
    };
    std::fs::write(
        &ctoml,
        format!(
            "listen = \"{addr}\"\ndata_dir = \"data\"\n[agents.edge]\ntoken_hash = \"{}\"\n{}{}",
            token_hash(TOKEN),
            check("strict", ""),
            check("lenient", "unknown_counts_as = \"unknown\""),
        ),
    )
    .unwrap();
    let collector = Collector::start(&ctoml, addr, &dir.path().join("collector.log")).await;
    let atoml =
        vakt_tests::agent_toml(dir.path(), "edge", addr, TOKEN, "exec_allow = [\"/usr/lib/nagios/plugins/*\"]\n");
    let _agent =
        Proc::spawn("vakt-agent", &["run", "--config", atoml.to_str().unwrap()], &dir.path().join("agent.log"));

    let incident = wait_for("the strict check's incident", WAIT, || async {
        let list = collector.get_json("/api/v1/incidents?status=open").await;
        list.as_array().unwrap().iter().find(|i| i["subject"] == "strict").cloned()
    })
    .await;
    let title = incident["title"].as_str().unwrap();
    assert_eq!(title, "strict is down: UNKNOWN: cannot read /proc/mdstat", "UNKNOWN said once");
    // The lenient check has run as often: unknown, not down, and no incident.
    wait_for("the lenient check's results", WAIT, || async {
        let samples = collector.get_json("/api/v1/samples?check=lenient&limit=3").await;
        (samples.as_array().unwrap().len() >= 3).then_some(())
    })
    .await;
    wait_for("strict down, and why, in /metrics", WAIT, || async {
        let up = collector.metric("vakt_check_up{check=\"strict\"}").await;
        let unknown = collector.metric("vakt_check_plugin_unknown{check=\"strict\"}").await;
        (up == Some(0.0) && unknown == Some(1.0)).then_some(())
    })
    .await;
    assert_eq!(collector.metric("vakt_check_up{check=\"lenient\"}").await, None, "unknown: neither up nor down");
    let all = collector.get_json("/api/v1/incidents").await;
    assert!(all.as_array().unwrap().iter().all(|i| i["subject"] != "lenient"), "{all}");
    let checks = collector.get_json("/api/v1/checks").await;
    let lenient = checks.as_array().unwrap().iter().find(|c| c["check"] == "lenient").cloned().unwrap();
    assert_eq!(lenient["status"], "unknown", "{lenient}");
    assert_eq!(lenient["last_error"], "UNKNOWN: cannot read /proc/mdstat", "what the plugin said is kept");
}
