//! Label selectors that assign checks to agents: `"role=web, env!=dev"`.
//!
//! Every term must hold (logical AND). `key=value` requires the label to have that value,
//! `key!=value` requires it to be absent or different. An empty selector matches every agent.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Term {
    Equals(String, String),
    NotEquals(String, String),
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct LabelSelector {
    terms: Vec<Term>,
}

pub const SELECTOR_HINT: &str =
    "write comma-separated terms such as \"role=web, env!=dev\"; names use letters, digits, '_', '-' and '.'";

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
}

impl LabelSelector {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut terms = Vec::new();
        for raw in text.split(',') {
            let term = raw.trim();
            if term.is_empty() {
                if text.trim().is_empty() {
                    continue;
                }
                return Err(format!("invalid selector {text:?}: empty term"));
            }
            let (key, value, negate) = if let Some((k, v)) = term.split_once("!=") {
                (k.trim(), v.trim(), true)
            } else if let Some((k, v)) = term.split_once('=') {
                (k.trim(), v.trim().trim_start_matches('='), false)
            } else {
                return Err(format!("invalid selector term {term:?}: expected key=value or key!=value"));
            };
            if !valid_name(key) || !valid_name(value) {
                return Err(format!("invalid selector term {term:?}"));
            }
            terms.push(if negate {
                Term::NotEquals(key.into(), value.into())
            } else {
                Term::Equals(key.into(), value.into())
            });
        }
        Ok(Self { terms })
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.terms.iter().all(|t| match t {
            Term::Equals(k, v) => labels.get(k) == Some(v),
            Term::NotEquals(k, v) => labels.get(k) != Some(v),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match t {
                Term::Equals(k, v) => write!(f, "{k}={v}")?,
                Term::NotEquals(k, v) => write!(f, "{k}!={v}")?,
            }
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for LabelSelector {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        LabelSelector::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl Serialize for LabelSelector {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn all_terms_must_hold() {
        let sel = LabelSelector::parse("role=web, env!=dev").unwrap();
        assert!(sel.matches(&labels(&[("role", "web"), ("env", "prod")])));
        assert!(sel.matches(&labels(&[("role", "web")])));
        assert!(!sel.matches(&labels(&[("role", "web"), ("env", "dev")])));
        assert!(!sel.matches(&labels(&[("role", "db")])));
        assert_eq!(sel.to_string(), "role=web, env!=dev");
    }

    #[test]
    fn empty_matches_all_and_garbage_is_rejected() {
        assert!(LabelSelector::parse("").unwrap().matches(&labels(&[])));
        assert!(LabelSelector::parse("role").is_err());
        assert!(LabelSelector::parse("role=web,,x=y").is_err());
        assert!(LabelSelector::parse("ro le=web").is_err());
    }
}
