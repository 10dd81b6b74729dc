#!/usr/bin/env python3
"""Ask one listener for Metadata with confluent-kafka and report what happened.

Used by Odradek's harness self-test (tests/tests/secure_broker.rs) to prove
what each listener of the secure crabka broker accepts and refuses: a client
with the right settings gets Metadata, one with a wrong CA, no client
certificate or a wrong password does not, and the error librdkafka reports
says why.

Usage:
    secure_probe.py --bootstrap 127.0.0.1:PORT [--timeout-s T]
                    [--config KEY=VALUE ...]

--config adds librdkafka settings (security.protocol, ssl.ca.location,
sasl.mechanisms, ...). On stdout a single JSON object is printed:

    {"connected": bool, "brokers": ["host:port", ...], "topics": [names],
     "errors": ["NAME: text", ...], "logs": ["FAC: text", ...]}

"errors" holds what the client's error callback reported and, if Metadata
failed, the exception; "logs" the distinct warnings and errors librdkafka
logged (they carry the precise reason, e.g. "certificate verify failed" or
"SASL authentication error"), at most 20. The exit status is 0 whenever the
summary was printed.
"""

import argparse
import json
import logging
import sys

from confluent_kafka import KafkaException, Producer


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--timeout-s", type=float, default=10.0)
    ap.add_argument("--config", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()

    errors = []
    logs = []

    def on_error(err):
        text = f"{err.name()}: {err.str()}"
        if len(errors) < 20 and text not in errors:
            errors.append(text)

    class Collect(logging.Handler):
        def emit(self, record):
            # librdkafka's lines start with a timestamp; keep what follows
            # the facility so repeats collapse.
            text = record.getMessage()
            if len(logs) < 20 and text not in logs:
                logs.append(text)

    logger = logging.getLogger("odradek-secure-probe")
    logger.propagate = False
    logger.addHandler(Collect())
    logger.setLevel(logging.WARNING)

    conf = {
        "bootstrap.servers": args.bootstrap,
        "client.id": "odradek-tests-secure-probe",
        "error_cb": on_error,
        "logger": logger,
        # Fail fast: one attempt per broker at a time, short backoff.
        "reconnect.backoff.ms": 100,
        "reconnect.backoff.max.ms": 500,
    }
    for item in args.config:
        key, sep, value = item.partition("=")
        if not sep:
            ap.error(f"--config {item!r} is not KEY=VALUE")
        conf[key] = value

    summary = {"connected": False, "brokers": [], "topics": [], "errors": errors, "logs": logs}
    producer = None
    try:
        producer = Producer(conf)
        meta = producer.list_topics(timeout=args.timeout_s)
        summary["connected"] = True
        summary["brokers"] = sorted(f"{b.host}:{b.port}" for b in meta.brokers.values())
        summary["topics"] = sorted(meta.topics)
        # Serve callbacks that arrived with the answer.
        producer.poll(0)
    except KafkaException as e:
        err = e.args[0]
        errors.append(f"metadata: {err.name()}: {err.str()}")
        if producer is not None:
            # Error callbacks and logs are served by poll().
            producer.poll(0.5)
    print(json.dumps(summary))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
