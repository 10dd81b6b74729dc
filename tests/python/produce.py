#!/usr/bin/env python3
"""Produce deterministic records to a Kafka topic with confluent-kafka.

Used by Odradek's integration tests: an independent, battle-tested producer
writes records that the Rust consumer must read back byte for byte. The Rust
side regenerates every record from (seed, index) with the rules below, so keep
the two in sync (see `odradek_tests::produced` in tests/src/lib.rs).

Usage:
    produce.py --bootstrap 127.0.0.1:PORT --topic T --seed S --count N
               [--partitions P] [--compression none|gzip|snappy|lz4|zstd]
               [--value-size B] [--with-headers] [--null-key-every K]
               [--timestamp-base MS] [--linger-ms L] [--no-idempotence]
               [--timeout-s T] [--config KEY=VALUE ...]

Derivation of record i (0 <= i < N), all strings UTF-8 encoded:

* partition = i % P  (assigned explicitly; P defaults to 1).
* key       = None (a null key) if K > 0 and i % K == 0, where K is
              --null-key-every (default 0: never); otherwise
              f"key-{S}-{i}".
* value     = prefix + filler, where prefix = f"{S}-{i}-" and filler is the
              first max(0, B - len(prefix)) bytes of PATTERN repeated, B being
              --value-size (default 100). So len(value) == max(B, len(prefix))
              and a value is never truncated below its prefix.
              PATTERN = b"abcdefghijklmnopqrstuvwxyz0123456789".
* headers   = none unless --with-headers; then, in this order:
                ("index", f"{i}"), ("seed", f"{S}"),
              and additionally, if i % 3 == 0, ("null", None) -- a header whose
              value is null (encoded with length -1).
* timestamp = --timestamp-base + i (milliseconds, CreateTime) if given;
              otherwise the producer's current time (not deterministic).

Ordering: with idempotence (the default) librdkafka keeps per-partition order
even across retries, so on a topic that was empty before, partition p holds
indexes p, p+P, p+2P, ... at offsets 0, 1, 2, ...

Records are sent with linger.ms (default 50) so that each batch carries many
records; api.version.request is left at its default.

--config KEY=VALUE (repeatable) adds or overrides a librdkafka setting, e.g.
the security ones of odradek_tests::secure (security.protocol,
ssl.ca.location, sasl.mechanisms, sasl.username, ...). Errors the client
reports outside delivery (authentication, TLS) are added to "errors".

On stdout a single JSON object is printed:

    {"topic": T, "compression": C, "count": N, "delivered": D, "failed": F,
     "errors": [first few error strings],
     "partitions": {"0": {"count": n, "first_offset": o, "last_offset": o}, ...}}

where per-partition offsets are those reported by the delivery callbacks.
Exit status is 0 only if every record was delivered (D == N, F == 0).
"""

import argparse
import json
import sys
import time

from confluent_kafka import KafkaException, Producer

PATTERN = b"abcdefghijklmnopqrstuvwxyz0123456789"


def make_key(seed, i, null_key_every):
    if null_key_every > 0 and i % null_key_every == 0:
        return None
    return f"key-{seed}-{i}".encode()


def make_value(seed, i, value_size):
    prefix = f"{seed}-{i}-".encode()
    need = max(0, value_size - len(prefix))
    reps = need // len(PATTERN) + 1
    return prefix + (PATTERN * reps)[:need]


def make_headers(seed, i):
    headers = [("index", str(i).encode()), ("seed", str(seed).encode())]
    if i % 3 == 0:
        headers.append(("null", None))
    return headers


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--seed", required=True, type=int)
    ap.add_argument("--count", required=True, type=int)
    ap.add_argument("--partitions", type=int, default=1)
    ap.add_argument("--compression", default="none",
                    choices=["none", "gzip", "snappy", "lz4", "zstd"])
    ap.add_argument("--value-size", type=int, default=100)
    ap.add_argument("--with-headers", action="store_true")
    ap.add_argument("--null-key-every", type=int, default=0)
    ap.add_argument("--timestamp-base", type=int, default=None)
    ap.add_argument("--linger-ms", type=int, default=50)
    ap.add_argument("--no-idempotence", action="store_true")
    ap.add_argument("--timeout-s", type=float, default=60.0)
    ap.add_argument("--config", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    if args.partitions < 1:
        ap.error("--partitions must be >= 1")
    if args.count < 0 or args.value_size < 0 or args.null_key_every < 0:
        ap.error("--count, --value-size and --null-key-every must be >= 0")

    conf = {
        "bootstrap.servers": args.bootstrap,
        "client.id": "odradek-tests-produce",
        "compression.type": args.compression,
        "linger.ms": args.linger_ms,
        "enable.idempotence": not args.no_idempotence,
        "acks": "all",
        "message.timeout.ms": int(args.timeout_s * 1000),
        "message.max.bytes": min(1_000_000_000, max(1_000_000, 2 * args.value_size + 65536)),
    }
    for item in args.config:
        key, sep, value = item.partition("=")
        if not sep:
            ap.error(f"--config {item!r} is not KEY=VALUE")
        conf[key] = value

    parts = {}
    errors = []

    def on_error(err):
        if len(errors) < 10:
            errors.append(f"client: {err.name()}: {err.str()}")

    conf["error_cb"] = on_error
    producer = Producer(conf)
    state = {"delivered": 0, "failed": 0}

    def on_delivery(err, msg):
        if err is not None:
            state["failed"] += 1
            if len(errors) < 10:
                errors.append(f"partition {msg.partition()}: {err}")
            return
        state["delivered"] += 1
        p = parts.setdefault(str(msg.partition()),
                             {"count": 0, "first_offset": None, "last_offset": None})
        p["count"] += 1
        off = msg.offset()
        if p["first_offset"] is None or off < p["first_offset"]:
            p["first_offset"] = off
        if p["last_offset"] is None or off > p["last_offset"]:
            p["last_offset"] = off

    deadline = time.monotonic() + args.timeout_s
    for i in range(args.count):
        kwargs = {
            "topic": args.topic,
            "partition": i % args.partitions,
            "key": make_key(args.seed, i, args.null_key_every),
            "value": make_value(args.seed, i, args.value_size),
            "on_delivery": on_delivery,
        }
        if args.with_headers:
            kwargs["headers"] = make_headers(args.seed, i)
        if args.timestamp_base is not None:
            kwargs["timestamp"] = args.timestamp_base + i
        while True:
            try:
                producer.produce(**kwargs)
                break
            except BufferError:
                # Local queue full: serve delivery reports and try again.
                producer.poll(0.1)
                if time.monotonic() > deadline:
                    print("produce.py: timed out waiting for queue space", file=sys.stderr)
                    return finish(args, state, parts, errors + ["local queue full"], 1)
            except KafkaException as e:
                errors.append(f"produce({i}): {e}")
                return finish(args, state, parts, errors, 1)
        producer.poll(0)

    remaining = producer.flush(max(0.0, deadline - time.monotonic()))
    if remaining:
        errors.append(f"{remaining} records still undelivered after flush timeout")
    ok = remaining == 0 and state["failed"] == 0 and state["delivered"] == args.count
    return finish(args, state, parts, errors, 0 if ok else 1)


def finish(args, state, parts, errors, code):
    summary = {
        "topic": args.topic,
        "compression": args.compression,
        "count": args.count,
        "delivered": state["delivered"],
        "failed": state["failed"],
        "errors": errors,
        "partitions": dict(sorted(parts.items(), key=lambda kv: int(kv[0]))),
    }
    print(json.dumps(summary, sort_keys=False))
    sys.stdout.flush()
    if code != 0:
        print(f"produce.py: FAILED: {errors}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
