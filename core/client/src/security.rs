//! What a secure consumer needs that only I/O can give, gathered once when
//! the consumer is created: certificate and key files (`ssl.*`), the
//! system's trust store when no CA is given, the wall clock certificates
//! and tokens are checked against, and the OS's randomness (through the
//! `ring` crypto provider). The core gets it all as a [`SecurityContext`].

use std::path::Path;
use std::sync::Arc;

use odradek_core::security::{
    SecurityContext, SecurityProtocol, TlsConfig, TlsMaterial, TlsSetupError,
};
use odradek_core::{ConfigError, ConfigErrorKind, ConsumerConfig, Error};
use rustls::crypto::ring;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::time_provider::DefaultTimeProvider;

/// The security context `config` needs, or `None` for plaintext.
pub(crate) fn context(config: &ConsumerConfig) -> Result<Option<SecurityContext>, Error> {
    if config.security_protocol == SecurityProtocol::Plaintext {
        return Ok(None);
    }
    let tls = match config.security_protocol.uses_tls() {
        true => Some((&config.tls, material(&config.tls)?)),
        false => None,
    };
    let provider = Arc::new(ring::default_provider());
    SecurityContext::new(provider, Arc::new(DefaultTimeProvider), tls)
        .map(Some)
        .map_err(|e| setup_error(&config.tls, e))
}

fn setup_error(tls: &TlsConfig, error: TlsSetupError) -> Error {
    let key = match error {
        TlsSetupError::NoTrustRoots { .. } if tls.ca_pem.is_some() => "ssl.ca.pem",
        TlsSetupError::NoTrustRoots { .. } => "ssl.ca.location",
        _ if tls.key_pem.is_some() => "ssl.key.pem",
        _ => "ssl.key.location",
    };
    invalid(key, "(see expected)", &error.to_string())
}

fn invalid(key: &str, value: &str, expected: &str) -> Error {
    Error::Config(ConfigError {
        key: key.into(),
        kind: ConfigErrorKind::InvalidValue {
            value: value.into(),
            expected: expected.into(),
        },
    })
}

/// Reads the trust roots and the client identity the settings name.
fn material(tls: &TlsConfig) -> Result<TlsMaterial, Error> {
    let roots = match (&tls.ca_location, &tls.ca_pem) {
        (Some(path), _) => certificates_file("ssl.ca.location", path)?,
        (None, Some(pem)) => certificates_text("ssl.ca.pem", pem)?,
        (None, None) => system_roots()?,
    };
    let chain = match (&tls.certificate_location, &tls.certificate_pem) {
        (Some(path), _) => Some(certificates_file("ssl.certificate.location", path)?),
        (None, Some(pem)) => Some(certificates_text("ssl.certificate.pem", pem)?),
        (None, None) => None,
    };
    let key = match (&tls.key_location, &tls.key_pem) {
        (Some(path), _) => Some(PrivateKeyDer::from_pem_file(path).map_err(|e| {
            invalid(
                "ssl.key.location",
                &path.display().to_string(),
                &format!("a readable PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"),
            )
        })?),
        (None, Some(pem)) => Some(
            PrivateKeyDer::from_pem_slice(pem.expose().as_bytes()).map_err(|e| {
                invalid(
                    "ssl.key.pem",
                    "(redacted)",
                    &format!("a PEM private key: {e}"),
                )
            })?,
        ),
        (None, None) => None,
    };
    // The config's validation pairs a certificate with a key.
    let identity = chain.zip(key);
    Ok(TlsMaterial { roots, identity })
}

fn certificates_file(key: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let shown = path.display().to_string();
    let certs: Result<Vec<_>, _> = CertificateDer::pem_file_iter(path)
        .map_err(|e| invalid(key, &shown, &format!("a readable PEM file: {e}")))?
        .collect();
    let certs = certs.map_err(|e| invalid(key, &shown, &format!("PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(invalid(
            key,
            &shown,
            "a file with at least one PEM certificate",
        ));
    }
    Ok(certs)
}

fn certificates_text(key: &str, pem: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem.as_bytes()).collect();
    let certs = certs.map_err(|e| invalid(key, "(PEM)", &format!("PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(invalid(key, "(PEM)", "at least one PEM certificate"));
    }
    Ok(certs)
}

/// The operating system's trust store, for brokers with publicly trusted
/// certificates (managed clusters). Unreadable entries are skipped as long
/// as some load.
fn system_roots() -> Result<Vec<CertificateDer<'static>>, Error> {
    let found = rustls_native_certs::load_native_certs();
    if found.certs.is_empty() {
        let why = found
            .errors
            .first()
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        return Err(invalid(
            "ssl.ca.location",
            "(unset)",
            &format!("a CA file: the system trust store has no certificates{why}"),
        ));
    }
    Ok(found.certs)
}
