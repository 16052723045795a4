//! Monitoring Plugins' performance data with the real binaries: Debian's `check_disk` on `/`
//! becomes `vakt_check_perfdata{label="/"}` in bytes with its warn, crit, min and max, the
//! exposition passes `promtool check metrics`; a plugin whose labels make the same value name
//! keeps both.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use vakt_tests::{token_hash, wait_for, Collector, Proc};

const TOKEN: &str = "perf-agent-token-0123456789abcdef";
const CHECK_DISK: &str = "/usr/lib/nagios/plugins/check_disk";
const PROMTOOL: &str = "/usr/bin/promtool";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_performance_data_reaches_metrics_with_its_labels_and_thresholds() {
    if !Path::new(CHECK_DISK).exists() || !Path::new(PROMTOOL).exists() {
        assert!(std::env::var("CI").as_deref() != Ok("true"), ".ci/run must install monitoring-plugins and prometheus");
        eprintln!("skipping: {CHECK_DISK} or {PROMTOOL} is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    let twins = plugins.join("check_twins");
    std::fs::write(&twins, "#!/bin/sh\necho \"TWINS OK | /=1 value=2 'a b'=3s;4;5 a_b=6s\"\n").unwrap();
    std::fs::set_permissions(&twins, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let addr: SocketAddr = vakt_tests::loopback_addr();
    let ctoml = dir.path().join("collector.toml");
    std::fs::write(
        &ctoml,
        format!(
            r#"listen = "{addr}"
data_dir = "data"

[agents.edge]
token_hash = "{hash}"

[checks.root-disk]
kind = "exec"
target = "{CHECK_DISK}"
args = ["-w", "10%", "-c", "5%", "-p", "/"]
interval = "500ms"
agents = ["edge"]

[checks.twins]
kind = "exec"
target = "{twins}"
interval = "500ms"
agents = ["edge"]
"#,
            hash = token_hash(TOKEN),
            twins = twins.display(),
        ),
    )
    .unwrap();
    let collector = Collector::start(&ctoml, addr, &dir.path().join("collector.log")).await;
    let allow = format!("exec_allow = [\"/usr/lib/nagios/plugins/*\", \"{}/*\"]\n", plugins.display());
    let atoml = vakt_tests::agent_toml(dir.path(), "edge", addr, TOKEN, &allow);
    let _agent =
        Proc::spawn("vakt-agent", &["run", "--config", atoml.to_str().unwrap()], &dir.path().join("agent.log"));

    let series = |name: &str| format!("{name}{{check=\"root-disk\",label=\"/\",unit=\"bytes\"}}");
    let used = wait_for("check_disk's perfdata in /metrics", Duration::from_secs(30), || async {
        collector.metric(&series("vakt_check_perfdata")).await
    })
    .await;
    let (warn, crit, min, max) = (
        collector.metric(&series("vakt_check_perfdata_warn")).await.unwrap(),
        collector.metric(&series("vakt_check_perfdata_crit")).await.unwrap(),
        collector.metric(&series("vakt_check_perfdata_min")).await.unwrap(),
        collector.metric(&series("vakt_check_perfdata_max")).await.unwrap(),
    );
    // check_disk -w 10% -c 5% on /: the thresholds sit at 90 % and 95 % of the size (bytes).
    assert_eq!(min, 0.0);
    assert!(used > 0.0 && used <= max, "used {used} of {max}");
    assert!(
        (warn / max - 0.90).abs() < 0.01 && (crit / max - 0.95).abs() < 0.01,
        "warn {warn}, crit {crit}, max {max}"
    );

    // The twins: both "/" and "value" kept, as values of the sample and as labels.
    wait_for("the twins' perfdata in /metrics", Duration::from_secs(30), || async {
        collector.metric("vakt_check_perfdata{check=\"twins\",label=\"a_b\",unit=\"seconds\"}").await
    })
    .await;
    let samples = wait_for("the twins' result", Duration::from_secs(30), || async {
        let samples = collector.get_json("/api/v1/samples?check=twins&limit=1").await;
        samples[0]["values"].is_object().then_some(samples)
    })
    .await;
    let values = &samples[0]["values"];
    assert_eq!((values["value"].as_f64(), values["value_2"].as_f64()), (Some(1.0), Some(2.0)), "{values}");
    assert_eq!((values["a_b_seconds"].as_f64(), values["a_b_seconds_2"].as_f64()), (Some(3.0), Some(6.0)), "{values}");
    for (label, unit, v) in [("/", "", 1.0), ("value", "", 2.0), ("a b", "seconds", 3.0), ("a_b", "seconds", 6.0)] {
        let s = format!("vakt_check_perfdata{{check=\"twins\",label=\"{label}\",unit=\"{unit}\"}}");
        assert_eq!(collector.metric(&s).await, Some(v), "{s}");
    }
    assert_eq!(
        collector.metric("vakt_check_perfdata_crit{check=\"twins\",label=\"a b\",unit=\"seconds\"}").await,
        Some(5.0)
    );

    let text = collector.get_text("/metrics").await;
    let mut promtool = std::process::Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut promtool.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let out = promtool.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && !said.contains("perfdata"), "promtool check metrics:\n{said}");
}
