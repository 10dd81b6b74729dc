//! AWS_MSK_IAM against kafka-python's own implementation
//! (`kafka/net/sasl/msk.py`, the version pinned by
//! scripts/install-python-clients.sh): for the same credentials, host,
//! region and signing time, Odradek's client message must be the same
//! bytes. `tests/python/msk_payload.py` runs kafka-python's signer with
//! its clock fixed to the given time.
//!
//! The comparison is byte for byte, not JSON-equal: kafka-python's key
//! order, compact separators and ASCII-only escaping are what Odradek
//! sends. (The Java aws-msk-iam-auth library serializes a hash map, so its
//! key order is unspecified and cannot be matched byte for byte; MSK
//! brokers parse the object, so order does not matter on the wire.)
//! kafka-python always says `user-agent: kafka-python`, so that is the
//! agent given here.

use odradek_core::sasl::{AwsCredentials, SecretString, aws_msk_iam_payload};
use odradek_tests::{python_script, run_python};

struct Case {
    what: &'static str,
    host: &'static str,
    region: &'static str,
    access_key: &'static str,
    secret_key: &'static str,
    token: Option<&'static str>,
    unix_time: u64,
}

const CASES: &[Case] = &[
    Case {
        what: "kafka-python's unit-test inputs, permanent credentials",
        host: "localhost",
        region: "us-east-1",
        access_key: "XXXXXXXXXXXXXXXXXXXX",
        secret_key: "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
        token: None,
        unix_time: 1_629_321_911,
    },
    Case {
        what: "kafka-python's unit-test inputs, temporary credentials",
        host: "localhost",
        region: "us-east-1",
        access_key: "XXXXXXXXXXXXXXXXXXXX",
        secret_key: "XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
        token: Some("XXXXX"),
        unix_time: 1_629_321_911,
    },
    Case {
        what: "an MSK broker with an STS-style session token",
        host: "b-1.demo.abc123.c2.kafka.us-east-1.amazonaws.com",
        region: "us-east-1",
        access_key: "ASIAEXAMPLEEXAMPLE01",
        secret_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        token: Some(
            "IQoJb3JpZ2luX2VjEXAMPLE//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+ExAmPlE/tOkEn+with=padding==",
        ),
        unix_time: 1_700_000_000,
    },
    Case {
        what: "permanent credentials on 29 February 2000",
        host: "b-3.cluster.xyz789.c4.kafka.eu-west-3.amazonaws.com",
        region: "eu-west-3",
        access_key: "AKIDEXAMPLE",
        secret_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        token: None,
        unix_time: 951_868_799,
    },
    Case {
        what: "characters that need URI and JSON escaping",
        host: "Broker.Example:9098",
        region: "ap-southeast-2",
        access_key: "AK ID/é",
        secret_key: "s\u{e9}cr\u{e8}t \"quoted\" \\ back",
        token: Some("tok en/\"q\"\\é\u{1F600}~+=&"),
        unix_time: 0,
    },
];

fn kafka_python_payload(case: &Case) -> Vec<u8> {
    let unix_time = case.unix_time.to_string();
    let mut args = vec![
        "--host",
        case.host,
        "--region",
        case.region,
        "--access-key",
        case.access_key,
        "--secret-key",
        case.secret_key,
        "--unix-time",
        &unix_time,
    ];
    if let Some(token) = case.token {
        args.extend(["--token", token]);
    }
    let out = run_python(&python_script("msk_payload.py"), &args)
        .unwrap_or_else(|e| panic!("{}: {e}", case.what));
    out.stdout
}

#[test]
fn payload_is_byte_identical_to_kafka_python() {
    for case in CASES {
        let credentials = AwsCredentials::new(
            case.access_key,
            case.secret_key,
            case.token.map(SecretString::from),
        );
        let ours = aws_msk_iam_payload(
            case.host,
            case.region,
            &credentials,
            case.unix_time,
            "kafka-python",
        )
        .unwrap_or_else(|e| panic!("{}: {e}", case.what));
        let theirs = kafka_python_payload(case);
        assert_eq!(
            String::from_utf8_lossy(&ours.0),
            String::from_utf8_lossy(&theirs),
            "{}",
            case.what
        );
        assert_eq!(&ours.0[..], &theirs[..], "{}", case.what);
    }
}
