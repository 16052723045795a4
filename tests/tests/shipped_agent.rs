//! The agent as operators get it (`cargo build-agent`): one statically linked file that needs
//! no shared library on the server, and still does what the C library did for the dynamic
//! build: resolve names from /etc/hosts and from DNS, and speak TLS to a collector.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use vakt_tests::{metric, shipped_agent, token_hash, wait_for, Proc, Target, TestPki, READ_TOKEN};

const AGENT_TOKEN: &str = "shipped-agent-token-0123456789ab";

/// The program interpreter (dynamic loader) an ELF executable asks for, if any.
fn interpreter(exe: &Path) -> Option<String> {
    let elf = std::fs::read(exe).unwrap();
    assert_eq!(&elf[..4], b"\x7fELF", "{} is not an ELF file", exe.display());
    let u16_at = |o: usize| usize::from(u16::from_le_bytes([elf[o], elf[o + 1]]));
    let u64_at = |o: usize| usize::try_from(u64::from_le_bytes(elf[o..o + 8].try_into().unwrap())).unwrap();
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    (0..phnum).map(|i| phoff + i * phentsize).find_map(|ph| {
        const PT_INTERP: u32 = 3;
        let kind = u32::from_le_bytes(elf[ph..ph + 4].try_into().unwrap());
        (kind == PT_INTERP).then(|| {
            let (offset, size) = (u64_at(ph + 8), u64_at(ph + 32));
            String::from_utf8_lossy(&elf[offset..offset + size]).trim_end_matches('\0').to_string()
        })
    })
}

fn probe(exe: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(exe).arg("probe").args(args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_agent_is_one_static_file_that_resolves_names_and_pushes_over_tls() {
    let exe = shipped_agent();
    assert_eq!(interpreter(&exe), None, "the shipped agent must not need a dynamic loader or shared libraries");

    // A name from /etc/hosts, resolved by the C library linked into the binary.
    let target = Target::start().await;
    let url = format!("http://localhost:{}/", target.addr.port());
    let (code, text) = probe(&exe, &["--kind", "http", &url]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(&format!("http {url}: up")), "{text}");

    // Pushing to a collector over HTTPS whose certificate is issued by a private CA.
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::issue(dir.path(), "ship");
    let addr: SocketAddr = vakt_tests::loopback_addr();
    let ctoml = dir.path().join("collector.toml");
    std::fs::write(
        &ctoml,
        format!(
            "listen = \"{addr}\"\ndata_dir = \"data\"\n\
             [tls]\ncert_file = \"{cert}\"\nkey_file = \"{key}\"\n\
             [agents.edge]\ntoken_hash = \"{hash}\"\n\
             [checks.web]\nkind = \"http\"\ntarget = \"{url}\"\ninterval = \"200ms\"\nagents = [\"edge\"]\n",
            cert = pki.cert.display(),
            key = pki.key.display(),
            hash = token_hash(AGENT_TOKEN),
        ),
    )
    .unwrap();
    vakt_tests::grant_reader(&ctoml);
    let _collector =
        Proc::spawn("vakt-collector", &["run", "--config", ctoml.to_str().unwrap()], &dir.path().join("c.log"));
    let atoml = dir.path().join("agent.toml");
    std::fs::write(
        &atoml,
        format!(
            "name = \"edge\"\ncollector = \"https://localhost:{port}\"\ntoken = \"{AGENT_TOKEN}\"\nspool_dir = \"agent\"\n\
             push_interval = \"100ms\"\ncollector_ca_file = \"{ca}\"\n",
            port = addr.port(),
            ca = pki.ca.display(),
        ),
    )
    .unwrap();
    let agent_log = dir.path().join("a.log");
    let _agent = Proc::spawn_exe(&exe, &["run", "--config", atoml.to_str().unwrap()], &agent_log);
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&pki.ca).unwrap()).unwrap())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let metrics_url = format!("https://localhost:{}/metrics", addr.port());
    wait_for("samples from the shipped agent", Duration::from_secs(30), || async {
        let text = http.get(&metrics_url).bearer_auth(READ_TOKEN).send().await.ok()?.text().await.ok()?;
        (metric(&text, "vakt_ingest_samples_total")? >= 3.0).then_some(())
    })
    .await;
    let log = std::fs::read_to_string(&agent_log).unwrap();
    assert!(!log.contains("ERROR"), "{log}");
}

/// In a private network namespace with its own resolv.conf: names come from a DNS server
/// (dnsmasq on that namespace's loopback), the only way they can.
#[test]
fn the_shipped_agent_resolves_names_through_dns() {
    let tools = ["/usr/sbin/dnsmasq", "/usr/bin/unshare", "/usr/sbin/ip"];
    if let Some(missing) = tools.iter().find(|t| !Path::new(t).exists()) {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{missing} is missing: .ci/run must install it");
        eprintln!("skipping: {missing} is not installed");
        return;
    }
    let allowed = Command::new("unshare").args(["-n", "-m", "true"]).status().is_ok_and(|s| s.success());
    if !allowed {
        // A kernel or container permission, not a package CI could install.
        eprintln!("skipping: this machine does not allow private network namespaces (unshare -n -m)");
        return;
    }
    let exe = shipped_agent();
    let dir = tempfile::tempdir().unwrap();
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.0.0.1\n").unwrap();
    let script = format!(
        r#"set -e
ip link set lo up
mount --bind '{resolv}' /etc/resolv.conf
/usr/sbin/dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --bind-interfaces \
  --listen-address=127.0.0.1 --port=53 --user= --pid-file= --local=/vakt.test/ \
  --host-record=shop.vakt.test,127.0.0.1 2>/dev/null &
dns=$!
trap 'kill $dns' EXIT
# dnsmasq answers on TCP 53 too: probing it by name needs the name resolved first.
for i in $(seq 100); do
  if '{exe}' probe --kind tcp shop.vakt.test:53 > found.txt; then break; fi
  sleep 0.05
done
cat found.txt
'{exe}' probe --kind tcp nope.vakt.test:53 || echo "exit $?"
"#,
        resolv = resolv.display(),
        exe = exe.display(),
    );
    let out = Command::new("unshare").args(["-n", "-m", "sh", "-c", &script]).current_dir(dir.path()).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("tcp shop.vakt.test:53: up"), "a name only DNS knows: {text}");
    assert!(text.contains("tcp nope.vakt.test:53: down"), "{text}");
    assert!(text.contains("Name or service not known") && text.contains("exit 2"), "an unknown name, said so: {text}");
}
