//! AWS Signature Version 4, the parts a SASL mechanism needs: the canonical
//! request, the string to sign, the signing key and the signature, with
//! HMAC-SHA256 from `ring`. No clock: the signing time is given as unix
//! seconds and formatted here (UTC, no calendar crate).
//!
//! The steps follow AWS's description of SigV4 and are checked against
//! AWS's published test suite in `core/tests/sigv4.rs`:
//!
//! 1. [`canonical_request`] from the method, the [`uri_encode`]d path, the
//!    [`canonical_query_string`], the [`canonical_headers`] and the hex
//!    SHA-256 of the payload ([`hex_sha256`]);
//! 2. [`string_to_sign`] from the time, the [`credential_scope`] and the
//!    hash of the canonical request;
//! 3. [`signing_key`] from the secret key, date, region and service;
//! 4. [`signature`]: the hex HMAC of the string to sign under that key.
//!
//! ```
//! use odradek_core::sasl::sigv4::{self, AmzDateTime};
//! let time = AmzDateTime::from_unix_secs(1_440_938_160).unwrap();
//! assert_eq!(time.date(), "20150830");
//! assert_eq!(time.date_time(), "20150830T123600Z");
//! ```

use ring::{digest, hmac};

/// The algorithm name SigV4 puts in the string to sign and the credential.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The hex SHA-256 of the empty payload.
pub const EMPTY_PAYLOAD_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The first unix second SigV4's four-digit year cannot write (10000-01-01).
const YEAR_10000: u64 = 253_402_300_800;

/// Why a SigV4 step failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// The signing time does not fit SigV4's `YYYYMMDD` date.
    #[error("unix time {0} s is past the year 9999 and cannot be written as a SigV4 date")]
    TimeOutOfRange(u64),
}

/// A signing time in SigV4's two forms: `YYYYMMDD` (in the credential
/// scope) and `YYYYMMDDTHHMMSSZ` (`X-Amz-Date`), both UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmzDateTime {
    date_time: String,
}

impl AmzDateTime {
    /// The time `unix_secs` seconds after 1970-01-01T00:00:00Z.
    pub fn from_unix_secs(unix_secs: u64) -> Result<Self, SigV4Error> {
        if unix_secs >= YEAR_10000 {
            return Err(SigV4Error::TimeOutOfRange(unix_secs));
        }
        let (year, month, day) = civil_from_days(unix_secs / 86_400);
        let secs_of_day = unix_secs % 86_400;
        Ok(AmzDateTime {
            date_time: format!(
                "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
                secs_of_day / 3600,
                secs_of_day / 60 % 60,
                secs_of_day % 60
            ),
        })
    }

    /// `YYYYMMDD`.
    pub fn date(&self) -> &str {
        &self.date_time[..8]
    }

    /// `YYYYMMDDTHHMMSSZ`.
    pub fn date_time(&self) -> &str {
        &self.date_time
    }
}

/// The proleptic Gregorian (year, month, day) of a day count since
/// 1970-01-01, by Howard Hinnant's days-to-civil method: shift the epoch to
/// 0000-03-01 so the leap day ends each year, then split 400-year eras,
/// centuries and 4-year cycles arithmetically.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Days from 0000-03-01 to 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months counted from March: 0 = March, ..., 11 = February.
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Lowercase hex SHA-256 of `data`.
pub fn hex_sha256(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

/// SigV4's URI encoding: every byte of the UTF-8 text except the
/// unreserved `A-Z a-z 0-9 - . _ ~` becomes `%XX` (uppercase hex); `/`
/// stays as it is only when `keep_slash` (paths), and is `%2F` in query
/// names and values.
pub fn uri_encode(input: &str, keep_slash: bool) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(input.len());
    for &b in input.as_bytes() {
        let unreserved = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
        if unreserved || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(DIGITS[usize::from(b >> 4)]));
            out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
        }
    }
    out
}

/// The canonical query string: each name and value [`uri_encode`]d, the
/// pairs sorted by encoded name, then encoded value, joined by `&`.
/// `params` are the raw (not yet encoded) names and values.
pub fn canonical_query_string(params: &[(&str, &str)]) -> String {
    let mut encoded: Vec<(String, String)> = params
        .iter()
        .map(|(name, value)| (uri_encode(name, false), uri_encode(value, false)))
        .collect();
    encoded.sort();
    let pairs: Vec<String> = encoded
        .into_iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    pairs.join("&")
}

/// The canonical headers block and the signed-headers list, from raw
/// headers in request order: names lowercased, values trimmed with runs of
/// spaces inside collapsed to one, repeated names joined by `,` in request
/// order, sorted by name. The block is one `name:value\n` line per name;
/// the list is the names joined by `;`.
pub fn canonical_headers(headers: &[(&str, &str)]) -> (String, String) {
    let mut merged: Vec<(String, String)> = Vec::new();
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        let value = value
            .split(' ')
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        match merged.iter_mut().find(|(n, _)| *n == name) {
            Some((_, joined)) => {
                joined.push(',');
                joined.push_str(&value);
            }
            None => merged.push((name, value)),
        }
    }
    // Stable, so equal names keep their order (there are none after merging).
    merged.sort_by(|a, b| a.0.cmp(&b.0));
    let mut block = String::new();
    for (name, value) in &merged {
        block.push_str(name);
        block.push(':');
        block.push_str(value);
        block.push('\n');
    }
    let signed: Vec<&str> = merged.iter().map(|(name, _)| name.as_str()).collect();
    (block, signed.join(";"))
}

/// The canonical request: method, canonical URI, canonical query string,
/// canonical headers block (ending in `\n`), signed headers and payload
/// hash, each on its own line.
pub fn canonical_request(
    method: &str,
    canonical_uri: &str,
    canonical_query: &str,
    canonical_headers: &str,
    signed_headers: &str,
    payload_sha256_hex: &str,
) -> String {
    format!(
        "{method}\n{canonical_uri}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{payload_sha256_hex}"
    )
}

/// `date/region/service/aws4_request`, with `date` as `YYYYMMDD`.
pub fn credential_scope(date: &str, region: &str, service: &str) -> String {
    format!("{date}/{region}/{service}/aws4_request")
}

/// The string to sign: the algorithm, the `X-Amz-Date` time, the credential
/// scope and the hex SHA-256 of the canonical request, one per line.
pub fn string_to_sign(amz_date_time: &str, scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date_time}\n{scope}\n{}",
        hex_sha256(canonical_request.as_bytes())
    )
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data);
    let mut out = [0; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

/// The signing key: HMAC-SHA256 chained from `"AWS4" + secret` through the
/// `YYYYMMDD` date, the region, the service and `aws4_request`. It is as
/// secret as the secret key for that day, region and service.
pub fn signing_key(secret_access_key: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let mut k_secret = Vec::with_capacity(4 + secret_access_key.len());
    k_secret.extend_from_slice(b"AWS4");
    k_secret.extend_from_slice(secret_access_key.as_bytes());
    let k_date = hmac_sha256(&k_secret, date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    hmac_sha256(&k_service, b"aws4_request")
}

/// The signature: lowercase hex HMAC-SHA256 of the string to sign under
/// the signing key.
pub fn signature(signing_key: &[u8; 32], string_to_sign: &str) -> String {
    hex(&hmac_sha256(signing_key, string_to_sign.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_from_unix_seconds() {
        let cases = [
            (0, "19700101T000000Z"),
            (951_782_400, "20000229T000000Z"),
            (951_868_799, "20000229T235959Z"),
            (1_440_938_160, "20150830T123600Z"),
            (1_629_321_911, "20210818T212511Z"),
            (4_107_542_400, "21000301T000000Z"),
            (YEAR_10000 - 1, "99991231T235959Z"),
        ];
        for (secs, want) in cases {
            let time = AmzDateTime::from_unix_secs(secs).unwrap();
            assert_eq!(time.date_time(), want, "{secs}");
            assert_eq!(time.date(), &want[..8]);
        }
        assert_eq!(
            AmzDateTime::from_unix_secs(YEAR_10000),
            Err(SigV4Error::TimeOutOfRange(YEAR_10000))
        );
    }

    #[test]
    fn every_day_follows_the_previous_one() {
        // Walk 1970..2400 day by day: the date must advance by exactly one
        // calendar day, with February's length from the Gregorian rule.
        let mut prev = civil_from_days(0);
        assert_eq!(prev, (1970, 1, 1));
        for days in 1..(430 * 366) {
            let (y, m, d) = civil_from_days(days);
            let (py, pm, pd) = prev;
            let leap = (py % 4 == 0 && py % 100 != 0) || py % 400 == 0;
            let month_len = match pm {
                2 if leap => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            let want = if pd < month_len {
                (py, pm, pd + 1)
            } else if pm < 12 {
                (py, pm + 1, 1)
            } else {
                (py + 1, 1, 1)
            };
            assert_eq!((y, m, d), want, "day {days}");
            prev = (y, m, d);
        }
    }

    #[test]
    fn uri_encoding() {
        assert_eq!(uri_encode("a-Z_0.9~", false), "a-Z_0.9~");
        assert_eq!(uri_encode("a/b c+d=e", false), "a%2Fb%20c%2Bd%3De");
        assert_eq!(uri_encode("/a b/", true), "/a%20b/");
        assert_eq!(uri_encode("\u{1234}", false), "%E1%88%B4");
        assert_eq!(
            uri_encode("kafka-cluster:Connect", false),
            "kafka-cluster%3AConnect"
        );
    }

    #[test]
    fn headers_are_lowercased_trimmed_merged_and_sorted() {
        let (block, signed) =
            canonical_headers(&[("X-B", "  two   words "), ("Host", "h"), ("x-b", "again")]);
        assert_eq!(block, "host:h\nx-b:two words,again\n");
        assert_eq!(signed, "host;x-b");
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex(&[0x00, 0xab, 0x0f, 0xf0]), "00ab0ff0");
        assert_eq!(hex_sha256(b""), EMPTY_PAYLOAD_SHA256);
    }
}
