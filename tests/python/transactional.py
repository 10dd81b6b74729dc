#!/usr/bin/env python3
"""Write one committed and one open transaction with confluent-kafka.

Used by Odradek's read_committed integration tests: an independent,
battle-tested transactional producer (librdkafka) writes the records and the
commit markers; the test decides when the open transaction ends.

Usage:
    transactional.py --bootstrap 127.0.0.1:PORT --topic T --partitions P
                     --committed N --open M [--transactional-id ID]
                     [--timeout-s T]

Steps, each reported as one JSON line on stdout:

1. init_transactions(), then a first transaction with N records, committed:
       {"event": "committed", "partitions": {"0": [offsets...], ...}}
2. A second transaction with M records, produced and flushed (so they are
   in the log) but left open:
       {"event": "open", "partitions": {"0": [offsets...], ...}}
3. The script then waits for one line on stdin: "commit" commits the second
   transaction, "abort" aborts it; end of input aborts it. Then:
       {"event": "commit"} or {"event": "abort"}

Record i of the first transaction goes to partition i % P with key
f"c-{i}" and value f"committed-{i}"; record i of the second one with key
f"o-{i}" and value f"open-{i}". Offsets are those of the delivery reports.
Exit status 0 only if every step succeeded.
"""

import argparse
import json
import sys

from confluent_kafka import Producer


def emit(obj):
    print(json.dumps(obj))
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--partitions", type=int, default=1)
    ap.add_argument("--committed", type=int, required=True)
    ap.add_argument("--open", type=int, required=True)
    ap.add_argument("--transactional-id", default="odradek-tests-txn")
    ap.add_argument("--timeout-s", type=float, default=60.0)
    args = ap.parse_args()

    producer = Producer({
        "bootstrap.servers": args.bootstrap,
        "client.id": "odradek-tests-transactional",
        "transactional.id": args.transactional_id,
        "linger.ms": 5,
        # Long enough that the broker never aborts the open transaction on
        # its own while the test looks at it.
        "transaction.timeout.ms": 300000,
    })
    timeout = args.timeout_s

    offsets = {}
    failures = []

    def on_delivery(err, msg):
        if err is not None:
            failures.append(str(err))
            return
        offsets.setdefault(str(msg.partition()), []).append(msg.offset())

    def transaction(prefix, key_prefix, count):
        offsets.clear()
        producer.begin_transaction()
        for i in range(count):
            producer.produce(
                args.topic,
                key=f"{key_prefix}-{i}".encode(),
                value=f"{prefix}-{i}".encode(),
                partition=i % args.partitions,
                on_delivery=on_delivery,
            )
            producer.poll(0)
        remaining = producer.flush(timeout)
        if remaining or failures:
            raise RuntimeError(f"{remaining} undelivered, failures: {failures[:5]}")
        return {p: sorted(o) for p, o in sorted(offsets.items(), key=lambda kv: int(kv[0]))}

    producer.init_transactions(timeout)

    first = transaction("committed", "c", args.committed)
    producer.commit_transaction(timeout)
    emit({"event": "committed", "partitions": first})

    second = transaction("open", "o", args.open)
    emit({"event": "open", "partitions": second})

    line = sys.stdin.readline().strip()
    if line == "commit":
        producer.commit_transaction(timeout)
        emit({"event": "commit"})
    else:
        producer.abort_transaction(timeout)
        emit({"event": "abort"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
