//! The on-call engineer's pages, rendered on the server (no JavaScript): the incident list, one
//! incident with its timeline and the acknowledge / note / resolve forms, and the SLA view with
//! report downloads, and the agents. Pure: data in, HTML out; `web.rs` serves them.

use crate::core::incident::{Incident, IncidentStatus};
use crate::core::time::{human_span, rfc3339, Shown};

/// A time as people read it — local, with how long ago — and the exact UTC instant on hover
/// and in `datetime` for tools.
pub fn time(t: &Shown, ms: i64) -> String {
    format!(
        "<time datetime=\"{utc}\" title=\"{utc}\">{local} <span class=\"ago\">({ago})</span></time>",
        utc = esc(&rfc3339(ms)),
        local = esc(&t.local(ms)),
        ago = esc(&t.relative(ms)),
    )
}

/// A time without the relative part (timeline entries, where the neighbours give the order).
pub fn time_only(t: &Shown, ms: i64) -> String {
    format!("<time datetime=\"{utc}\" title=\"{utc}\">{}</time>", esc(&t.local(ms)), utc = esc(&rfc3339(ms)))
}

/// An incident as the pages show it: with the services and customers it touches.
#[derive(Clone, Debug)]
pub struct IncidentRow {
    pub incident: Incident,
    pub services: Vec<String>,
    pub customers: Vec<String>,
    /// Its acknowledgement and resolution targets (empty without `response_targets`).
    pub targets: crate::core::incident::Targets,
    /// Linked under a root cause: the services from this incident's to the root cause's, along
    /// `depends_on` (empty when not linked or not known).
    pub root_path: Vec<String>,
}

/// One SLO as the SLA view shows it.
#[derive(Clone, Debug)]
pub struct SlaRow {
    pub slo: String,
    pub service: String,
    /// 0..1
    pub objective: f64,
    pub achieved: Option<f64>,
    pub met: bool,
    /// "no data", "met", "on track", "at risk", "breached", "not enough data yet (...)".
    pub status: String,
    pub budget_remaining_ratio: f64,
    pub downtime_minutes: Option<f64>,
    pub window: String,
    /// "critical 14.4x over 1h", ...
    pub alerts: Vec<String>,
    /// The error budget over the window, drawn (SVG).
    pub budget_chart: Option<String>,
}

pub fn esc(s: &str) -> String {
    crate::core::html::escape(s)
}

/// The frame every on-call page shares: title, navigation, styles.
pub fn layout(title: &str, who: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Vakt</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 0 auto; max-width: 64rem; padding: 1.5rem; color: #1d2630; }}
nav {{ display: flex; gap: 1rem; align-items: baseline; border-bottom: 1px solid #e3e7eb; padding-bottom: .6rem; }}
nav .who {{ margin-left: auto; color: #6b7785; font-size: .9rem; }}
a {{ color: #0b5cad; }}
table {{ border-collapse: collapse; width: 100%; }} th, td {{ text-align: left; padding: .4rem .5rem; border-bottom: 1px solid #e3e7eb; vertical-align: top; }}
th {{ font-size: .85rem; color: #4a5663; }}
.prio {{ font-weight: 700; }} .prio.P1 {{ color: #b3261e; }} .prio.P2 {{ color: #c2410c; }} .prio.P3 {{ color: #9a5b00; }}
.status.open {{ color: #b3261e; font-weight: 600; }} .status.acknowledged {{ color: #9a5b00; }} .status.resolved {{ color: #17702f; }}
.met {{ color: #17702f; font-weight: 600; }} .missed {{ color: #b3261e; font-weight: 600; }}
.budget {{ background: #e3e7eb; border-radius: 3px; height: .6rem; width: 8rem; display: inline-block; vertical-align: middle; }}
.budget span {{ display: block; height: 100%; border-radius: 3px; background: #2e9b4f; }} .budget span.low {{ background: #d93a2b; }}
dl {{ display: grid; grid-template-columns: 12rem 1fr; gap: .3rem 1rem; }} dt {{ color: #4a5663; }} dd {{ margin: 0; }}
form {{ margin: .6rem 0; }} textarea {{ width: 100%; max-width: 40rem; min-height: 3rem; }}
button {{ padding: .35rem .9rem; border-radius: .3rem; border: 1px solid #0b5cad; background: #0b5cad; color: #fff; cursor: pointer; }}
button.secondary {{ background: #fff; color: #0b5cad; }}
figure {{ margin: 1rem 0; }} figcaption {{ font-weight: 600; margin-bottom: .3rem; }}
.timeline li {{ margin: .25rem 0; white-space: pre-line; }} .muted, .ago {{ color: #5b6775; font-size: .9rem; }}
.silent, .clock.off {{ color: #b3261e; font-weight: 600; }} .reporting {{ color: #17702f; }}
</style></head>
<body>
<nav><strong>Vakt</strong><a href="/incidents">Incidents</a><a href="/sla">SLA</a><a href="/agents">Agents</a><a href="/status-posts">Posts</a><a href="/">Status page</a><span class="who">{who}</span></nav>
<h1>{title}</h1>
{body}
</body></html>
"#,
        title = esc(title),
        who = esc(who),
    )
}

fn incident_table(rows: &[IncidentRow], empty: &str, t: &Shown) -> String {
    if rows.is_empty() {
        return format!("<p class=\"muted\">{}</p>", esc(empty));
    }
    let mut out = String::from(
        "<table><thead><tr><th>#</th><th>Priority</th><th>Incident</th><th>Services</th><th>Since</th><th>Status</th></tr></thead><tbody>\n",
    );
    for r in rows {
        let i = &r.incident;
        let status = match (i.status, &i.acknowledged_by) {
            (IncidentStatus::Acknowledged, Some(by)) => format!("acknowledged by {}", esc(by)),
            (IncidentStatus::Resolved, _) => {
                format!("resolved after {}", i.resolved_ms.map(|r| human_span(r - i.opened_ms)).unwrap_or_default())
            }
            (s, _) => format!("{} for {}", s.as_str(), human_span(t.now_ms - i.opened_ms)),
        };
        out.push_str(&format!(
            "<tr class=\"incident\" data-id=\"{id}\" data-status=\"{st}\"><td><a href=\"/incidents/{id}\">{id}</a></td><td class=\"prio {p}\">{p}</td><td><a href=\"/incidents/{id}\">{title}</a><div class=\"muted\">{sev} · {kind}</div></td><td>{services}</td><td>{since}</td><td class=\"status {st}\">{status}</td></tr>\n",
            id = i.id,
            p = esc(&i.priority),
            title = esc(&i.title),
            sev = esc(&i.severity),
            kind = i.kind.as_str(),
            services = service_links(&r.services),
            since = time(t, i.opened_ms),
            st = i.status.as_str(),
        ));
    }
    out.push_str("</tbody></table>");
    out
}

/// The incident list: what is unresolved, then what was resolved lately.
pub fn incidents(open: &[IncidentRow], recent: &[IncidentRow], who: &str, t: &Shown) -> String {
    let body = format!(
        "<h2>Open ({})</h2>\n<div id=\"open\">{}</div>\n<h2>Resolved in the last 14 days</h2>\n<div id=\"resolved\">{}</div>",
        open.len(),
        incident_table(open, "Nothing is open.", t),
        incident_table(recent, "No incidents.", t),
    );
    layout("Incidents", who, &body)
}

/// One incident: its facts, the forms to act on it, its timeline.
pub fn incident(r: &IncidentRow, who: &str, t: &Shown, around: Option<&str>) -> String {
    let i = &r.incident;
    let mut facts = format!(
        "<dl id=\"facts\">\n<dt>Status</dt><dd class=\"status {st}\" id=\"status\">{st}</dd>\n<dt>Priority</dt><dd class=\"prio {p}\">{p}</dd>\n<dt>Severity</dt><dd>{sev}</dd>\n<dt>Kind</dt><dd>{kind} of {subject}</dd>\n<dt>Services</dt><dd>{services}</dd>\n<dt>Customers</dt><dd>{customers}</dd>\n<dt>Opened</dt><dd>{opened}</dd>\n",
        st = i.status.as_str(),
        p = esc(&i.priority),
        sev = esc(&i.severity),
        kind = i.kind.as_str(),
        subject = subject_link(i),
        services = service_links(&r.services),
        customers = esc(&or_dash(&r.customers.join(", "))),
        opened = match i.resolved_ms {
            None => format!("{} · open for {}", time(t, i.opened_ms), human_span(t.now_ms - i.opened_ms)),
            Some(_) => time(t, i.opened_ms),
        },
    );
    if let (Some(at), Some(by)) = (i.acknowledged_ms, &i.acknowledged_by) {
        facts.push_str(&format!(
            "<dt>Acknowledged</dt><dd id=\"acknowledged\">by {} at {} ({} after opening)</dd>\n",
            esc(by),
            time(t, at),
            human_span(at - i.opened_ms)
        ));
    }
    if let Some(at) = i.resolved_ms {
        facts.push_str(&format!(
            "<dt>Resolved</dt><dd>{} (after {})</dd>\n",
            time(t, at),
            human_span(at - i.opened_ms)
        ));
    }
    if let Some(parent) = i.parent_id {
        facts.push_str(&format!("<dt>Root cause</dt><dd><a href=\"/incidents/{parent}\">incident {parent}</a></dd>\n"));
        if r.root_path.len() > 1 {
            let path: Vec<String> =
                r.root_path.iter().map(|s| format!("<a href=\"/services/{0}\">{0}</a>", esc(s))).collect();
            facts.push_str(&format!("<dt>Dependency path</dt><dd id=\"root-path\">{}</dd>\n", path.join(" → ")));
        }
    }
    if !r.targets.is_empty() {
        let class = if r.targets.breached() { "breached" } else { "" };
        facts.push_str(&format!(
            "<dt>Targets ({})</dt><dd id=\"targets\" class=\"{class}\">{}</dd>\n",
            esc(&i.priority),
            esc(&r.targets.describe())
        ));
    }
    facts.push_str("</dl>\n");
    let mut forms = String::new();
    if i.status != IncidentStatus::Resolved {
        if i.status == IncidentStatus::Open {
            forms.push_str(&format!(
                "<form method=\"post\" action=\"/incidents/{id}/ack\" id=\"ack\"><label for=\"ack-note\">Note (optional): what you are doing</label><br><textarea id=\"ack-note\" name=\"note\"></textarea><br><button type=\"submit\">Acknowledge</button></form>\n",
                id = i.id
            ));
        }
        forms.push_str(&format!(
            "<form method=\"post\" action=\"/incidents/{id}/notes\" id=\"note\"><label for=\"note-text\">A note for the timeline</label><br><textarea id=\"note-text\" name=\"text\" required></textarea><br><button type=\"submit\" class=\"secondary\">Add note</button></form>\n\
             <form method=\"post\" action=\"/incidents/{id}/resolve\" id=\"resolve\"><button type=\"submit\" class=\"secondary\">Resolve by hand</button></form>\n",
            id = i.id
        ));
    }
    let timeline: String = i
        .timeline
        .iter()
        .map(|e| {
            format!(
                "<li data-kind=\"{}\"><span class=\"muted\">{}</span> <strong>{}</strong> {}</li>\n",
                esc(&e.kind),
                time_only(t, e.at_ms),
                esc(&e.kind),
                esc(&e.message)
            )
        })
        .collect();
    let around = around.map(|svg| format!("<h2>The check around the incident</h2>\n{svg}\n")).unwrap_or_default();
    let body =
        format!("{facts}{forms}{around}<h2>Timeline</h2>\n<ul class=\"timeline\" id=\"timeline\">{timeline}</ul>");
    layout(&format!("Incident {}: {}", i.id, i.title), who, &body)
}

/// The agents: who reports, who is silent, which version, whose clock is off.
pub fn agents(rows: &[crate::http::fleet::AgentOverview], t: &Shown, who: &str) -> String {
    let now_ms = t.now_ms;
    use vakt_config::wire::{describe_clock_skew, CLOCK_SKEW_WARN_MS};
    if rows.is_empty() {
        return layout("Agents", who, "<p class=\"muted\">No agents are configured.</p>");
    }
    let silent = rows.iter().filter(|a| a.silent).count();
    let noun = if rows.len() == 1 { "agent" } else { "agents" };
    let mut body = format!(
        "<p>{} {noun}, {silent} silent.</p>\n<table><thead><tr><th>Agent</th><th>State</th><th>Last heard</th><th>Version</th><th>Clock</th><th>Instance</th><th>Samples</th></tr></thead><tbody>\n",
        rows.len()
    );
    for a in rows {
        let (state, class) = match (a.last_seen_ms, a.silent) {
            (None, _) => ("never heard from", "silent"),
            (Some(_), true) => ("silent", "silent"),
            (Some(_), false) => ("reporting", "reporting"),
        };
        let t_shown = t;
        let heard = a.last_seen_ms.map_or("—".to_string(), |at| {
            format!("{}<div class=\"muted\">{}</div>", esc(&t_shown.relative(at)), time_only(t_shown, at))
        });
        let clock = match a.clock_skew_seconds {
            None => "<td class=\"clock\">—</td>".to_string(),
            Some(s) => {
                let ms = (s * 1000.0) as i64;
                let off = if ms.abs() > CLOCK_SKEW_WARN_MS { " off" } else { "" };
                format!("<td class=\"clock{off}\">{} the collector's</td>", esc(&describe_clock_skew(ms)))
            }
        };
        let configured = if a.configured { "" } else { "<div class=\"muted\">not in collector.toml</div>" };
        // A new instance: the agent's state directory was made anew (its sequence restarted).
        let instance = match (&a.instance, a.instance_since_ms) {
            (Some(id), Some(since)) => format!(
                "<td class=\"instance\" title=\"{id}\">{short}<div class=\"muted\">since {ago} ago</div></td>",
                id = esc(id),
                short = esc(&id.chars().take(8).collect::<String>()),
                ago = human_span(now_ms - since)
            ),
            _ => "<td class=\"instance\">—</td>".to_string(),
        };
        body.push_str(&format!(
            "<tr class=\"agent\" id=\"agent-{name}\" data-agent=\"{name}\"><td>{name}{configured}</td><td class=\"{class}\">{state}</td><td>{heard}</td><td>{version}</td>{clock}{instance}<td>{samples}</td></tr>\n",
            name = esc(&a.name),
            version = esc(a.version.as_deref().unwrap_or("—")),
            samples = a.samples,
        ));
    }
    body.push_str("</tbody></table>");
    layout("Agents", who, &body)
}

/// What an incident is about, linked to its page: a check's, or an agent's row.
fn subject_link(i: &Incident) -> String {
    use crate::core::incident::IncidentKind;
    match i.kind {
        IncidentKind::CheckDown | IncidentKind::CheckWarning | IncidentKind::Flapping => {
            format!("<a href=\"/checks/{0}\">{0}</a>", esc(&i.subject))
        }
        IncidentKind::AgentSilent => format!("<a href=\"/agents#agent-{0}\">{0}</a>", esc(&i.subject)),
        _ => esc(&i.subject),
    }
}

/// Services, each linked to its page; "—" for none.
pub fn service_links(services: &[String]) -> String {
    if services.is_empty() {
        return "—".into();
    }
    services.iter().map(|s| format!("<a href=\"/services/{0}\">{0}</a>", esc(s))).collect::<Vec<_>>().join(", ")
}

fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "—".into()
    } else {
        s.to_string()
    }
}

/// The SLA view: per SLO, target against achieved, error budget left, and the reports.
/// `periods` are the months offered for download, newest first ("2026-11").
pub fn sla(rows: &[SlaRow], periods: &[String], who: &str) -> String {
    let mut body = String::new();
    if rows.is_empty() {
        body.push_str("<p class=\"muted\">No SLOs are configured: add [slos.NAME] to collector.toml.</p>");
    } else {
        body.push_str("<table id=\"slos\"><thead><tr><th>Service</th><th>SLO</th><th>Target</th><th>Achieved</th><th>Error budget left</th><th>Downtime</th><th>Window</th><th>Burn alerts</th></tr></thead><tbody>\n");
        for r in rows {
            let achieved = r.achieved.map(|a| format!("{:.3}%", a * 100.0)).unwrap_or_else(|| "no data".into());
            let left = r.budget_remaining_ratio.clamp(0.0, 1.0);
            body.push_str(&format!(
                "<tr class=\"slo\" data-slo=\"{slo}\" data-met=\"{met}\"><td>{service}</td><td>{slo}</td><td>{target:.3}%</td><td class=\"{class}\">{achieved}<div class=\"status\">{status}</div></td><td><span class=\"budget\"><span class=\"{low}\" style=\"width: {width:.0}%\"></span></span> {budget}</td><td>{down}</td><td class=\"muted\">{window}</td><td>{alerts}</td></tr>\n",
                slo = esc(&r.slo),
                met = r.met,
                status = esc(&r.status),
                service = esc(&r.service),
                target = r.objective * 100.0,
                class = if r.met { "met" } else { "missed" },
                low = if left < 0.25 { "low" } else { "" },
                width = left * 100.0,
                // A young install's budget figure ("-99,900 %") says nothing yet.
                budget = if r.status.starts_with("not enough data") {
                    "—".to_string()
                } else {
                    format!("{:.1}%", r.budget_remaining_ratio * 100.0)
                },
                down = r.downtime_minutes.map(|m| format!("{m:.1} min")).unwrap_or_else(|| "—".into()),
                window = esc(&r.window),
                alerts = esc(&or_dash(&r.alerts.join("; "))),
            ));
        }
        body.push_str("</tbody></table>\n");
        for r in rows {
            if let Some(svg) = &r.budget_chart {
                body.push_str(&format!(
                    "<figure class=\"budget-chart\" data-slo=\"{0}\"><figcaption>{0}: error budget left over the window</figcaption>{svg}</figure>\n",
                    esc(&r.slo)
                ));
            }
        }
    }
    let mut services: Vec<&str> = rows.iter().map(|r| r.service.as_str()).collect();
    services.sort_unstable();
    services.dedup();
    if !services.is_empty() {
        body.push_str("<h2>Reports</h2>\n<table id=\"reports\"><thead><tr><th>Service</th><th>Period</th><th>Download</th></tr></thead><tbody>\n");
        for s in services {
            for p in periods {
                let link = |format: &str| {
                    format!(
                        "<a href=\"/api/v1/reports/sla?service={s}&amp;period={p}&amp;format={format}\" download>{format}</a>",
                        s = esc(s),
                        p = esc(p)
                    )
                };
                body.push_str(&format!(
                    "<tr><td>{}</td><td>{}</td><td>{} · {} · {}</td></tr>\n",
                    esc(s),
                    esc(p),
                    link("html"),
                    link("csv"),
                    link("json")
                ));
            }
        }
        body.push_str("</tbody></table>\n");
    }
    layout("Service levels", who, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::incident::{IncidentKind, TimelineEvent};

    #[test]
    fn the_agents_page_marks_silent_agents_and_wrong_clocks() {
        let agent =
            |name: &str, last: Option<i64>, silent: bool, skew: Option<f64>| crate::http::fleet::AgentOverview {
                name: name.into(),
                configured: true,
                last_seen: None,
                last_seen_ms: last,
                silent,
                version: Some("0.1.0".into()),
                clock_skew_seconds: skew,
                batches: 1,
                samples: 5,
                last_sequence: 1,
                instance: last.map(|_| "5f0c1d2e3a4b5c6d5f0c1d2e3a4b5c6d".into()),
                instance_since: None,
                instance_since_ms: last,
            };
        let now = 10 * 60_000;
        let html = agents(
            &[
                agent("edge", Some(now - 2_000), false, Some(0.2)),
                agent("<db>", Some(0), true, Some(-95.0)),
                agent("new", None, true, None),
            ],
            &utc(now),
            "ops",
        );
        assert!(html.contains("<p>3 agents, 2 silent.</p>"), "{html}");
        assert!(html.contains("class=\"reporting\">reporting</td><td>just now"), "{html}");
        assert!(html.contains("<td class=\"clock\">in step with the collector's</td>"), "{html}");
        assert!(html.contains("data-agent=\"&lt;db&gt;\""), "names escaped: {html}");
        assert!(html.contains("class=\"silent\">silent</td><td>10 min ago<div class=\"muted\"><time datetime=\"1970-01-01T00:00:00Z\" title=\"1970-01-01T00:00:00Z\">1970-01-01 00:00 UTC</time>"), "{html}");
        assert!(html.contains("<td class=\"clock off\">1m35s behind the collector's</td>"), "{html}");
        assert!(html.contains("class=\"silent\">never heard from</td><td>—</td>"), "{html}");
        assert!(
            html.contains("<td class=\"instance\" title=\"5f0c1d2e3a4b5c6d5f0c1d2e3a4b5c6d\">5f0c1d2e<div class=\"muted\">since 2 s ago</div></td>"),
            "{html}"
        );
    }

    fn utc(now_ms: i64) -> Shown {
        Shown { tz: jiff::tz::TimeZone::UTC, now_ms }
    }

    fn row(status: IncidentStatus) -> IncidentRow {
        IncidentRow {
            incident: Incident {
                id: 4,
                dedup_key: "check:web".into(),
                kind: IncidentKind::CheckDown,
                subject: "web".into(),
                title: "web is down: <script>".into(),
                severity: "critical".into(),
                status,
                opened_ms: 0,
                acknowledged_ms: None,
                acknowledged_by: None,
                resolved_ms: None,
                priority: "P1".into(),
                parent_id: None,
                timeline: vec![TimelineEvent { at_ms: 0, kind: "opened".into(), message: "down".into() }],
            },
            services: vec!["shop".into()],
            customers: vec![],
            targets: Default::default(),
            root_path: Vec::new(),
        }
    }

    #[test]
    fn an_open_incident_offers_every_action_and_escapes_its_title() {
        let html = incident(&row(IncidentStatus::Open), "alice", &utc(0), None);
        assert!(html.contains("action=\"/incidents/4/ack\""));
        assert!(html.contains("action=\"/incidents/4/notes\""));
        assert!(html.contains("action=\"/incidents/4/resolve\""));
        assert!(html.contains("web is down: &lt;script&gt;") && !html.contains("<script>"));
    }

    /// WCAG 2 contrast ratio of two "#rrggbb" colours.
    fn contrast(a: &str, b: &str) -> f64 {
        let luminance = |h: &str| {
            let c = |i: usize| {
                let v = f64::from(u8::from_str_radix(&h[i..i + 2], 16).unwrap()) / 255.0;
                if v <= 0.039_28 {
                    v / 12.92
                } else {
                    ((v + 0.055) / 1.055).powf(2.4)
                }
            };
            0.2126 * c(1) + 0.7152 * c(3) + 0.0722 * c(5)
        };
        let (x, y) = (luminance(a), luminance(b));
        (x.max(y) + 0.05) / (x.min(y) + 0.05)
    }

    /// Every text colour of the pages reads at WCAG AA (4.5:1) on their white background, and
    /// the status banners' white text on theirs.
    #[test]
    fn text_colours_meet_contrast_aa() {
        let text = concat!("color", ": #");
        let mut checked = 0;
        for source in [include_str!("views.rs"), include_str!("public.rs")] {
            for (at, _) in source.match_indices(text) {
                let hex = &source[at + text.len() - 1..at + text.len() + 6];
                if !hex[1..].bytes().all(|b| b.is_ascii_hexdigit()) {
                    continue; // "#fff" (white on a dark fill) or a placeholder
                }
                assert!(contrast(hex, "#ffffff") >= 4.5, "{hex} on white: {:.2}", contrast(hex, "#ffffff"));
                checked += 1;
            }
            for line in source.lines().filter(|l| l.contains(".banner.")) {
                let bg = concat!("background", ": #");
                for (at, _) in line.match_indices(bg) {
                    let hex = &line[at + bg.len() - 1..at + bg.len() + 6];
                    assert!(contrast(hex, "#ffffff") >= 4.5, "white on banner {hex}");
                    checked += 1;
                }
            }
        }
        assert!(checked >= 15, "the scan found the colours ({checked})");
    }

    #[test]
    fn a_linked_incident_shows_the_path_to_its_root_cause() {
        let mut r = row(IncidentStatus::Open);
        r.incident.parent_id = Some(9);
        r.root_path = vec!["shop".into(), "payments".into(), "db".into()];
        let html = incident(&r, "alice", &utc(0), None);
        assert!(html.contains("<a href=\"/incidents/9\">incident 9</a>"), "{html}");
        assert!(
            html.contains("<dd id=\"root-path\"><a href=\"/services/shop\">shop</a> → <a href=\"/services/payments\">payments</a> → <a href=\"/services/db\">db</a></dd>"),
            "{html}"
        );
    }

    #[test]
    fn a_resolved_incident_offers_no_forms_and_an_acknowledged_one_no_ack() {
        assert!(!incident(&row(IncidentStatus::Resolved), "alice", &utc(0), None).contains("<form"));
        let html = incident(&row(IncidentStatus::Acknowledged), "alice", &utc(0), None);
        assert!(!html.contains("/ack\"") && html.contains("/notes\""));
    }

    /// Times in the display zone with how long ago; the exact UTC instant in `datetime` and on
    /// hover. Opened 07:56:09 UTC, now 08:08:09 UTC, shown in Oslo (CET, UTC+1).
    #[test]
    fn times_read_locally_and_relatively_with_the_instant_beside() {
        let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap().as_millisecond();
        let mut r = row(IncidentStatus::Open);
        r.incident.opened_ms = at("2026-11-29T07:56:09.781Z");
        let oslo = Shown { tz: jiff::tz::TimeZone::get("Europe/Oslo").unwrap(), now_ms: at("2026-11-29T08:08:09Z") };
        let html = incident(&r, "alice", &oslo, None);
        assert!(
            html.contains("<time datetime=\"2026-11-29T07:56:09.781Z\" title=\"2026-11-29T07:56:09.781Z\">2026-11-29 08:56 CET <span class=\"ago\">(11 min 59 s ago)</span></time> · open for 11 min 59 s"),
            "{html}"
        );
        let list = incidents(&[r], &[], "alice", &oslo);
        assert!(list.contains("open for 11 min 59 s"), "{list}");
    }

    #[test]
    fn the_sla_view_links_each_report() {
        let r = SlaRow {
            slo: "shop-up".into(),
            service: "shop".into(),
            objective: 0.999,
            achieved: Some(0.9995),
            met: true,
            status: "on track".into(),
            budget_remaining_ratio: 0.5,
            downtime_minutes: Some(21.6),
            window: "30d".into(),
            alerts: vec![],
            budget_chart: None,
        };
        let html = sla(&[r], &["2026-11".into()], "alice");
        assert!(html.contains("99.900%") && html.contains("99.950%") && html.contains("50.0%"), "{html}");
        assert!(html.contains("/api/v1/reports/sla?service=shop&amp;period=2026-11&amp;format=csv"));
    }
}
