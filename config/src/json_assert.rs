//! JSON body assertions of HTTP checks: a path into the body (`json_path`) and what the value
//! there must be (`json_expect`). Parsed here, where the configuration is validated, and
//! evaluated by the agent.
//!
//! Paths: `$` is the body; `.name` or `["name"]` a member, `[N]` the N-th element (from 0; `-1`
//! the last). Expectations: a JSON literal or a bare word is the value it must equal (`ok`,
//! `"ok"`, `200`, `true`, `null`); an operator first compares (`!= "down"`, `< 1000`, `>= 0.5`;
//! `<`, `<=`, `>`, `>=` take numbers). Without `json_expect` the path must exist.

use serde_json::Value;

/// One step of a path.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    Member(String),
    Index(i64),
}

/// A parsed `json_path`.
#[derive(Clone, Debug, PartialEq)]
pub struct JsonPath {
    text: String,
    steps: Vec<Step>,
}

impl JsonPath {
    pub fn parse(text: &str) -> Result<JsonPath, String> {
        let rest = text.strip_prefix('$').ok_or_else(|| format!("{text:?} does not start with $"))?;
        let mut steps = Vec::new();
        let mut chars = rest.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '.' => {
                    let mut name = String::new();
                    while let Some(&n) = chars.peek() {
                        if n == '.' || n == '[' {
                            break;
                        }
                        name.push(n);
                        chars.next();
                    }
                    if name.is_empty() {
                        return Err(format!("{text:?}: a '.' without a name after it"));
                    }
                    steps.push(Step::Member(name));
                }
                '[' => {
                    let mut inner = String::new();
                    let mut closed = false;
                    let mut quote: Option<char> = None;
                    for n in chars.by_ref() {
                        match (quote, n) {
                            (None, ']') => {
                                closed = true;
                                break;
                            }
                            (None, '"' | '\'') if inner.is_empty() => quote = Some(n),
                            (Some(q), n) if n == q => quote = None,
                            _ => {}
                        }
                        inner.push(n);
                    }
                    if !closed {
                        return Err(format!("{text:?}: a '[' without its ']'"));
                    }
                    let quoted = |q: char| inner.len() >= 2 && inner.starts_with(q) && inner.ends_with(q);
                    if quoted('"') || quoted('\'') {
                        steps.push(Step::Member(inner[1..inner.len() - 1].to_string()));
                    } else {
                        let i = inner
                            .trim()
                            .parse::<i64>()
                            .map_err(|_| format!("{text:?}: [{inner}] is neither an index nor a quoted name"))?;
                        steps.push(Step::Index(i));
                    }
                }
                other => return Err(format!("{text:?}: unexpected {other:?} (use .name, [\"name\"] or [N])")),
            }
        }
        Ok(JsonPath { text: text.to_string(), steps })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The value at the path, if the body has one there.
    pub fn find<'a>(&self, body: &'a Value) -> Option<&'a Value> {
        let mut at = body;
        for step in &self.steps {
            at = match (step, at) {
                (Step::Member(name), Value::Object(map)) => map.get(name)?,
                (Step::Index(i), Value::Array(items)) => {
                    let index = if *i < 0 { items.len().checked_sub(i.unsigned_abs() as usize)? } else { *i as usize };
                    items.get(index)?
                }
                _ => return None,
            };
        }
        Some(at)
    }
}

/// How the value is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

/// A parsed `json_expect`.
#[derive(Clone, Debug, PartialEq)]
pub struct Expect {
    pub op: Op,
    pub value: Value,
}

impl Expect {
    pub fn parse(text: &str) -> Result<Expect, String> {
        let t = text.trim();
        let (op, rest) = [("==", Op::Eq), ("!=", Op::Ne), ("<=", Op::Le), (">=", Op::Ge), ("<", Op::Lt), (">", Op::Gt)]
            .iter()
            .find_map(|(s, op)| t.strip_prefix(s).map(|r| (*op, r.trim())))
            .unwrap_or((Op::Eq, t));
        if rest.is_empty() {
            return Err(format!("{text:?} has no value to compare with"));
        }
        // A JSON literal, or a bare word taken as a string.
        let value = serde_json::from_str::<Value>(rest).unwrap_or_else(|_| Value::String(rest.to_string()));
        if matches!(op, Op::Lt | Op::Le | Op::Gt | Op::Ge) && !value.is_number() {
            return Err(format!("{text:?}: {} compares numbers; {rest} is not one", op.symbol()));
        }
        if matches!(value, Value::Array(_) | Value::Object(_)) {
            return Err(format!("{text:?}: compare with a number, a string, true, false or null"));
        }
        Ok(Expect { op, value })
    }

    /// Whether `found` meets the expectation. Numbers compare as numbers (1 equals 1.0); other
    /// values only equal values of their own type.
    pub fn holds(&self, found: &Value) -> bool {
        let ordering = match (found.as_f64(), self.value.as_f64()) {
            (Some(a), Some(b)) if found.is_number() && self.value.is_number() => a.partial_cmp(&b),
            _ => None,
        };
        match self.op {
            Op::Eq => ordering.map_or(*found == self.value, |o| o.is_eq()),
            Op::Ne => ordering.map_or(*found != self.value, |o| o.is_ne()),
            Op::Lt => ordering.is_some_and(|o| o.is_lt()),
            Op::Le => ordering.is_some_and(|o| o.is_le()),
            Op::Gt => ordering.is_some_and(|o| o.is_gt()),
            Op::Ge => ordering.is_some_and(|o| o.is_ge()),
        }
    }

    /// "== \"ok\"", "< 1000": for messages.
    pub fn describe(&self) -> String {
        format!("{} {}", self.op.symbol(), self.value)
    }
}

/// Checks `body` against a path and an optional expectation: `Ok(value found)` or why not.
pub fn check(body: &[u8], path: &JsonPath, expect: Option<&Expect>) -> Result<Value, String> {
    let json: Value = serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let found = path.find(&json).ok_or_else(|| format!("{} is not in the body", path.as_str()))?;
    if let Some(e) = expect {
        if !e.holds(found) {
            return Err(format!("{} is {found}, expected {}", path.as_str(), e.describe()));
        }
    }
    Ok(found.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(path: &str, body: &Value) -> Option<Value> {
        JsonPath::parse(path).unwrap().find(body).cloned()
    }

    #[test]
    fn paths_walk_members_and_indexes() {
        let body = json!({"status": "ok", "checks": [{"name": "db", "ms": 12}, {"name": "cache", "ms": 3}], "a.b": 1});
        assert_eq!(at("$", &body), Some(body.clone()));
        assert_eq!(at("$.status", &body), Some(json!("ok")));
        assert_eq!(at("$.checks[1].name", &body), Some(json!("cache")));
        assert_eq!(at("$.checks[-1].ms", &body), Some(json!(3)));
        assert_eq!(at("$[\"a.b\"]", &body), Some(json!(1)));
        assert_eq!(at("$['checks'][0]['ms']", &body), Some(json!(12)));
        assert_eq!(at("$.checks[2]", &body), None);
        assert_eq!(at("$.status.deeper", &body), None);
        assert!(JsonPath::parse("status").unwrap_err().contains("does not start with $"));
        assert!(JsonPath::parse("$.a[x]").unwrap_err().contains("neither an index nor a quoted name"));
        assert!(JsonPath::parse("$.a[0").unwrap_err().contains("without its ']'"));
        assert!(JsonPath::parse("$..a").unwrap_err().contains("without a name"));
    }

    #[test]
    fn expectations_compare_like_people_read_them() {
        let e = |t: &str| Expect::parse(t).unwrap();
        assert!(e("ok").holds(&json!("ok")));
        assert!(e("\"ok\"").holds(&json!("ok")));
        assert!(!e("ok").holds(&json!("degraded")));
        assert!(e("200").holds(&json!(200.0)), "numbers compare as numbers");
        assert!(!e("200").holds(&json!("200")), "a string is not a number");
        assert!(e("!= down").holds(&json!("up")));
        assert!(e("< 1000").holds(&json!(999)));
        assert!(!e("< 1000").holds(&json!(1000)));
        assert!(e(">= 0.5").holds(&json!(0.5)));
        assert!(!e("> 1").holds(&json!("2")), "an order needs a number");
        assert!(e("true").holds(&json!(true)));
        assert!(e("null").holds(&Value::Null));
        assert!(Expect::parse("< many").unwrap_err().contains("compares numbers"));
        assert!(Expect::parse("==").unwrap_err().contains("no value"));
    }

    #[test]
    fn a_check_says_what_it_found() {
        let path = JsonPath::parse("$.queue.depth").unwrap();
        let expect = Expect::parse("< 1000").unwrap();
        assert_eq!(check(br#"{"queue":{"depth":12}}"#, &path, Some(&expect)), Ok(json!(12)));
        assert_eq!(
            check(br#"{"queue":{"depth":1500}}"#, &path, Some(&expect)),
            Err("$.queue.depth is 1500, expected < 1000".into())
        );
        assert_eq!(check(br#"{"queue":{}}"#, &path, None), Err("$.queue.depth is not in the body".into()));
        assert!(check(b"<html>", &path, None).unwrap_err().starts_with("body is not JSON"));
    }
}
