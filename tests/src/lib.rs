//! Harness for end-to-end tests: the real `vakt-collector` and `vakt-agent` binaries, temp
//! directories, loopback ports, and small real peers (an HTTP server the test controls).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The directory holding the workspace's binaries: `target/<profile>/`, next to this test's
/// own `deps/` directory, unless `VAKT_BIN_DIR` says otherwise.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("VAKT_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("test binary has a directory");
    deps.parent().expect("deps has a parent").to_path_buf()
}

/// Builds the workspace's binaries once per test process, so a test never runs a stale binary
/// (`cargo test -p vakt-tests` alone would not rebuild them). A no-op after a workspace build.
fn ensure_built() {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    BUILT.get_or_init(|| {
        if std::env::var_os("VAKT_BIN_DIR").is_some() {
            return;
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--bins", "--workspace", "--quiet"]);
        if bin_dir().ends_with("release") {
            cmd.arg("--release");
        }
        let status = cmd.current_dir(env!("CARGO_MANIFEST_DIR")).status().expect("running cargo build");
        assert!(status.success(), "cargo build --bins failed");
    });
}

pub fn bin(name: &str) -> PathBuf {
    ensure_built();
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace first (cargo test --workspace builds it)",
        path.display()
    );
    path
}

/// A loopback address with a port that was free a moment ago.
pub fn loopback_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after `timeout` naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A child process killed when dropped; its stderr goes to a log file shown on failure.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(bin_name: &str, args: &[&str], log: &Path) -> Proc {
        Self::spawn_exe(&bin(bin_name), args, log)
    }

    pub fn spawn_exe(exe: &Path, args: &[&str], log: &Path) -> Proc {
        let file = std::fs::File::create(log).unwrap();
        let child = Command::new(exe)
            .args(args)
            .env("VAKT_LOG", "info,vakt_agent=debug")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", exe.display()));
        Proc { child, log: log.to_path_buf() }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// SIGKILL: no chance to clean up, as in a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends a signal with the `kill` command (no unsafe code here).
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill").args([&format!("-{sig}"), &self.pid().to_string()]).status().unwrap();
        assert!(status.success(), "kill -{sig} failed");
    }

    /// Waits for the process to exit; panics after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "process did not exit within {timeout:?}; log:\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- {} ----\n{}", self.log.display(), self.log_text());
        }
    }
}

/// Runs a binary to completion: (exit code, stdout, stderr).
pub fn run_bin(bin_name: &str, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    use std::io::Write;
    let mut child = Command::new(bin(bin_name))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `sha256:` hash of a token, as `vakt-collector hash-token --stdin` prints it.
pub fn token_hash(token: &str) -> String {
    let (code, out, err) = run_bin("vakt-collector", &["hash-token", "--stdin"], Some(token));
    assert_eq!(code, 0, "hash-token failed: {err}");
    out.trim().to_string()
}

/// The value of one sample in Prometheus text format: `name{labels}` exactly as exposed.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')).and_then(|v| v.trim().parse().ok())
    })
}

/// A real collector process on a loopback port with its own data directory.
pub struct Collector {
    pub proc: Proc,
    pub addr: SocketAddr,
    pub config: PathBuf,
}

/// The API token the harness gives every collector it starts (as `[api_tokens.vakt-tests]`),
/// so a test reads the API and the pages as an operator with a token would.
pub const READ_TOKEN: &str = "vakt-tests-reader-token-0123456789abcdef";
pub const READ_TOKEN_NAME: &str = "vakt-tests";

/// Adds the harness's API token to a collector config, once.
pub fn grant_reader(config: &Path) {
    let text = std::fs::read_to_string(config).expect("read collector config");
    let table = format!("[api_tokens.{READ_TOKEN_NAME}]");
    if !text.contains(&table) {
        let added = format!("{text}\n{table}\ntoken_hash = \"{}\"\n", token_hash(READ_TOKEN));
        std::fs::write(config, added).expect("write collector config");
    }
}

/// A GET with the harness's API token.
pub async fn get_authorized(url: &str) -> reqwest::Response {
    reqwest::Client::new().get(url).bearer_auth(READ_TOKEN).send().await.expect("GET")
}

impl Collector {
    /// Starts a collector on `config` (after adding the harness's API token to it).
    pub async fn start(config: &Path, addr: SocketAddr, log: &Path) -> Collector {
        grant_reader(config);
        let proc = Proc::spawn("vakt-collector", &["run", "--config", config.to_str().unwrap()], log);
        Collector::adopt(proc, config, addr).await
    }

    /// Starts a collector on `config` with `env` added to its environment (secrets given as
    /// `{ env = "..." }`), logging to `log`.
    pub async fn start_with_env(config: &Path, addr: SocketAddr, log: &Path, env: &[(&str, &str)]) -> Collector {
        grant_reader(config);
        let child = Command::new(bin("vakt-collector"))
            .args(["run", "--config", config.to_str().unwrap()])
            .envs(env.iter().copied())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        Collector::adopt(Proc { child, log: log.to_path_buf() }, config, addr).await
    }

    /// Wraps an already spawned collector process and waits for it to serve.
    pub async fn adopt(proc: Proc, config: &Path, addr: SocketAddr) -> Collector {
        let c = Collector { proc, addr, config: config.to_path_buf() };
        let client = reqwest::Client::new();
        let url = c.url("/healthz");
        wait_for("collector /healthz", Duration::from_secs(20), || {
            let client = client.clone();
            let url = url.clone();
            async move { client.get(&url).send().await.ok().filter(|r| r.status().is_success()).map(|_| ()) }
        })
        .await;
        c
    }

    /// Waits until the check is up (its `vakt_check_up` is 1).
    pub async fn wait_up(&self, check: &str) {
        let series = format!("vakt_check_up{{check=\"{check}\"}}");
        wait_for(&format!("{check} up"), Duration::from_secs(30), || {
            let series = series.clone();
            async move { (self.metric(&series).await == Some(1.0)).then_some(()) }
        })
        .await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn get_text(&self, path: &str) -> String {
        get_authorized(&self.url(path)).await.text().await.unwrap()
    }

    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        get_authorized(&self.url(path)).await.json().await.unwrap()
    }

    pub async fn metric_owned(&self, series: String) -> Option<f64> {
        self.metric(&series).await
    }

    pub async fn metric(&self, series: &str) -> Option<f64> {
        metric(&self.get_text("/metrics").await, series)
    }
}

/// An HTTP server the test controls: it answers every request with the current status.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    status: Arc<AtomicU16>,
    hits: Arc<AtomicU64>,
    failures: Arc<AtomicU64>,
}

impl Target {
    pub async fn start() -> Target {
        let status = Arc::new(AtomicU16::new(200));
        let hits = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(AtomicU64::new(0));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (s, h, f) = (status.clone(), hits.clone(), failures.clone());
        let app = axum::Router::new().fallback(move || {
            let (s, h, f) = (s.clone(), h.clone(), f.clone());
            async move {
                let code = s.load(Ordering::SeqCst);
                h.fetch_add(1, Ordering::SeqCst);
                if code >= 400 {
                    f.fetch_add(1, Ordering::SeqCst);
                }
                (axum::http::StatusCode::from_u16(code).unwrap(), "target says hello")
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Target { addr, status, hits, failures }
    }

    pub fn set_status(&self, code: u16) {
        self.status.store(code, Ordering::SeqCst);
    }

    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }

    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::SeqCst)
    }
}

/// What /proc says of a process: resident and peak resident memory (KiB), CPU seconds used.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcStats {
    pub rss_kib: u64,
    /// Resident anonymous memory (heap, stacks): what the process itself allocated.
    pub anon_kib: u64,
    pub threads: u64,
    pub peak_rss_kib: u64,
    pub cpu_seconds: f64,
}

pub fn proc_stats(pid: u32) -> ProcStats {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ") ".
    let after = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = [11, 12].iter().filter_map(|i| fields.get(*i)?.parse::<u64>().ok()).sum();
    let hz = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse::<f64>().ok())
        .unwrap_or(100.0);
    ProcStats {
        rss_kib: kib("VmRSS:"),
        anon_kib: kib("RssAnon:"),
        threads: kib("Threads:"),
        peak_rss_kib: kib("VmHWM:"),
        cpu_seconds: ticks as f64 / hz,
    }
}

/// The agent as shipped: `cargo build-agent` (see `.cargo/config.toml`): the `agent` profile
/// (size-optimised, LTO, panic=abort), linked statically.
pub fn shipped_agent() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .arg("build-agent")
        .env("CARGO_TERM_QUIET", "true")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("running cargo build-agent");
    assert!(status.success(), "cargo build-agent failed");
    let target = bin_dir().parent().expect("target directory").to_path_buf();
    target.join("agent").join("vakt-agent")
}

/// A collector.toml for the usual end-to-end scenario: listening on `addr` with its data in
/// `data_dir`, the agent `edge` holding `token`, and for each `(id, target)` an HTTP check of
/// `http://target/` that `edge` runs every 100 ms, each with the `check_extra` lines.
pub fn edge_collector_toml(
    addr: SocketAddr,
    data_dir: &str,
    token: &str,
    checks: &[(&str, SocketAddr)],
    check_extra: &str,
) -> String {
    let mut text = format!(
        "listen = \"{addr}\"\ndata_dir = \"{data_dir}\"\n[agents.edge]\ntoken_hash = \"{}\"\n",
        token_hash(token)
    );
    for (id, target) in checks {
        text.push_str(&format!(
            "[checks.{id}]\nkind = \"http\"\ntarget = \"http://{target}/\"\ninterval = \"100ms\"\nagents = [\"edge\"]\n{check_extra}"
        ));
    }
    text
}

/// Writes `agent.toml` in `dir` for an agent pushing to `collector` every 100 ms, with `extra`
/// lines appended; returns its path.
pub fn agent_toml(dir: &Path, name: &str, collector: SocketAddr, token: &str, extra: &str) -> PathBuf {
    let path = dir.join("agent.toml");
    std::fs::write(
        &path,
        format!("name = \"{name}\"\ncollector = \"http://{collector}\"\ntoken = \"{token}\"\nspool_dir = \"agent\"\npush_interval = \"100ms\"\n{extra}"),
    )
    .unwrap();
    path
}

/// A private CA with a server certificate for `localhost` and `127.0.0.1`, and a client
/// certificate, written as PEM files: what a test needs for TLS and mutual TLS.
pub struct TestPki {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl TestPki {
    /// Issues the certificates into `dir`, named with `prefix` (so several can live side by side).
    pub fn issue(dir: &Path, prefix: &str) -> TestPki {
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, format!("Vakt test CA {prefix}"));
        let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = rcgen::Issuer::new(ca_params, &ca_key);
        let leaf = |names: Vec<String>| {
            let key = rcgen::KeyPair::generate().expect("key");
            let params = rcgen::CertificateParams::new(names).expect("params");
            let cert = params.signed_by(&key, &issuer).expect("certificate");
            (cert.pem(), key.serialize_pem())
        };
        let (server_pem, server_key) = leaf(vec!["localhost".into(), "127.0.0.1".into(), "::1".into()]);
        let (client_pem, client_key) = leaf(vec!["agent.vakt.test".into()]);
        let write = |name: &str, text: &str| {
            let path = dir.join(format!("{prefix}-{name}"));
            std::fs::write(&path, text).expect("write PEM");
            path
        };
        TestPki {
            ca: write("ca.pem", &ca.pem()),
            cert: write("cert.pem", &server_pem),
            key: write("key.pem", &server_key),
            client_cert: write("client-cert.pem", &client_pem),
            client_key: write("client-key.pem", &client_key),
        }
    }
}

/// A numeric field of the agent's "agent stopped" log line (e.g. `probes_run`).
pub fn exit_summary(log: &Path, field: &str) -> u64 {
    let text = std::fs::read_to_string(log).unwrap();
    let line =
        text.lines().find(|l| l.contains("agent stopped")).unwrap_or_else(|| panic!("no exit summary in\n{text}"));
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{field}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {line:?}"))
}

/// Whether this machine lets a test mount a private tmpfs (`unshare -m`): a kernel or container
/// permission, not a package CI could install. Says so when it does not.
pub fn mount_namespaces_allowed() -> bool {
    let probe = tempfile::tempdir().unwrap();
    let ok = Command::new("unshare")
        .args(["-m", "sh", "-c", &format!("mount -t tmpfs -o size=64k tmpfs '{}'", probe.path().display())])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipping: this machine does not allow a private tmpfs mount (unshare -m)");
    }
    ok
}

/// libfaketime's library (Debian's `faketime`), to move a process's wall clock. `None` (and a
/// note) when it is missing; under `CI=true` a missing library fails the test.
pub fn faketime_lib() -> Option<&'static str> {
    const LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";
    if Path::new(LIB).exists() {
        return Some(LIB);
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "libfaketime is missing: .ci/run must install faketime");
    eprintln!("skipping: libfaketime is not installed");
    None
}

/// The agent binary with its wall clock moved by libfaketime as `offset_file` says ("+0",
/// "-1h", "+2m"; re-read on every clock call, so a test can move it while the agent runs).
pub fn spawn_agent_with_clock(faketime: &str, offset_file: &Path, args: &[&str], log: &Path) -> Proc {
    let child = Command::new(bin("vakt-agent"))
        .args(args)
        .env("VAKT_LOG", "info,vakt_agent=debug")
        .env("LD_PRELOAD", faketime)
        .env("FAKETIME_TIMESTAMP_FILE", offset_file)
        .env("FAKETIME_NO_CACHE", "1")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    Proc { child, log: log.to_path_buf() }
}

/// A webhook receiver on loopback that keeps every JSON body posted to it: who got paged.
pub struct Hook {
    pub addr: SocketAddr,
    pub received: Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
}

impl Hook {
    pub async fn start() -> Hook {
        let received: Arc<std::sync::Mutex<Vec<serde_json::Value>>> = Arc::default();
        let sink = received.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(serde_json::from_slice(&body).unwrap_or_default());
                axum::http::StatusCode::OK
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Hook { addr, received }
    }

    pub fn received(&self) -> Vec<serde_json::Value> {
        self.received.lock().unwrap().clone()
    }
}

/// A PostgreSQL server of a test's own (Debian's binaries): initdb in a temp dir owned by the
/// `postgres` user (initdb refuses root), its own loopback port and socket directory, trust
/// authentication for the user `vakt`, no fsync; stopped on drop.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

/// PostgreSQL's server binaries: the newest under /usr/lib/postgresql, else `pg_config`'s.
fn pg_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path().join("bin"))).filter(|p| p.join("initdb").exists()).collect())
        .unwrap_or_default();
    versions.sort_by_key(|p| {
        p.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()).and_then(|v| v.parse::<u32>().ok())
    });
    if let Some(newest) = versions.pop() {
        return newest;
    }
    let out = Command::new("pg_config").arg("--bindir").output();
    match out {
        Ok(o) if o.status.success() => PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
        _ => {
            panic!("PostgreSQL's server is not installed (Debian: apt-get install postgresql-15); .ci/run installs it")
        }
    }
}

impl Postgres {
    /// Starts one (initdb, then pg_ctl start); as root, as the `postgres` user.
    pub fn start() -> Postgres {
        Postgres::start_with("")
    }

    /// Starts one with more server options (`-c name=value ...`).
    pub fn start_with(more_options: &str) -> Postgres {
        let bin = pg_bin();
        let dir = tempfile::tempdir().unwrap();
        if is_root() {
            // initdb refuses root: the cluster belongs to the postgres user.
            let id = |flag: &str| -> u32 {
                let o = Command::new("id").args([flag, "postgres"]).output().unwrap();
                String::from_utf8_lossy(&o.stdout).trim().parse().expect("a postgres user")
            };
            std::os::unix::fs::chown(dir.path(), Some(id("-u")), Some(id("-g"))).unwrap();
        }
        let mut server = Postgres { dir, bin, port: free_port() };
        let data = server.dir.path().join("data");
        server.run(
            "initdb",
            &["-D", data.to_str().unwrap(), "-U", "vakt", "-A", "trust", "--no-sync", "-E", "UTF8", "--locale=C"],
        );
        let log = server.dir.path().join("server.log");
        // A port free a moment ago may be taken by the time the server binds: try another.
        let mut attempts = 0;
        loop {
            let options = format!(
                "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c synchronous_commit=off -c full_page_writes=off {more_options}",
                server.port,
                server.dir.path().display()
            );
            let args =
                ["-D", data.to_str().unwrap(), "-l", log.to_str().unwrap(), "-w", "-t", "60", "-o", &options, "start"];
            match server.try_run("pg_ctl", &args) {
                Ok(()) => return server,
                Err(e) if attempts < 3 => {
                    attempts += 1;
                    eprintln!("PostgreSQL did not start on port {} ({e}); trying another", server.port);
                    server.port = free_port();
                }
                Err(e) => panic!("{e}"),
            }
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        if let Err(e) = self.try_run(program, args) {
            panic!("{e}");
        }
    }

    fn try_run(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let path = self.bin.join(program);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        let out = cmd.args(args).current_dir(self.dir.path()).output().map_err(|e| format!("{program}: {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        Err(format!(
            "{program} failed: {}{}{log}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }

    /// The URL of its `postgres` database as the trusted user `vakt`.
    pub fn url(&self) -> String {
        format!("postgres://vakt@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        // Never a panic here (a failing test is unwinding): say it and go on.
        if let Err(e) = self.try_run("pg_ctl", &["-D", data.to_str().unwrap_or(""), "-m", "immediate", "-w", "stop"]) {
            eprintln!("stopping the test's PostgreSQL: {e}");
        }
    }
}

/// Debian's Python, which has the test peers' modules (aiosmtpd, feedparser).
pub const PYTHON: &str = "/usr/bin/python3";

/// A real SMTP server on loopback (aiosmtpd, `support/smtp_sink.py`): every mail it accepts is
/// one JSON line in `out`.
pub struct SmtpSink {
    pub child: std::process::Child,
    pub out: PathBuf,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether python3-aiosmtpd is installed (under CI it must be).
pub fn aiosmtpd_available() -> bool {
    let ok = std::process::Command::new(PYTHON).args(["-c", "import aiosmtpd"]).status().is_ok_and(|s| s.success());
    if !ok {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "python3-aiosmtpd is missing: .ci/run must install it");
        eprintln!("skipping: python3-aiosmtpd is not installed");
    }
    ok
}

pub fn start_sink(port: u16, out: &Path) -> SmtpSink {
    use std::io::BufRead;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/support/smtp_sink.py");
    let mut child = std::process::Command::new(PYTHON)
        .args([script, &port.to_string(), out.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    SmtpSink { child, out: out.to_path_buf() }
}

/// The mails the sink has accepted so far.
pub fn mails(sink: &SmtpSink) -> Vec<serde_json::Value> {
    std::fs::read_to_string(&sink.out).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The sink with TLS or login flags (see smtp_sink.py).
pub fn start_sink_with(port: u16, out: &Path, flags: &[&str]) -> SmtpSink {
    use std::io::BufRead;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/support/smtp_sink.py");
    let mut args = vec![script.to_string(), port.to_string(), out.to_str().unwrap().to_string()];
    args.extend(flags.iter().map(|f| f.to_string()));
    let mut child =
        std::process::Command::new(PYTHON).args(&args).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    SmtpSink { child, out: out.to_path_buf() }
}
