//! Charts drawn on the server as inline SVG: no JavaScript, they print and they render in mail.
//! Each chart has a `<title>` and a `<desc>` that says in words what it shows, and never uses
//! colour alone: failures hang below the baseline while successes stand above it, and the two
//! latency lines differ in dash as well as in colour. Pure: numbers in, markup out.

use crate::core::html::escape as esc;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 160.0;
const LEFT: f64 = 48.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 22.0;

/// One minute of a check's results.
#[derive(Clone, Debug, PartialEq)]
pub struct Minute {
    pub minute_ms: i64,
    pub ok: u64,
    pub failed: u64,
    /// Median and 99th percentile latency of the minute, seconds.
    pub p50: Option<f64>,
    pub p99: Option<f64>,
}

fn svg_open(id: &str, title: &str, desc: &str, height: f64) -> String {
    format!(
        "<svg id=\"{id}\" class=\"chart\" role=\"img\" aria-labelledby=\"{id}-title {id}-desc\" viewBox=\"0 0 {WIDTH} {height}\" width=\"100%\" preserveAspectRatio=\"xMinYMin meet\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title id=\"{id}-title\">{}</title><desc id=\"{id}-desc\">{}</desc>",
        esc(title),
        esc(desc)
    )
}

/// The two ends of a time axis, written at height `y`: the first left, the second right.
fn time_axis(y: f64, labels: (&str, &str)) -> String {
    format!(
        "<text x=\"{LEFT}\" y=\"{y:.1}\" font-size=\"10\" fill=\"#4a5663\">{}</text><text x=\"{:.1}\" y=\"{y:.1}\" font-size=\"10\" text-anchor=\"end\" fill=\"#4a5663\">{}</text>",
        esc(labels.0),
        WIDTH - RIGHT,
        esc(labels.1)
    )
}

/// "0.25 s", "120 ms".
fn seconds_label(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.1} s")
    } else {
        format!("{:.0} ms", s * 1000.0)
    }
}

/// Results per minute (successes up, failures down) with the p50 and p99 latency lines, from
/// `from_ms` to `to_ms`; `labels` name the two ends of the time axis.
pub fn results(id: &str, minutes: &[Minute], from_ms: i64, to_ms: i64, labels: (&str, &str)) -> String {
    let span = (to_ms - from_ms).max(60_000) as f64;
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    // The upper 60 % for successes and the latency lines, the lower 40 % for failures.
    let base = TOP + plot_h * 0.6;
    let x = |ms: i64| LEFT + (ms - from_ms) as f64 / span * plot_w;
    let bar_w = (60_000.0 / span * plot_w - 1.0).max(1.0);
    let most = minutes.iter().map(|m| m.ok.max(m.failed)).max().unwrap_or(0).max(1) as f64;
    let slowest = minutes.iter().filter_map(|m| m.p99.or(m.p50)).fold(0.0_f64, f64::max);
    let top_latency = if slowest > 0.0 { slowest * 1.1 } else { 1.0 };
    let total_ok: u64 = minutes.iter().map(|m| m.ok).sum();
    let total_failed: u64 = minutes.iter().map(|m| m.failed).sum();
    let failing_minutes = minutes.iter().filter(|m| m.failed > 0).count();
    let desc = format!(
        "{total_ok} successful and {total_failed} failed results from {} to {}; {failing_minutes} minutes with failures; slowest 99th percentile {}.",
        labels.0,
        labels.1,
        if slowest > 0.0 { seconds_label(slowest) } else { "not measured".into() }
    );
    let mut out = svg_open(id, "Results per minute and latency", &desc, HEIGHT);
    out.push_str(&format!(
        "<line x1=\"{LEFT}\" y1=\"{base:.1}\" x2=\"{:.1}\" y2=\"{base:.1}\" stroke=\"#8a96a3\" stroke-width=\"1\"/>",
        WIDTH - RIGHT
    ));
    for m in minutes {
        let left = x(m.minute_ms);
        if m.ok > 0 {
            let h = m.ok as f64 / most * (base - TOP) * 0.5;
            out.push_str(&format!(
                "<rect class=\"ok\" x=\"{left:.1}\" y=\"{:.1}\" width=\"{bar_w:.1}\" height=\"{h:.1}\" fill=\"#b9c4cf\"><title>{} ok</title></rect>",
                base - h,
                m.ok
            ));
        }
        if m.failed > 0 {
            let h = m.failed as f64 / most * (HEIGHT - BOTTOM - base);
            out.push_str(&format!(
                "<rect class=\"failed\" x=\"{left:.1}\" y=\"{base:.1}\" width=\"{bar_w:.1}\" height=\"{h:.1}\" fill=\"#c62828\"><title>{} failed</title></rect>",
                m.failed
            ));
        }
    }
    let line = |pick: &dyn Fn(&Minute) -> Option<f64>| -> String {
        minutes
            .iter()
            .filter_map(|m| {
                pick(m).map(|v| {
                    format!("{:.1},{:.1}", x(m.minute_ms) + bar_w / 2.0, base - v / top_latency * (base - TOP))
                })
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (p50, p99) = (line(&|m| m.p50), line(&|m| m.p99));
    if !p50.is_empty() {
        out.push_str(&format!(
            "<polyline class=\"p50\" points=\"{p50}\" fill=\"none\" stroke=\"#0b5cad\" stroke-width=\"1.5\"/>"
        ));
    }
    if !p99.is_empty() {
        out.push_str(&format!(
            "<polyline class=\"p99\" points=\"{p99}\" fill=\"none\" stroke=\"#7a3db8\" stroke-width=\"1.5\" stroke-dasharray=\"4 3\"/>"
        ));
    }
    // Markers too, so that a single minute's latency shows: circles p50, squares p99.
    for m in minutes {
        let cx = x(m.minute_ms) + bar_w / 2.0;
        if let Some(v) = m.p50 {
            out.push_str(&format!(
                "<circle cx=\"{cx:.1}\" cy=\"{:.1}\" r=\"2\" fill=\"#0b5cad\"/>",
                base - v / top_latency * (base - TOP)
            ));
        }
        if let Some(v) = m.p99 {
            out.push_str(&format!(
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"4\" height=\"4\" fill=\"#7a3db8\"/>",
                cx - 2.0,
                base - v / top_latency * (base - TOP) - 2.0
            ));
        }
    }
    // Axis words: the latency scale, the time range, the legend.
    out.push_str(&format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\" fill=\"#4a5663\">{}</text>\
         <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\" fill=\"#4a5663\">failed</text>\
         <text x=\"{LEFT}\" y=\"{:.1}\" font-size=\"10\" fill=\"#4a5663\">{}</text>\
         <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\" fill=\"#4a5663\">{}</text>\
         <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#4a5663\">● — p50   ■ - - p99 latency · bars: results (failures below the line)</text>",
        LEFT - 4.0,
        TOP + 8.0,
        esc(&seconds_label(top_latency)),
        LEFT - 4.0,
        HEIGHT - BOTTOM,
        HEIGHT - 6.0,
        esc(labels.0),
        WIDTH - RIGHT,
        HEIGHT - 6.0,
        esc(labels.1),
        LEFT + plot_w / 2.0,
        HEIGHT - 6.0,
    ));
    out.push_str("</svg>");
    out
}

/// One day of a strip: its label and its share of good time (`None`: no data).
#[derive(Clone, Debug, PartialEq)]
pub struct Day {
    pub label: String,
    pub good: Option<f64>,
}

/// A strip of days, each a bar whose height is its availability between `floor` and 100 %:
/// a full bar is a perfect day, a short one a bad day, a hollow one a day without data.
pub fn days(id: &str, title: &str, days: &[Day], floor: f64) -> String {
    let h = 60.0;
    let w = WIDTH - LEFT - RIGHT;
    let step = w / days.len().max(1) as f64;
    let worst = days.iter().filter_map(|d| d.good).fold(1.0_f64, f64::min);
    let no_data = days.iter().filter(|d| d.good.is_none()).count();
    let desc = format!("{} days; worst {:.3}%; {} without data.", days.len(), worst * 100.0, no_data);
    let mut out = svg_open(id, title, &desc, h + 18.0);
    for (i, d) in days.iter().enumerate() {
        let left = LEFT + i as f64 * step;
        match d.good {
            Some(g) => {
                let share = ((g - floor) / (1.0 - floor)).clamp(0.03, 1.0);
                let bar = h * share;
                let fill = if g >= 0.9999 { "#2e9b4f" } else if g >= 0.99 { "#d9a21b" } else { "#c62828" };
                out.push_str(&format!(
                    "<rect class=\"day\" x=\"{left:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bar:.1}\" fill=\"{fill}\"><title>{}: {:.3}%</title></rect>",
                    h - bar,
                    (step - 1.0).max(1.0),
                    esc(&d.label),
                    g * 100.0
                ));
            }
            None => out.push_str(&format!(
                "<rect class=\"day nodata\" x=\"{left:.1}\" y=\"0\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"none\" stroke=\"#b9c4cf\"><title>{}: no data</title></rect>",
                (step - 2.0).max(1.0),
                esc(&d.label)
            )),
        }
    }
    if let (Some(first), Some(last)) = (days.first(), days.last()) {
        out.push_str(&format!(
            "<text x=\"{LEFT}\" y=\"{:.1}\" font-size=\"10\" fill=\"#4a5663\">{}</text><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\" fill=\"#4a5663\">{}</text>\
             <text x=\"{:.1}\" y=\"10\" font-size=\"10\" text-anchor=\"end\" fill=\"#4a5663\">100%</text><text x=\"{:.1}\" y=\"{h:.1}\" font-size=\"10\" text-anchor=\"end\" fill=\"#4a5663\">{:.1}%</text>",
            h + 14.0,
            esc(&first.label),
            WIDTH - RIGHT,
            h + 14.0,
            esc(&last.label),
            LEFT - 4.0,
            LEFT - 4.0,
            floor * 100.0
        ));
    }
    out.push_str("</svg>");
    out
}

/// A burn-rate alert rule as the budget chart draws it: `factor` times the even pace over the
/// window fires the alert; `text` is the rule in words.
#[derive(Clone, Debug, PartialEq)]
pub struct BurnRule {
    pub severity: String,
    pub factor: f64,
    pub text: String,
}

/// Dash patterns that tell the burn-rule lines apart without colour.
const RULE_DASHES: [&str; 4] = ["6 3", "2 2", "8 2 2 2", "1 3"];

/// The error budget left over an SLO's window: a line falling from 100 % as the budget is
/// spent (`points`: time and remaining share), with the 0 % line marked and the rest of the
/// window left blank. Each burn-rate alert's threshold is drawn from the latest point as the
/// slope at which it fires (a line per rule, told apart by its dash in the legend): when
/// the budget line falls as steeply as one of them, that alert fires. The rules are written
/// beneath, each beside a sample of its dash.
pub fn budget(id: &str, points: &[(i64, f64)], window: (i64, i64), labels: (&str, &str), rules: &[BurnRule]) -> String {
    let h = 120.0;
    let plot_h = h - TOP - BOTTOM;
    let span = (window.1 - window.0).max(1) as f64;
    let lowest = points.iter().map(|p| p.1).fold(0.0_f64, f64::min).max(-1.0);
    // 100 % at the top, 0 % (or the overspend, down to -100 %) at the bottom.
    let y = |r: f64| TOP + (1.0 - r.clamp(-1.0, 1.0)) / (1.0 - lowest) * plot_h;
    let x = |ms: f64| LEFT + (ms - window.0 as f64) / span * (WIDTH - LEFT - RIGHT);
    let (now_ms, last) = points.last().copied().unwrap_or((window.0, 1.0));
    let desc = format!(
        "Error budget left from {} to {}: {:.1}% now{}.{}",
        labels.0,
        labels.1,
        last * 100.0,
        if last < 0.0 { " (exhausted)" } else { "" },
        if rules.is_empty() || last <= 0.0 {
            String::new()
        } else {
            format!(
                " Dashed lines from now show how steeply the budget falls when a burn-rate alert fires: {}.",
                rules.iter().map(|r| format!("{} at {}x", r.severity, r.factor)).collect::<Vec<_>>().join(", ")
            )
        }
    );
    let mut out = svg_open(id, "Error budget left over the window", &desc, h + 14.0 * rules.len() as f64);
    out.push_str(&format!(
        "<line x1=\"{LEFT}\" y1=\"{0:.1}\" x2=\"{1:.1}\" y2=\"{0:.1}\" stroke=\"#c62828\" stroke-dasharray=\"2 2\"/>\
         <text x=\"{2:.1}\" y=\"{3:.1}\" font-size=\"10\" text-anchor=\"end\" fill=\"#4a5663\">0%</text>\
         <text x=\"{2:.1}\" y=\"{4:.1}\" font-size=\"10\" text-anchor=\"end\" fill=\"#4a5663\">100%</text>\
         <line x1=\"{LEFT}\" y1=\"{5:.1}\" x2=\"{1:.1}\" y2=\"{5:.1}\" stroke=\"#e3e7eb\"/>",
        y(0.0),
        WIDTH - RIGHT,
        LEFT - 4.0,
        y(0.0) + 3.0,
        y(1.0) + 3.0,
        y(1.0),
    ));
    let line: Vec<String> = points.iter().map(|(t, r)| format!("{:.1},{:.1}", x(*t as f64), y(*r))).collect();
    if !line.is_empty() {
        out.push_str(&format!(
            "<polyline class=\"budget\" points=\"{}\" fill=\"none\" stroke=\"#0b5cad\" stroke-width=\"2\"/>",
            line.join(" ")
        ));
    }
    // Each rule's threshold: from now, the budget falling at `factor` times the even pace (the
    // whole budget over the whole window) until it is gone or the window ends.
    if last > 0.0 {
        for (i, rule) in rules.iter().enumerate().filter(|(_, r)| r.factor > 0.0) {
            let gone_ms = now_ms as f64 + last / rule.factor * span;
            let end_ms = gone_ms.min(window.1 as f64);
            let end_r = last - rule.factor * (end_ms - now_ms as f64) / span;
            let (x1, y1, x2, y2) = (x(now_ms as f64), y(last), x(end_ms), y(end_r));
            out.push_str(&format!(
                "<line class=\"burn-threshold\" x1=\"{x1:.1}\" y1=\"{y1:.1}\" x2=\"{x2:.1}\" y2=\"{y2:.1}\" stroke=\"#6d4c41\" stroke-dasharray=\"{}\"><title>{} {}x: {}</title></line>",
                RULE_DASHES[i % RULE_DASHES.len()],
                esc(&rule.severity),
                rule.factor,
                esc(&rule.text),
            ));
        }
    }
    out.push_str(&time_axis(h - 6.0, labels));
    // The legend: each rule beside a sample of its line's dash.
    for (i, rule) in rules.iter().enumerate() {
        let ly = h + 10.0 + 14.0 * i as f64;
        out.push_str(&format!(
            "<line x1=\"{LEFT}\" y1=\"{0:.1}\" x2=\"{1:.1}\" y2=\"{0:.1}\" stroke=\"#6d4c41\" stroke-dasharray=\"{2}\"/>\
             <text class=\"rule\" x=\"{3:.1}\" y=\"{4:.1}\" font-size=\"10\" fill=\"#4a5663\">{5}</text>",
            ly - 3.5,
            LEFT + 24.0,
            RULE_DASHES[i % RULE_DASHES.len()],
            LEFT + 30.0,
            ly,
            esc(&rule.text)
        ));
    }
    out.push_str("</svg>");
    out
}

/// A latency SLO's percentile per day against its threshold: one bar per day, the threshold a
/// dashed line; a day over it is red and carries a "!" above its bar, a day without
/// measurements is hollow.
pub fn percentile(id: &str, percentile: &str, days: &[(String, Option<f64>)], threshold: f64) -> String {
    let h = 90.0;
    let base = h - 18.0;
    let top = days.iter().filter_map(|d| d.1).fold(threshold * 1.5, f64::max);
    let w = WIDTH - LEFT - RIGHT;
    let step = w / days.len().max(1) as f64;
    let over = days.iter().filter(|d| d.1.is_some_and(|v| v > threshold)).count();
    let worst = days.iter().filter_map(|d| d.1).fold(0.0_f64, f64::max);
    let desc = format!(
        "{percentile} latency per day against the {} threshold: {over} of {} days over it; worst {}.",
        seconds_label(threshold),
        days.len(),
        seconds_label(worst)
    );
    let mut out = svg_open(id, &format!("{percentile} latency per day"), &desc, h);
    let y = |v: f64| base - v / top * (base - 8.0);
    for (i, (label, v)) in days.iter().enumerate() {
        let left = LEFT + i as f64 * step;
        let bw = (step - 1.0).max(1.0);
        match v {
            Some(v) => {
                let slow = *v > threshold;
                out.push_str(&format!(
                    "<rect class=\"{}\" x=\"{left:.1}\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}: {}</title></rect>",
                    if slow { "day over" } else { "day" },
                    y(*v),
                    base - y(*v),
                    if slow { "#c62828" } else { "#8fb3d9" },
                    esc(label),
                    esc(&seconds_label(*v))
                ));
                if slow {
                    out.push_str(&format!(
                        "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#c62828\">!</text>",
                        left + bw / 2.0,
                        y(*v) - 2.0
                    ));
                }
            }
            None => out.push_str(&format!(
                "<rect class=\"day nodata\" x=\"{left:.1}\" y=\"8\" width=\"{bw:.1}\" height=\"{:.1}\" fill=\"none\" stroke=\"#b9c4cf\"><title>{}: no measurements</title></rect>",
                base - 8.0,
                esc(label)
            )),
        }
    }
    out.push_str(&format!(
        "<line x1=\"{LEFT}\" y1=\"{0:.1}\" x2=\"{1:.1}\" y2=\"{0:.1}\" stroke=\"#1d2630\" stroke-dasharray=\"5 3\"/>\
         <text x=\"{2:.1}\" y=\"{3:.1}\" font-size=\"10\" text-anchor=\"end\" fill=\"#4a5663\">{4}</text>",
        y(threshold),
        WIDTH - RIGHT,
        LEFT - 4.0,
        y(threshold) + 3.0,
        esc(&seconds_label(threshold))
    ));
    if let (Some(first), Some(last)) = (days.first(), days.last()) {
        out.push_str(&format!(
            "<text x=\"{LEFT}\" y=\"{:.1}\" font-size=\"10\" fill=\"#4a5663\">{}</text><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"end\" fill=\"#4a5663\">{}</text>",
            h - 4.0,
            esc(&first.0),
            WIDTH - RIGHT,
            h - 4.0,
            esc(&last.0)
        ));
    }
    out.push_str("</svg>");
    out
}

/// One incident on a timeline: its label, start and end (`None`: still open at `to_ms`).
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    pub label: String,
    pub start_ms: i64,
    pub end_ms: Option<i64>,
}

/// Incidents over a period, one row each: a bar from start to end (an open one reaches the
/// right edge and is hatched by its dashed outline), its label beside it.
pub fn timeline(id: &str, spans: &[Span], from_ms: i64, to_ms: i64, labels: (&str, &str)) -> String {
    let row = 16.0;
    let h = TOP + row * spans.len().max(1) as f64 + BOTTOM;
    let span = (to_ms - from_ms).max(1) as f64;
    let x = |ms: i64| LEFT + (ms.clamp(from_ms, to_ms) - from_ms) as f64 / span * (WIDTH - LEFT - RIGHT);
    let open = spans.iter().filter(|s| s.end_ms.is_none()).count();
    let total_ms: i64 = spans.iter().map(|s| s.end_ms.unwrap_or(to_ms).min(to_ms) - s.start_ms.max(from_ms)).sum();
    let desc = format!(
        "{} incidents from {} to {}{}; {} in all.",
        spans.len(),
        labels.0,
        labels.1,
        if open > 0 { format!(", {open} still open") } else { String::new() },
        crate::core::time::human_span(total_ms.max(0))
    );
    let mut out = svg_open(id, "Incidents over the period", &desc, h);
    out.push_str(&format!(
        "<line x1=\"{LEFT}\" y1=\"{0:.1}\" x2=\"{1:.1}\" y2=\"{0:.1}\" stroke=\"#c8d0d8\"/>",
        h - BOTTOM,
        WIDTH - RIGHT
    ));
    if spans.is_empty() {
        out.push_str(&format!(
            "<text x=\"{LEFT}\" y=\"{:.1}\" font-size=\"11\" fill=\"#4a5663\">No incidents.</text>",
            TOP + 11.0
        ));
    }
    for (i, s) in spans.iter().enumerate() {
        let y = TOP + row * i as f64;
        let (x1, x2) = (x(s.start_ms), x(s.end_ms.unwrap_or(to_ms)));
        let w = (x2 - x1).max(2.0);
        out.push_str(&format!(
            "<rect class=\"incident{}\" x=\"{x1:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"#d93a2b\"{}><title>{}</title></rect>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" fill=\"#1d2630\"{}>{}</text>",
            if s.end_ms.is_none() { " open" } else { "" },
            y + 2.0,
            row - 5.0,
            if s.end_ms.is_none() { " stroke=\"#1d2630\" stroke-dasharray=\"3 2\"" } else { "" },
            esc(&s.label),
            // The label right of the bar, or left of it near the right edge.
            if x2 + 4.0 < WIDTH - 200.0 { x2 + 4.0 } else { x1 - 4.0 },
            y + row - 5.0,
            if x2 + 4.0 < WIDTH - 200.0 { "" } else { " text-anchor=\"end\"" },
            esc(&s.label)
        ));
    }
    out.push_str(&time_axis(h - 6.0, labels));
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minute(i: i64, ok: u64, failed: u64) -> Minute {
        Minute { minute_ms: i * 60_000, ok, failed, p50: Some(0.1), p99: Some(0.4) }
    }

    #[test]
    fn results_say_in_words_what_the_picture_shows() {
        let ms: Vec<Minute> =
            (0..60).map(|i| if (20..25).contains(&i) { minute(i, 0, 6) } else { minute(i, 6, 0) }).collect();
        let svg = results("r", &ms, 0, 3_600_000, ("07:00", "08:00"));
        assert!(svg.starts_with("<svg id=\"r\"") && svg.ends_with("</svg>"));
        assert!(svg.contains("<desc id=\"r-desc\">330 successful and 30 failed results from 07:00 to 08:00; 5 minutes with failures; slowest 99th percentile 400 ms.</desc>"), "{svg}");
        assert_eq!(svg.matches("class=\"failed\"").count(), 5);
        assert_eq!(svg.matches("class=\"ok\"").count(), 55);
        assert!(svg.contains("stroke-dasharray"), "p99 differs from p50 by dash, not colour alone");
    }

    #[test]
    fn the_budget_line_falls_from_the_top_and_says_where_it_ends() {
        let page = BurnRule { severity: "page".into(), factor: 14.4, text: "page: 14.4x over 1 h".into() };
        let svg = budget("b", &[(0, 1.0), (50, 0.6), (100, 0.25)], (0, 200), ("1 Nov", "1 Dec"), &[page]);
        assert!(svg.contains("<desc id=\"b-desc\">Error budget left from 1 Nov to 1 Dec: 25.0% now. Dashed lines from now show how steeply the budget falls when a burn-rate alert fires: page at 14.4x.</desc>"), "{svg}");
        assert!(svg.contains("class=\"budget\" points=\"48.0,10.0 "), "starts at 100 % at the left: {svg}");
        assert!(svg.contains(">page: 14.4x over 1 h</text>"), "{svg}");
        let over = budget("o", &[(0, 1.0), (100, -0.5)], (0, 100), ("a", "b"), &[]);
        assert!(over.contains("-50.0% now (exhausted)"), "{over}");
    }

    #[test]
    fn a_burn_threshold_is_the_slope_at_which_its_alert_fires() {
        // Window 0..1000 ms drawn over 664 px (48 to 712); 100 % at y 10, 0 % at y 98 (88 px).
        // Now (t 400) 50 % is left. At 2x the even pace the budget falls 2 × 100 % per window:
        // the remaining 50 % is gone after 0.25 of the window, at t 650 → x 48 + 0.65 × 664 =
        // 479.6, y 98. At 0.5x it would last 1.0 window: the window ends first, at t 1000 with
        // 50 % − 0.5 × 0.6 = 20 % left → x 712, y 10 + 0.8 × 88 = 80.4.
        let rule = |severity: &str, factor: f64| BurnRule { severity: severity.into(), factor, text: String::new() };
        let svg =
            budget("t", &[(0, 1.0), (400, 0.5)], (0, 1000), ("a", "b"), &[rule("page", 2.0), rule("ticket", 0.5)]);
        let start = format!("x1=\"{:.1}\" y1=\"{:.1}\"", 48.0 + 0.4 * 664.0, 10.0 + 0.5 * 88.0);
        assert!(
            svg.contains(&format!("{start} x2=\"479.6\" y2=\"98.0\" stroke=\"#6d4c41\" stroke-dasharray=\"6 3\"")),
            "{svg}"
        );
        assert!(
            svg.contains(&format!("{start} x2=\"712.0\" y2=\"80.4\" stroke=\"#6d4c41\" stroke-dasharray=\"2 2\"")),
            "{svg}"
        );
        assert!(svg.contains("<title>page 2x: </title>") && svg.contains("<title>ticket 0.5x: </title>"), "{svg}");
        // An exhausted budget has no threshold left to draw.
        let gone = budget("g", &[(0, 1.0), (400, -0.1)], (0, 1000), ("a", "b"), &[rule("page", 2.0)]);
        assert!(!gone.contains("burn-threshold"), "{gone}");
    }

    #[test]
    fn a_slow_day_is_marked_by_more_than_its_colour() {
        let days =
            vec![("11-27".to_string(), Some(0.2)), ("11-28".to_string(), Some(0.9)), ("11-29".to_string(), None)];
        let svg = percentile("p", "p99", &days, 0.5);
        assert!(svg.contains("<desc id=\"p-desc\">p99 latency per day against the 500 ms threshold: 1 of 3 days over it; worst 900 ms.</desc>"), "{svg}");
        assert_eq!(svg.matches("class=\"day over\"").count(), 1);
        assert_eq!(svg.matches(">!</text>").count(), 1, "a mark besides the colour");
        assert!(svg.contains("no measurements"));
    }

    #[test]
    fn a_day_without_data_is_hollow_and_a_bad_one_short() {
        let d = |label: &str, good: Option<f64>| Day { label: label.into(), good };
        let svg =
            days("d", "Availability per day", &[d("11-27", Some(1.0)), d("11-28", Some(0.98)), d("11-29", None)], 0.95);
        assert!(svg.contains("<desc id=\"d-desc\">3 days; worst 98.000%; 1 without data.</desc>"), "{svg}");
        assert!(svg.contains("class=\"day nodata\""), "{svg}");
        assert!(svg.contains("<title>11-28: 98.000%</title>"), "{svg}");
    }

    #[test]
    fn incidents_lie_on_the_period_in_proportion() {
        // Period 0..1000 over 664 px from x 48: an incident from 250 to 500 spans 166 px from
        // x 214; one still open from 900 runs to the right edge (712), outlined dashed.
        let spans = [
            Span { label: "#1 shop down".into(), start_ms: 250, end_ms: Some(500) },
            Span { label: "#2 api slow".into(), start_ms: 900, end_ms: None },
        ];
        let svg = timeline("t", &spans, 0, 1000, ("1 Nov", "1 Dec"));
        assert!(svg.contains("x=\"214.0\" y=\"12.0\" width=\"166.0\""), "{svg}");
        assert!(svg.contains("class=\"incident open\" x=\"645.6\""), "{svg}");
        assert!(svg.contains("2 incidents from 1 Nov to 1 Dec, 1 still open; 350 ms in all."), "{svg}");
        assert!(timeline("e", &[], 0, 1000, ("a", "b")).contains("No incidents."));
    }
}
