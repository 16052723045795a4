//! The collector over HTTPS with mutual TLS, with the real binaries: an agent that trusts the
//! collector's private CA and shows its client certificate pushes; a client without a
//! certificate, or speaking plain HTTP, gets nowhere and the collector carries on; SIGHUP loads a
//! new certificate, and a broken one is refused while the old one keeps serving.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use vakt_tests::{metric, token_hash, wait_for, Proc, Target, TestPki, READ_TOKEN};

const AGENT_TOKEN: &str = "tls-agent-token-0123456789abcdef";

fn client(ca: &Path, identity: Option<(&Path, &Path)>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap())
        .timeout(Duration::from_secs(5))
        // A fresh connection per request, so each one sees the certificate served right now.
        .pool_max_idle_per_host(0);
    if let Some((cert, key)) = identity {
        let mut pem = std::fs::read(cert).unwrap();
        pem.extend(std::fs::read(key).unwrap());
        b = b.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    b.build().unwrap()
}

async fn status(http: &reqwest::Client, url: &str) -> Result<u16, String> {
    http.get(url).bearer_auth(READ_TOKEN).send().await.map(|r| r.status().as_u16()).map_err(|e| format!("{e:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_push_over_mutual_tls_and_sighup_reloads_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::issue(dir.path(), "one");
    let target = Target::start().await;
    let addr: SocketAddr = vakt_tests::loopback_addr();
    let (cert, key) = (dir.path().join("collector-cert.pem"), dir.path().join("collector-key.pem"));
    std::fs::copy(&pki.cert, &cert).unwrap();
    std::fs::copy(&pki.key, &key).unwrap();
    let ctoml = dir.path().join("collector.toml");
    std::fs::write(
        &ctoml,
        format!(
            "listen = \"{addr}\"\ndata_dir = \"data\"\n\
             [tls]\ncert_file = \"collector-cert.pem\"\nkey_file = \"collector-key.pem\"\nclient_ca_file = \"{ca}\"\n\
             [agents.edge]\ntoken_hash = \"{hash}\"\n\
             [checks.web]\nkind = \"http\"\ntarget = \"http://{target}/\"\ninterval = \"200ms\"\nagents = [\"edge\"]\n",
            ca = pki.ca.display(),
            hash = token_hash(AGENT_TOKEN),
            target = target.addr,
        ),
    )
    .unwrap();
    vakt_tests::grant_reader(&ctoml);
    let collector =
        Proc::spawn("vakt-collector", &["run", "--config", ctoml.to_str().unwrap()], &dir.path().join("c.log"));
    let base = format!("https://{addr}");
    let trusted = client(&pki.ca, Some((&pki.client_cert, &pki.client_key)));
    wait_for("the collector over HTTPS", Duration::from_secs(20), || async {
        (status(&trusted, &format!("{base}/healthz")).await == Ok(200)).then_some(())
    })
    .await;

    // The agent: trusts the private CA, shows its client certificate.
    let atoml = dir.path().join("agent.toml");
    std::fs::write(
        &atoml,
        format!(
            "name = \"edge\"\ncollector = \"{base}\"\ntoken = \"{AGENT_TOKEN}\"\nspool_dir = \"agent\"\n\
             push_interval = \"100ms\"\ncollector_ca_file = \"{ca}\"\nclient_cert_file = \"{cc}\"\nclient_key_file = \"{ck}\"\n",
            ca = pki.ca.display(),
            cc = pki.client_cert.display(),
            ck = pki.client_key.display(),
        ),
    )
    .unwrap();
    let _agent = Proc::spawn("vakt-agent", &["run", "--config", atoml.to_str().unwrap()], &dir.path().join("a.log"));
    wait_for("samples over mutual TLS", Duration::from_secs(30), || async {
        let text =
            trusted.get(format!("{base}/metrics")).bearer_auth(READ_TOKEN).send().await.ok()?.text().await.ok()?;
        (metric(&text, "vakt_check_up{check=\"web\"}") == Some(1.0)).then_some(())
    })
    .await;

    // No client certificate: the handshake fails. Plain HTTP: told to use https, in plain HTTP.
    // The collector goes on.
    let anonymous = client(&pki.ca, None);
    assert!(status(&anonymous, &format!("{base}/healthz")).await.is_err(), "a client without a certificate");
    let plain = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let refused = plain.get(format!("http://{addr}/healthz")).send().await.expect("an answer in plain HTTP");
    assert_eq!(refused.status().as_u16(), 426, "plain HTTP on the HTTPS port");
    assert!(refused.text().await.unwrap().contains("this port speaks HTTPS, not plain HTTP: use an https:// URL"));
    assert_eq!(status(&trusted, &format!("{base}/healthz")).await, Ok(200));

    // A broken certificate file and SIGHUP: refused, the old certificate keeps serving.
    std::fs::write(&cert, "not a certificate").unwrap();
    collector.signal("HUP");
    wait_for("the refusal in the log", Duration::from_secs(10), || async {
        collector.log_text().contains("TLS certificate not reloaded").then_some(())
    })
    .await;
    assert_eq!(status(&trusted, &format!("{base}/healthz")).await, Ok(200), "still the old certificate");

    // A certificate from another CA and SIGHUP: new connections get it.
    let other = TestPki::issue(dir.path(), "two");
    std::fs::copy(&other.cert, &cert).unwrap();
    std::fs::copy(&other.key, &key).unwrap();
    collector.signal("HUP");
    let trusts_new = client(&other.ca, Some((&pki.client_cert, &pki.client_key)));
    wait_for("the new certificate served", Duration::from_secs(10), || async {
        (status(&trusts_new, &format!("{base}/healthz")).await == Ok(200)).then_some(())
    })
    .await;
    assert!(status(&trusted, &format!("{base}/healthz")).await.is_err(), "the old CA no longer matches");
    assert!(collector.log_text().contains("TLS certificate reloaded"), "{}", collector.log_text());
}

/// A self-signed certificate made the usual way (`openssl req -x509`, which marks it a CA) and
/// given as `ca_file` / `collector_ca_file` is trusted as exactly that certificate, as curl and
/// blackbox_exporter do: the agent pushes to a collector serving it, and http and tcp+TLS
/// checks of it are up. A server presenting another certificate is refused with a message that
/// names its fingerprint and why it is not trusted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openssl_self_signed_certificate_is_trusted_as_itself() {
    let dir = tempfile::tempdir().unwrap();
    let make = |name: &str| {
        let (cert, key) = (dir.path().join(format!("{name}-cert.pem")), dir.path().join(format!("{name}-key.pem")));
        let out = std::process::Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl is installed (.ci/run installs it)");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        (cert, key)
    };
    let (cert, key) = make("collector");
    let (other, _) = make("other");
    let text =
        std::process::Command::new("openssl").args(["x509", "-noout", "-text", "-in"]).arg(&cert).output().unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("CA:TRUE"), "the certificate people really have is a CA");
    let fp = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(&cert)
        .output()
        .unwrap();
    let fingerprint = String::from_utf8_lossy(&fp.stdout).trim().rsplit('=').next().unwrap().to_string();

    let addr: SocketAddr = vakt_tests::loopback_addr();
    let port = addr.port();
    let ctoml = dir.path().join("collector.toml");
    std::fs::write(
        &ctoml,
        format!(
            "listen = \"{addr}\"\ndata_dir = \"data\"\n\
             [tls]\ncert_file = \"{cert}\"\nkey_file = \"{key}\"\n\
             [agents.edge]\ntoken_hash = \"{hash}\"\n\
             [checks.self-http]\nkind = \"http\"\ntarget = \"https://localhost:{port}/healthz\"\nca_file = \"{cert}\"\ninterval = \"200ms\"\nagents = [\"edge\"]\n\
             [checks.self-tcp]\nkind = \"tcp\"\ntarget = \"127.0.0.1:{port}\"\ntls = true\nca_file = \"{cert}\"\ninterval = \"200ms\"\nagents = [\"edge\"]\n\
             [checks.wrong]\nkind = \"http\"\ntarget = \"https://localhost:{port}/healthz\"\nca_file = \"{other}\"\ninterval = \"200ms\"\nagents = [\"edge\"]\n",
            cert = cert.display(),
            key = key.display(),
            other = other.display(),
            hash = token_hash(AGENT_TOKEN),
        ),
    )
    .unwrap();
    vakt_tests::grant_reader(&ctoml);
    let _collector =
        Proc::spawn("vakt-collector", &["run", "--config", ctoml.to_str().unwrap()], &dir.path().join("c.log"));
    // The test's own reader does not verify: what is under test is the agent's trust.
    let reader = reqwest::Client::builder().danger_accept_invalid_certs(true).build().unwrap();
    let base = format!("https://{addr}");
    let atoml = dir.path().join("agent.toml");
    std::fs::write(
        &atoml,
        format!(
            "name = \"edge\"\ncollector = \"{base}\"\ntoken = \"{AGENT_TOKEN}\"\nspool_dir = \"agent\"\n\
             push_interval = \"100ms\"\ncollector_ca_file = \"{cert}\"\n",
            cert = cert.display(),
        ),
    )
    .unwrap();
    let _agent = Proc::spawn("vakt-agent", &["run", "--config", atoml.to_str().unwrap()], &dir.path().join("a.log"));
    let (reader, base) = (&reader, base.as_str());
    for check in ["self-http", "self-tcp"] {
        wait_for(&format!("{check} up"), Duration::from_secs(30), || async {
            let text =
                reader.get(format!("{base}/metrics")).bearer_auth(READ_TOKEN).send().await.ok()?.text().await.ok()?;
            (metric(&text, &format!("vakt_check_up{{check=\"{check}\"}}")) == Some(1.0)).then_some(())
        })
        .await;
    }
    let error = wait_for("the refusal of the other certificate", Duration::from_secs(30), || async {
        let r = reader
            .get(format!("{base}/api/v1/samples?check=wrong&limit=1"))
            .bearer_auth(READ_TOKEN)
            .send()
            .await
            .ok()?;
        let samples: serde_json::Value = r.json().await.ok()?;
        samples[0]["error"].as_str().map(String::from)
    })
    .await;
    assert!(error.contains("is not trusted") && error.contains(&fingerprint), "{error} (expected {fingerprint})");
    assert!(error.contains(&format!("ca_file {}", other.display())), "{error}");
}

/// The two mismatches a newcomer makes, each named in the agent's log instead of "received
/// corrupt message": https:// towards a collector serving plain HTTP, and http:// towards one
/// serving HTTPS. The agent keeps its results meanwhile (nothing is dropped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_https_mismatch_is_named_in_the_agents_log() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::issue(dir.path(), "mm");
    let target = Target::start().await;
    let (plain_addr, tls_addr): (SocketAddr, SocketAddr) = (vakt_tests::loopback_addr(), vakt_tests::loopback_addr());
    let checks = format!(
        "[agents.edge]\ntoken_hash = \"{}\"\n[checks.web]\nkind = \"http\"\ntarget = \"http://{}/\"\ninterval = \"200ms\"\nagents = [\"edge\"]\n",
        token_hash(AGENT_TOKEN),
        target.addr
    );
    let plain_toml = dir.path().join("plain.toml");
    std::fs::write(&plain_toml, format!("listen = \"{plain_addr}\"\ndata_dir = \"plain\"\n{checks}")).unwrap();
    let tls_toml = dir.path().join("tls.toml");
    std::fs::write(
        &tls_toml,
        format!(
            "listen = \"{tls_addr}\"\ndata_dir = \"tls\"\n[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n{checks}",
            pki.cert.display(),
            pki.key.display()
        ),
    )
    .unwrap();
    let _plain = vakt_tests::Collector::start(&plain_toml, plain_addr, &dir.path().join("plain.log")).await;
    let _tls =
        Proc::spawn("vakt-collector", &["run", "--config", tls_toml.to_str().unwrap()], &dir.path().join("tls.log"));
    let agent = |name: &str, url: String| {
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!(
                "name = \"edge\"\ncollector = \"{url}\"\ntoken = \"{AGENT_TOKEN}\"\nspool_dir = \"{name}-state\"\n\
                 push_interval = \"100ms\"\ncollector_ca_file = \"{}\"\n",
                pki.ca.display()
            ),
        )
        .unwrap();
        Proc::spawn("vakt-agent", &["run", "--config", path.to_str().unwrap()], &dir.path().join(format!("{name}.log")))
    };
    let https_to_plain = agent("a1", format!("https://{plain_addr}"));
    let http_to_https = agent("a2", format!("http://{tls_addr}"));
    wait_for("the https-to-plain mismatch named", Duration::from_secs(30), || async {
        https_to_plain
            .log_text()
            .contains("the collector answered in plain HTTP, not TLS: use an http:// URL")
            .then_some(())
    })
    .await;
    wait_for("the http-to-https mismatch named", Duration::from_secs(30), || async {
        let log = http_to_https.log_text();
        (log.contains("426") && log.contains("this port speaks HTTPS, not plain HTTP: use an https:// URL"))
            .then_some(())
    })
    .await;
    for (a, name) in [(&https_to_plain, "a1"), (&http_to_https, "a2")] {
        let log = a.log_text();
        assert!(!log.contains("dropping it"), "{name}: nothing dropped:\n{log}");
    }
}
