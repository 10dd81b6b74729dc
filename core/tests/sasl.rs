//! SCRAM against a server written here from RFC 5802 (the RFC 7677 example
//! itself is a unit test in `core/src/sasl/scram.rs`): both hashes, the
//! server checking the client's proof, and every way a server message can
//! be wrong or hostile.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use odradek_core::sasl::scram::{MAX_ITERATIONS, MIN_ITERATIONS};
use odradek_core::sasl::{ScramClient, ScramError, ScramMechanism};
use proptest::prelude::*;
use ring::hmac;

#[path = "support/scram_server.rs"]
mod scram_server;
use scram_server::{Server, algorithms};

const NONCE: [u8; 24] = [0x5a; 24];

fn client(mechanism: ScramMechanism, password: &[u8]) -> ScramClient {
    ScramClient::new(mechanism, "odradek", password, &NONCE).unwrap()
}

/// Runs a whole exchange; the result of the client's last step.
fn login(mechanism: ScramMechanism, password: &[u8], server: &Server) -> Result<(), ScramError> {
    let mut client = client(mechanism, password);
    let (challenge, bare) = server.first(&client.client_first()?);
    let client_final = client.server_first(challenge.as_bytes())?;
    client.server_final(server.last(&bare, &challenge, &client_final).as_bytes())?;
    assert!(client.is_done());
    Ok(())
}

/// The client's answer to a scripted challenge.
fn answer(challenge: &[u8]) -> Result<Vec<u8>, ScramError> {
    let mut client = client(ScramMechanism::Sha256, b"pw");
    client.client_first()?;
    client.server_first(challenge)
}

fn our_nonce() -> String {
    BASE64.encode(NONCE)
}

#[test]
fn both_mechanisms_log_in_at_the_iteration_bounds() {
    for mechanism in [ScramMechanism::Sha256, ScramMechanism::Sha512] {
        for iterations in [MIN_ITERATIONS, MAX_ITERATIONS] {
            let server = Server::new(mechanism, b"correct horse", iterations);
            login(mechanism, b"correct horse", &server)
                .unwrap_or_else(|e| panic!("{mechanism} at {iterations}: {e}"));
        }
    }
}

#[test]
fn a_wrong_password_is_refused_by_the_server() {
    let server = Server::new(ScramMechanism::Sha512, b"right", MIN_ITERATIONS);
    assert_eq!(
        login(ScramMechanism::Sha512, b"wrong", &server),
        Err(ScramError::Refused("invalid-proof".into()))
    );
}

#[test]
fn a_server_that_does_not_know_the_password_is_caught() {
    // A forged server: it accepts any proof and signs with a key derived
    // from another password.
    let mut client = client(ScramMechanism::Sha256, b"right");
    let forger = Server::new(ScramMechanism::Sha256, b"guess", MIN_ITERATIONS);
    let (challenge, bare) = forger.first(&client.client_first().unwrap());
    let client_final = client.server_first(challenge.as_bytes()).unwrap();
    let (_, mac, _) = algorithms(ScramMechanism::Sha256);
    let (without_proof, _) = std::str::from_utf8(&client_final)
        .unwrap()
        .rsplit_once(",p=")
        .unwrap();
    let auth_message = format!("{bare},{challenge},{without_proof}");
    let forged = hmac::sign(
        &hmac::Key::new(mac, &forger.server_key),
        auth_message.as_bytes(),
    );
    assert_eq!(
        client.server_final(format!("v={}", BASE64.encode(forged)).as_bytes()),
        Err(ScramError::BadServerSignature)
    );
    assert!(!client.is_done());
    // The exchange is over: nothing more is accepted.
    assert!(matches!(
        client.server_final(b"v=AAAA"),
        Err(ScramError::OutOfOrder(_))
    ));
}

#[test]
fn the_server_nonce_must_extend_ours() {
    let salt = BASE64.encode(b"salt");
    for nonce in [
        "someone-elses-nonce".to_string(),
        our_nonce(),                                 // not extended
        format!("x{}", our_nonce()),                 // ours, but not as a prefix
        our_nonce()[..our_nonce().len() - 1].into(), // a prefix of ours
    ] {
        assert_eq!(
            answer(format!("r={nonce},s={salt},i=4096").as_bytes()),
            Err(ScramError::NonceMismatch),
            "{nonce}"
        );
    }
}

#[test]
fn iteration_counts_outside_kafkas_range_are_refused() {
    let salt = BASE64.encode(b"salt");
    for iterations in [0, 1, MIN_ITERATIONS - 1, MAX_ITERATIONS + 1, u32::MAX] {
        assert_eq!(
            answer(format!("r={}x,s={salt},i={iterations}", our_nonce()).as_bytes()),
            Err(ScramError::Iterations { iterations }),
        );
    }
}

#[test]
fn malformed_challenges_are_typed_errors() {
    let n = our_nonce();
    let salt = BASE64.encode(b"salt");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (vec![0xff, 0xfe], "not UTF-8"),
        (b"".to_vec(), "nonce (r=)"),
        (format!("s={salt},r={n}x,i=4096").into_bytes(), "nonce (r=)"),
        (format!("r={n}x,i=4096").into_bytes(), "salt (s=)"),
        (
            format!("r={n}x,s={salt}").into_bytes(),
            "iteration count (i=)",
        ),
        (format!("r={n}x,s=%%%,i=4096").into_bytes(), "not base64"),
        (format!("r={n}x,s=,i=4096").into_bytes(), "empty"),
        (
            format!("r={n}x,s={salt},i=lots").into_bytes(),
            "not a number",
        ),
        (format!("r={n}x,s={salt},i=-1").into_bytes(), "not a number"),
        (
            format!("m=must-know,r={n}x,s={salt},i=4096").into_bytes(),
            "extension",
        ),
        (
            format!("r={n}\u{1}x,s={salt},i=4096").into_bytes(),
            "not printable",
        ),
    ];
    for (challenge, reason) in cases {
        match answer(&challenge) {
            Err(ScramError::Malformed {
                message,
                reason: got,
            }) => {
                assert_eq!(message, "server-first");
                assert!(got.contains(reason), "{challenge:?}: {got}");
            }
            other => panic!("{challenge:?}: {other:?}"),
        }
    }
    // Extensions after the iteration count are allowed.
    answer(format!("r={n}x,s={salt},i=4096,x=ext").as_bytes()).unwrap();
}

#[test]
fn server_errors_are_reported_as_refusals() {
    assert_eq!(
        answer(b"e=unknown-user"),
        Err(ScramError::Refused("unknown-user".into()))
    );
    let server = Server::new(ScramMechanism::Sha256, b"pw", MIN_ITERATIONS);
    let mut client = client(ScramMechanism::Sha256, b"pw");
    let (challenge, _) = server.first(&client.client_first().unwrap());
    client.server_first(challenge.as_bytes()).unwrap();
    assert_eq!(
        client.server_final(b"e=other-error"),
        Err(ScramError::Refused("other-error".into()))
    );
}

#[test]
fn malformed_server_final_messages_are_typed_errors() {
    for (message, reason) in [
        (&b"\xff"[..], "not UTF-8"),
        (b"x=1", "neither a signature"),
        (b"v=%%%", "not base64"),
    ] {
        let server = Server::new(ScramMechanism::Sha256, b"pw", MIN_ITERATIONS);
        let mut client = client(ScramMechanism::Sha256, b"pw");
        let (challenge, _) = server.first(&client.client_first().unwrap());
        client.server_first(challenge.as_bytes()).unwrap();
        match client.server_final(message) {
            Err(ScramError::Malformed {
                message: "server-final",
                reason: got,
            }) => assert!(got.contains(reason), "{got}"),
            other => panic!("{message:?}: {other:?}"),
        }
    }
    // A well-formed but wrong signature (too short, too).
    let server = Server::new(ScramMechanism::Sha256, b"pw", MIN_ITERATIONS);
    let mut client = client(ScramMechanism::Sha256, b"pw");
    let (challenge, _) = server.first(&client.client_first().unwrap());
    client.server_first(challenge.as_bytes()).unwrap();
    assert_eq!(
        client.server_final(b"v=AAAA"),
        Err(ScramError::BadServerSignature)
    );
}

#[test]
fn steps_out_of_order_are_refused() {
    let mut c = client(ScramMechanism::Sha256, b"pw");
    assert!(matches!(
        c.server_first(b"r=x"),
        Err(ScramError::OutOfOrder(_))
    ));
    let mut c = client(ScramMechanism::Sha256, b"pw");
    assert!(matches!(
        c.server_final(b"v=x"),
        Err(ScramError::OutOfOrder(_))
    ));
    let mut c = client(ScramMechanism::Sha256, b"pw");
    c.client_first().unwrap();
    assert!(matches!(c.client_first(), Err(ScramError::OutOfOrder(_))));
}

#[test]
fn errors_never_carry_the_password() {
    let password = b"do-not-print-me";
    let server = Server::new(ScramMechanism::Sha512, b"other", MIN_ITERATIONS);
    let error = login(ScramMechanism::Sha512, password, &server).unwrap_err();
    for text in [format!("{error}"), format!("{error:?}")] {
        assert!(!text.contains("do-not-print-me"), "{text}");
    }
}

proptest! {
    /// Any bytes from the server: a typed result, never a panic.
    #[test]
    fn arbitrary_server_messages_never_panic(first in proptest::collection::vec(any::<u8>(), 0..200),
                                             last in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut client = client(ScramMechanism::Sha256, b"pw");
        client.client_first().unwrap();
        let mut challenge = format!("r={}", our_nonce()).into_bytes();
        challenge.extend_from_slice(&first);
        if client.server_first(&first).is_ok() || client.server_first(&challenge).is_ok() {
            let _ = client.server_final(&last);
        }
    }
}
