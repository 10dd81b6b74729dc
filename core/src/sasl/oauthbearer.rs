//! `OAUTHBEARER` (RFC 7628) as Kafka speaks it (KIP-255, with SASL
//! extensions from KIP-342): the client sends a bearer token and optional
//! key/value extensions; the server answers nothing on success, or an
//! RFC 7628 JSON error, to which the client replies [`FAILURE_ACK`] (a
//! lone `\x01`) before the server fails the login.
//!
//! - [`OAuthBearerToken`]: a token as the caller obtained it (from an
//!   identity provider, or [`unsecured_jwt`] for development).
//! - [`initial_response`]: the client's message,
//!   `n,,\x01auth=Bearer <token>\x01[key=value\x01]...\x01`.
//! - [`parse_server_answer`]: success, or the server's error as a typed
//!   [`OAuthBearerServerError`].
//! - [`UnsecuredJwtConfig`]: librdkafka's `sasl.oauthbearer.config` for its
//!   built-in unsecured-JWT provider, and [`unsecured_jwt`], which makes the
//!   same tokens (`alg: none`, no signature) for test brokers that accept
//!   them. Never for production: anyone can forge such a token.
//!
//! Token refresh is the caller's: it knows the clock, and
//! [`OAuthBearerToken::expires_at_unix_ms`] says when to fetch a new token.
//!
//! ```
//! use odradek_core::sasl::oauthbearer::{
//!     initial_response, parse_server_answer, unsecured_jwt, ServerAnswer, UnsecuredJwtConfig,
//! };
//! let config: UnsecuredJwtConfig = "principal=alice scope=read,write".parse().unwrap();
//! let token = unsecured_jwt(&config, 1_700_000_000_000);
//! let message = initial_response(&token).unwrap();
//! assert!(message.0.starts_with(b"n,,\x01auth=Bearer eyJhbGciOiJub25lIn0."));
//! assert_eq!(parse_server_answer(b"").unwrap(), ServerAnswer::Success);
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;

use super::SecretString;
use crate::protocol::SecretBytes;

/// The SASL mechanism name.
pub const MECHANISM: &str = "OAUTHBEARER";

/// What the client sends after the server's error answer (RFC 7628 §3.2.3:
/// a lone kvsep), so the server can end the exchange with a failure.
pub const FAILURE_ACK: &[u8] = b"\x01";

/// Server error answers longer than this are refused unparsed; real ones
/// are a few hundred bytes at most.
pub const MAX_SERVER_ERROR_BYTES: usize = 16 * 1024;

/// The reserved key of the token itself, never an extension name.
const AUTH_KEY: &str = "auth";

/// A bearer token and what the client knows about it. `Debug` redacts the
/// token and shows the extension names only.
#[derive(Clone, PartialEq, Eq)]
pub struct OAuthBearerToken {
    /// The token sent as `auth=Bearer <value>`, usually a JWS compact
    /// serialization.
    pub value: SecretString,
    /// When the token stops being valid, in unix milliseconds, as the
    /// provider said; the caller refreshes before then.
    pub expires_at_unix_ms: u64,
    /// The principal the token names (for logs; the broker reads it from
    /// the token).
    pub principal: String,
    /// SASL extensions (KIP-342) sent with the token, by name.
    pub extensions: BTreeMap<String, String>,
}

impl fmt::Debug for OAuthBearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthBearerToken")
            .field("value", &self.value)
            .field("expires_at_unix_ms", &self.expires_at_unix_ms)
            .field("principal", &self.principal)
            .field("extensions", &self.extensions.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Why a token or its extensions cannot be sent. No variant carries the
/// token or an extension value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthBearerError {
    /// The token is empty.
    #[error("the OAUTHBEARER token is empty")]
    EmptyToken,
    /// The token is not an RFC 6750 `b64token` (letters, digits,
    /// `-._~+/`, then optional `=` padding), so it could not be framed.
    #[error("the OAUTHBEARER token has a character a bearer token cannot have at byte {position}")]
    InvalidToken {
        /// The offset of the first bad byte.
        position: usize,
    },
    /// An extension is named `auth`, which the token itself uses.
    #[error("the SASL extension name \"auth\" is reserved")]
    ReservedExtensionName,
    /// An extension name is not one or more ASCII letters (RFC 7628 `key`).
    #[error("the SASL extension name {0:?} is not one or more ASCII letters")]
    InvalidExtensionName(String),
    /// An extension value is empty: RFC 7628 allows it, but Kafka's broker
    /// refuses the whole message then.
    #[error("the SASL extension {0:?} has an empty value")]
    EmptyExtensionValue(String),
    /// An extension value has a byte outside RFC 7628's `value` (visible
    /// ASCII, space, tab, CR, LF).
    #[error(
        "the SASL extension {name:?} has a character outside visible ASCII, space, tab, CR and LF at byte {position}"
    )]
    InvalidExtensionValue {
        /// The extension's name.
        name: String,
        /// The offset of the first bad byte in the value.
        position: usize,
    },
}

/// Checks one SASL extension as Kafka and librdkafka do (RFC 7628 §3.1):
/// the name is `[A-Za-z]+` and not `auth`; the value is non-empty visible
/// ASCII, space, tab, CR or LF.
pub fn validate_extension(name: &str, value: &str) -> Result<(), OAuthBearerError> {
    if name == AUTH_KEY {
        return Err(OAuthBearerError::ReservedExtensionName);
    }
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(OAuthBearerError::InvalidExtensionName(name.to_string()));
    }
    if value.is_empty() {
        return Err(OAuthBearerError::EmptyExtensionValue(name.to_string()));
    }
    if let Some(position) = value
        .bytes()
        .position(|b| !matches!(b, 0x21..=0x7e | b' ' | b'\t' | b'\r' | b'\n'))
    {
        return Err(OAuthBearerError::InvalidExtensionValue {
            name: name.to_string(),
            position,
        });
    }
    Ok(())
}

/// RFC 6750's `b64token`: `1*(ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/") *"="`.
fn validate_token(token: &str) -> Result<(), OAuthBearerError> {
    let bytes = token.as_bytes();
    let body = bytes
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)))
        .unwrap_or(bytes.len());
    if body == 0 {
        return Err(if bytes.is_empty() {
            OAuthBearerError::EmptyToken
        } else {
            OAuthBearerError::InvalidToken { position: 0 }
        });
    }
    match bytes[body..].iter().position(|&b| b != b'=') {
        Some(offset) => Err(OAuthBearerError::InvalidToken {
            position: body + offset,
        }),
        None => Ok(()),
    }
}

/// The client's initial response: the GS2 header `n,,` (no channel
/// binding, no authorization id), then `\x01auth=Bearer <token>`, then
/// `\x01name=value` per extension (by name), then `\x01\x01`. The token and
/// every extension are checked first so nothing can reframe the message.
pub fn initial_response(token: &OAuthBearerToken) -> Result<SecretBytes, OAuthBearerError> {
    let value = token.value.expose();
    validate_token(value)?;
    for (name, extension) in &token.extensions {
        validate_extension(name, extension)?;
    }
    let mut message = Vec::with_capacity(
        20 + value.len()
            + token
                .extensions
                .iter()
                .map(|(n, v)| n.len() + v.len() + 2)
                .sum::<usize>(),
    );
    message.extend_from_slice(b"n,,\x01auth=Bearer ");
    message.extend_from_slice(value.as_bytes());
    for (name, extension) in &token.extensions {
        message.push(0x01);
        message.extend_from_slice(name.as_bytes());
        message.push(b'=');
        message.extend_from_slice(extension.as_bytes());
    }
    message.extend_from_slice(b"\x01\x01");
    Ok(SecretBytes(bytes::Bytes::from(message)))
}

/// The server's error answer (RFC 7628 §3.2.2). It is an error type too, so
/// a refused login can be returned as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the server refused the OAUTHBEARER token: status {status:?}{}", .scope.as_ref().map(|s| format!(", scope {s:?}")).unwrap_or_default())]
pub struct OAuthBearerServerError {
    /// The failure, e.g. `invalid_token`, `insufficient_scope` or
    /// `invalid_request` (Kafka's brokers send these).
    pub status: String,
    /// The scope the token would need, space-separated, if the server says.
    pub scope: Option<String>,
    /// Where the server's OpenID configuration is, if it says.
    pub openid_configuration: Option<String>,
}

/// Why the server's answer could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthBearerDecodeError {
    /// The answer is longer than [`MAX_SERVER_ERROR_BYTES`].
    #[error("the server's OAUTHBEARER answer has {0} bytes, more than {MAX_SERVER_ERROR_BYTES}")]
    TooLong(usize),
    /// The answer is not JSON (or not UTF-8).
    #[error("the server's OAUTHBEARER answer is not JSON")]
    NotJson,
    /// The answer is JSON but not an object.
    #[error("the server's OAUTHBEARER answer is not a JSON object")]
    NotAnObject,
    /// The answer has no `status`.
    #[error("the server's OAUTHBEARER error has no \"status\"")]
    MissingStatus,
    /// A field is there but not a string.
    #[error("the server's OAUTHBEARER error has a non-string {0:?}")]
    NotAString(&'static str),
}

/// What the server's first answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerAnswer {
    /// An empty answer: the login succeeded.
    Success,
    /// The server refused the token. Send [`FAILURE_ACK`]; the server then
    /// ends the exchange with a failure.
    Failure(OAuthBearerServerError),
}

/// Reads the server's answer to the initial response: empty is success
/// (as Kafka's Java client and librdkafka take it), anything else must be
/// the RFC 7628 error JSON.
pub fn parse_server_answer(answer: &[u8]) -> Result<ServerAnswer, OAuthBearerDecodeError> {
    if answer.is_empty() {
        return Ok(ServerAnswer::Success);
    }
    parse_server_error(answer).map(ServerAnswer::Failure)
}

/// Reads the RFC 7628 §3.2.2 error JSON: `status` is a required string,
/// `scope` and `openid-configuration` optional strings; other fields are
/// ignored. Bounded by [`MAX_SERVER_ERROR_BYTES`] and serde_json's nesting
/// limit; never panics.
pub fn parse_server_error(answer: &[u8]) -> Result<OAuthBearerServerError, OAuthBearerDecodeError> {
    if answer.len() > MAX_SERVER_ERROR_BYTES {
        return Err(OAuthBearerDecodeError::TooLong(answer.len()));
    }
    let value: serde_json::Value =
        serde_json::from_slice(answer).map_err(|_| OAuthBearerDecodeError::NotJson)?;
    let object = value
        .as_object()
        .ok_or(OAuthBearerDecodeError::NotAnObject)?;
    let optional = |name: &'static str| match object.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(OAuthBearerDecodeError::NotAString(name)),
    };
    let status = optional("status")?.ok_or(OAuthBearerDecodeError::MissingStatus)?;
    Ok(OAuthBearerServerError {
        status,
        scope: optional("scope")?,
        openid_configuration: optional("openid-configuration")?,
    })
}

/// librdkafka's `sasl.oauthbearer.config` for its unsecured-JWT provider:
/// space-separated `name=value` entries, each at most once:
///
/// - `principal=<name>` (required): the principal claim's value;
/// - `principalClaimName=<claim>`: default `sub`;
/// - `scope=<a,b,...>`: the scope, comma-separated (empty elements skipped,
///   repeats dropped); default none, and then no scope claim;
/// - `scopeClaimName=<claim>`: default `scope`;
/// - `lifeSeconds=<n>`: 1 to 2^31-1, default 3600;
/// - `extension_<name>=<value>`: a SASL extension.
///
/// No value may be empty, hold a space, or (except extensions) a `"`.
///
/// ```
/// use odradek_core::sasl::oauthbearer::UnsecuredJwtConfig;
/// let config = UnsecuredJwtConfig::parse("principal=admin scope=a,b extension_traceId=7").unwrap();
/// assert_eq!(config.principal, "admin");
/// assert_eq!(config.principal_claim_name, "sub");
/// assert_eq!(config.scope, ["a", "b"]);
/// assert_eq!(config.life_seconds, 3600);
/// assert_eq!(config.extensions["traceId"], "7");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsecuredJwtConfig {
    /// The principal's name.
    pub principal: String,
    /// The claim that carries it.
    pub principal_claim_name: String,
    /// The scope elements, in order, without repeats.
    pub scope: Vec<String>,
    /// The claim that carries the scope (a JSON array), when there is one.
    pub scope_claim_name: String,
    /// How long the token lives.
    pub life_seconds: u32,
    /// SASL extensions to send with the token.
    pub extensions: BTreeMap<String, String>,
}

/// Why a `sasl.oauthbearer.config` string was refused; each variant names
/// the entry at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthBearerConfigError {
    /// The configuration is empty.
    #[error("sasl.oauthbearer.config must not be empty")]
    Empty,
    /// An entry is none of the known ones.
    #[error("sasl.oauthbearer.config has an unrecognized entry {0:?}")]
    Unrecognized(String),
    /// An entry appears twice.
    #[error("sasl.oauthbearer.config has more than one {0:?} entry")]
    Duplicate(String),
    /// An entry has an empty value.
    #[error("sasl.oauthbearer.config has an empty {0:?}")]
    EmptyValue(&'static str),
    /// A value that goes into the JWT has a `"` (librdkafka refuses it).
    #[error("sasl.oauthbearer.config: '\"' cannot appear in {0}")]
    Quote(&'static str),
    /// `lifeSeconds` is not an integer.
    #[error("sasl.oauthbearer.config has a non-integral lifeSeconds {0:?}")]
    LifeSecondsNotInteger(String),
    /// `lifeSeconds` is not in 1..=2^31-1.
    #[error("sasl.oauthbearer.config has lifeSeconds {0:?}, outside 1..=2147483647")]
    LifeSecondsOutOfRange(String),
    /// No `principal=` entry.
    #[error("sasl.oauthbearer.config has no principal=<value>")]
    NoPrincipal,
    /// An `extension_` entry breaks RFC 7628's rules.
    #[error("sasl.oauthbearer.config: {0}")]
    Extension(#[from] OAuthBearerError),
}

impl UnsecuredJwtConfig {
    /// Parses librdkafka's `sasl.oauthbearer.config` (see the type's docs).
    pub fn parse(config: &str) -> Result<Self, OAuthBearerConfigError> {
        if config.is_empty() {
            return Err(OAuthBearerConfigError::Empty);
        }
        let mut principal = None;
        let mut principal_claim_name = None;
        let mut scope_text = None;
        let mut scope_claim_name = None;
        let mut life_text: Option<String> = None;
        let mut extensions = BTreeMap::new();

        for entry in config.split(' ').filter(|e| !e.is_empty()) {
            // Longest names first: "principal=" is not a prefix of
            // "principalClaimName=", but keep the order obvious.
            let slots: [(&'static str, &mut Option<String>); 5] = [
                ("principalClaimName", &mut principal_claim_name),
                ("principal", &mut principal),
                ("scopeClaimName", &mut scope_claim_name),
                ("scope", &mut scope_text),
                ("lifeSeconds", &mut life_text),
            ];
            let mut matched = false;
            for (name, slot) in slots {
                let Some(value) = entry
                    .strip_prefix(name)
                    .and_then(|rest| rest.strip_prefix('='))
                else {
                    continue;
                };
                if slot.is_some() {
                    return Err(OAuthBearerConfigError::Duplicate(name.to_string()));
                }
                if value.is_empty() {
                    return Err(OAuthBearerConfigError::EmptyValue(name));
                }
                *slot = Some(value.to_string());
                matched = true;
                break;
            }
            if matched {
                continue;
            }
            if let Some(rest) = entry.strip_prefix("extension_") {
                // As librdkafka: the name runs to the first '=', the value
                // to the end of the entry.
                let (name, value) = rest.split_once('=').unwrap_or((rest, ""));
                validate_extension(name, value)?;
                if extensions
                    .insert(name.to_string(), value.to_string())
                    .is_some()
                {
                    return Err(OAuthBearerConfigError::Duplicate(format!(
                        "extension_{name}"
                    )));
                }
                continue;
            }
            return Err(OAuthBearerConfigError::Unrecognized(entry.to_string()));
        }

        let principal = principal.ok_or(OAuthBearerConfigError::NoPrincipal)?;
        let principal_claim_name = principal_claim_name.unwrap_or_else(|| "sub".into());
        let scope_claim_name = scope_claim_name.unwrap_or_else(|| "scope".into());
        for (what, value) in [
            ("principal", Some(&principal)),
            ("principalClaimName", Some(&principal_claim_name)),
            ("scopeClaimName", Some(&scope_claim_name)),
            ("scope", scope_text.as_ref()),
        ] {
            if value.is_some_and(|v| v.contains('"')) {
                return Err(OAuthBearerConfigError::Quote(what));
            }
        }
        let life_seconds = match life_text {
            None => 3600,
            Some(text) => parse_life_seconds(&text)?,
        };
        let mut scope: Vec<String> = Vec::new();
        for element in scope_text.iter().flat_map(|s| s.split(',')) {
            if !element.is_empty() && !scope.iter().any(|s| s == element) {
                scope.push(element.to_string());
            }
        }
        Ok(UnsecuredJwtConfig {
            principal,
            principal_claim_name,
            scope,
            scope_claim_name,
            life_seconds,
            extensions,
        })
    }
}

fn parse_life_seconds(text: &str) -> Result<u32, OAuthBearerConfigError> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(OAuthBearerConfigError::LifeSecondsNotInteger(
            text.to_string(),
        ));
    }
    let out_of_range = || OAuthBearerConfigError::LifeSecondsOutOfRange(text.to_string());
    let n: i64 = text.parse().map_err(|_| out_of_range())?;
    if !(1..=i64::from(i32::MAX)).contains(&n) {
        return Err(out_of_range());
    }
    u32::try_from(n).map_err(|_| out_of_range())
}

impl FromStr for UnsecuredJwtConfig {
    type Err = OAuthBearerConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        UnsecuredJwtConfig::parse(s)
    }
}

/// `base64url({"alg":"none"})`.
const UNSECURED_HEADER: &str = "eyJhbGciOiJub25lIn0";

/// An unsecured JWS (RFC 7515 appendix A.5) for `config`, issued at
/// `now_unix_ms`: `base64url({"alg":"none"})`, `.`, the base64url claims,
/// `.` and an empty signature, no padding. The claims are the principal
/// claim, `iat` and `exp` in seconds with three decimals, and the scope
/// claim as an array when there is a scope, in librdkafka's order and
/// format, so its tokens and ours are the same bytes.
///
/// The token expires `life_seconds` after `now_unix_ms`; its extensions
/// are the config's.
pub fn unsecured_jwt(config: &UnsecuredJwtConfig, now_unix_ms: u64) -> OAuthBearerToken {
    let expires_at_unix_ms =
        now_unix_ms.saturating_add(u64::from(config.life_seconds).saturating_mul(1000));
    let seconds = |ms: u64| format!("{}.{:03}", ms / 1000, ms % 1000);
    let mut claims = format!(
        "{{{}:{},\"iat\":{},\"exp\":{}",
        json_string(&config.principal_claim_name),
        json_string(&config.principal),
        seconds(now_unix_ms),
        seconds(expires_at_unix_ms),
    );
    if !config.scope.is_empty() {
        let elements: Vec<String> = config.scope.iter().map(|s| json_string(s)).collect();
        claims.push_str(&format!(
            ",{}:[{}]",
            json_string(&config.scope_claim_name),
            elements.join(",")
        ));
    }
    claims.push('}');
    let value = format!("{UNSECURED_HEADER}.{}.", BASE64URL.encode(claims));
    OAuthBearerToken {
        value: SecretString::new(value),
        expires_at_unix_ms,
        principal: config.principal.clone(),
        extensions: config.extensions.clone(),
    }
}

/// A JSON string literal; plain text (no `"`, `\` or control characters,
/// as librdkafka's configuration allows) comes out unchanged.
fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn token(value: &str, extensions: &[(&str, &str)]) -> OAuthBearerToken {
        OAuthBearerToken {
            value: value.into(),
            expires_at_unix_ms: 0,
            principal: "p".into(),
            extensions: extensions
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn initial_response_layout() {
        let plain = initial_response(&token("abc.def.", &[])).unwrap();
        assert_eq!(&plain.0[..], b"n,,\x01auth=Bearer abc.def.\x01\x01");
        let with = initial_response(&token("t0k", &[("traceId", "1 2"), ("a", "b")])).unwrap();
        assert_eq!(
            &with.0[..],
            b"n,,\x01auth=Bearer t0k\x01a=b\x01traceId=1 2\x01\x01"
        );
        assert!(!format!("{with:?}").contains("t0k"));
    }

    #[test]
    fn tokens_must_be_b64tokens() {
        for good in ["a", "A-._~+/9", "abc==", "eyJ.eyJ."] {
            assert!(initial_response(&token(good, &[])).is_ok(), "{good}");
        }
        let bad = [
            ("", OAuthBearerError::EmptyToken),
            ("=", OAuthBearerError::InvalidToken { position: 0 }),
            ("a b", OAuthBearerError::InvalidToken { position: 1 }),
            ("ab=c", OAuthBearerError::InvalidToken { position: 3 }),
            (
                "a\x01auth=x",
                OAuthBearerError::InvalidToken { position: 1 },
            ),
            ("é", OAuthBearerError::InvalidToken { position: 0 }),
        ];
        for (value, want) in bad {
            assert_eq!(initial_response(&token(value, &[])), Err(want), "{value:?}");
        }
    }

    #[test]
    fn extensions_are_validated_as_kip_342_says() {
        assert_eq!(
            validate_extension("auth", "x"),
            Err(OAuthBearerError::ReservedExtensionName)
        );
        for name in ["", "a1", " a", "a_b", "é", "a=b"] {
            assert_eq!(
                validate_extension(name, "x"),
                Err(OAuthBearerError::InvalidExtensionName(name.into())),
                "{name:?}"
            );
        }
        assert!(validate_extension("Auth", "x").is_ok());
        assert!(validate_extension("traceId", "!~ \t\r\n\"=").is_ok());
        assert_eq!(
            validate_extension("a", ""),
            Err(OAuthBearerError::EmptyExtensionValue("a".into()))
        );
        for (value, position) in [("a\x01", 1), ("\x00", 0), ("ok\x7f", 2), ("é", 0)] {
            assert_eq!(
                validate_extension("a", value),
                Err(OAuthBearerError::InvalidExtensionValue {
                    name: "a".into(),
                    position
                }),
                "{value:?}"
            );
        }
        assert_eq!(
            initial_response(&token("t", &[("x1", "v")])),
            Err(OAuthBearerError::InvalidExtensionName("x1".into()))
        );
    }

    #[test]
    fn debug_redacts_the_token_and_extension_values() {
        let t = token("sekrit.token.", &[("traceId", "hidden-value")]);
        let shown = format!("{t:?}");
        assert!(!shown.contains("sekrit"), "{shown}");
        assert!(!shown.contains("hidden-value"), "{shown}");
        assert!(shown.contains("traceId"), "{shown}");
    }

    #[test]
    fn server_answers() {
        assert_eq!(parse_server_answer(b""), Ok(ServerAnswer::Success));
        assert_eq!(
            parse_server_answer(br#"{"status":"invalid_token"}"#),
            Ok(ServerAnswer::Failure(OAuthBearerServerError {
                status: "invalid_token".into(),
                scope: None,
                openid_configuration: None,
            }))
        );
        // RFC 7628 §4's example error.
        let rfc = br#"{
             "status":"invalid_token",
             "scope":"example_scope",
             "openid-configuration":"https://example.com/.well-known/openid-configuration"
           }"#;
        let error = parse_server_error(rfc).unwrap();
        assert_eq!(error.scope.as_deref(), Some("example_scope"));
        assert_eq!(
            error.openid_configuration.as_deref(),
            Some("https://example.com/.well-known/openid-configuration")
        );
        assert!(error.to_string().contains("invalid_token"));
        assert!(parse_server_error(br#"{"status":"x","scope":null,"extra":{"a":[1]}}"#).is_ok());
        let bad: &[(&[u8], OAuthBearerDecodeError)] = &[
            (b"\x01", OAuthBearerDecodeError::NotJson),
            (b"{", OAuthBearerDecodeError::NotJson),
            (b"{\"status\":\"\xff\"}", OAuthBearerDecodeError::NotJson),
            (b"\"invalid_token\"", OAuthBearerDecodeError::NotAnObject),
            (b"[]", OAuthBearerDecodeError::NotAnObject),
            (b"{}", OAuthBearerDecodeError::MissingStatus),
            (br#"{"status":null}"#, OAuthBearerDecodeError::MissingStatus),
            (
                br#"{"status":1}"#,
                OAuthBearerDecodeError::NotAString("status"),
            ),
            (
                br#"{"status":"x","scope":["a"]}"#,
                OAuthBearerDecodeError::NotAString("scope"),
            ),
            (
                br#"{"status":"x","openid-configuration":{}}"#,
                OAuthBearerDecodeError::NotAString("openid-configuration"),
            ),
        ];
        for (answer, want) in bad {
            assert_eq!(
                parse_server_answer(answer).as_ref(),
                Err(want),
                "{:?}",
                String::from_utf8_lossy(answer)
            );
        }
        let long = vec![b' '; MAX_SERVER_ERROR_BYTES + 1];
        assert_eq!(
            parse_server_error(&long),
            Err(OAuthBearerDecodeError::TooLong(MAX_SERVER_ERROR_BYTES + 1))
        );
        let deep = "[".repeat(MAX_SERVER_ERROR_BYTES);
        assert_eq!(
            parse_server_error(deep.as_bytes()),
            Err(OAuthBearerDecodeError::NotJson)
        );
    }

    #[test]
    fn config_defaults_and_explicit_values() {
        let config = UnsecuredJwtConfig::parse("principal=fubar").unwrap();
        assert_eq!(
            config,
            UnsecuredJwtConfig {
                principal: "fubar".into(),
                principal_claim_name: "sub".into(),
                scope: vec![],
                scope_claim_name: "scope".into(),
                life_seconds: 3600,
                extensions: BTreeMap::new(),
            }
        );
        let config: UnsecuredJwtConfig = "  principal=fubar principalClaimName=azp  \
             scope=,role1,,role2,role1, scopeClaimName=roles lifeSeconds=60 \
             extension_a=b extension_yz=yz=val"
            .parse()
            .unwrap();
        assert_eq!(config.principal_claim_name, "azp");
        assert_eq!(config.scope, ["role1", "role2"]);
        assert_eq!(config.scope_claim_name, "roles");
        assert_eq!(config.life_seconds, 60);
        assert_eq!(config.extensions["a"], "b");
        assert_eq!(config.extensions["yz"], "yz=val");
        assert_eq!(
            UnsecuredJwtConfig::parse("principal=p lifeSeconds=+2147483647")
                .unwrap()
                .life_seconds,
            2_147_483_647
        );
    }

    #[test]
    fn every_bad_config_is_named() {
        use OAuthBearerConfigError as E;
        let cases: Vec<(&str, E)> = vec![
            ("", E::Empty),
            ("   ", E::NoPrincipal),
            ("extension_notaprincipal=hi", E::NoPrincipal),
            (
                "principal=fubar unrecognized",
                E::Unrecognized("unrecognized".into()),
            ),
            (
                "principal=fubar Principal=x",
                E::Unrecognized("Principal=x".into()),
            ),
            ("principal fubar", E::Unrecognized("principal".into())),
            ("principal=", E::EmptyValue("principal")),
            (
                "principal=fubar principalClaimName=",
                E::EmptyValue("principalClaimName"),
            ),
            ("principal=fubar scope=", E::EmptyValue("scope")),
            (
                "principal=fubar scopeClaimName=",
                E::EmptyValue("scopeClaimName"),
            ),
            ("principal=fubar lifeSeconds=", E::EmptyValue("lifeSeconds")),
            ("principal=a principal=b", E::Duplicate("principal".into())),
            ("principal=a scope=x scope=y", E::Duplicate("scope".into())),
            (
                "principal=a lifeSeconds=1 lifeSeconds=1",
                E::Duplicate("lifeSeconds".into()),
            ),
            (
                "principal=a extension_x=1 extension_x=2",
                E::Duplicate("extension_x".into()),
            ),
            ("principal=\"fu", E::Quote("principal")),
            (
                "principal=fubar principalClaimName=\"bar",
                E::Quote("principalClaimName"),
            ),
            ("principal=fubar scope=\"a,b,c", E::Quote("scope")),
            (
                "principal=fubar scopeClaimName=\"baz",
                E::Quote("scopeClaimName"),
            ),
            (
                "principal=a lifeSeconds=1.5",
                E::LifeSecondsNotInteger("1.5".into()),
            ),
            (
                "principal=a lifeSeconds=abc",
                E::LifeSecondsNotInteger("abc".into()),
            ),
            (
                "principal=a lifeSeconds=-",
                E::LifeSecondsNotInteger("-".into()),
            ),
            (
                "principal=a lifeSeconds=0",
                E::LifeSecondsOutOfRange("0".into()),
            ),
            (
                "principal=a lifeSeconds=-5",
                E::LifeSecondsOutOfRange("-5".into()),
            ),
            (
                "principal=a lifeSeconds=2147483648",
                E::LifeSecondsOutOfRange("2147483648".into()),
            ),
            (
                "principal=a lifeSeconds=99999999999999999999999",
                E::LifeSecondsOutOfRange("99999999999999999999999".into()),
            ),
            (
                "principal=a extension_=v",
                E::Extension(OAuthBearerError::InvalidExtensionName("".into())),
            ),
            (
                "principal=a extension_auth=v",
                E::Extension(OAuthBearerError::ReservedExtensionName),
            ),
            (
                "principal=a extension_a1=v",
                E::Extension(OAuthBearerError::InvalidExtensionName("a1".into())),
            ),
            (
                "principal=a extension_abc",
                E::Extension(OAuthBearerError::EmptyExtensionValue("abc".into())),
            ),
            (
                "principal=a extension_abc=\x01",
                E::Extension(OAuthBearerError::InvalidExtensionValue {
                    name: "abc".into(),
                    position: 0,
                }),
            ),
        ];
        for (config, want) in cases {
            assert_eq!(UnsecuredJwtConfig::parse(config), Err(want), "{config:?}");
        }
    }

    /// librdkafka's own unit tests (src/rdkafka_sasl_oauthbearer.c) expect
    /// these tokens at now = 1000 ms.
    #[test]
    fn librdkafka_unsecured_token_vectors() {
        let cases = [
            (
                "principal=fubar scopeClaimName=whatever",
                "eyJhbGciOiJub25lIn0.eyJzdWIiOiJmdWJhciIsImlhdCI6MS4wMDAsImV4cCI6MzYwMS4wMDB9.",
                3_601_000,
            ),
            (
                "principal=fubar scope=role1,role2 lifeSeconds=60",
                "eyJhbGciOiJub25lIn0.eyJzdWIiOiJmdWJhciIsImlhdCI6MS4wMDAsImV4cCI6NjEuMDAwLCJzY29wZSI6WyJyb2xlMSIsInJvbGUyIl19.",
                61_000,
            ),
            (
                "principal=fubar principalClaimName=azp scope=role1,role2 scopeClaimName=roles lifeSeconds=60",
                "eyJhbGciOiJub25lIn0.eyJhenAiOiJmdWJhciIsImlhdCI6MS4wMDAsImV4cCI6NjEuMDAwLCJyb2xlcyI6WyJyb2xlMSIsInJvbGUyIl19.",
                61_000,
            ),
        ];
        for (config, want, expires) in cases {
            let token = unsecured_jwt(&config.parse().unwrap(), 1000);
            assert_eq!(token.value.expose(), want, "{config}");
            assert_eq!(token.expires_at_unix_ms, expires);
            assert_eq!(token.principal, "fubar");
        }
    }

    #[test]
    fn unsecured_jwt_decodes_back() {
        let config: UnsecuredJwtConfig =
            "principal=alice scope=read,write lifeSeconds=600 extension_traceId=42"
                .parse()
                .unwrap();
        let token = unsecured_jwt(&config, 1_700_000_000_123);
        assert_eq!(token.expires_at_unix_ms, 1_700_000_600_123);
        assert_eq!(token.extensions["traceId"], "42");
        let value = token.value.expose();
        let parts: Vec<&str> = value.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[2], "", "an unsecured JWS has an empty signature");
        assert!(!value.contains('='), "no padding");
        let header: serde_json::Value =
            serde_json::from_slice(&BASE64URL.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header, serde_json::json!({"alg": "none"}));
        let claims: serde_json::Value =
            serde_json::from_slice(&BASE64URL.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["iat"].as_f64(), Some(1_700_000_000.123));
        assert_eq!(claims["exp"].as_f64(), Some(1_700_000_600.123));
        assert_eq!(claims["scope"], serde_json::json!(["read", "write"]));
        let message = initial_response(&token).unwrap();
        assert!(message.0.ends_with(b".\x01traceId=42\x01\x01"));
    }

    #[test]
    fn unsecured_jwt_escapes_what_json_needs() {
        // Constructed directly: the config parser refuses '"', but the
        // fields are public.
        let config = UnsecuredJwtConfig {
            principal: "a\"b\\c".into(),
            ..UnsecuredJwtConfig::parse("principal=x").unwrap()
        };
        let token = unsecured_jwt(&config, u64::MAX);
        assert_eq!(token.expires_at_unix_ms, u64::MAX);
        let claims = token.value.expose().split('.').nth(1).unwrap().to_string();
        let claims: serde_json::Value =
            serde_json::from_slice(&BASE64URL.decode(claims).unwrap()).unwrap();
        assert_eq!(claims["sub"], "a\"b\\c");
    }

    /// Splits an initial response back into (token, extensions) the way
    /// Kafka's broker does, to check the framing round-trips.
    fn parse_initial_response(message: &[u8]) -> Option<(String, Vec<(String, String)>)> {
        let text = std::str::from_utf8(message).ok()?;
        let body = text.strip_prefix("n,,\x01")?.strip_suffix("\x01\x01")?;
        let mut pairs = body.split('\x01');
        let auth = pairs.next()?.strip_prefix("auth=Bearer ")?.to_string();
        let extensions = pairs
            .map(|p| {
                let (k, v) = p.split_once('=')?;
                Some((k.to_string(), v.to_string()))
            })
            .collect::<Option<Vec<_>>>()?;
        Some((auth, extensions))
    }

    proptest! {
        #[test]
        fn the_server_error_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_server_answer(&bytes);
        }

        #[test]
        fn json_like_garbage_never_panics(text in r#"[{}\[\]":,a-z0-9 \\]{0,200}"#) {
            let _ = parse_server_error(text.as_bytes());
        }

        #[test]
        fn the_config_parser_never_panics(text in "\\PC{0,200}") {
            let _ = UnsecuredJwtConfig::parse(&text);
        }

        #[test]
        fn valid_extensions_round_trip(
            value in "[A-Za-z0-9._~+/-]{1,40}",
            extensions in proptest::collection::btree_map("[A-Za-z]{1,8}", "[\\x21-\\x7e \t\r\n]{1,20}", 0..5),
        ) {
            prop_assume!(!extensions.contains_key("auth"));
            let token = OAuthBearerToken {
                value: value.clone().into(),
                expires_at_unix_ms: 0,
                principal: String::new(),
                extensions: extensions.clone(),
            };
            let message = initial_response(&token).unwrap();
            let (auth, parsed) = parse_initial_response(&message.0).unwrap();
            prop_assert_eq!(auth, value);
            prop_assert_eq!(parsed, extensions.into_iter().collect::<Vec<_>>());
        }
    }
}
