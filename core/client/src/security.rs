//! What a secure consumer needs that only I/O can give, gathered once when
//! the consumer is created: certificate and key files (`ssl.*`), the
//! system's trust store when no CA is given, the wall clock certificates
//! and tokens are checked against, and the OS's randomness (through the
//! `ring` crypto provider). The core gets it all as a [`SecurityContext`].

use std::path::Path;
use std::sync::Arc;

use odradek_core::security::{
    SecretString, SecurityContext, SecurityProtocol, TlsConfig, TlsMaterial, TlsSetupError,
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
    let key = private_key(tls)?;
    // The config's validation pairs a certificate with a key.
    let identity = chain.zip(key);
    Ok(TlsMaterial { roots, identity })
}

/// The client's private key: PKCS#8, PKCS#1 or SEC1 PEM, or an encrypted
/// PKCS#8 key opened with `ssl.key.password`.
fn private_key(tls: &TlsConfig) -> Result<Option<PrivateKeyDer<'static>>, Error> {
    let (key, shown, text) = match (&tls.key_location, &tls.key_pem) {
        (Some(path), _) => {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|e| {
                invalid(
                    "ssl.key.location",
                    &shown,
                    &format!("a readable PEM file: {e}"),
                )
            })?;
            ("ssl.key.location", shown, SecretString::new(text))
        }
        (None, Some(pem)) => ("ssl.key.pem", "(redacted)".to_string(), pem.clone()),
        (None, None) => return Ok(None),
    };
    let text = text.expose();
    if text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(invalid(
            key,
            &shown,
            "a PKCS#8 key: legacy OpenSSL-encrypted keys are not supported \
             (convert with `openssl pkcs8 -topk8 -v2 aes-256-cbc`)",
        ));
    }
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        let Some(password) = &tls.key_password else {
            return Err(Error::Config(ConfigError {
                key: "ssl.key.password".into(),
                kind: ConfigErrorKind::Missing,
            }));
        };
        let (_, der) = pkcs8::der::pem::decode_vec(text.as_bytes())
            .map_err(|e| invalid(key, &shown, &format!("an encrypted PEM private key: {e}")))?;
        let encrypted = pkcs8::EncryptedPrivateKeyInfo::try_from(der.as_slice())
            .map_err(|e| invalid(key, &shown, &format!("an encrypted PKCS#8 key: {e}")))?;
        let decrypted = encrypted.decrypt(password.expose()).map_err(|_| {
            invalid(
                "ssl.key.password",
                "(redacted)",
                "the password the key was encrypted with",
            )
        })?;
        return Ok(Some(PrivateKeyDer::Pkcs8(
            decrypted.as_bytes().to_vec().into(),
        )));
    }
    if tls.key_password.is_some() {
        return Err(invalid(
            "ssl.key.password",
            "(redacted)",
            "unset: the private key is not encrypted",
        ));
    }
    PrivateKeyDer::from_pem_slice(text.as_bytes())
        .map(Some)
        .map_err(|e| {
            invalid(
                key,
                &shown,
                &format!("a PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"),
            )
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use pkcs8::der::pem::LineEnding;
    use pkcs8::pkcs5::pbes2;

    /// An rcgen key, and the same key encrypted with `password` as
    /// `openssl pkcs8 -topk8 -v2 aes-256-cbc` writes it.
    fn keys(password: &str) -> (Vec<u8>, String) {
        let der = rcgen::KeyPair::generate().unwrap().serialize_der();
        let params = pbes2::Parameters::pbkdf2_sha256_aes256cbc(2048, &[7; 16], &[9; 16]).unwrap();
        let encrypted = pkcs8::PrivateKeyInfo::try_from(der.as_slice())
            .unwrap()
            .encrypt_with_params(params, password)
            .unwrap();
        let pem = encrypted
            .to_pem("ENCRYPTED PRIVATE KEY", LineEnding::LF)
            .unwrap();
        (der, pem.to_string())
    }

    fn tls(pem: &str, password: Option<&str>) -> TlsConfig {
        let mut tls = TlsConfig::default();
        tls.key_pem = Some(SecretString::new(pem));
        tls.key_password = password.map(SecretString::new);
        tls
    }

    fn failing_key(tls: &TlsConfig) -> ConfigError {
        match private_key(tls) {
            Err(Error::Config(e)) => e,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_encrypted_pkcs8_key_opens_with_its_password_only() {
        let (der, pem) = keys("k3y-pass");
        let key = private_key(&tls(&pem, Some("k3y-pass"))).unwrap().unwrap();
        assert_eq!(key.secret_der(), der.as_slice());

        let wrong = failing_key(&tls(&pem, Some("guess")));
        assert_eq!(wrong.key, "ssl.key.password");
        assert!(!wrong.to_string().contains("guess"), "{wrong}");
        let missing = failing_key(&tls(&pem, None));
        assert_eq!(
            (missing.key.as_str(), missing.kind),
            ("ssl.key.password", ConfigErrorKind::Missing)
        );
    }

    #[test]
    fn a_password_for_a_plain_key_and_legacy_encryption_are_refused() {
        let der = rcgen::KeyPair::generate().unwrap().serialize_pem();
        assert!(private_key(&tls(&der, None)).unwrap().is_some());
        assert_eq!(failing_key(&tls(&der, Some("x"))).key, "ssl.key.password");
        let legacy = "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\
                      DEK-Info: AES-256-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        let e = failing_key(&tls(legacy, Some("x")));
        assert_eq!(e.key, "ssl.key.pem");
        assert!(e.to_string().contains("pkcs8 -topk8"), "{e}");
    }

    #[test]
    fn unreadable_files_name_their_setting() {
        let mut tls = TlsConfig::default();
        tls.ca_location = Some("/nonexistent/ca.pem".into());
        match material(&tls) {
            Err(Error::Config(e)) => assert_eq!(e.key, "ssl.ca.location"),
            other => panic!("{other:?}"),
        }
    }
}
