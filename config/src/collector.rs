//! `collector.toml`: where the collector listens and stores, which agents may push, the checks
//! they run, and the services those checks make up. One cohesive thing, hence its length: the
//! schema of one file with its validation (notification, SLO and check sections have their own
//! modules).

use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use toml::Spanned;

use crate::check::{deserialize_labels, CheckConfig, Id};
use crate::diagnostics::{parse_all, ConfigErrors, Reporter};
use crate::duration::HumanDuration;
use crate::notify::{ReceiverConfig, RouteConfig};
pub use crate::slo::ServiceConfig;
use crate::slo::{MaintenanceConfig, SloConfig};
use crate::wire::CheckSpec;
use crate::{resolve_path, LoadError};

/// `[store]`: which database the collector keeps its data in.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    #[serde(default)]
    pub kind: StoreKind,
    /// PostgreSQL: the connection URL (`postgres://user@host:5432/db`), inline, from `env` or
    /// from a `file` (it may carry a password).
    #[serde(default)]
    pub url: Option<crate::notify::Secret>,
    /// PostgreSQL: connections kept open (default 8).
    #[serde(default = "default_pool_size")]
    pub pool_size: u32,
    /// PostgreSQL: this collector's name among those sharing the database (default: the host
    /// name and the listen port). Shown by `/api/v1/cluster`; must differ between nodes.
    #[serde(default)]
    pub node: Option<String>,
    /// PostgreSQL: how long the elected leader's term lasts without renewal (default 2 s). A
    /// killed leader is replaced within this (plus a quarter of it); a frozen one commits
    /// nothing once it has passed.
    #[serde(default = "default_leader_lease")]
    pub leader_lease: HumanDuration,
}

/// `[[remote_write]]`: one time-series database to send every probe result to.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteWriteConfig {
    /// Names its queue, its metrics and its log lines; unique.
    pub name: String,
    /// The receiver's write endpoint, e.g. `http://prometheus:9090/api/v1/write` (inline, from
    /// `env` or from a `file`: it may carry credentials).
    pub url: crate::notify::Secret,
    /// Sent as `Authorization: Bearer ...` when set.
    #[serde(default)]
    pub bearer_token: Option<crate::notify::Secret>,
    /// Most samples per request (default 2,000).
    #[serde(default = "default_remote_write_batch")]
    pub max_samples_per_send: usize,
    /// A request not answered within this is retried (default 10 s).
    #[serde(default = "default_remote_write_timeout")]
    pub timeout: HumanDuration,
}

fn default_remote_write_batch() -> usize {
    2_000
}

fn default_remote_write_timeout() -> HumanDuration {
    HumanDuration::from_secs(10)
}

fn default_true() -> bool {
    true
}

fn default_leader_lease() -> HumanDuration {
    HumanDuration::from_secs(2)
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// One SQLite file in `data_dir`: embedded, nothing to run beside the collector.
    #[default]
    Sqlite,
    /// A PostgreSQL database (14 or later) at `url`.
    Postgres,
}

fn default_store() -> Spanned<StoreConfig> {
    Spanned::new(
        0..0,
        StoreConfig {
            kind: StoreKind::Sqlite,
            url: None,
            pool_size: default_pool_size(),
            node: None,
            leader_lease: default_leader_lease(),
        },
    )
}

fn default_pool_size() -> u32 {
    8
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectorConfig {
    /// Address the HTTP API listens on.
    #[serde(default = "default_listen")]
    pub listen: Spanned<String>,
    /// Directory of the SQLite database (the default store).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Where samples, states and incidents live: SQLite in `data_dir` (the default), or
    /// PostgreSQL (`kind = "postgres"`, `url`).
    #[serde(default = "default_store")]
    pub store: Spanned<StoreConfig>,
    /// The URL people reach the collector at; used in links in alerts.
    #[serde(default)]
    pub public_url: Option<String>,
    /// Grafana's address (e.g. "https://grafana.example.com"): check and service pages link to
    /// the matching dashboard of `dashboards/`.
    #[serde(default)]
    pub grafana_url: Option<String>,
    /// The time zone pages show times in (IANA, e.g. "Europe/Oslo"; default the system's).
    /// The API always speaks UTC.
    #[serde(default)]
    pub display_timezone: Option<Spanned<String>>,
    /// Largest accepted request body (after decompression), in bytes.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: Spanned<usize>,
    /// Connections the collector keeps open at once (default 4096); beyond, new ones are closed
    /// at once and counted. The collector raises its open-file limit to the hard limit at start.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// A request's headers must arrive within this (default "10s"), from the connection's start
    /// or the end of its previous response: also how long an idle keep-alive connection stays.
    #[serde(default = "default_request_header_timeout")]
    pub request_header_timeout: HumanDuration,
    /// A pushed body must arrive within this (default "30s"); a slower one gets 408.
    #[serde(default = "default_request_body_timeout")]
    pub request_body_timeout: HumanDuration,
    /// Bytes of pushed bodies held in memory at once, over all agents (default 256 MiB, at least
    /// `max_body_bytes`); beyond, pushes get 503 with `Retry-After` and the agents retry. Bodies
    /// are read only after the token was checked, so a client without one costs nothing here.
    #[serde(default = "default_ingest_memory_bytes")]
    pub ingest_memory_bytes: Spanned<usize>,
    /// Largest accepted number of samples in one batch.
    #[serde(default = "default_max_batch_samples")]
    pub max_batch_samples: Spanned<usize>,
    /// Pushes per second each agent may make (default 20; 0 turns the limit off); beyond it,
    /// and a burst of twice as many, the collector answers 429 with `Retry-After`.
    #[serde(default = "default_agent_push_rate")]
    pub agent_push_rate: Spanned<f64>,
    /// A check with this many state changes within `flap_window` is flapping: one "flapping"
    /// incident instead of a stream of up/down ones. 0 turns it off.
    #[serde(default = "default_flap_threshold")]
    pub flap_threshold: u32,
    #[serde(default = "default_flap_window")]
    pub flap_window: HumanDuration,
    /// Raw samples older than this are deleted (per-minute rollups and state periods stay).
    #[serde(default = "default_raw_retention")]
    pub raw_retention: Spanned<HumanDuration>,
    /// Rollups, state periods and closed incidents older than this are deleted; keep it at
    /// least as long as the longest SLO window or report period.
    #[serde(default = "default_rollup_retention")]
    pub rollup_retention: Spanned<HumanDuration>,
    /// How often SLOs are evaluated (burn-rate alerts and SLO metrics).
    #[serde(default = "default_slo_evaluation_interval")]
    pub slo_evaluation_interval: HumanDuration,
    /// An agent that has not pushed for this long gets an "agent silent" incident.
    #[serde(default = "default_agent_silent_after")]
    pub agent_silent_after: Spanned<HumanDuration>,
    /// How many checks of its own (declared in its `agent.toml`) each agent may announce; its
    /// samples for any other check it was not assigned are refused (default 100; per agent
    /// `max_local_checks`).
    #[serde(default = "default_max_local_checks")]
    pub max_local_checks: usize,
    #[serde(default)]
    pub agents: BTreeMap<Id, AgentEntry>,
    /// People and tools allowed to change things through the API (acknowledge, notes,
    /// resolve): name and the hash of their bearer token.
    #[serde(default)]
    pub api_tokens: BTreeMap<Id, ApiToken>,
    #[serde(default)]
    pub checks: BTreeMap<Id, CheckConfig>,
    #[serde(default)]
    pub services: BTreeMap<Id, ServiceConfig>,
    #[serde(default)]
    pub slos: BTreeMap<Id, SloConfig>,
    /// Service hours SLOs may count in (`service_hours = "NAME"` on an SLO).
    #[serde(default)]
    pub service_hours: BTreeMap<Id, crate::slo::ServiceHoursConfig>,
    /// The ITIL priority matrix: rows impact high, medium, low; columns urgency high, medium,
    /// low. Default [["P1","P2","P3"],["P2","P3","P4"],["P3","P4","P5"]].
    #[serde(default)]
    pub priority_matrix: Option<Vec<Vec<String>>>,
    #[serde(default)]
    pub maintenance: Vec<MaintenanceConfig>,
    #[serde(default)]
    pub receivers: BTreeMap<Id, ReceiverConfig>,
    /// Raw samples sent on to a time-series database with the Prometheus remote-write protocol
    /// (Prometheus, VictoriaMetrics, Mimir, Thanos), each from a queue written with the batch.
    #[serde(default)]
    pub remote_write: Vec<Spanned<RemoteWriteConfig>>,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Notifications wait this long before going out, so an incident linked under its root
    /// cause or resolved at once is not announced (default "500ms").
    #[serde(default = "default_group_wait")]
    pub group_wait: HumanDuration,
    /// Also publish each SLO under Sloth's recording-rule names (`slo:sli_error:ratio_rate5m`,
    /// ...), for SLO dashboards built for Sloth. Off by default: the colons in those names are
    /// meant for recording rules, and `promtool check metrics` says so.
    #[serde(default)]
    pub sloth_metrics: bool,
    /// Keep each raw probe result in the store (default). With `false` only what the states,
    /// incidents, SLOs and latency figures need is kept (per-minute rollups), and the raw
    /// results live in the `[[remote_write]]` targets alone.
    #[serde(default = "default_true")]
    pub store_raw_samples: bool,
    /// Serve HTTPS instead of HTTP.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// What may be read without an API token.
    #[serde(default)]
    pub access: AccessConfig,
    /// Which notifications due together go out as one message: "receiver" (default: every
    /// incident due for a receiver within `group_wait` in one message), "service" (one message
    /// per service), or "incident" (no grouping).
    #[serde(default)]
    pub group_by: GroupBy,
    /// How long an incident of a service that depends on others waits before it is announced,
    /// so that a dependency failing a moment later is found to be the root cause and only it
    /// pages (default: the longest probe interval among the dependencies' checks, plus a second
    /// for that result to arrive).
    #[serde(default)]
    pub dependency_wait: Option<HumanDuration>,
    /// Response and resolution targets per ITIL priority, as contracts state them:
    /// `[response_targets.P1] acknowledge = "15m"`, `resolve = "4h"` (calendar time).
    #[serde(default)]
    pub response_targets: BTreeMap<String, ResponseTarget>,
    /// Unacknowledged open incidents are announced again this often (default "4h").
    #[serde(default = "default_repeat_interval")]
    pub repeat_interval: HumanDuration,
    /// Words for status page posts, per situation: `[status_templates.NAME]`.
    #[serde(default)]
    pub status_templates: BTreeMap<Id, crate::status::StatusTemplate>,
    /// Subscribers to the status page (email with a confirmation link; webhooks by admins).
    #[serde(default)]
    pub subscriptions: Option<Spanned<crate::status::SubscriptionsConfig>>,
    /// SLA reports mailed on a schedule: `[[report_schedules]]`.
    #[serde(default)]
    pub report_schedules: Vec<crate::status::ReportSchedule>,
    /// Status pages per audience (a customer's services only): `[status_pages.NAME]`.
    #[serde(default)]
    pub status_pages: BTreeMap<Id, crate::status::StatusPageConfig>,
}

/// The collector's own certificate (PEM files, re-read on SIGHUP), and optionally the CA whose
/// client certificates it requires (mutual TLS).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert_file: Spanned<PathBuf>,
    pub key_file: Spanned<PathBuf>,
    /// Require every client (agents, browsers, Prometheus) to present a certificate issued by
    /// this CA.
    #[serde(default)]
    pub client_ca_file: Option<Spanned<PathBuf>>,
}

/// What the collector serves without an API token. Everything not listed here (the API, the
/// incident and SLA pages) needs one: `Authorization: Bearer <token>`, or in a browser the
/// token's name as user and the token as password.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessConfig {
    /// The status page `/` and the SVG badges (default true: for customers).
    #[serde(default = "yes")]
    pub public_status_page: bool,
    /// `/metrics` (default false: give Prometheus a bearer token, or set true on a trusted
    /// network).
    #[serde(default)]
    pub public_metrics: bool,
    /// Show incidents on the status page with the probes' own words ("connection refused to
    /// 10.0.0.5:5432"). Off by default: customers read "shop-db is down", and addresses and
    /// error text stay inside.
    #[serde(default)]
    pub status_page_details: bool,
}

impl Default for AccessConfig {
    fn default() -> Self {
        AccessConfig { public_status_page: true, public_metrics: false, status_page_details: false }
    }
}

fn yes() -> bool {
    true
}

/// How notifications are grouped into messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    #[default]
    Receiver,
    Service,
    Incident,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiToken {
    /// `sha256:<64 hex digits>`, as printed by `vakt-collector hash-token`.
    pub token_hash: Spanned<String>,
    /// What the token may do: `read` (the API and pages), `oncall` (also acknowledge, notes,
    /// resolve, silences; the default) or `admin` (also maintenance windows, retroactive ones
    /// included).
    #[serde(default)]
    pub scope: Scope,
}

/// What an API token may do; each scope includes those before it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    #[default]
    Oncall,
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Oncall => "oncall",
            Scope::Admin => "admin",
        }
    }
}

/// How soon incidents of one priority must be acknowledged and resolved.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseTarget {
    #[serde(default)]
    pub acknowledge: Option<HumanDuration>,
    #[serde(default)]
    pub resolve: Option<HumanDuration>,
    /// Count the targets only inside these service hours (`[service_hours.NAME]`), as
    /// business-time contracts do; calendar time without.
    #[serde(default)]
    pub service_hours: Option<Id>,
    /// Tell the incident's receivers again this long before a target is due while it is still
    /// running (a breach about to happen); off when unset.
    #[serde(default)]
    pub warn_before: Option<HumanDuration>,
}

/// An agent allowed to push, with the hash of its token.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentEntry {
    /// `sha256:<64 hex digits>`, as printed by `vakt-collector hash-token`.
    pub token_hash: Spanned<String>,
    #[serde(default, deserialize_with = "deserialize_labels")]
    pub labels: BTreeMap<String, String>,
    /// Overrides the collector's `agent_silent_after` for this agent.
    #[serde(default)]
    pub silent_after: Option<Spanned<HumanDuration>>,
    /// Overrides the collector's `max_local_checks` for this agent.
    #[serde(default)]
    pub max_local_checks: Option<usize>,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8427";

fn default_listen() -> Spanned<String> {
    Spanned::new(0..0, DEFAULT_LISTEN.to_string())
}
fn default_group_wait() -> HumanDuration {
    HumanDuration(std::time::Duration::from_millis(500))
}
fn default_repeat_interval() -> HumanDuration {
    HumanDuration::from_secs(4 * 3600)
}
fn default_raw_retention() -> Spanned<HumanDuration> {
    Spanned::new(0..0, HumanDuration::from_secs(30 * 86_400))
}
fn default_rollup_retention() -> Spanned<HumanDuration> {
    Spanned::new(0..0, HumanDuration::from_secs(400 * 86_400))
}
fn default_flap_threshold() -> u32 {
    6
}
fn default_flap_window() -> HumanDuration {
    HumanDuration::from_secs(3600)
}
fn default_slo_evaluation_interval() -> HumanDuration {
    HumanDuration::from_secs(10)
}
/// Where `needle` first appears in the file being checked (0 when it does not).
pub(crate) fn r_source_offset(r: &Reporter<'_>, needle: &str) -> usize {
    r.source().find(needle).unwrap_or(0)
}

fn default_max_connections() -> usize {
    4096
}
fn default_request_header_timeout() -> HumanDuration {
    HumanDuration::from_secs(10)
}
fn default_request_body_timeout() -> HumanDuration {
    HumanDuration::from_secs(30)
}
fn default_ingest_memory_bytes() -> Spanned<usize> {
    Spanned::new(0..0, 256 << 20)
}
fn default_max_local_checks() -> usize {
    100
}
fn default_agent_silent_after() -> Spanned<HumanDuration> {
    Spanned::new(0..0, HumanDuration::from_secs(120))
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("vakt-data")
}
fn default_max_body_bytes() -> Spanned<usize> {
    Spanned::new(0..0, 32 * 1024 * 1024)
}
fn default_agent_push_rate() -> Spanned<f64> {
    Spanned::new(0..0, 20.0)
}
fn default_max_batch_samples() -> Spanned<usize> {
    Spanned::new(0..0, 100_000)
}

/// True for `sha256:` followed by 64 lowercase hex digits.
pub fn valid_token_hash(s: &str) -> bool {
    s.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

impl CollectorConfig {
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let source = crate::read_source(path)?;
        Ok(Self::parse(&source, path)?)
    }

    pub fn parse(source: &str, path: &Path) -> Result<Self, ConfigErrors> {
        let mut r = Reporter::new(path, source);
        let Some(mut cfg) = parse_all::<CollectorConfig>(&mut r) else {
            return Err(r.into_errors());
        };
        if let Some(tls) = &mut cfg.tls {
            let resolve = |f: &Spanned<PathBuf>| Spanned::new(f.span(), resolve_path(path, f.get_ref()));
            tls.cert_file = resolve(&tls.cert_file);
            tls.key_file = resolve(&tls.key_file);
            tls.client_ca_file = tls.client_ca_file.as_ref().map(resolve);
        }
        cfg.validate(&mut r);
        cfg.data_dir = resolve_path(path, &cfg.data_dir);
        if let Some(file) = cfg.store.get_mut().url.as_mut().and_then(|u| u.file.as_mut()) {
            *file = resolve_path(path, file);
        }
        for rw in &mut cfg.remote_write {
            let rw = rw.get_mut();
            for file in
                [rw.url.file.as_mut(), rw.bearer_token.as_mut().and_then(|t| t.file.as_mut())].into_iter().flatten()
            {
                *file = resolve_path(path, file);
            }
        }
        r.finish(cfg)
    }

    fn validate(&self, r: &mut Reporter<'_>) {
        let store = self.store.get_ref();
        match (store.kind, store.url.as_ref().is_some_and(|u| u.is_set())) {
            (StoreKind::Postgres, false) => r.span(
                self.store.span(),
                "[store] kind = \"postgres\" needs a `url`",
                "e.g. url = { env = \"VAKT_DATABASE_URL\" } holding postgres://vakt@db:5432/vakt",
            ),
            (StoreKind::Sqlite, true) => r.span(
                self.store.span(),
                "[store] has a `url` but kind is \"sqlite\" (the default)",
                "set kind = \"postgres\", or remove the url: SQLite lives in data_dir",
            ),
            _ => {}
        }
        if store.pool_size == 0 {
            r.span(self.store.span(), "[store] pool_size must be at least 1", "the default is 8");
        }
        let mut names = std::collections::HashSet::new();
        for rw in &self.remote_write {
            let c = rw.get_ref();
            if !names.insert(c.name.clone()) {
                r.span(rw.span(), format!("two [[remote_write]] are named {:?}", c.name), "give each its own name");
            }
            if c.name.is_empty() || !c.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                r.span(
                    rw.span(),
                    format!("remote_write name {:?} is not a plain name", c.name),
                    "letters, digits, - and _",
                );
            }
            if !c.url.is_set() {
                r.span(
                    rw.span(),
                    "[[remote_write]] needs a `url`",
                    "e.g. url = { value = \"http://prometheus:9090/api/v1/write\" }",
                );
            }
            if c.max_samples_per_send == 0 {
                r.span(rw.span(), "max_samples_per_send must be at least 1", "the default is 2000");
            }
        }
        if store.leader_lease.get() < std::time::Duration::from_millis(500) {
            r.span(
                self.store.span(),
                "[store] leader_lease is shorter than 500ms: the leader could not renew it in time",
                "the default is 2s",
            );
        }
        if store.node.as_ref().is_some_and(|n| n.trim().is_empty() || n.len() > 100) {
            r.span(self.store.span(), "[store] node is empty or longer than 100 characters", "e.g. node = \"c1\"");
        }
        if self.listen.get_ref().parse::<SocketAddr>().is_err() {
            r.span(
                self.listen.span(),
                format!("listen address {:?} is not ip:port", self.listen.get_ref()),
                "e.g. \"127.0.0.1:8427\" or \"[::]:8427\"",
            );
        }
        if let Some(tls) = &self.tls {
            for (what, f) in [
                ("cert_file", Some(&tls.cert_file)),
                ("key_file", Some(&tls.key_file)),
                ("client_ca_file", tls.client_ca_file.as_ref()),
            ] {
                if let Some(f) = f {
                    if !f.get_ref().is_file() {
                        r.span(
                            f.span(),
                            format!("tls.{what} {} does not exist", f.get_ref().display()),
                            "give the path of a PEM file (relative paths are relative to this file)",
                        );
                    }
                }
            }
        }
        if *self.ingest_memory_bytes.get_ref() < *self.max_body_bytes.get_ref() {
            r.span(
                self.ingest_memory_bytes.span(),
                "`ingest_memory_bytes` is below `max_body_bytes`: no push of the largest size could be read",
                "raise it, or lower max_body_bytes",
            );
        }
        if *self.max_body_bytes.get_ref() < 1024 {
            r.span(self.max_body_bytes.span(), "`max_body_bytes` is below 1024", "the default is 33554432 (32 MiB)");
        }
        if !(self.agent_push_rate.get_ref().is_finite() && *self.agent_push_rate.get_ref() >= 0.0) {
            r.span(
                self.agent_push_rate.span(),
                "`agent_push_rate` must be 0 (off) or more",
                "the default is 20 pushes per second",
            );
        }
        if *self.max_batch_samples.get_ref() == 0 {
            r.span(self.max_batch_samples.span(), "`max_batch_samples` must be at least 1", "the default is 100000");
        }
        let mut seen_hashes: std::collections::HashMap<&str, &Id> = std::collections::HashMap::new();
        if self.agent_silent_after.get_ref().get() < std::time::Duration::from_secs(1) {
            r.span(self.agent_silent_after.span(), "`agent_silent_after` must be at least 1s", "the default is \"2m\"");
        }
        for (name, agent) in &self.agents {
            if let Some(s) = &agent.silent_after {
                if s.get_ref().get() < std::time::Duration::from_secs(1) {
                    r.span(s.span(), format!("agent {name:?}: `silent_after` must be at least 1s"), "e.g. \"5m\"");
                }
            }
            if let Some(other) = seen_hashes.insert(agent.token_hash.get_ref(), name) {
                r.span(
                    agent.token_hash.span(),
                    format!("agent {name:?} has the same token_hash as agent {other:?}"),
                    "give every agent its own token: run `vakt-collector hash-token` once per agent",
                );
            }
            if !valid_token_hash(agent.token_hash.get_ref()) {
                r.span(
                    agent.token_hash.span(),
                    format!("agent {name:?}: token_hash is not a sha256 hash"),
                    "run `vakt-collector hash-token` and paste the `sha256:...` line it prints",
                );
            }
        }
        for (name, t) in &self.api_tokens {
            if !valid_token_hash(t.token_hash.get_ref()) {
                r.span(
                    t.token_hash.span(),
                    format!("api token {name:?}: token_hash is not a sha256 hash"),
                    "run `vakt-collector hash-token` and paste the `sha256:...` line it prints",
                );
            }
            if self.agents.values().any(|a| a.token_hash.get_ref() == t.token_hash.get_ref()) {
                r.span(
                    t.token_hash.span(),
                    format!("api token {name:?} is also an agent's token"),
                    "people and agents get tokens of their own",
                );
            }
        }
        for (id, check) in &self.checks {
            check.validate(id.as_str(), r);
            for a in &check.agents {
                if !self.agents.contains_key(a.get_ref().as_str()) {
                    r.span(
                        a.span(),
                        format!("check {id:?}: unknown agent {:?}", a.get_ref()),
                        "declare it under [agents.NAME] or fix the name",
                    );
                }
            }
            if let Some(q) = &check.quorum {
                let n = self
                    .agents
                    .keys()
                    .filter(|a| self.assignments_for(a.as_str()).iter().any(|c| c.id == id.as_str()))
                    .count();
                if *q.get_ref() == 0 || *q.get_ref() as usize > n {
                    r.span(
                        q.span(),
                        format!("check {id:?}: quorum {} but {n} agents probe it", q.get_ref()),
                        "quorum is between 1 and the number of agents assigned",
                    );
                }
            }
            if check.agents.is_empty() && check.selector.is_none() && check.kind != crate::CheckKind::Heartbeat {
                r.span(
                    check.target.span(),
                    format!("check {id:?} is assigned to no agent"),
                    "add agents = [\"NAME\"] or selector = \"label=value\"",
                );
            }
        }
        if let Some(tz) = &self.display_timezone {
            if jiff::tz::TimeZone::get(tz.get_ref()).is_err() {
                r.span(
                    tz.span(),
                    format!("display_timezone: unknown time zone {:?}", tz.get_ref()),
                    "an IANA name, e.g. \"Europe/Oslo\"",
                );
            }
        }
        if self.raw_retention.get_ref().get() < std::time::Duration::from_secs(3600) {
            r.span(self.raw_retention.span(), "`raw_retention` is under 1h", "the default is \"30d\"");
        }
        if self.rollup_retention.get_ref() < self.raw_retention.get_ref() {
            r.span(
                self.rollup_retention.span(),
                "`rollup_retention` is shorter than `raw_retention`",
                "rollups outlive raw samples; the default is \"400d\"",
            );
        }
        for (name, slo) in &self.slos {
            if let Some(w) = &slo.window {
                if w.get_ref() > self.rollup_retention.get_ref() {
                    r.span(
                        w.span(),
                        format!("slo {name:?}: its window is longer than `rollup_retention`"),
                        "raise rollup_retention or shorten the window",
                    );
                }
            }
        }
        if let Some(m) = &self.priority_matrix {
            let ok = m.len() == 3
                && m.iter().all(|row| {
                    row.len() == 3 && row.iter().all(|p| matches!(p.as_str(), "P1" | "P2" | "P3" | "P4" | "P5"))
                });
            if !ok {
                r.at(
                    0,
                    "`priority_matrix` must be 3 rows of 3 priorities P1..P5",
                    Some("rows are impact high, medium, low; columns urgency high, medium, low".into()),
                );
            }
        }
        for p in self.response_targets.keys() {
            if !matches!(p.as_str(), "P1" | "P2" | "P3" | "P4" | "P5") {
                // The key's place is not kept: point at the table by its text.
                let offset = r_source_offset(r, &format!("response_targets.{p}"));
                r.at(offset, format!("response_targets.{p}: not a priority"), Some("the keys are P1 to P5".into()));
            }
        }
        for (name, hours) in &self.service_hours {
            hours.validate(name.as_str(), r);
        }
        for (p, t) in &self.response_targets {
            if let Some(h) = t.service_hours.as_ref().filter(|h| !self.service_hours.contains_key(h.as_str())) {
                let offset = r_source_offset(r, &format!("response_targets.{p}"));
                r.at(
                    offset,
                    format!("response_targets.{p}: unknown service_hours {:?}", h.as_str()),
                    Some("declare it under [service_hours.NAME]".into()),
                );
            }
        }
        for (name, slo) in &self.slos {
            slo.validate(name.as_str(), &self.services, &self.service_hours, r);
        }
        for (name, rcv) in &self.receivers {
            rcv.validate(name.as_str(), r);
        }
        crate::status::validate(
            &self.status_templates,
            self.subscriptions.as_ref(),
            &self.receivers,
            self.public_url.as_deref(),
            r,
        );
        crate::status::validate_reports(&self.report_schedules, &self.receivers, &self.services, r);
        crate::status::validate_pages(&self.status_pages, &self.services, r);
        for (i, route) in self.routes.iter().enumerate() {
            route.validate(i, &self.receivers, &self.services, r);
        }
        for m in &self.maintenance {
            m.validate(&self.services, r);
        }
        for (name, service) in &self.services {
            let c = service.criticality.get_ref();
            if !(1..=5).contains(c) {
                r.span(
                    service.criticality.span(),
                    format!("service {name:?}: criticality {c} is not 1..=5"),
                    "1 is the most critical",
                );
            }
            for d in &service.depends_on {
                if !self.services.contains_key(d.get_ref().as_str()) {
                    r.span(
                        d.span(),
                        format!("service {name:?}: depends on unknown service {:?}", d.get_ref()),
                        "declare it under [services.NAME]",
                    );
                } else if self.depends_transitively(d.get_ref(), name.as_str()) {
                    r.span(
                        d.span(),
                        format!("service {name:?}: depending on {:?} makes a cycle", d.get_ref()),
                        "dependencies must not loop back",
                    );
                }
            }
            for c in &service.checks {
                if !self.checks.contains_key(c.get_ref().as_str()) {
                    r.span(
                        c.span(),
                        format!("service {name:?}: unknown check {:?}", c.get_ref()),
                        "declare it under [checks.ID] or fix the id",
                    );
                }
            }
        }
    }

    pub fn listen_addr(&self) -> SocketAddr {
        self.listen.get_ref().parse().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8427)))
    }

    /// This collector's name among the nodes sharing a database: `[store] node`, or the host
    /// name and the listen port.
    pub fn node_name(&self) -> String {
        if let Some(node) = &self.store.get_ref().node {
            return node.trim().to_string();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "collector".into());
        format!("{host}:{}", self.listen_addr().port())
    }

    /// True when `from` needs `to`, directly or through other services.
    pub fn depends_transitively(&self, from: &str, to: &str) -> bool {
        let mut stack = vec![from.to_string()];
        let mut seen = std::collections::HashSet::new();
        while let Some(s) = stack.pop() {
            if s == to {
                return true;
            }
            if !seen.insert(s.clone()) {
                continue;
            }
            if let Some(svc) = self.services.get(s.as_str()) {
                stack.extend(svc.depends_on.iter().map(|d| d.get_ref().clone()));
            }
        }
        false
    }

    /// How long `agent` may stay quiet before it is silent.
    pub fn silent_after(&self, agent: &str) -> std::time::Duration {
        self.agents.get(agent).and_then(|a| a.silent_after.as_ref()).unwrap_or(&self.agent_silent_after).get_ref().get()
    }

    /// The checks assigned to `agent`, by name or by label selector.
    pub fn assignments_for(&self, agent: &str) -> Vec<CheckSpec> {
        let labels = self.agents.get(agent).map(|a| &a.labels);
        self.checks.iter().filter(|(_, c)| c.runs_on(agent, labels)).map(|(id, c)| c.to_spec(id.as_str())).collect()
    }

    /// True when `check` is one of `agent`'s assignments (see [`Self::assignments_for`]).
    pub fn is_assigned(&self, agent: &str, check: &str) -> bool {
        let labels = self.agents.get(agent).map(|a| &a.labels);
        self.checks.get(check).is_some_and(|c| c.runs_on(agent, labels))
    }

    /// How many local checks `agent` may announce.
    pub fn max_local_checks(&self, agent: &str) -> usize {
        self.agents.get(agent).and_then(|a| a.max_local_checks).unwrap_or(self.max_local_checks)
    }

    /// Every service `service` depends on, directly or through others.
    pub fn dependencies_of(&self, service: &str) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        let mut stack: Vec<&str> = vec![service];
        while let Some(s) = stack.pop() {
            for d in self.services.get(s).map(|x| x.depends_on.as_slice()).unwrap_or_default() {
                let d = d.get_ref().as_str();
                if d != service && !out.contains(&d) {
                    out.push(d);
                    stack.push(d);
                }
            }
        }
        out
    }

    /// How long to hold the announcement of an incident of `services` for their dependencies
    /// to show whether they are the root cause: `dependency_wait`, or the longest probe
    /// interval among the dependencies' checks plus a second (the agents push every second);
    /// zero without dependencies.
    pub fn dependency_wait_ms(&self, services: &[String]) -> i64 {
        let deps: Vec<&str> = services.iter().flat_map(|s| self.dependencies_of(s)).collect();
        if deps.is_empty() {
            return 0;
        }
        let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        if let Some(w) = self.dependency_wait {
            return ms(w.get());
        }
        deps.iter()
            .filter_map(|d| self.services.get(*d))
            .flat_map(|s| s.checks.iter())
            .filter_map(|c| self.checks.get(c.get_ref().as_str()))
            .map(|c| ms(c.interval.get_ref().get()))
            .max()
            .map_or(0, |interval| interval.saturating_add(1_000))
    }

    /// The services a check belongs to.
    pub fn services_of(&self, check: &str) -> Vec<&str> {
        self.services
            .iter()
            .filter(|(_, s)| s.checks.iter().any(|c| c.get_ref() == check))
            .map(|(name, _)| name.as_str())
            .collect()
    }
}
