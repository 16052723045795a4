//! The trust rules, attacked with the real binaries on loopback: each test performs an attack a
//! leaked agent token, a compromised collector or a careless operator could make, and shows
//! that it fails.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;
use vakt_tests::{token_hash, wait_for, Collector, Proc};

const TOKEN_A: &str = "attack-token-agent-a-0123456789";
const TOKEN_B: &str = "attack-token-agent-b-0123456789";

struct Setup {
    dir: tempfile::TempDir,
    collector: Collector,
    http: reqwest::Client,
}

/// Agent `a` (label role=web) probes `web` (by selector) and `db` (by name); agent `b` is
/// assigned nothing. Both fail at the first failure.
async fn setup(extra: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let addr: SocketAddr = vakt_tests::loopback_addr();
    let cfg = dir.path().join("collector.toml");
    std::fs::write(
        &cfg,
        format!(
            "listen = \"{addr}\"\ndata_dir = \"data\"\n{extra}\n\
             [agents.a]\ntoken_hash = \"{}\"\nlabels = {{ role = \"web\" }}\n\
             [agents.b]\ntoken_hash = \"{}\"\n\
             [checks.web]\nkind = \"tcp\"\ntarget = \"127.0.0.1:9\"\nselector = \"role=web\"\nfail_after = 1\nrecover_after = 1\n\
             [checks.db]\nkind = \"tcp\"\ntarget = \"127.0.0.1:9\"\nagents = [\"a\"]\nfail_after = 1\nrecover_after = 1\n",
            token_hash(TOKEN_A),
            token_hash(TOKEN_B)
        ),
    )
    .unwrap();
    let collector = Collector::start(&cfg, addr, &dir.path().join("collector.log")).await;
    Setup { dir, collector, http: reqwest::Client::new() }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

fn sample(check: &str, ts: i64, success: bool) -> serde_json::Value {
    serde_json::json!({"check": check, "timestamp_ms": ts, "success": success, "latency_seconds": 0.01})
}

impl Setup {
    async fn push(&self, token: &str, agent: &str, seq: u64, samples: Vec<serde_json::Value>) -> serde_json::Value {
        let body = serde_json::json!({"version": 1, "agent": agent, "sequence": seq, "samples": samples});
        let resp = self
            .http
            .post(self.collector.url("/api/v1/ingest"))
            .bearer_auth(token)
            .header("x-vakt-sent-at", now_ms().to_string())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "the batch itself is well formed");
        resp.json().await.unwrap()
    }

    async fn rejected(&self, reason: &str) -> f64 {
        self.collector.metric(&format!("vakt_ingest_rejected_total{{reason=\"{reason}\"}}")).await.unwrap_or(0.0)
    }

    async fn open_incidents(&self) -> Vec<String> {
        let list = self.collector.get_json("/api/v1/incidents?status=open").await;
        list.as_array().unwrap().iter().map(|i| i["dedup_key"].as_str().unwrap().to_string()).collect()
    }

    async fn stored(&self, check: &str) -> usize {
        self.collector.get_json(&format!("/api/v1/samples?check={check}")).await.as_array().unwrap().len()
    }
}

#[tokio::test]
async fn forge_an_agent_cannot_open_incidents_on_checks_it_was_not_given() {
    let s = setup("").await;
    // b's token, b's own name in the batch: authenticated, but `db` is a's check.
    let ack = s.push(TOKEN_B, "b", 1, vec![sample("db", now_ms() - 500, false)]).await;
    assert_eq!(ack["accepted"], 0, "{ack}");
    assert_eq!(ack["refused"][0]["check"], "db");
    assert_eq!(ack["refused"][0]["reason"], "not_assigned");
    assert_eq!(ack["refused"][0]["samples"], 1);
    assert!(s.open_incidents().await.is_empty(), "nobody paged for another team's database");
    assert_eq!(s.stored("db").await, 0, "never stored");
    assert_eq!(s.rejected("not_assigned").await, 1.0);
    // Logged once per agent and check, however often it is tried.
    s.push(TOKEN_B, "b", 2, vec![sample("db", now_ms() - 400, false)]).await;
    let log = s.collector.proc.log_text();
    assert_eq!(log.matches("samples refused").count(), 1, "{log}");
    assert!(log.contains("check \"db\" is neither assigned to agent \"b\""), "{log}");
}

#[tokio::test]
async fn hide_an_agent_cannot_resolve_a_real_incident_by_pushing_successes() {
    let s = setup("").await;
    s.push(TOKEN_A, "a", 1, vec![sample("db", now_ms() - 500, false)]).await;
    assert_eq!(s.open_incidents().await, vec!["check:db"]);
    let ack = s.push(TOKEN_B, "b", 1, vec![sample("db", now_ms() - 100, true)]).await;
    assert_eq!(ack["refused"][0]["reason"], "not_assigned", "{ack}");
    assert_eq!(s.open_incidents().await, vec!["check:db"], "the outage stays visible");
    assert_eq!(s.collector.metric("vakt_check_up{check=\"db\"}").await, Some(0.0));
    // The agent the check belongs to still resolves it.
    s.push(TOKEN_A, "a", 2, vec![sample("db", now_ms(), true)]).await;
    assert!(s.open_incidents().await.is_empty());
}

#[tokio::test]
async fn invent_new_check_ids_become_no_series_no_incidents_and_no_rows() {
    let s = setup("").await;
    let samples: Vec<_> = (0..2000).map(|i| sample(&format!("invented-{i}"), now_ms() - 1000, false)).collect();
    let ack = s.push(TOKEN_A, "a", 1, samples).await;
    assert_eq!(ack["accepted"], 0);
    assert_eq!(ack["refused"].as_array().unwrap().len(), 2000, "one entry per check");
    let metrics = s.collector.get_text("/metrics").await;
    assert!(!metrics.contains("invented-"), "no metric series for invented checks");
    assert!(s.open_incidents().await.is_empty());
    assert_eq!(s.stored("invented-7").await, 0);
    assert_eq!(s.rejected("not_assigned").await, 2000.0);
    let log = s.collector.proc.log_text();
    assert_eq!(log.matches("samples refused").count(), 2000, "each agent and check once");
}

#[tokio::test]
async fn backfill_an_agent_cannot_write_downtime_into_last_months_sla() {
    let s = setup("").await;
    let now = now_ms();
    s.push(TOKEN_A, "a", 1, vec![sample("web", now - 1000, true)]).await;
    // Twenty days back: a failure that would cost the SLA 20 days ago.
    let ack =
        s.push(TOKEN_A, "a", 2, vec![sample("web", now - 20 * 86_400_000, false), sample("web", now, true)]).await;
    assert_eq!(ack["accepted"], 1, "{ack}");
    assert_eq!(ack["refused"][0]["reason"], "backfill");
    assert!(ack["refused"][0]["message"].as_str().unwrap().contains("older than agent \"a\"'s last results"));
    let from = now - 21 * 86_400_000;
    let old = s.collector.get_json(&format!("/api/v1/samples?check=web&from={from}&to={}", now - 86_400_000)).await;
    assert!(old.as_array().unwrap().is_empty(), "{old}");
    assert_eq!(s.rejected("backfill").await, 1.0);
    // What the spool legitimately holds back is not backfill: a probe started 5 minutes before
    // the newest stored result (a long timeout) still counts.
    let ack = s.push(TOKEN_A, "a", 3, vec![sample("web", now - 5 * 60_000, true)]).await;
    assert_eq!(ack["accepted"], 1, "{ack}");
}

#[tokio::test]
async fn a_new_instance_is_never_taken_for_a_replay_of_the_old_one() {
    let s = setup("").await;
    let push = |instance: &str, seq: u64, ts: i64| {
        let body = serde_json::json!({"version": 1, "agent": "a", "instance": instance, "sequence": seq,
            "samples": [sample("web", ts, true)]});
        s.http.post(s.collector.url("/api/v1/ingest")).bearer_auth(TOKEN_A).json(&body).send()
    };
    let t = now_ms() - 60_000;
    for seq in 1..=5 {
        let ack: serde_json::Value = push("aaaa0000aaaa0000", seq, t + seq as i64).await.unwrap().json().await.unwrap();
        assert_eq!(ack["duplicate"], false);
    }
    // The same instance sending sequence 3 again with the same content: a replay.
    let ack: serde_json::Value = push("aaaa0000aaaa0000", 3, t + 3).await.unwrap().json().await.unwrap();
    assert_eq!(ack["duplicate"], true);
    // A wiped state directory: a new instance, counting from 1 again. Stored, not a duplicate.
    let ack: serde_json::Value = push("bbbb1111bbbb1111", 1, t + 10_000).await.unwrap().json().await.unwrap();
    assert_eq!((ack["duplicate"].clone(), ack["accepted"].clone()), (false.into(), 1.into()), "{ack}");
    // A state directory restored from a copy reuses a number with other content: stored too.
    let ack: serde_json::Value = push("bbbb1111bbbb1111", 1, t + 20_000).await.unwrap().json().await.unwrap();
    assert_eq!(ack["duplicate"], false, "{ack}");
    assert_eq!(s.stored("web").await, 7);
    let log = s.collector.proc.log_text();
    assert!(log.contains("the agent pushes under a new instance"), "{log}");
    assert!(log.contains("reused a sequence number with other content"), "{log}");
    let agents = s.collector.get_json("/api/v1/agents").await;
    let a = agents.as_array().unwrap().iter().find(|a| a["name"] == "a").unwrap().clone();
    assert_eq!(a["instance"], "bbbb1111bbbb1111", "{a}");
}

/// The real agent: a state directory wiped between two runs. The second run numbers its
/// batches from 1 again, below the first run's; every one of its samples is stored.
#[tokio::test]
async fn wiped_agent_state_its_samples_are_stored_at_once() {
    let target = vakt_tests::Target::start().await;
    let dir = tempfile::tempdir().unwrap();
    let addr = vakt_tests::loopback_addr();
    let token = "wiped-agent-token-0123456789";
    let cfg = dir.path().join("collector.toml");
    std::fs::write(&cfg, vakt_tests::edge_collector_toml(addr, "data", token, &[("home", target.addr)], "")).unwrap();
    let collector = Collector::start(&cfg, addr, &dir.path().join("collector.log")).await;
    let agent_cfg = vakt_tests::agent_toml(dir.path(), "edge", addr, token, "");
    let args = ["run", "--config", agent_cfg.to_str().unwrap()];
    let edge = || async {
        let agents = collector.get_json("/api/v1/agents").await;
        agents.as_array().unwrap().iter().find(|a| a["name"] == "edge").cloned()
    };
    let mut first = Proc::spawn("vakt-agent", &args, &dir.path().join("agent1.log"));
    let first_run = wait_for("the first run to push 40 batches", Duration::from_secs(30), || async {
        edge().await.filter(|a| a["last_sequence"].as_u64().unwrap() >= 40)
    })
    .await;
    first.signal("TERM");
    first.wait_exit(Duration::from_secs(15));
    let first_last = edge().await.unwrap()["last_sequence"].as_u64().unwrap();
    let stored_before = collector.get_json("/api/v1/samples?check=home").await.as_array().unwrap().len();
    std::fs::remove_dir_all(dir.path().join("agent")).unwrap();

    let mut second = Proc::spawn("vakt-agent", &args, &dir.path().join("agent2.log"));
    wait_for("the second run's samples stored", Duration::from_secs(20), || async {
        let n = collector.get_json("/api/v1/samples?check=home").await.as_array().unwrap().len();
        (n > stored_before).then_some(())
    })
    .await;
    second.signal("TERM");
    second.wait_exit(Duration::from_secs(15));
    let after = edge().await.unwrap();
    assert!(
        after["last_sequence"].as_u64().unwrap() < first_last,
        "the second run's numbers lie below the first's ({after} vs {first_run})"
    );
    assert_ne!(after["instance"], first_run["instance"]);
    let delivered = vakt_tests::exit_summary(&second.log, "samples_delivered");
    let stored = collector.get_json("/api/v1/samples?check=home").await.as_array().unwrap().len();
    assert_eq!(stored - stored_before, delivered as usize, "every sample of the second run stored");
    assert!(collector.proc.log_text().contains("the agent pushes under a new instance"));
    let page = collector.get_text("/agents").await;
    assert!(page.contains("class=\"instance\""), "{page}");
}

/// An agent's own checks are announced and reported; another agent cannot report them, and the
/// number an agent may announce is bounded.
#[tokio::test]
async fn local_checks_are_announced_owned_and_bounded() {
    let target = vakt_tests::Target::start().await;
    let s = setup("max_local_checks = 1").await;
    let extra = format!(
        "[checks.own-home]\nkind = \"http\"\ntarget = \"http://{t}/\"\ninterval = \"100ms\"\n\
         [checks.own-extra]\nkind = \"http\"\ntarget = \"http://{t}/\"\ninterval = \"100ms\"\n",
        t = target.addr
    );
    let agent_dir = s.dir.path().join("b");
    std::fs::create_dir_all(&agent_dir).unwrap();
    let agent_cfg = vakt_tests::agent_toml(&agent_dir, "b", s.collector.addr, TOKEN_B, &extra);
    let agent =
        Proc::spawn("vakt-agent", &["run", "--config", agent_cfg.to_str().unwrap()], &agent_dir.join("agent.log"));
    // Ids are announced in order: own-extra is the first, own-home is beyond the bound of 1.
    wait_for("own-extra samples stored", Duration::from_secs(20), || async {
        (s.stored("own-extra").await > 0).then_some(())
    })
    .await;
    wait_for("own-home refused", Duration::from_secs(20), || async {
        (s.rejected("not_assigned").await > 0.0).then_some(())
    })
    .await;
    assert_eq!(s.stored("own-home").await, 0);
    let log = agent.log_text();
    assert!(log.contains("the collector refuses this local check's results"), "{log}");
    assert!(log.contains("may announce at most 1 local checks"), "{log}");
    // Agent a cannot report b's local check.
    let ack = s.push(TOKEN_A, "a", 1, vec![sample("own-extra", now_ms(), false)]).await;
    assert_eq!(ack["refused"][0]["reason"], "not_assigned", "{ack}");
    // Nor announce it for itself.
    let resp: serde_json::Value = s
        .http
        .post(s.collector.url("/api/v1/agents/a/checks"))
        .bearer_auth(TOKEN_A)
        .json(&serde_json::json!({"checks": [{"id": "own-extra", "kind": "tcp", "target": "127.0.0.1:9", "interval_ms": 1000, "timeout_ms": 1000}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(resp["refused_local"][0]["reason"].as_str().unwrap().contains("agent \"b\" already reports"), "{resp}");
}

/// A collector (or whoever can change its configuration) assigns a shell command as an exec
/// check: the agent refuses to run it and reports the refusal as the check's result. A plugin
/// its own `exec_allow` names runs.
#[tokio::test]
async fn exec_from_the_collector_runs_only_what_the_agents_own_config_allows() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let plugin = plugins.join("check_ok");
    std::fs::write(&plugin, "#!/bin/sh\necho 'OK: fine|x=1'\nexit 0\n").unwrap();
    std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let pwned = dir.path().join("pwned");
    let addr = vakt_tests::loopback_addr();
    let token = "exec-agent-token-0123456789";
    let cfg = dir.path().join("collector.toml");
    std::fs::write(
        &cfg,
        format!(
            "listen = \"{addr}\"\ndata_dir = \"data\"\n[agents.edge]\ntoken_hash = \"{}\"\n\
             [checks.evil]\nkind = \"exec\"\ntarget = \"/bin/sh\"\nargs = [\"-c\", \"touch {}\"]\ninterval = \"100ms\"\nfail_after = 1\nagents = [\"edge\"]\n\
             [checks.allowed]\nkind = \"exec\"\ntarget = \"{}\"\ninterval = \"100ms\"\nagents = [\"edge\"]\n",
            token_hash(token),
            pwned.display(),
            plugin.display()
        ),
    )
    .unwrap();
    let collector = Collector::start(&cfg, addr, &dir.path().join("collector.log")).await;
    let allow = format!("exec_allow = [\"{}/*\"]\n", plugins.display());
    let agent_cfg = vakt_tests::agent_toml(dir.path(), "edge", addr, token, &allow);
    let agent =
        Proc::spawn("vakt-agent", &["run", "--config", agent_cfg.to_str().unwrap()], &dir.path().join("agent.log"));
    collector.wait_up("allowed").await;
    let evil = wait_for("the refusal reported as evil's result", Duration::from_secs(20), || async {
        let s = collector.get_json("/api/v1/samples?check=evil&limit=1").await;
        s.as_array().unwrap().first().cloned()
    })
    .await;
    assert_eq!(evil["success"], false);
    assert!(
        evil["error"].as_str().unwrap().contains("refused to run \"/bin/sh\": not in this agent's exec_allow"),
        "{evil}"
    );
    assert_eq!(collector.metric("vakt_check_up{check=\"evil\"}").await, Some(0.0), "shown as failing, not silent");
    assert!(!pwned.exists(), "the command never ran");
    assert!(agent.log_text().contains("refused to run \"/bin/sh\""), "logged on the agent");
}

/// Writes a POST to the ingest endpoint declaring `len` bytes of body and then sends them, on
/// its own connection; returns the status line the collector answered (if any).
async fn post_declaring(addr: SocketAddr, token: Option<&str>, len: usize, pace: Option<Duration>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let head = format!("POST /api/v1/ingest HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {len}\r\n\r\n");
    tcp.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b' '; 1 << 20];
    let (mut rd, mut wr) = tcp.into_split();
    let writer = tokio::spawn(async move {
        let mut sent = 0;
        while sent < len {
            let n = chunk.len().min(len - sent);
            if wr.write_all(&chunk[..n]).await.is_err() {
                break; // the collector answered and closed: nothing more is read
            }
            sent += n;
            if let Some(p) = pace {
                tokio::time::sleep(p).await;
            }
        }
    });
    let mut answer = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(30), rd.read(&mut answer)).await.unwrap_or(Ok(0)).unwrap_or(0);
    writer.abort();
    String::from_utf8_lossy(&answer[..n]).lines().next().unwrap_or("").to_string()
}

/// Twenty clients send 30 MiB bodies each: without a token nothing is read at all; with one,
/// no more than `ingest_memory_bytes` are held, the rest are told to come back. The collector's
/// peak memory stays far below the 600 MiB the bodies add up to.
#[tokio::test]
async fn a_body_flood_is_bounded_before_and_after_authentication() {
    let s = setup("ingest_memory_bytes = 67108864\nrequest_body_timeout = \"2s\"").await;
    let addr = s.collector.addr;
    const BODY: usize = 30 << 20;
    let unauthenticated: Vec<_> = (0..20).map(|_| tokio::spawn(post_declaring(addr, None, BODY, None))).collect();
    for t in unauthenticated {
        let status = t.await.unwrap();
        assert!(status.starts_with("HTTP/1.1 401"), "{status}");
    }
    // Authenticated, sent slowly: two fit in the 64 MiB budget, the others are refused at once.
    let slow = Some(Duration::from_millis(200));
    let authenticated: Vec<_> =
        (0..20).map(|_| tokio::spawn(post_declaring(addr, Some(TOKEN_A), BODY, slow))).collect();
    let mut statuses = Vec::new();
    for t in authenticated {
        statuses.push(t.await.unwrap());
    }
    let busy = statuses.iter().filter(|s| s.starts_with("HTTP/1.1 503")).count();
    let slow_out = statuses.iter().filter(|s| s.starts_with("HTTP/1.1 408")).count();
    assert_eq!(busy, 18, "{statuses:?}");
    assert_eq!(slow_out, 2, "bodies slower than request_body_timeout are cut off: {statuses:?}");
    let peak_mib = vakt_tests::proc_stats(s.collector.proc.child.id()).peak_rss_kib / 1024;
    assert!(peak_mib < 200, "peak RSS {peak_mib} MiB: bodies were buffered beyond the budget");
    assert_eq!(s.rejected("overloaded").await, 18.0);
    assert_eq!(s.rejected("body_timeout").await, 2.0);
    // And the collector serves pushes as before.
    let ack = s.push(TOKEN_A, "a", 1, vec![sample("web", now_ms(), true)]).await;
    assert_eq!(ack["accepted"], 1);
}

/// 1,100 connections that never send a request: pushes and `/healthz` are answered meanwhile,
/// and the collector closes the idle sockets after `request_header_timeout`.
#[tokio::test]
async fn idle_connections_cannot_starve_pushes_and_are_closed() {
    use std::io::Read;
    // This test process holds the 1,100 sockets: make room for them (the collector raises its
    // own limit itself).
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if soft < 4096 {
        setrlimit(Resource::RLIMIT_NOFILE, hard.min(65536).max(soft), hard).unwrap();
    }
    // 1,100 unless the machine's hard limit leaves less room (said, not hidden).
    let count = 1100usize.min(usize::try_from(hard).unwrap_or(usize::MAX).saturating_sub(300));
    if count < 1100 {
        eprintln!("the hard open-file limit is {hard}: {count} idle connections instead of 1,100");
    }
    let s = setup("request_header_timeout = \"6s\"").await;
    let addr = s.collector.addr;
    let idle = tokio::task::spawn_blocking(move || {
        (0..count).map(|_| std::net::TcpStream::connect(addr).unwrap()).collect::<Vec<_>>()
    })
    .await
    .unwrap();
    let open = wait_for("the idle connections counted", Duration::from_secs(10), || async {
        s.collector.metric("vakt_http_connections_open").await.filter(|n| *n >= count as f64)
    })
    .await;
    assert!(open >= count as f64);
    let started = std::time::Instant::now();
    let health = s.http.get(s.collector.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ack = s.push(TOKEN_A, "a", 1, vec![sample("web", now_ms(), true)]).await;
    assert_eq!(ack["accepted"], 1);
    // Answered while the idle sockets were still open (before the 6 s header timeout freed
    // them), not after.
    assert!(started.elapsed() < Duration::from_secs(5), "answered while the sockets idle: {:?}", started.elapsed());
    // The collector hangs up on each idle socket: a read sees the end of the stream.
    let closed = tokio::task::spawn_blocking(move || {
        idle.into_iter()
            .filter(|mut sock| {
                sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut buf = [0u8; 256];
                // hyper may answer 408 before closing; either way the stream ends.
                loop {
                    match sock.read(&mut buf) {
                        Ok(0) => return true,
                        Ok(_) => continue,
                        Err(e) => return e.kind() == std::io::ErrorKind::ConnectionReset,
                    }
                }
            })
            .count()
    })
    .await
    .unwrap();
    assert_eq!(closed, count, "every idle socket closed by the collector");
}

/// Beyond `max_connections`, new connections are closed at once and counted.
#[tokio::test]
async fn connections_beyond_the_cap_are_closed_and_counted() {
    let s = setup("max_connections = 50\nrequest_header_timeout = \"1s\"").await;
    let addr = s.collector.addr;
    let idle = tokio::task::spawn_blocking(move || {
        (0..80).map(|_| std::net::TcpStream::connect(addr).unwrap()).collect::<Vec<_>>()
    })
    .await
    .unwrap();
    // Once the idle ones are closed by the header timeout, the collector serves again.
    // Meanwhile a scrape may itself be refused: that is the cap at work.
    let refused = wait_for("refusals counted", Duration::from_secs(10), || async {
        let resp = s.http.get(s.collector.url("/metrics")).bearer_auth(vakt_tests::READ_TOKEN).send().await.ok()?;
        vakt_tests::metric(&resp.text().await.ok()?, "vakt_http_connections_refused_total").filter(|n| *n >= 30.0)
    })
    .await;
    assert!(refused >= 30.0);
    drop(idle);
    let log = s.collector.proc.log_text();
    assert!(log.contains("connection limit reached"), "{log}");
}

/// An agent whose clock stands an hour behind: its results look an hour old, but they keep
/// arriving. Its check stays up (not flipping to unknown on every evaluation into a false
/// "flapping" incident), and a real outage is detected and opened as one incident.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stepped_back_clock_neither_flaps_nor_hides_an_outage() {
    let Some(faketime) = vakt_tests::faketime_lib() else { return };
    let dir = tempfile::tempdir().unwrap();
    let target = vakt_tests::Target::start().await;
    let addr = vakt_tests::loopback_addr();
    let token = "behind-agent-token-0123456789";
    let cfg = dir.path().join("collector.toml");
    std::fs::write(
        &cfg,
        format!(
            "flap_threshold = 4\nflap_window = \"10m\"\n{}",
            vakt_tests::edge_collector_toml(addr, "data", token, &[("web", target.addr)], "")
        ),
    )
    .unwrap();
    let collector = Collector::start(&cfg, addr, &dir.path().join("collector.log")).await;
    let agent_cfg = vakt_tests::agent_toml(dir.path(), "edge", addr, token, "");
    let offset = dir.path().join("clock-offset");
    std::fs::write(&offset, "-1h\n").unwrap();
    let _agent = vakt_tests::spawn_agent_with_clock(
        faketime,
        &offset,
        &["run", "--config", agent_cfg.to_str().unwrap()],
        &dir.path().join("agent.log"),
    );
    collector.wait_up("web").await;
    // The evaluator runs every second; its stale rule (30 s for this check) would have fired on
    // results stamped an hour ago within the first tick.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(collector.metric("vakt_check_up{check=\"web\"}").await, Some(1.0));
    let text = collector.proc.log_text();
    assert!(!text.contains("no recent results"), "never taken for silent:\n{text}");

    target.set_status(503);
    wait_for("the outage detected", Duration::from_secs(20), || async {
        let open = collector.get_json("/api/v1/incidents?status=open").await;
        let keys: Vec<String> =
            open.as_array()?.iter().map(|i| i["dedup_key"].as_str().unwrap_or("").to_string()).collect();
        (!keys.is_empty()).then_some(keys)
    })
    .await;
    let all = collector.get_json("/api/v1/incidents").await;
    let keys: Vec<&str> = all.as_array().unwrap().iter().map(|i| i["dedup_key"].as_str().unwrap()).collect();
    assert_eq!(keys, vec!["check:web"], "one incident for the outage, no flapping: {all}");
}

const READER: &str = "scoped-reader-token-0123456789";
const ONCALL: &str = "scoped-oncall-token-0123456789";
const ADMIN: &str = "scoped-admin-token-0123456789";

fn scoped_tokens() -> String {
    format!(
        "[api_tokens.reader]\ntoken_hash = \"{}\"\nscope = \"read\"\n\
         [api_tokens.oncall]\ntoken_hash = \"{}\"\n\
         [api_tokens.admin]\ntoken_hash = \"{}\"\nscope = \"admin\"\n\
         [services.shop]\nchecks = [\"web\"]\n",
        token_hash(READER),
        token_hash(ONCALL),
        token_hash(ADMIN)
    )
}

/// Each write needs its scope, and every write records the token that made it; a name given in
/// the request is shown as on whose behalf, never in its place.
#[tokio::test]
async fn tokens_act_within_their_scope_and_every_write_names_the_token() {
    let s = setup(&scoped_tokens()).await;
    s.push(TOKEN_A, "a", 1, vec![sample("web", now_ms(), false)]).await;
    let id = s.collector.get_json("/api/v1/incidents?status=open").await[0]["id"].as_i64().unwrap();
    let post = |token: &'static str, path: String, body: serde_json::Value| {
        let req = s.http.post(s.collector.url(&path)).bearer_auth(token).json(&body);
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<serde_json::Value>().await.unwrap_or_default())
        }
    };
    // A read-only token reads but cannot act.
    let read = s.http.get(s.collector.url("/api/v1/incidents")).bearer_auth(READER).send().await.unwrap();
    assert_eq!(read.status(), 200);
    let (status, err) = post(READER, format!("/api/v1/incidents/{id}/ack"), serde_json::json!({})).await;
    assert_eq!(status, 403);
    assert_eq!(
        err["error"],
        format!("token \"reader\" has scope read; POST /api/v1/incidents/{id}/ack needs scope oncall")
    );
    // On-call acknowledges, notes and silences, as itself, whatever name it gives.
    let (status, acked) =
        post(ONCALL, format!("/api/v1/incidents/{id}/ack"), serde_json::json!({"by": "mallory"})).await;
    assert_eq!(status, 200, "{acked}");
    assert_eq!(acked["acknowledged_by"], "oncall on behalf of mallory");
    let (status, noted) =
        post(ONCALL, format!("/api/v1/incidents/{id}/notes"), serde_json::json!({"text": "looking"})).await;
    assert_eq!(status, 200);
    let last = noted["timeline"].as_array().unwrap().last().unwrap().clone();
    assert!(last["message"].as_str().unwrap().contains("oncall"), "{last}");
    let long = "x".repeat(5000);
    let (status, err) = post(ONCALL, format!("/api/v1/incidents/{id}/notes"), serde_json::json!({"text": long})).await;
    assert_eq!((status, err["error"].as_str()), (400, Some("the note is longer than 4096 bytes")));
    let ends = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1)).to_string();
    let (status, _) = post(
        ONCALL,
        "/api/v1/silences".into(),
        serde_json::json!({"ends_at": ends, "comment": "db work", "author": "root"}),
    )
    .await;
    assert_eq!(status, 201);
    let silences = s.collector.get_json("/api/v1/silences").await;
    assert_eq!(silences[0]["author"], "oncall on behalf of root");
    // Maintenance is an admin's.
    let start = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1)).to_string();
    let end = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(2)).to_string();
    let window = serde_json::json!({"name": "db", "start": start, "end": end});
    let (status, _) = post(ONCALL, "/api/v1/maintenance".into(), window.clone()).await;
    assert_eq!(status, 403);
    let (status, _) = post(ADMIN, "/api/v1/maintenance".into(), window).await;
    assert_eq!(status, 201);
    let listed = s.collector.get_json("/api/v1/maintenance").await;
    assert_eq!(listed[0]["created"]["by"], "admin");
    // Resolving by hand is recorded too.
    let (status, resolved) = post(ONCALL, format!("/api/v1/incidents/{id}/resolve"), serde_json::json!({})).await;
    assert_eq!(status, 200);
    let last = resolved["timeline"].as_array().unwrap().last().unwrap().clone();
    assert!(last["message"].as_str().unwrap().contains("oncall"), "{last}");
}

/// A maintenance window made after an outage would erase it from the SLA: refused unless an
/// admin says it is retroactive on purpose; the report then names who made it, when, and that
/// it was retroactive.
#[tokio::test]
async fn retroactive_maintenance_is_refused_unless_an_admin_says_so_and_the_report_shows_it() {
    let s =
        setup(&format!("{}[slos.shop-up]\nservice = \"shop\"\nobjective = 99.9\nwindow = \"30d\"\n", scoped_tokens()))
            .await;
    let now = jiff::Timestamp::now();
    let window = serde_json::json!({
        "name": "cover-up",
        "start": (now - jiff::SignedDuration::from_hours(3)).to_string(),
        "end": (now - jiff::SignedDuration::from_hours(1)).to_string(),
    });
    let post = |token: &str, body: &serde_json::Value| {
        s.http.post(s.collector.url("/api/v1/maintenance")).bearer_auth(token).json(body).send()
    };
    let refused = post(ADMIN, &window).await.unwrap();
    assert_eq!(refused.status(), 400);
    let why: serde_json::Value = refused.json().await.unwrap();
    assert!(why["error"].as_str().unwrap().starts_with("the window starts 3 h ago"), "{why}");
    let mut on_purpose = window.clone();
    on_purpose["retroactive"] = true.into();
    assert_eq!(post(ONCALL, &on_purpose).await.unwrap().status(), 403, "not an on-call token's decision");
    assert_eq!(post(ADMIN, &on_purpose).await.unwrap().status(), 201);
    let month = now.to_zoned(jiff::tz::TimeZone::UTC).strftime("%Y-%m").to_string();
    let report = s.collector.get_json(&format!("/api/v1/reports/sla?service=shop&period={month}")).await;
    let m = &report["maintenance"][0];
    assert_eq!((m["created_by"].as_str(), m["retroactive"].as_bool()), (Some("admin"), Some(true)), "{report}");
    assert!(m["created_at"].as_str().is_some());
    let html = s.collector.get_text(&format!("/api/v1/reports/sla?service=shop&period={month}&format=html")).await;
    assert!(html.contains("(retroactive)"), "{html}");
}

/// Pages cannot be framed by another site (clickjacking the acknowledge button), sniffed into
/// another type, or made to run or load anything from elsewhere.
#[tokio::test]
async fn every_answer_forbids_framing_sniffing_and_foreign_content() {
    let s = setup("").await;
    for (path, token) in [("/", None), ("/incidents", Some(vakt_tests::READ_TOKEN)), ("/api/v1/ingest", None)] {
        let mut req = s.http.get(s.collector.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        let h = r.headers();
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'") && csp.starts_with("default-src 'none'"), "{path}: {csp}");
    }
}
