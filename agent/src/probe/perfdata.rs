//! Nagios plugin performance data: `'label'=value[UOM];[warn];[crit];[min];[max]`, several
//! separated by spaces, after the first `|` of the output (and of later lines).
//!
//! Values are converted to base units: seconds (`s`, `ms`, `us`), bytes (`B`, `KB`, `MB`, `GB`,
//! `TB`), percent stays percent, `c` counters stay counts.

/// One parsed perfdata value: sanitised name and value in base units.
#[derive(Clone, Debug, PartialEq)]
pub struct Perf {
    /// The label made a value name: letters, digits and '_'.
    pub label: String,
    pub value: f64,
    pub unit: &'static str,
    /// The label as the plugin wrote it (`/`, `/boot a`).
    pub raw_label: String,
    /// Warning and critical thresholds (a plain number, or a range's upper end) and the
    /// bounds, in the value's base unit.
    pub warn: Option<f64>,
    pub crit: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// Parses all perfdata in a plugin's output. Malformed items are skipped, never fatal.
pub fn parse(output: &str) -> Vec<Perf> {
    let mut out = Vec::new();
    for line in output.lines() {
        if let Some((_, perf)) = line.split_once('|') {
            parse_items(perf, &mut out);
        }
    }
    out
}

fn parse_items(mut s: &str, out: &mut Vec<Perf>) {
    loop {
        s = s.trim_start();
        if s.is_empty() {
            return;
        }
        // The label: quoted with '' (and '' inside for a quote) or up to '='.
        let (label, rest) = if let Some(quoted) = s.strip_prefix('\'') {
            let mut label = String::new();
            let mut chars = quoted.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                if c == '\'' {
                    if quoted[i + 1..].starts_with('\'') {
                        label.push('\'');
                        chars.next();
                    } else {
                        end = Some(i + 1);
                        break;
                    }
                } else {
                    label.push(c);
                }
            }
            let Some(end) = end else { return };
            (label, &quoted[end..])
        } else {
            match s.find('=') {
                Some(i) => (s[..i].to_string(), &s[i..]),
                None => return,
            }
        };
        let Some(rest) = rest.strip_prefix('=') else {
            // Skip to the next item.
            s = rest.split_once(' ').map_or("", |(_, r)| r);
            continue;
        };
        let (item, next) = rest.split_once(' ').unwrap_or((rest, ""));
        s = next;
        let mut fields = item.split(';');
        let value_uom = fields.next().unwrap_or("");
        let num_end = value_uom
            .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E')))
            .unwrap_or(value_uom.len());
        let Ok(value) = value_uom[..num_end].parse::<f64>() else { continue };
        if !value.is_finite() {
            continue;
        }
        let (factor, unit) = match &value_uom[num_end..] {
            "" => (1.0, ""),
            "s" => (1.0, "seconds"),
            "ms" => (1e-3, "seconds"),
            "us" => (1e-6, "seconds"),
            "%" => (1.0, "percent"),
            "B" => (1.0, "bytes"),
            "KB" => (1024.0, "bytes"),
            "MB" => (1024.0 * 1024.0, "bytes"),
            "GB" => (1024.0 * 1024.0 * 1024.0, "bytes"),
            "TB" => (1024.0 * 1024.0 * 1024.0 * 1024.0, "bytes"),
            "c" => (1.0, "total"),
            _ => (1.0, ""),
        };
        // warn;crit;min;max: a number, or a range ("10:20", "~:20", "@10:20") of which the
        // upper end is the threshold (the lower when open above, "10:").
        let threshold = |f: Option<&str>| -> Option<f64> {
            let t = f?.trim().trim_start_matches('@');
            let end = match t.split_once(':') {
                Some((lo, "")) => lo,
                Some((_, hi)) => hi,
                None => t,
            };
            end.parse::<f64>().ok().filter(|v| v.is_finite()).map(|v| v * factor)
        };
        let (warn, crit, min, max) =
            (threshold(fields.next()), threshold(fields.next()), threshold(fields.next()), threshold(fields.next()));
        out.push(Perf { label: sanitize(&label), value: value * factor, unit, raw_label: label, warn, crit, min, max });
    }
}

/// Labels become value names: letters, digits and '_'.
fn sanitize(label: &str) -> String {
    let s: String =
        label.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect();
    let s = s.trim_matches('_').to_string();
    if s.is_empty() {
        "value".into()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_forms() {
        let out = "DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968 '/boot a'=68MB;88;93;0;98\n\
                   long text\n| 'time''s up'=0.5s;;; load=1.5 c=10c pct=93%;80;90 t=12ms";
        let perf = parse(out);
        let by =
            |l: &str| perf.iter().find(|p| p.label == l).unwrap_or_else(|| panic!("{l} missing from {perf:?}")).clone();
        assert_eq!(perf.len(), 7, "{perf:?}");
        assert_eq!(by("value").value, 2643.0 * 1024.0 * 1024.0, "'/' sanitises to 'value'");
        let mib = 1024.0 * 1024.0;
        let boot = by("boot_a");
        assert_eq!((boot.value, boot.unit, boot.raw_label.as_str()), (68.0 * mib, "bytes", "/boot a"));
        assert_eq!(
            (boot.warn, boot.crit, boot.min, boot.max),
            (Some(88.0 * mib), Some(93.0 * mib), Some(0.0), Some(98.0 * mib))
        );
        assert_eq!(by("value").raw_label, "/", "the mount point survives as the raw label");
        let up = by("time_s_up");
        assert_eq!((up.value, up.unit, up.raw_label.as_str(), up.warn), (0.5, "seconds", "time's up", None));
        assert_eq!(by("load").value, 1.5);
        assert_eq!(by("c").unit, "total");
        let pct = by("pct");
        assert_eq!((pct.value, pct.unit, pct.warn, pct.crit), (93.0, "percent", Some(80.0), Some(90.0)));
        assert!((by("t").value - 0.012).abs() < 1e-12);
    }
}

#[cfg(test)]
mod robustness {
    use super::*;

    #[test]
    fn malformed_items_are_skipped() {
        for bad in ["|", "| =", "| 'unterminated=1", "| a=", "| a=x b=2", "| a=NaN", "| =5", "|a==1 ;;;"] {
            let _ = parse(bad); // must not panic
        }
        assert_eq!(parse("OK | a=x b=2").len(), 1);
        assert!(parse("no perfdata here").is_empty());
    }
}
