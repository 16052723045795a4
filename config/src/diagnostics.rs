//! Config problems with a place: `file:line:col: message (hint)`, all of them at once.
//!
//! serde stops at the first error. To report every problem in a file, [`parse_all`] blanks the
//! offending line (or table) with spaces — byte offsets stay valid — and parses again, until the
//! file parses or an error cannot be recovered from. Semantic checks then add their own problems
//! with the spans kept by `toml::Spanned`.

use serde::de::DeserializeOwned;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::duration::DURATION_HINT;
use crate::selector::SELECTOR_HINT;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file.display(), self.line, self.column, self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

/// Every problem found in one config file.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<Diagnostic>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// Collects diagnostics for one source text.
pub struct Reporter<'a> {
    file: &'a Path,
    source: &'a str,
    pub diagnostics: Vec<Diagnostic>,
}

impl<'a> Reporter<'a> {
    pub fn new(file: &'a Path, source: &'a str) -> Self {
        Self { file, source, diagnostics: Vec::new() }
    }

    /// The text being checked.
    pub fn source(&self) -> &'a str {
        self.source
    }

    pub fn at(&mut self, offset: usize, message: impl Into<String>, hint: Option<String>) {
        let (line, column) = line_col(self.source, offset);
        self.diagnostics.push(Diagnostic {
            file: self.file.to_path_buf(),
            line,
            column,
            message: message.into(),
            hint,
        });
    }

    pub fn span(&mut self, span: Range<usize>, message: impl Into<String>, hint: impl Into<String>) {
        self.at(span.start, message, Some(hint.into()));
    }

    /// The problems, in the order they appear in the file.
    pub fn into_errors(mut self) -> ConfigErrors {
        self.diagnostics.sort_by_key(|d| (d.line, d.column));
        ConfigErrors(self.diagnostics)
    }

    pub fn finish<T>(self, value: T) -> Result<T, ConfigErrors> {
        if self.diagnostics.is_empty() {
            Ok(value)
        } else {
            Err(self.into_errors())
        }
    }
}

/// 1-based line and character column of a byte offset.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = source.get(..offset).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Deserialises `source`, recovering from errors so that every problem is reported. Returns
/// the value parsed from what is left once the bad lines are blanked, so semantic checks can
/// run on the rest; the reporter holds the errors.
pub fn parse_all<T: DeserializeOwned>(reporter: &mut Reporter<'_>) -> Option<T> {
    let mut text = reporter.source.to_string();
    let mut blanked_keys: Vec<String> = Vec::new();
    for _ in 0..200 {
        match toml::from_str::<T>(&text) {
            Ok(value) => return Some(value),
            Err(err) => {
                let message = err.message().trim().to_string();
                let span = err.span().unwrap_or(0..0);
                if let Some(field) = missing_field(&message) {
                    // A field we blanked ourselves is reported already, under its real cause:
                    // drop the table that now lacks it and go on with the rest of the file.
                    if blanked_keys.iter().any(|k| k == field) {
                        match enclosing_header(&text, span.start).and_then(|h| blank_at(&text, h)) {
                            Some((next, _)) if next != text => {
                                text = next;
                                continue;
                            }
                            _ => return None,
                        }
                    }
                }
                let hint = hint_for(&message);
                // The list of known keys goes into the hint, not the message.
                let shown = if message.starts_with("unknown field") {
                    message.split(", expected").next().unwrap_or(&message).to_string()
                } else {
                    first_line(&message)
                };
                reporter.at(span.start, shown, hint);
                match blank_at(&text, span.start) {
                    Some((next, key)) if next != text => {
                        blanked_keys.extend(key);
                        text = next;
                    }
                    _ => return None,
                }
            }
        }
    }
    None
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or(message).to_string()
}

fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next()
}

/// Offset of the table header line at or before `offset`, if any.
fn enclosing_header(text: &str, offset: usize) -> Option<usize> {
    let offset = offset.min(text.len());
    let mut line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    loop {
        let line_start = text[..line_end].rfind('\n').map_or(0, |i| i + 1);
        if text[line_start..line_end].trim_start().starts_with('[') {
            return Some(line_start);
        }
        if line_start == 0 {
            return None;
        }
        line_end = line_start - 1;
    }
}

/// Blanks the line at `offset` (or a whole table when the line is a table header). Returns the
/// new text and the key that was blanked.
fn blank_at(text: &str, offset: usize) -> Option<(String, Option<String>)> {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let line = text[line_start..line_end].trim_start();
    let (end, key) = if line.starts_with('[') {
        // A table header: blank the table up to the next header.
        let mut end = text.len();
        let mut pos = line_end;
        while pos < text.len() {
            let next_end = text[pos + 1..].find('\n').map_or(text.len(), |i| pos + 1 + i);
            if text[pos + 1..next_end].trim_start().starts_with('[') {
                end = pos;
                break;
            }
            pos = next_end;
        }
        (end, None)
    } else {
        let key = line.split('=').next().map(|k| k.trim().trim_matches('"').to_string()).filter(|k| !k.is_empty());
        (line_end, key)
    };
    if line_start >= end {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    out.push_str(&text[..line_start]);
    out.extend(text[line_start..end].chars().map(|c| {
        if c == '\n' {
            '\n'
        } else {
            // Keep byte offsets: replace each char by as many spaces as it has bytes.
            ' '
        }
    }));
    // Multi-byte characters shrink when replaced by one space; pad to keep offsets stable.
    let removed = text[line_start..end].len();
    let written = out.len() - line_start;
    out.extend(std::iter::repeat_n(' ', removed.saturating_sub(written)));
    out.push_str(&text[end..]);
    Some((out, key))
}

fn hint_for(message: &str) -> Option<String> {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let unknown = rest.split('`').next().unwrap_or("");
        let expected: Vec<&str> =
            rest.split("expected").nth(1).map(|s| s.split('`').skip(1).step_by(2).collect()).unwrap_or_default();
        if let Some(best) = closest(unknown, &expected) {
            return Some(format!("did you mean `{best}`?"));
        }
        if !expected.is_empty() {
            return Some(format!("known keys here: {}", expected.join(", ")));
        }
        return Some("remove it".into());
    }
    if message.contains("invalid duration") {
        return Some(DURATION_HINT.into());
    }
    if message.starts_with("name ") && message.ends_with("is not valid") {
        return Some(crate::check::ID_HINT.into());
    }
    if message.starts_with("label ") {
        return Some("label names use letters, digits and '_' (up to 64), values up to 256 bytes".into());
    }
    if message.contains("selector") {
        return Some(SELECTOR_HINT.into());
    }
    if message.starts_with("unknown variant") {
        return Some("use one of the values listed".into());
    }
    if message.starts_with("missing field") {
        return Some("add it to this table".into());
    }
    None
}

/// The candidate within edit distance 2 of `word`, if any.
fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates.iter().map(|c| (levenshtein(word, c), *c)).filter(|(d, _)| *d <= 2).min().map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_characters() {
        let src = "a = 1\nbé = 2\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 6), (2, 1));
        assert_eq!(line_col(src, src.find('=').unwrap()), (1, 3));
        // 'é' is two bytes but one column.
        assert_eq!(line_col(src, src.rfind('=').unwrap()), (2, 4));
    }

    #[test]
    fn blanking_keeps_offsets() {
        let src = "a = 1\nbé = \"x\"\nc = 3\n";
        let (out, key) = blank_at(src, 7).unwrap();
        assert_eq!(out.len(), src.len());
        assert_eq!(key.as_deref(), Some("bé"));
        assert_eq!(out.find('c'), src.find('c'));
    }

    #[test]
    fn suggests_the_closest_key() {
        let hint = hint_for("unknown field `intervl`, expected one of `kind`, `interval`, `timeout`");
        assert_eq!(hint.as_deref(), Some("did you mean `interval`?"));
    }
}
