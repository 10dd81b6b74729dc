//! `sasl.jaas.config`: the one-line JAAS entry Java users paste, e.g.
//! `org.apache.kafka.common.security.scram.ScramLoginModule required
//! username="alice" password="secret";`. Only the login modules whose
//! options map onto Odradek's settings are accepted.

use std::collections::BTreeMap;

/// A parsed JAAS entry: the login module's class, its control flag and its
/// options. Option values may be secrets: `Debug` shows only the keys.
#[derive(Clone, PartialEq, Eq)]
pub struct JaasEntry {
    /// The login module's fully qualified class name.
    pub module: String,
    /// `required`, `requisite`, `sufficient` or `optional`.
    pub flag: String,
    /// `key=value` options, in key order.
    pub options: BTreeMap<String, String>,
}

impl std::fmt::Debug for JaasEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JaasEntry")
            .field("module", &self.module)
            .field("flag", &self.flag)
            .field("option_keys", &self.options.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Why a `sasl.jaas.config` value does not parse. Never quotes the input
/// (it holds passwords): only the position and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sasl.jaas.config: {expected} at character {at}")]
pub struct JaasError {
    /// Character index (not byte) where parsing stopped.
    pub at: usize,
    /// What was expected there.
    pub expected: &'static str,
}

/// The longest `sasl.jaas.config` accepted: a real entry is a few hundred
/// characters.
const MAX_LEN: usize = 64 * 1024;

/// Parses one JAAS login-module entry: `Module flag key=value ... ;`. Values
/// are double-quoted (with `\` escapes) or bare words. One entry only, as
/// Kafka's `sasl.jaas.config` requires.
pub fn parse(text: &str) -> Result<JaasEntry, JaasError> {
    if text.len() > MAX_LEN {
        return Err(JaasError {
            at: 0,
            expected: "at most 64 KiB",
        });
    }
    let mut p = Parser {
        chars: text.chars().collect(),
        at: 0,
    };
    p.skip_space();
    let module = p.word("a login module class name")?;
    p.skip_space();
    let flag = p.word("a control flag (required, requisite, sufficient or optional)")?;
    if !["required", "requisite", "sufficient", "optional"].contains(&flag.as_str()) {
        return Err(p.error("a control flag (required, requisite, sufficient or optional)"));
    }
    let mut options = BTreeMap::new();
    loop {
        p.skip_space();
        match p.peek() {
            Some(';') => {
                p.at += 1;
                break;
            }
            None => return Err(p.error("`;` ending the entry")),
            Some(_) => {}
        }
        let key = p.word("an option name")?;
        p.skip_space();
        if p.peek() != Some('=') {
            return Err(p.error("`=` after the option name"));
        }
        p.at += 1;
        p.skip_space();
        let value = if p.peek() == Some('"') {
            p.quoted()?
        } else {
            p.word("an option value")?
        };
        if options.insert(key, value).is_some() {
            return Err(p.error("each option once"));
        }
    }
    p.skip_space();
    if p.peek().is_some() {
        return Err(p.error("nothing after `;` (one entry only)"));
    }
    Ok(JaasEntry {
        module,
        flag,
        options,
    })
}

struct Parser {
    chars: Vec<char>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn error(&self, expected: &'static str) -> JaasError {
        JaasError {
            at: self.at,
            expected,
        }
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }

    /// A bare word: letters, digits and `.`, `_`, `-`, `$`, `/`, `:`.
    fn word(&mut self, expected: &'static str) -> Result<String, JaasError> {
        let start = self.at;
        while self
            .peek()
            .is_some_and(|c| c.is_alphanumeric() || "._-$/:".contains(c))
        {
            self.at += 1;
        }
        if self.at == start {
            return Err(self.error(expected));
        }
        Ok(self.chars[start..self.at].iter().collect())
    }

    fn quoted(&mut self) -> Result<String, JaasError> {
        self.at += 1; // the opening quote
        let mut value = String::new();
        loop {
            match self.peek() {
                None => return Err(self.error("a closing `\"`")),
                Some('"') => {
                    self.at += 1;
                    return Ok(value);
                }
                Some('\\') => {
                    self.at += 1;
                    let Some(c) = self.peek() else {
                        return Err(self.error("a character after `\\`"));
                    };
                    value.push(c);
                    self.at += 1;
                }
                Some(c) => {
                    value.push(c);
                    self.at += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scram_and_plain_entries_parse() {
        let entry = parse(
            r#"org.apache.kafka.common.security.scram.ScramLoginModule required
               username="alice" password="p\"w d";"#,
        )
        .unwrap();
        assert_eq!(
            entry.module,
            "org.apache.kafka.common.security.scram.ScramLoginModule"
        );
        assert_eq!(entry.flag, "required");
        assert_eq!(entry.options["username"], "alice");
        assert_eq!(entry.options["password"], "p\"w d");
        let shown = format!("{entry:?}");
        assert!(
            !shown.contains("p\\\"w d") && !shown.contains("alice"),
            "{shown}"
        );

        let entry = parse("PlainLoginModule optional username=bob password=x1;").unwrap();
        assert_eq!(entry.options["username"], "bob");
    }

    #[test]
    fn malformed_entries_are_errors_that_do_not_quote_the_input() {
        for (text, at) in [
            ("", 0),
            ("Module", 6),
            ("Module mandatory a=\"b\";", 16),
            ("Module required username=\"alice\"", 32),
            ("Module required username \"alice\";", 25),
            ("Module required password=\"sec", 29),
            ("Module required a=1; Other required b=2;", 21),
            ("Module required a=1 a=2;", 23),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.at, at, "{text:?}: {e}");
            assert!(!e.to_string().contains("sec"), "{e}");
        }
    }
}
