//! Agent tokens: random, shown once, stored only as `sha256:<hex>`.

use rand::Rng;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The form kept in `collector.toml`. The token is hashed exactly as given: a presented token
/// with a space or a newline more is another token.
pub fn hash_token(token: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(token.as_bytes())))
}

/// A new token: 32 random bytes, hex.
pub fn generate_token() -> String {
    format!("vakt_{}", secret())
}

/// A secret for links and signatures (subscribers' confirmation and unsubscribe links,
/// webhook signing keys): 32 random bytes, hex.
pub fn secret() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    hex::encode(bytes)
}

pub use crate::core::ct::constant_time_eq;

/// Maps token hashes to agent names. Only hashes are held; a presented token is hashed and
/// looked up, so the lookup's timing depends on the digest, never on the secret itself.
#[derive(Clone, Debug, Default)]
pub struct TokenTable {
    by_hash: HashMap<String, String>,
}

impl TokenTable {
    /// From `(agent, token_hash)` pairs.
    pub fn new(agents: impl IntoIterator<Item = (String, String)>) -> Self {
        Self { by_hash: agents.into_iter().map(|(agent, hash)| (hash, agent)).collect() }
    }

    /// The agent a token belongs to.
    pub fn agent_for(&self, token: &str) -> Option<&str> {
        let presented = hash_token(token);
        self.by_hash
            .get_key_value(&presented)
            .filter(|(stored, _)| constant_time_eq(stored.as_bytes(), presented.as_bytes()))
            .map(|(_, agent)| agent.as_str())
    }

    /// True when `token` belongs to `agent`.
    pub fn verify(&self, agent: &str, token: &str) -> bool {
        self.agent_for(token) == Some(agent)
    }
}

/// The token from an `Authorization: Bearer <token>` header value.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    let value = header?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_compared_exactly() {
        let t = TokenTable::new([("a".to_string(), hash_token("secret-a"))]);
        assert_eq!(t.agent_for("secret-a"), Some("a"));
        for near in ["secret-a ", " secret-a", "secret-a\n", "secret-A", "secret-"] {
            assert_eq!(t.agent_for(near), None, "{near:?}");
        }
        assert_eq!(bearer(Some("Bearer  secret-a")), Some(" secret-a"), "no trimming inside the header");
    }

    #[test]
    fn hash_matches_the_documented_form() {
        // sha256("foo")
        assert_eq!(hash_token("foo"), "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae");
        assert!(vakt_config::collector::valid_token_hash(&hash_token(&generate_token())));
    }

    #[test]
    fn a_token_is_bound_to_its_agent() {
        let t = TokenTable::new([("a".to_string(), hash_token("secret-a")), ("b".to_string(), hash_token("secret-b"))]);
        assert!(t.verify("a", "secret-a"));
        assert!(!t.verify("b", "secret-a"), "a's token must not push for b");
        assert!(!t.verify("c", "secret-a"));
        assert!(!t.verify("a", "secret-a-but-longer"));
        assert_eq!(t.agent_for("secret-b"), Some("b"));
        assert_eq!(t.agent_for("nobody"), None);
    }

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
        assert_eq!(bearer(Some("bearer abc")), Some("abc"), "the scheme in any case");
        assert_eq!(bearer(Some("Basic abc")), None);
        assert_eq!(bearer(Some("Bearer ")), None);
        assert_eq!(bearer(None), None);
    }
}
