//! Durations written the way operators write them: `"250ms"`, `"30s"`, `"5m"`, `"1h30m"`, `"7d"`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// A duration read from a config file. Serialises back to the same human form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub const fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }
    pub const fn get(self) -> Duration {
        self.0
    }
}

impl From<HumanDuration> for Duration {
    fn from(d: HumanDuration) -> Duration {
        d.0
    }
}

/// The hint printed whenever a duration cannot be read.
pub const DURATION_HINT: &str = "write a number followed by a unit (ms, s, m, h, d), e.g. \"30s\" or \"1h30m\"";

/// Parses `"1h30m"`, `"250ms"`, `"30s"`, `"7d"`. Units may be combined, largest first is not
/// required; a bare number is rejected because the unit would be a guess.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut total_ms: u128 = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return Err(format!("invalid duration {text:?}: expected a number at {:?}", &s[i..]));
        }
        let number: u128 = s[start..i].parse().map_err(|_| format!("invalid duration {text:?}: number too large"))?;
        let unit_start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let factor_ms: u128 = match &s[unit_start..i] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" => return Err(format!("invalid duration {text:?}: missing unit after {number}")),
            other => return Err(format!("invalid duration {text:?}: unknown unit {other:?}")),
        };
        total_ms = number
            .checked_mul(factor_ms)
            .and_then(|n| total_ms.checked_add(n))
            .ok_or_else(|| format!("invalid duration {text:?}: too large"))?;
    }
    let ms = u64::try_from(total_ms).map_err(|_| format!("invalid duration {text:?}: too large"))?;
    Ok(Duration::from_millis(ms))
}

/// Formats a duration in the largest exact units, e.g. 90s -> "1m30s".
pub fn format_duration(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [("d", 86_400_000u128), ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    out
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string such as \"30s\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<HumanDuration, E> {
                parse_duration(v).map(HumanDuration).map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<HumanDuration, E> {
                Err(E::custom(format!("invalid duration {v}: a bare number has no unit")))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_duration(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_combinations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
    }

    #[test]
    fn rejects_what_would_be_a_guess() {
        assert!(parse_duration("30").unwrap_err().contains("missing unit"));
        assert!(parse_duration("5x").unwrap_err().contains("unknown unit \"x\""));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("99999999999999999999999d").is_err());
    }

    #[test]
    fn formats_round_trip() {
        for s in ["250ms", "30s", "1m30s", "1h", "7d", "1d2h3m4s5ms"] {
            let d = parse_duration(s).unwrap();
            assert_eq!(format_duration(d), s);
        }
    }
}
