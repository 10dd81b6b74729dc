//! A SCRAM server written from RFC 5802, for the tests: it stores one
//! user's salted credentials, challenges a client-first message and checks
//! the client's proof.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use odradek_core::sasl::ScramMechanism;
use ring::{digest, hmac, pbkdf2};

/// A SCRAM server holding one user's stored credentials.
pub struct Server {
    pub mechanism: ScramMechanism,
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub nonce_suffix: String,
}

impl Server {
    pub fn new(mechanism: ScramMechanism, password: &[u8], iterations: u32) -> Server {
        let (pbkdf, mac, hash) = algorithms(mechanism);
        let salt = b"odradek-test-salt".to_vec();
        let mut salted = vec![0; hash.output_len()];
        pbkdf2::derive(
            pbkdf,
            std::num::NonZeroU32::new(iterations).unwrap(),
            &salt,
            password,
            &mut salted,
        );
        let salted = hmac::Key::new(mac, &salted);
        let client_key = hmac::sign(&salted, b"Client Key");
        Server {
            mechanism,
            salt,
            iterations,
            stored_key: digest::digest(hash, client_key.as_ref()).as_ref().to_vec(),
            server_key: hmac::sign(&salted, b"Server Key").as_ref().to_vec(),
            nonce_suffix: "srv%Nonce$1".into(),
        }
    }

    /// The challenge for a client-first message; returns it and the
    /// client-first-bare part.
    pub fn first(&self, client_first: &[u8]) -> (String, String) {
        let text = std::str::from_utf8(client_first).unwrap();
        let bare = text.strip_prefix("n,,").expect("no channel binding");
        let nonce = bare.split(",r=").nth(1).unwrap();
        let challenge = format!(
            "r={nonce}{},s={},i={}",
            self.nonce_suffix,
            BASE64.encode(&self.salt),
            self.iterations
        );
        (challenge, bare.to_string())
    }

    /// Checks the client's proof; returns the server-final message.
    pub fn last(&self, bare: &str, challenge: &str, client_final: &[u8]) -> String {
        let (_, mac, hash) = algorithms(self.mechanism);
        let text = std::str::from_utf8(client_final).unwrap();
        let (without_proof, proof) = text.rsplit_once(",p=").unwrap();
        let auth_message = format!("{bare},{challenge},{without_proof}");
        let signature = hmac::sign(
            &hmac::Key::new(mac, &self.stored_key),
            auth_message.as_bytes(),
        );
        let client_key: Vec<u8> = BASE64
            .decode(proof)
            .unwrap()
            .iter()
            .zip(signature.as_ref())
            .map(|(p, s)| p ^ s)
            .collect();
        if digest::digest(hash, &client_key).as_ref() != self.stored_key.as_slice() {
            return "e=invalid-proof".into();
        }
        let server_signature = hmac::sign(
            &hmac::Key::new(mac, &self.server_key),
            auth_message.as_bytes(),
        );
        format!("v={}", BASE64.encode(server_signature))
    }
}

pub fn algorithms(
    mechanism: ScramMechanism,
) -> (
    pbkdf2::Algorithm,
    hmac::Algorithm,
    &'static digest::Algorithm,
) {
    match mechanism {
        ScramMechanism::Sha256 => (
            pbkdf2::PBKDF2_HMAC_SHA256,
            hmac::HMAC_SHA256,
            &digest::SHA256,
        ),
        ScramMechanism::Sha512 => (
            pbkdf2::PBKDF2_HMAC_SHA512,
            hmac::HMAC_SHA512,
            &digest::SHA512,
        ),
    }
}
