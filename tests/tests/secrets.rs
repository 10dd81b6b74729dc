//! No secret in any output: the configuration's `Debug`, every error a
//! failed login returns (`Display` and `Debug`), and every log line the
//! consumer writes at trace level while logins fail and succeed, with
//! passwords, a private key, AWS keys and OAUTHBEARER tokens configured.
//! One test in its own binary: it installs the process's log subscriber.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use odradek_core::{ConsumerConfig, TopicPartition};
use odradek_tests::secure::{self, Listener, SecureBroker};
use odradek_tests::suite::{BlockingConsumer, TestConsumer, build, config};

/// Every log line, as text.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn with(broker: &SecureBroker, listener: Listener, properties: &[(&str, &str)]) -> ConsumerConfig {
    let mut c = config(broker);
    c.set("bootstrap.servers", &broker.bootstrap_of(listener))
        .unwrap();
    for (k, v) in properties {
        c.set(k, v).unwrap_or_else(|e| panic!("{k}: {e}"));
    }
    c
}

/// Polls for 3 s (long enough for several failed logins), collecting the
/// errors' `Display` and `Debug`.
fn run(config: ConsumerConfig, shown: &mut String) -> usize {
    shown.push_str(&format!("{config:?}\n"));
    let consumer: BlockingConsumer = build(config);
    consumer
        .assign(&[TopicPartition::new("secrets", 0)])
        .unwrap();
    let mut errors = 0;
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        if let Err(e) = consumer.poll(Duration::from_millis(200)) {
            shown.push_str(&format!("{e}\n{e:?}\n"));
            errors += 1;
        }
    }
    consumer.close().unwrap();
    errors
}

#[test]
fn no_secret_reaches_debug_errors_or_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing_subscriber::filter::LevelFilter::TRACE)
        .with_writer(move || writer.clone())
        .init();
    let broker = SecureBroker::start().expect("secure broker");
    broker.create_topic("secrets", 1).expect("topic");
    let ca = broker.ca_pem().display().to_string();
    let key_pem = std::fs::read_to_string(broker.client_key_pem()).unwrap();
    let key_body: String = key_pem.lines().nth(1).unwrap().to_string();
    let wrong = "Wr0ng-Passw0rd-zz";
    let aws_secret = "wJalrXUtnFEMI-K7MDENG-zz";
    let aws_token = "FwoGZXIvYXdzE-zz";
    let mut shown = String::new();

    let failed = run(
        with(
            &broker,
            Listener::SaslSsl,
            &[
                ("security.protocol", "SASL_SSL"),
                ("ssl.ca.location", &ca),
                ("sasl.mechanism", "SCRAM-SHA-512"),
                ("sasl.username", secure::SCRAM_SHA_512_USER),
                ("sasl.password", wrong),
            ],
        ),
        &mut shown,
    );
    assert!(failed > 0, "the wrong SCRAM password was accepted");
    let jaas = format!(
        "org.apache.kafka.common.security.plain.PlainLoginModule required \
         username=\"{}\" password=\"{wrong}\";",
        secure::PLAIN_USER
    );
    let failed = run(
        with(
            &broker,
            Listener::SaslPlaintext,
            &[
                ("security.protocol", "SASL_PLAINTEXT"),
                ("sasl.mechanism", "PLAIN"),
                ("sasl.jaas.config", &jaas),
            ],
        ),
        &mut shown,
    );
    assert!(failed > 0, "the wrong PLAIN password was accepted");
    // Logins that succeed: a client key, the right SCRAM password and an
    // OAUTHBEARER token go over the wire; none may be logged.
    run(
        with(
            &broker,
            Listener::Mtls,
            &[
                ("security.protocol", "SSL"),
                ("ssl.ca.location", &ca),
                (
                    "ssl.certificate.location",
                    &broker.client_cert_pem().display().to_string(),
                ),
                ("ssl.key.pem", &key_pem),
            ],
        ),
        &mut shown,
    );
    run(
        with(
            &broker,
            Listener::SaslPlaintext,
            &[
                ("security.protocol", "SASL_PLAINTEXT"),
                ("sasl.mechanism", "SCRAM-SHA-256"),
                ("sasl.username", secure::SCRAM_SHA_256_USER),
                ("sasl.password", secure::SCRAM_SHA_256_PASSWORD),
            ],
        ),
        &mut shown,
    );
    run(
        with(
            &broker,
            Listener::SaslPlaintext,
            &[
                ("security.protocol", "SASL_PLAINTEXT"),
                ("sasl.mechanism", "OAUTHBEARER"),
                (
                    "sasl.oauthbearer.config",
                    "principal=odradek-oauth lifeSeconds=600",
                ),
            ],
        ),
        &mut shown,
    );
    // AWS_MSK_IAM (crabka does not offer it: the login fails, typed).
    let failed = run(
        with(
            &broker,
            Listener::SaslPlaintext,
            &[
                ("security.protocol", "SASL_PLAINTEXT"),
                ("sasl.mechanism", "AWS_MSK_IAM"),
                ("sasl.aws.region", "us-east-1"),
                ("sasl.aws.access.key.id", "AKIAIOSFODNN7EXAMPLE"),
                ("sasl.aws.secret.access.key", aws_secret),
                ("sasl.aws.session.token", aws_token),
            ],
        ),
        &mut shown,
    );
    assert!(failed > 0, "crabka has no AWS_MSK_IAM");

    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(
        logs.contains("SASL") || logs.contains("authentication"),
        "the failed logins were not logged at all:\n{logs}"
    );
    let everything = format!("{shown}\n{logs}");
    for secret in [
        wrong,
        secure::SCRAM_SHA_256_PASSWORD,
        key_body.as_str(),
        aws_secret,
        aws_token,
        // An OAUTHBEARER token: base64url of `{"alg":"none"...`.
        "eyJhbGciOiJub25lIn0",
        "auth=Bearer",
    ] {
        assert!(
            !everything.contains(secret),
            "{secret:?} was shown:\n{everything}"
        );
    }
}
