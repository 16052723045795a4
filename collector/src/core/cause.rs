//! A probe failure's short cause, for titles, lists and notification subjects: "connection
//! refused", "HTTP 503", "timeout after 5 s", "certificate expires in 3 days", instead of an
//! error chain such as "connection failed: client error (Connect): tcp connect error:
//! Connection refused (os error 111)". The full text stays with the incident (its opening
//! event) and in the API. Pure; works on what any agent version reports.

/// The longest short cause; longer texts are cut at a word.
const MAX_CHARS: usize = 100;

/// The short cause of a failure's reason.
pub fn short(reason: &str) -> String {
    let first = reason.lines().next().unwrap_or("").trim();
    let lower = first.to_ascii_lowercase();
    // Status lines first: a plugin's own words are already short ("CRITICAL - ...").
    if let Some(code) = lower.strip_prefix("status ").and_then(|c| c.split_whitespace().next()) {
        if code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()) {
            return format!("HTTP {code}");
        }
    }
    if let Some(rest) = lower.strip_prefix("certificate expires in ") {
        if let Some(days) = rest.split_whitespace().next().and_then(|d| d.parse::<f64>().ok()) {
            let days = days.floor().max(0.0) as i64;
            return format!("certificate expires in {days} day{}", if days == 1 { "" } else { "s" });
        }
    }
    const KNOWN: &[(&str, &str)] = &[
        ("connection refused", "connection refused"),
        ("connection reset", "connection reset"),
        ("no route to host", "no route to host"),
        ("network is unreachable", "network unreachable"),
        ("failed to lookup address", "name not found (DNS)"),
        ("name or service not known", "name not found (DNS)"),
        ("nxdomain", "name not found (DNS)"),
        ("certificate has expired", "certificate expired"),
        ("invalid peer certificate: expired", "certificate expired"),
        ("invalid peer certificate: unknownissuer", "certificate not trusted"),
        ("invalid peer certificate: notvalidforname", "certificate is for another name"),
        ("certificate is not valid for", "certificate is for another name"),
        ("invalid peer certificate", "certificate rejected"),
        ("tls handshake", "TLS handshake failed"),
        ("too many redirects", "too many redirects"),
    ];
    if let Some((_, said)) = KNOWN.iter().find(|(needle, _)| lower.contains(needle)) {
        return (*said).to_string();
    }
    if lower.starts_with("timed out") || lower.contains("operation timed out") || lower.contains("deadline has elapsed")
    {
        // "timed out after 5s" as the agent says it; "timeout" when it did not say how long.
        // The length in words when it parses ("after 5s" → "after 5 s").
        return match lower.find("after ") {
            Some(i) => {
                let said = first[i + 6..].split(':').next().unwrap_or("").trim_end();
                match vakt_config::duration::parse_duration(said) {
                    Ok(d) => format!("timeout after {}", super::time::human_span(d.as_millis() as i64)),
                    Err(_) => format!("timeout after {said}"),
                }
            }
            None => "timeout".to_string(),
        };
    }
    cut(first)
}

/// `text` at most [`MAX_CHARS`] characters, cut at a word, marked with "…".
fn cut(text: &str) -> String {
    if text.chars().count() <= MAX_CHARS {
        return text.to_string();
    }
    let head: String = text.chars().take(MAX_CHARS - 1).collect();
    let at_word = head.rfind(' ').filter(|i| *i > MAX_CHARS / 2).map_or(head.as_str(), |i| &head[..i]);
    format!("{}…", at_word.trim_end_matches([',', ';', ':', ' ']))
}

#[cfg(test)]
mod tests {
    use super::short;

    #[test]
    fn error_chains_become_what_a_person_would_say() {
        let cases = [
            (
                "connection failed: client error (Connect): tcp connect error: Connection refused (os error 111)",
                "connection refused",
            ),
            ("connect: Connection refused (os error 111)", "connection refused"),
            ("status 503", "HTTP 503"),
            ("status 404 Not Found", "HTTP 404"),
            ("timed out after 5s", "timeout after 5 s"),
            ("timed out after 1m30s: no answer", "timeout after 1 min 30 s"),
            ("timed out after a while", "timeout after a while"),
            ("timed out", "timeout"),
            ("certificate expires in 3.4 days (cert_min_days is 14)", "certificate expires in 3 days"),
            ("certificate expires in 1.0 days (cert_min_days is 14)", "certificate expires in 1 day"),
            (
                "connection failed: client error (Connect): dns error: failed to lookup address information: Name or service not known",
                "name not found (DNS)",
            ),
            (
                "connection failed: client error (Connect): invalid peer certificate: UnknownIssuer",
                "certificate not trusted",
            ),
            ("connection failed: invalid peer certificate: Expired", "certificate expired"),
            ("connect: No route to host (os error 113)", "no route to host"),
        ];
        for (reason, expected) in cases {
            assert_eq!(short(reason), expected, "{reason}");
        }
    }

    #[test]
    fn own_words_stay_and_long_ones_are_cut_at_a_word() {
        assert_eq!(
            short("CRITICAL - load average: 9.1, 8.7, 8.2\nlong output"),
            "CRITICAL - load average: 9.1, 8.7, 8.2"
        );
        assert_eq!(short("body does not contain \"Add to cart\""), "body does not contain \"Add to cart\"");
        let long = "the run due at 2026-11-30 02:00 CET (0 2 * * * Europe/Oslo) did not ping (30m grace) and more words after that, a great many more of them";
        let s = short(long);
        assert!(s.chars().count() <= 100 && s.ends_with('…') && long.starts_with(s.trim_end_matches('…')), "{s}");
        assert_eq!(short(""), "");
    }
}
