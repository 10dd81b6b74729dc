//! A string that must not show up in logs: credentials, session tokens,
//! bearer tokens.

use std::fmt;

/// A secret string: `Debug` and `Display` print `[redacted]` (not even its
/// length), so a struct holding one can derive `Debug` safely. Read it with
/// [`SecretString::expose`], which makes every use easy to find.
///
/// ```
/// use odradek_core::sasl::SecretString;
/// let secret = SecretString::new("hunter2");
/// assert_eq!(format!("{secret:?}"), "[redacted]");
/// assert_eq!(secret.expose(), "hunter2");
/// ```
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps `secret`.
    pub fn new(secret: impl Into<String>) -> Self {
        SecretString(secret.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is the empty string.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for SecretString {
    fn from(secret: String) -> Self {
        SecretString(secret)
    }
}

impl From<&str> for SecretString {
    fn from(secret: &str) -> Self {
        SecretString(secret.to_string())
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neither_debug_nor_display_shows_the_secret() {
        let secret = SecretString::from("s3cret-value");
        assert!(!format!("{secret:?}").contains("s3cret"));
        assert!(!format!("{secret}").contains("s3cret"));
        assert!(!format!("{:?}", Some(secret.clone())).contains("s3cret"));
        assert_eq!(secret.expose(), "s3cret-value");
    }
}
