//! Every probe kind against real peers on loopback: HTTP and HTTPS servers with certificates
//! made here, TCP listeners, dnsmasq, real Monitoring Plugins, the host itself, ICMP to ::1 and
//! 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use vakt_config::wire::{CheckSpec, Sample};
use vakt_config::CheckKind;

const PLUGINS: &str = "/usr/lib/nagios/plugins";

/// True when the tool exists; under CI=true a missing tool fails the test instead of skipping.
fn tool(path: &str) -> bool {
    if Path::new(path).exists() {
        return true;
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{path} is missing: .ci/run must install it");
    eprintln!("skipping: {path} is not installed");
    false
}

fn spec(kind: CheckKind, target: &str) -> CheckSpec {
    CheckSpec::new("t", kind, target, 3_000)
}

async fn run(spec: &CheckSpec) -> Sample {
    vakt_agent::install_crypto_provider();
    vakt_agent::probe_once(spec).await.unwrap()
}

fn value(s: &Sample, name: &str) -> f64 {
    *s.values.get(name).unwrap_or_else(|| panic!("no value {name} in {:?}", s.values))
}

// ---------------------------------------------------------------- a tiny HTTP server

/// Answers by path: /ok 200 "hello vakt", /err 500, /redirect 302 to /ok, /slow 200 after 300ms.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut s: S) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head);
    let path = text.split_whitespace().nth(1).unwrap_or("/").to_string();
    let (status, extra, body) = match path.as_str() {
        "/ok" => ("200 OK", String::new(), "hello vakt, build 42"),
        "/redirect" => ("302 Found", "location: /ok\r\n".to_string(), ""),
        "/json" => (
            "200 OK",
            "content-type: application/json; charset=utf-8\r\n".to_string(),
            r#"{"status":"degraded","queue":{"depth":1500},"checks":[{"name":"db","ok":true}]}"#,
        ),
        "/slow" => {
            tokio::time::sleep(Duration::from_millis(300)).await;
            ("200 OK", String::new(), "slow")
        }
        _ => ("500 Internal Server Error", String::new(), "broken"),
    };
    let response =
        format!("HTTP/1.1 {status}\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
    let _ = s.write_all(response.as_bytes()).await;
    let _ = s.shutdown().await;
}

async fn http_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(answer(s));
        }
    });
    addr
}

/// A CA and a server certificate for 127.0.0.1/localhost that expires in `days`.
struct Pki {
    ca_pem: String,
    chain: Vec<tokio_rustls::rustls::pki_types::CertificateDer<'static>>,
    key: tokio_rustls::rustls::pki_types::PrivateKeyDer<'static>,
}

fn pki(days: i64) -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "Vakt test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let expiry = jiff::Timestamp::now().checked_add(jiff::SignedDuration::from_hours(24 * days)).unwrap();
    let date = expiry.to_zoned(jiff::tz::TimeZone::UTC).date();
    params.not_after = rcgen::date_time_ymd(i32::from(date.year()), date.month() as u8, date.day() as u8);
    let issuer = rcgen::Issuer::new(ca_params, &ca_key);
    let cert = params.signed_by(&key, &issuer).unwrap();
    Pki {
        ca_pem: ca.pem(),
        chain: vec![cert.der().clone()],
        key: tokio_rustls::rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
    }
}

async fn tls_server(pki: &Pki, https: bool) -> SocketAddr {
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(pki.chain.clone(), pki.key.clone_key())
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(s).await {
                    if https {
                        answer(tls).await;
                    } else {
                        let _ = tls.write_all(b"* OK IMAP ready\r\n").await;
                        let _ = tls.shutdown().await;
                    }
                }
            });
        }
    });
    addr
}

// ---------------------------------------------------------------- http

#[tokio::test]
async fn http_status_body_regex_and_redirects() {
    let addr = http_server().await;
    let ok = run(&spec(CheckKind::Http, &format!("http://{addr}/ok"))).await;
    assert!(ok.success && !ok.degraded, "{ok:?}");
    assert_eq!(value(&ok, "status_code"), 200.0);
    assert_eq!(value(&ok, "body_bytes"), 20.0);
    assert!(value(&ok, "time_to_first_byte_seconds") <= ok.latency_seconds.unwrap());

    let err = run(&spec(CheckKind::Http, &format!("http://{addr}/err"))).await;
    assert!(!err.success);
    assert_eq!(err.error.as_deref(), Some("status 500"));
    let mut expect_500 = spec(CheckKind::Http, &format!("http://{addr}/err"));
    expect_500.options.expect_status = vec![500];
    assert!(run(&expect_500).await.success);

    let mut body = spec(CheckKind::Http, &format!("http://{addr}/ok"));
    body.options.body_contains = Some("hello".into());
    body.options.body_regex = Some(r"build \d+$".into());
    assert!(run(&body).await.success);
    body.options.body_regex = Some(r"build [a-z]+".into());
    let no_match = run(&body).await;
    assert_eq!(no_match.error.as_deref(), Some("body does not match /build [a-z]+/"));

    let followed = run(&spec(CheckKind::Http, &format!("http://{addr}/redirect"))).await;
    assert!(followed.success, "redirects are followed by default: {followed:?}");
    let mut not_followed = spec(CheckKind::Http, &format!("http://{addr}/redirect"));
    not_followed.options.follow_redirects = Some(false);
    not_followed.options.expect_status = vec![302];
    assert!(run(&not_followed).await.success);
}

/// JSON assertions read the value at a path and compare it; header assertions look for text
/// in a header. The failure says what was found.
#[tokio::test]
async fn http_json_and_header_assertions_say_what_they_found() {
    let addr = http_server().await;
    let check = |path: &str, expect: Option<&str>| {
        let mut s = spec(CheckKind::Http, &format!("http://{addr}/json"));
        s.options.json_path = Some(path.into());
        s.options.json_expect = expect.map(String::from);
        s
    };
    let ok = run(&check("$.checks[0].ok", Some("true"))).await;
    assert!(ok.success, "{ok:?}");
    let depth = run(&check("$.queue.depth", Some("< 1000"))).await;
    assert!(!depth.success);
    assert_eq!(depth.error.as_deref(), Some("$.queue.depth is 1500, expected < 1000"));
    assert_eq!(value(&depth, "json_value"), 1500.0, "a number found is reported");
    let status = run(&check("$.status", Some("ok"))).await;
    assert_eq!(status.error.as_deref(), Some("$.status is \"degraded\", expected == \"ok\""));
    let missing = run(&check("$.version", None)).await;
    assert_eq!(missing.error.as_deref(), Some("$.version is not in the body"));
    let mut html = check("$.status", None);
    html.target = format!("http://{addr}/ok");
    assert!(run(&html).await.error.unwrap().starts_with("body is not JSON"));

    let mut headers = spec(CheckKind::Http, &format!("http://{addr}/json"));
    headers.options.expect_headers = [("Content-Type".to_string(), "application/json".to_string())].into();
    assert!(run(&headers).await.success, "names are case-insensitive");
    headers.options.expect_headers = [("content-type".to_string(), "text/html".to_string())].into();
    assert_eq!(
        run(&headers).await.error.as_deref(),
        Some("header content-type is \"application/json; charset=utf-8\", expected it to contain \"text/html\"")
    );
    headers.options.expect_headers = [("x-build".to_string(), "42".to_string())].into();
    assert_eq!(run(&headers).await.error.as_deref(), Some("no x-build header"));
}

#[tokio::test]
async fn http_slow_answers_are_degraded_and_timeouts_fail() {
    let addr = http_server().await;
    let mut slow = spec(CheckKind::Http, &format!("http://{addr}/slow"));
    slow.options.degraded_latency_ms = Some(100);
    let s = run(&slow).await;
    assert!(s.success && s.degraded, "{s:?}");
    assert!(s.error.as_deref().unwrap().starts_with("slow: "), "{s:?}");
    slow.timeout_ms = 100;
    let t = run(&slow).await;
    assert!(!t.success);
    assert_eq!(t.error.as_deref(), Some("timed out after 100ms"), "the timeout is named");
    // A closed port fails fast, with the reason.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let c = run(&spec(CheckKind::Http, &format!("http://{closed}/"))).await;
    assert!(c.error.as_deref().unwrap().contains("Connection refused"), "{c:?}");
}

#[tokio::test]
async fn https_reports_certificate_expiry_and_verifies_the_chain() {
    let pki = pki(10);
    let addr = tls_server(&pki, true).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();
    let url = format!("https://localhost:{}/ok", addr.port());

    // Unknown issuer: refused.
    let untrusted = run(&spec(CheckKind::Http, &url)).await;
    assert!(!untrusted.success);
    assert!(untrusted.error.as_deref().unwrap().to_lowercase().contains("certificate"), "{untrusted:?}");

    let mut trusted = spec(CheckKind::Http, &url);
    trusted.options.ca_file = Some(ca_file.clone());
    let ok = run(&trusted).await;
    assert!(ok.success, "{ok:?}");
    let days = value(&ok, "cert_days_left");
    assert!((8.5..=10.5).contains(&days), "{days}");

    trusted.options.cert_min_days = Some(14);
    let expiring = run(&trusted).await;
    assert!(!expiring.success);
    assert!(expiring.error.as_deref().unwrap().contains("(cert_min_days is 14)"), "{expiring:?}");

    let mut unverified = spec(CheckKind::Http, &url);
    unverified.options.tls_verify = Some(false);
    let u = run(&unverified).await;
    assert!(u.success, "{u:?}");
    assert!(u.values.contains_key("cert_days_left"));
}

// ---------------------------------------------------------------- tcp

#[tokio::test]
async fn tcp_connect_banner_and_tls_expiry() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = s.write_all(b"220 mail.vakt.test ESMTP\r\n").await;
                let mut buf = [0u8; 64];
                if let Ok(n) = s.read(&mut buf).await {
                    if buf[..n].starts_with(b"QUIT") {
                        let _ = s.write_all(b"221 bye\r\n").await;
                    }
                }
            });
        }
    });
    let plain = run(&spec(CheckKind::Tcp, &addr.to_string())).await;
    assert!(plain.success, "{plain:?}");
    assert!(plain.values.contains_key("connect_seconds"));

    let mut banner = spec(CheckKind::Tcp, &addr.to_string());
    banner.options.expect = Some("220 ".into());
    assert!(run(&banner).await.success);
    banner.options.send = Some("QUIT\\r\\n".into());
    banner.options.expect = Some("221 bye".into());
    assert!(run(&banner).await.success, "send, then expect the answer");
    banner.options.expect = Some("250".into());
    let wrong = run(&banner).await;
    assert!(!wrong.success);
    assert!(wrong.error.as_deref().unwrap().contains("closed without sending \"250\""), "{wrong:?}");

    let pki = pki(30);
    let tls_addr = tls_server(&pki, false).await;
    let mut tls = spec(CheckKind::Tcp, &format!("localhost:{}", tls_addr.port()));
    tls.options.tls = Some(true);
    tls.options.tls_verify = Some(false);
    tls.options.expect = Some("* OK".into());
    let t = run(&tls).await;
    assert!(t.success, "{t:?}");
    let days = value(&t, "cert_days_left");
    assert!((28.5..=30.5).contains(&days), "{days}");
    tls.options.cert_min_days = Some(45);
    assert!(!run(&tls).await.success);

    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let c = run(&spec(CheckKind::Tcp, &closed.to_string())).await;
    assert!(c.error.as_deref().unwrap().starts_with(&format!("connect to {closed} failed")), "{c:?}");
}

// ---------------------------------------------------------------- dns

struct Dnsmasq(std::process::Child);

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test]
async fn dns_against_dnsmasq() {
    if !tool("/usr/sbin/dnsmasq") {
        return;
    }
    let port = free_udp_port();
    let child = std::process::Command::new("/usr/sbin/dnsmasq")
        .args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            "--user=",
            "--pid-file=",
            &format!("--port={port}"),
            "--local=/vakt.test/",
            "--host-record=web.vakt.test,192.0.2.8,2001:db8::8",
            "--cname=www.vakt.test,web.vakt.test",
            "--mx-host=vakt.test,mail.vakt.test,10",
            "--txt-record=vakt.test,v=spf1 -all",
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _guard = Dnsmasq(child);
    let server = format!("127.0.0.1:{port}");
    let query = |name: &str, rtype: &str| {
        let mut s = spec(CheckKind::Dns, name);
        s.options.server = Some(server.clone());
        s.options.record_type = Some(rtype.into());
        s
    };
    // dnsmasq needs a moment to bind: retry the first query briefly.
    let mut first = run(&query("web.vakt.test", "A")).await;
    for _ in 0..50 {
        if first.success {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        first = run(&query("web.vakt.test", "A")).await;
    }
    assert!(first.success, "{first:?}");
    assert_eq!(value(&first, "answers"), 1.0);

    let mut a = query("web.vakt.test", "A");
    a.options.expect_answer = Some("192.0.2.8".into());
    assert!(run(&a).await.success);
    a.options.expect_answer = Some("192.0.2.9".into());
    let wrong = run(&a).await;
    assert_eq!(wrong.error.as_deref(), Some("A web.vakt.test: no answer contains \"192.0.2.9\" (got 192.0.2.8)"));

    let mut aaaa = query("web.vakt.test", "AAAA");
    aaaa.options.expect_answer = Some("2001:db8::8".into());
    assert!(run(&aaaa).await.success);
    let mut mx = query("vakt.test", "MX");
    mx.options.expect_answer = Some("10 mail.vakt.test".into());
    assert!(run(&mx).await.success);
    let mut txt = query("vakt.test", "TXT");
    txt.options.expect_answer = Some("v=spf1".into());
    assert!(run(&txt).await.success);
    let mut cname = query("www.vakt.test", "CNAME");
    cname.options.expect_answer = Some("web.vakt.test".into());
    assert!(run(&cname).await.success, "{:?}", run(&cname).await);

    let missing = run(&query("nope.vakt.test", "A")).await;
    assert_eq!(missing.error.as_deref(), Some("A nope.vakt.test: NXDOMAIN (expected NOERROR)"));
    let mut nx = query("nope.vakt.test", "A");
    nx.options.expect_rcode = Some("NXDOMAIN".into());
    assert!(run(&nx).await.success);
}

// ---------------------------------------------------------------- exec

fn exec(plugin: &str, args: &[&str]) -> CheckSpec {
    let mut s = spec(CheckKind::Exec, plugin);
    s.options.args = args.iter().map(|a| a.to_string()).collect();
    s
}

#[tokio::test]
async fn exec_runs_real_monitoring_plugins() {
    if !tool(&format!("{PLUGINS}/check_tcp")) {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    tokio::spawn(async move { while listener.accept().await.is_ok() {} });
    let ok = run(&exec(&format!("{PLUGINS}/check_tcp"), &["-H", "127.0.0.1", "-p", &port])).await;
    assert!(ok.success && !ok.degraded, "{ok:?}");
    assert_eq!(value(&ok, "exit_code"), 0.0);
    assert!(value(&ok, "time_seconds") < 1.0, "perfdata time=...s parsed: {:?}", ok.values);

    drop(TcpListener::bind("127.0.0.1:0").await.unwrap()); // nothing listens on a fresh port
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let crit = run(&exec(&format!("{PLUGINS}/check_tcp"), &["-H", "127.0.0.1", "-p", &closed])).await;
    assert!(!crit.success);
    assert_eq!(value(&crit, "exit_code"), 2.0);
    assert!(crit.error.as_deref().unwrap().contains("Connection refused"), "{crit:?}");

    let warn = run(&exec(&format!("{PLUGINS}/check_dummy"), &["1", "disk almost full"])).await;
    assert!(warn.success && warn.degraded, "WARNING is degraded, not down: {warn:?}");
    assert_eq!(warn.error.as_deref(), Some("WARNING: disk almost full"));
    let unknown = run(&exec(&format!("{PLUGINS}/check_dummy"), &["3", "no idea"])).await;
    assert!(!unknown.success);
    assert_eq!(unknown.error.as_deref(), Some("UNKNOWN: no idea"), "the state said once");
    assert_eq!(value(&unknown, "unknown"), 1.0, "UNKNOWN told apart from CRITICAL");
    assert!(!crit.values.contains_key("unknown"));

    let missing = run(&exec("/nonexistent/check_x", &[])).await;
    assert!(missing.error.as_deref().unwrap().starts_with("cannot run /nonexistent/check_x"), "{missing:?}");
}

#[tokio::test]
async fn exec_timeout_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("child.pid");
    let script = format!("sleep 30 & echo $! > {}; wait", pid_file.display());
    let mut s = exec("/bin/sh", &["-c", &script]);
    s.timeout_ms = 500;
    let started = std::time::Instant::now();
    let r = run(&s).await;
    assert!(started.elapsed() < Duration::from_secs(3), "the probe returns at its timeout");
    assert_eq!(r.error.as_deref(), Some("UNKNOWN: /bin/sh timed out after 500ms and was killed"));
    assert_eq!(r.values.get("unknown"), Some(&1.0), "a plugin that never answered said nothing: UNKNOWN");
    let pid = std::fs::read_to_string(&pid_file).unwrap().trim().to_string();
    // The grandchild `sleep` was killed with the group: gone, or a zombie awaiting its reaper.
    let mut gone = false;
    for _ in 0..100 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.is_empty() || stat.split_whitespace().nth(2) == Some("Z") {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gone, "sleep {pid} survived the timeout");
}

// ---------------------------------------------------------------- host

#[tokio::test]
async fn host_metrics_and_thresholds() {
    for target in ["memory", "disk:/", "cpu", "load1", "uptime", "network"] {
        let s = run(&spec(CheckKind::Host, target)).await;
        assert!(s.success, "{target}: {s:?}");
        let v = value(&s, "value");
        assert!(v >= 0.0, "{target}: {v}");
        if matches!(target, "memory" | "disk:/" | "cpu") {
            assert!(v <= 100.0, "{target} is a percentage: {v}");
        }
    }
    let mut full = spec(CheckKind::Host, "disk:/");
    full.options.max_value = Some(0.0);
    let f = run(&full).await;
    assert!(!f.success);
    assert!(f.error.as_deref().unwrap().starts_with("disk:/ is "), "{f:?}");
    full.options.max_value = None;
    full.options.warn_value = Some(0.0);
    let w = run(&full).await;
    assert!(w.success && w.degraded, "{w:?}");

    let missing = run(&spec(CheckKind::Host, "disk:/no/such/mount")).await;
    assert_eq!(missing.error.as_deref(), Some("no filesystem is mounted at /no/such/mount"));

    let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    let running = run(&spec(CheckKind::Host, "process:sleep")).await;
    let _ = child.kill();
    let _ = child.wait();
    assert!(running.success && value(&running, "value") >= 1.0, "{running:?}");
    let absent = run(&spec(CheckKind::Host, "process:vakt-no-such-process")).await;
    assert!(!absent.success, "no process running is a failure by default");
}

// ---------------------------------------------------------------- icmp

#[tokio::test]
async fn icmp_to_loopback() {
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    for target in ["127.0.0.1", "::1"] {
        let mut s = spec(CheckKind::Icmp, target);
        s.options.packets = Some(3);
        let r = run(&s).await;
        if root {
            assert!(r.success, "{target}: {r:?}");
            assert_eq!(value(&r, "packet_loss_percent"), 0.0);
            assert!(value(&r, "rtt_min_seconds") <= value(&r, "rtt_max_seconds"));
            assert_eq!(value(&r, "packets_sent"), 3.0);
        } else if !r.success {
            // Without privileges the failure must say what is missing.
            let e = r.error.unwrap();
            assert!(e.contains("CAP_NET_RAW") && e.contains("ping_group_range"), "{e}");
        }
    }
}

#[test]
fn perfdata_units_become_base_units_in_values() {
    let perf = vakt_agent::probe::perfdata::parse("OK | size=2KB time=250ms load=0.5");
    let v: BTreeMap<String, f64> = perf.into_iter().map(|p| (p.label, p.value)).collect();
    assert_eq!(v["size"], 2048.0);
    assert_eq!(v["time"], 0.25);
    assert_eq!(v["load"], 0.5);
}

// ---------------------------------------------------------------- domain (RDAP)

/// An RDAP server as registries run them (RFC 9083 domain objects), behind a redirector as
/// rdap.org is: `/redirect/domain/NAME` answers 302 to `/domain/NAME`.
async fn rdap_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let in_days = |days: i64| {
        let at = jiff::Timestamp::now().checked_add(jiff::SignedDuration::from_hours(24 * days)).unwrap();
        at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    };
    let (soon, later) = (in_days(10), in_days(400));
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let (soon, later) = (soon.clone(), later.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head).to_string();
                let path = text.split_whitespace().nth(1).unwrap_or("/").to_string();
                let accepts = text.to_ascii_lowercase().contains("accept: application/rdap+json");
                let domain = |name: &str, expires: &str, status: &str| {
                    format!(
                        r#"{{"objectClassName":"domain","ldhName":"{name}","status":[{status}],"events":[{{"eventAction":"registration","eventDate":"2001-05-01T00:00:00Z"}},{{"eventAction":"expiration","eventDate":"{expires}"}}]}}"#
                    )
                };
                let (status, extra, body) = match path.as_str() {
                    _ if !accepts => ("406 Not Acceptable", String::new(), String::new()),
                    "/domain/soon.example" => ("200 OK", String::new(), domain("SOON.EXAMPLE", &soon, "\"active\"")),
                    "/domain/fine.example" => ("200 OK", String::new(), domain("FINE.EXAMPLE", &later, "\"active\"")),
                    "/domain/held.example" => {
                        ("200 OK", String::new(), domain("HELD.EXAMPLE", &later, "\"client hold\""))
                    }
                    p if p.starts_with("/redirect/") => {
                        ("302 Found", format!("location: {}\r\n", &p["/redirect".len()..]), String::new())
                    }
                    _ => ("404 Not Found", String::new(), r#"{"errorCode":404,"title":"Not Found"}"#.to_string()),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/rdap+json\r\n{extra}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(response.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

/// Days left from the expiration event, failing under `domain_min_days` (30 by default), for
/// a domain on hold, and for one the registry does not know; redirects are followed.
#[tokio::test]
async fn domain_expiry_comes_from_rdap() {
    let addr = rdap_server().await;
    let check = |name: &str, server: String| {
        let mut s = spec(CheckKind::Domain, name);
        s.options.rdap_server = Some(server);
        s
    };
    let fine = run(&check("fine.example", format!("http://{addr}/redirect"))).await;
    assert!(fine.success, "{fine:?}");
    assert!((value(&fine, "domain_days_left") - 400.0).abs() < 0.01, "{fine:?}");
    let soon = run(&check("soon.example", format!("http://{addr}"))).await;
    assert!(!soon.success);
    assert!(
        soon.error.as_deref().unwrap().starts_with("domain soon.example expires in 10.0 days (domain_min_days is 30)"),
        "{soon:?}"
    );
    let mut relaxed = check("soon.example", format!("http://{addr}"));
    relaxed.options.domain_min_days = Some(7);
    assert!(run(&relaxed).await.success, "10 days left is enough above 7");
    let held = run(&check("held.example", format!("http://{addr}"))).await;
    assert_eq!(held.error.as_deref(), Some("held.example has status \"client hold\""));
    let gone = run(&check("gone.example", format!("http://{addr}"))).await;
    assert_eq!(gone.error.as_deref(), Some("gone.example is not registered (RDAP: not found)"));
}
