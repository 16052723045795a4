#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The example configs shipped in `config/examples/` load, and broken configs report every
//! problem at its place.

use std::path::{Path, PathBuf};
use vakt_config::{AgentConfig, CheckKind, CollectorConfig, ConfigErrors};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(name)
}

#[test]
fn example_collector_config_loads() {
    let cfg = CollectorConfig::load(&example("collector.toml")).expect("example collector.toml is valid");
    assert_eq!(cfg.listen.get_ref(), "127.0.0.1:8427");
    assert_eq!(cfg.agents.len(), 2);
    // shop-home is assigned by selector to both web agents, shop-db by name to web-1 only.
    let web1: Vec<String> = cfg.assignments_for("web-1").into_iter().map(|c| c.id).collect();
    let web2: Vec<String> = cfg.assignments_for("web-2").into_iter().map(|c| c.id).collect();
    assert_eq!(web1, ["shop-db", "shop-home"]);
    assert_eq!(web2, ["shop-home"]);
    let home = &cfg.assignments_for("web-2")[0];
    assert_eq!((home.kind, home.interval_ms, home.timeout_ms), (CheckKind::Http, 30_000, 5_000));
    // The default timeout is 10s or the interval, whichever is shorter.
    let db = cfg.assignments_for("web-1").into_iter().find(|c| c.id == "shop-db").unwrap();
    assert_eq!(db.timeout_ms, 10_000);
    assert_eq!(cfg.services_of("shop-db"), ["database"]);
    assert!(cfg.depends_transitively("shop", "database"));
    assert_eq!(cfg.slos.len(), 2);
    assert_eq!(cfg.maintenance.len(), 1);
}

#[test]
fn example_agent_config_loads() {
    let cfg = AgentConfig::load(&example("agent.toml")).expect("example agent.toml is valid");
    assert_eq!(cfg.name.get_ref().as_str(), "web-1");
    assert_eq!(cfg.checks.len(), 1);
    assert_eq!(cfg.spool_dir, PathBuf::from("/var/lib/vakt-agent"));
}

fn errors(result: Result<impl std::fmt::Debug, ConfigErrors>) -> Vec<String> {
    result.expect_err("config must be rejected").0.iter().map(|d| d.to_string()).collect()
}

#[test]
fn unknown_key_and_bad_duration_are_both_reported_with_line_and_column() {
    let src = r#"listen = "127.0.0.1:8427"

[agents.a]
token_hash = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"

[checks.home]
kind = "http"
target = "http://127.0.0.1/"
intervall = "30s"
timeout = "5x"
agents = ["a"]
"#;
    let errs = errors(CollectorConfig::parse(src, Path::new("collector.toml")));
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(errs[0].starts_with("collector.toml:9:1: unknown field `intervall`"), "{}", errs[0]);
    assert!(errs[0].ends_with("(did you mean `interval`?)"), "{}", errs[0]);
    assert!(errs[1].starts_with("collector.toml:10:11: invalid duration \"5x\": unknown unit \"x\""), "{}", errs[1]);
    assert!(errs[1].contains("e.g. \"30s\""), "{}", errs[1]);
}

#[test]
fn semantic_problems_are_all_reported_at_their_place() {
    let src = r#"listen = "localhost"

[agents.a]
token_hash = "not-a-hash"

[checks.home]
kind = "http"
target = "ftp://x"
interval = "5s"
timeout = "10s"
fail_after = 0
agents = ["b"]

[checks.db]
kind = "tcp"
target = "db"
selector = "role=db"

[services.shop]
checks = ["home", "nope"]
"#;
    let errs = errors(CollectorConfig::parse(src, Path::new("c.toml")));
    let expected = [
        "c.toml:1:10: listen address \"localhost\" is not ip:port",
        "c.toml:4:14: agent \"a\": token_hash is not a sha256 hash",
        "c.toml:8:10: check \"home\": target \"ftp://x\" is not an http(s) URL",
        "c.toml:10:11: check \"home\": timeout 10s is longer than the interval 5s",
        "c.toml:11:14: check \"home\": fail_after must be at least 1",
        "c.toml:12:11: check \"home\": unknown agent \"b\"",
        "c.toml:16:10: check \"db\": target \"db\" is not host:port",
        "c.toml:20:19: service \"shop\": unknown check \"nope\"",
    ];
    assert_eq!(errs.len(), expected.len(), "{errs:#?}");
    for (got, want) in errs.iter().zip(expected) {
        assert!(got.starts_with(want), "got {got:?}, want {want:?}");
        assert!(got.ends_with(')'), "every problem carries a hint: {got:?}");
    }
}

#[test]
fn bad_names_labels_and_kinds_are_reported_and_parsing_goes_on() {
    let src = r#"name = "web 1"
collector = "http://127.0.0.1:8427"
token = "t"
colector = "x"

[labels]
"bad-label" = "x"

[checks.ping]
kind = "smoke-signal"
target = "x"
"#;
    let errs = errors(AgentConfig::parse(src, Path::new("agent.toml")));
    assert_eq!(errs.len(), 4, "{errs:#?}");
    assert!(errs[0].starts_with("agent.toml:1:8: name \"web 1\" is not valid"), "{}", errs[0]);
    assert!(errs[1].starts_with("agent.toml:4:1: unknown field `colector`"), "{}", errs[1]);
    assert!(errs[1].contains("did you mean `collector`?"), "{}", errs[1]);
    assert!(errs[2].starts_with("agent.toml:6:1: label"), "{}", errs[2]);
    assert!(errs[2].contains("label \"bad-label\""), "{}", errs[2]);
    assert!(errs[3].starts_with("agent.toml:10:8: unknown variant `smoke-signal`"), "{}", errs[3]);
}

#[test]
fn a_toml_syntax_error_is_reported_with_its_place() {
    let errs = errors(AgentConfig::parse("name = \"a\"\ncollector = \n", Path::new("a.toml")));
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(errs[0].starts_with("a.toml:2:"), "{}", errs[0]);
}

#[test]
fn two_agents_may_not_share_a_token() {
    let hash = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";
    let src = format!("[agents.a]\ntoken_hash = \"{hash}\"\n[agents.b]\ntoken_hash = \"{hash}\"\n");
    let errs = errors(CollectorConfig::parse(&src, Path::new("c.toml")));
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(errs[0].starts_with("c.toml:4:14: agent \"b\" has the same token_hash as agent \"a\""), "{}", errs[0]);
}

#[test]
fn a_broken_message_template_is_reported_at_its_place() {
    let src = "[receivers.chat]\nkind = \"slack\"\nurl = { value = \"http://x\" }\ntitle = \"{{ incident.title \"\n";
    let errs = errors(CollectorConfig::parse(src, Path::new("c.toml")));
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(errs[0].starts_with("c.toml:4:9: receiver \"chat\": title template:"), "{}", errs[0]);
}

/// `[store]`: PostgreSQL needs a URL, SQLite takes none; each mistake names its place and the
/// fix. A URL file is read relative to the config file.
#[test]
fn the_store_section_says_what_is_missing() {
    let errs = errors(CollectorConfig::parse("[store]\nkind = \"postgres\"\n", Path::new("c.toml")));
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(errs[0].starts_with("c.toml:1:1:") && errs[0].contains("needs a `url`"), "{errs:#?}");
    let errs =
        errors(CollectorConfig::parse("[store]\nurl = { value = \"postgres://db/vakt\" }\n", Path::new("c.toml")));
    assert!(errs[0].contains("kind is \"sqlite\"") && errs[0].contains("set kind = \"postgres\""), "{errs:#?}");
    let cfg = CollectorConfig::parse(
        "[store]\nkind = \"postgres\"\nurl = { file = \"db-url\" }\n",
        Path::new("/etc/vakt/collector.toml"),
    )
    .unwrap();
    let store = cfg.store.get_ref();
    assert_eq!((store.kind, store.pool_size), (vakt_config::collector::StoreKind::Postgres, 8));
    assert_eq!(store.url.as_ref().and_then(|u| u.file.clone()), Some(PathBuf::from("/etc/vakt/db-url")));
    let default = CollectorConfig::parse("", Path::new("c.toml")).unwrap();
    assert_eq!(default.store.get_ref().kind, vakt_config::collector::StoreKind::Sqlite);
}

/// Options that would do nothing are refused with their fix: certificate options on a plain
/// http:// target or on a TCP check without a TLS handshake. With TLS they are fine.
#[test]
fn tls_options_without_tls_are_refused() {
    let head = "[agents.a]\ntoken_hash = \"sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae\"\n";
    let errs = errors(CollectorConfig::parse(
        &format!(
            "{head}[checks.web]\nkind = \"http\"\ntarget = \"http://shop/\"\ncert_min_days = 14\nagents = [\"a\"]\n"
        ),
        Path::new("c.toml"),
    ));
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(errs[0].contains("`cert_min_days` does nothing without TLS") && errs[0].contains("https://"), "{errs:#?}");
    let errs = errors(CollectorConfig::parse(
        &format!("{head}[checks.db]\nkind = \"tcp\"\ntarget = \"db:5432\"\ntls_verify = false\nagents = [\"a\"]\n"),
        Path::new("c.toml"),
    ));
    assert!(errs[0].contains("`tls_verify` does nothing without TLS") && errs[0].contains("tls = true"), "{errs:#?}");
    let ok = format!(
        "{head}[checks.db]\nkind = \"tcp\"\ntarget = \"db:5432\"\ntls = true\ncert_min_days = 14\nagents = [\"a\"]\n\
         [checks.web]\nkind = \"http\"\ntarget = \"https://shop/\"\ncert_min_days = 14\nagents = [\"a\"]\n"
    );
    assert!(CollectorConfig::parse(&ok, Path::new("c.toml")).is_ok());
}
