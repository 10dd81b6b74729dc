#!/usr/bin/env python3
"""Run one consumer-group member with confluent-kafka or kafka-python.

Used by Odradek's integration tests: an independent, battle-tested group
member (librdkafka or kafka-python) joins the same group as the Rust
consumer, so the test can check how partitions are split, that rebalances
complete and that every record is consumed exactly once across the group.
Everything the member sees is reported as JSON lines on stdout.

Usage:
    group_member.py --client confluent|kafka-python --bootstrap 127.0.0.1:PORT
                    --group G --topics T1[,T2...]
                    --assignor range|roundrobin|sticky|cooperative-sticky
                    [--session-timeout-ms 6000] [--heartbeat-ms 2000]
                    [--max-records N] [--idle-exit-s S] [--run-s S]
                    [--commit none|auto|after-process]
                    [--instance-id ID] [--client-id ID]
                    [--quiet-records] [--ignore-stdin]
                    [--api-version X.Y.Z]

Assignors (all members of a group must use the same one):

* confluent (librdkafka 2.x): range, roundrobin, cooperative-sticky. There
  is no eager "sticky" in librdkafka.
* kafka-python 3.0.x: range (RangePartitionAssignor), roundrobin
  (RoundRobinPartitionAssignor), sticky (StickyPartitionAssignor),
  cooperative-sticky (CooperativeStickyAssignor).
An unsupported (client, assignor) pair prints
    {"event": "unsupported", "client": C, "assignor": A, "message": M, "t": T}
and exits with status 3, before any connection is made.

The consumer starts from the committed offset of each partition, else from
the earliest offset (auto.offset.reset = earliest).

--commit (default after-process):
    none           auto-commit off, no commits at all.
    auto           auto-commit every 500 ms (and on close / before an eager
                   rebalance, as the client does by itself).
    after-process  auto-commit off; after each poll batch the offsets of the
                   processed records (last offset + 1 per partition) are
                   committed synchronously, then a "committed" event is
                   printed.

Output: one JSON object per line on stdout, flushed after each line. Every
object has "event" and "t" (time.time(), a Unix timestamp in seconds as a
float). Partitions are [topic, partition] pairs, sorted.

    {"event": "ready", "client": C, "assignor": A,
     "protocol": "eager"|"cooperative", "group": G, "topics": [...],
     "client_id": ID, "t": T}
        once the consumer is created and subscribed (before it has joined).
    {"event": "assigned", "partitions": [[t, p], ...],
     "assignment": [[t, p], ...], "t": T}
    {"event": "revoked",  "partitions": [...], "assignment": [...], "t": T}
    {"event": "lost",     "partitions": [...], "assignment": [...], "t": T}
        from the client's rebalance callbacks. Eager assignors (range,
        roundrobin, sticky): "assigned" carries the whole new assignment and
        "revoked" the whole old one. cooperative-sticky: "partitions" is the
        increment (added, or taken away), and "assignment" is always the
        member's full assignment after the change (for eager assignors it is
        the same as "partitions" after "assigned" and [] after "revoked" /
        "lost"). "lost" means the membership was lost (session expired,
        fenced) and the partitions could not be given up cleanly. A revoked
        or lost event with no partitions is never printed. An "assigned"
        event with an empty list is printed whenever the client reports one
        (both clients do for eager assignors; for cooperative-sticky
        librdkafka reports empty increments, kafka-python does not). Revoked
        events may also appear while closing.
    {"event": "record", "topic": T, "partition": P, "offset": O,
     "key": K, "t": T}
        per record consumed, unless --quiet-records. K is the key decoded as
        UTF-8 (invalid bytes replaced by U+FFFD), or null for a null key.
    {"event": "progress", "count": N, "per_partition": {"T-P": O, ...},
     "t": T}
        only with --quiet-records: every 0.5 s, and once more just before
        "closed". N is the number of records consumed so far and O the last
        offset consumed on partition P of topic T.
    {"event": "committed", "offsets": [[t, p, next_offset], ...], "t": T}
        only with --commit after-process, after each successful commit.
    {"event": "error", "message": M, "fatal": bool, "t": T}
        a client error (e.g. a refused connection), a failed commit or an
        unknown stdin command; after a non-fatal one the member carries on.
        A non-fatal message identical to one printed less than 5 s before
        is not printed again; the next time it is printed it carries
        "repeated": n, the number of copies left out since.
    {"event": "stopping", "reason": R, "t": T}
        the member decided to stop; R is one of "max-records", "idle",
        "run-s", "sigterm", "sigint", "stdin-stop", "stdin-eof", "fatal".
    {"event": "closed", "count": N, "reason": R, "t": T}
        after close() returned: the member left the group (LeaveGroup is
        sent for dynamic members; librdkafka does not send it for static
        members, i.e. with --instance-id). N is the number of records
        consumed.

When it stops:
    --max-records N   after N records (never consumes more than N);
    --idle-exit-s S   S seconds without a record, once at least one record
                      was consumed;
    --run-s S         S seconds after "ready";
    SIGTERM / SIGINT;
    a line "stop" on stdin (stdin is read in a background thread; other
    non-empty lines are reported as non-fatal errors). End of input on stdin
    also stops the member unless --ignore-stdin is given ("stop" lines are
    still honoured then). Give --ignore-stdin when stdin is /dev/null.

Timing against tansu: the broker holds each JoinGroup for about
max(1 s, session timeout / 2), so keep --session-timeout-ms at 2000-6000 and
--heartbeat-ms about a third of it (the defaults are 6000 / 2000).

Measured against tansu (session timeout 6000 ms): a first join takes ~3 s
(the JoinGroup hold), a static member (--instance-id) ~6 s, an eager
rebalance when a member joins or leaves 3-5 s. With cooperative-sticky a
member whose first-round assignment is empty waits in SyncGroup (tansu holds
it until the assignment is non-empty), so a member joining a busy group gets
its partitions only after the follow-up rebalance: 8-12 s.

--idle-exit-s never fires if no record arrives at all; add --run-s as a
backstop. --client-id defaults to "odradek-tests-confluent" /
"odradek-tests-kafka-python".

--api-version (kafka-python only) pins the broker version kafka-python
assumes instead of probing it (e.g. 2.8.0); the default is to probe.

Exit status: 0 after a clean stop and close, 1 on a fatal client error or
an unexpected exception, 2 on bad arguments, 3 for an unsupported
client/assignor pair.
"""

import argparse
import json
import signal
import sys
import traceback
import threading
import time

ASSIGNORS = ["range", "roundrobin", "sticky", "cooperative-sticky"]
COMMIT_MODES = ["none", "auto", "after-process"]
PROGRESS_INTERVAL_S = 0.5
POLL_TIMEOUT_S = 0.1
BATCH = 500
ERROR_REPEAT_S = 5.0

_emit_lock = threading.Lock()


def emit(obj):
    obj.setdefault("t", time.time())
    line = json.dumps(obj)
    with _emit_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


_last_errors = {}  # message -> [time of last emission, repeats suppressed since]


def error(message, fatal=False):
    """Report an error; the same non-fatal message is printed at most once
    every ERROR_REPEAT_S seconds (librdkafka retries connections every few
    tens of milliseconds and reports each failure)."""
    message = str(message)
    now = time.monotonic()
    with _emit_lock:
        last = _last_errors.get(message)
        if not fatal and last is not None and now - last[0] < ERROR_REPEAT_S:
            last[1] += 1
            return
        repeated = last[1] if last is not None else 0
        _last_errors[message] = [now, 0]
    obj = {"event": "error", "message": message, "fatal": bool(fatal)}
    if repeated:
        obj["repeated"] = repeated
    emit(obj)


def describe(exc):
    text = str(exc)
    name = type(exc).__name__
    return text if text.startswith(name) else f"{name}: {text}"


def tp_list(pairs):
    return [[t, p] for (t, p) in sorted(set(pairs))]


def decode_key(key):
    if key is None:
        return None
    if isinstance(key, str):
        return key
    return bytes(key).decode("utf-8", errors="replace")


class Member:
    """State shared by both clients: stop conditions, counters, assignment."""

    def __init__(self, args):
        self.args = args
        self.cooperative = args.assignor == "cooperative-sticky"
        self.stop_reason = None
        self.stop_lock = threading.Lock()
        self.count = 0
        self.last_offsets = {}  # (topic, partition) -> last offset consumed
        self.owned = set()  # (topic, partition)
        self.owned_lock = threading.Lock()
        self.exit_code = 0
        self.started = None
        self.last_record = None

    # -- stopping ---------------------------------------------------------
    def request_stop(self, reason):
        with self.stop_lock:
            if self.stop_reason is None:
                self.stop_reason = reason

    def stopped(self):
        return self.stop_reason is not None

    def check_timers(self):
        now = time.monotonic()
        a = self.args
        if a.max_records is not None and self.count >= a.max_records:
            self.request_stop("max-records")
        elif (a.idle_exit_s is not None and self.last_record is not None
              and now - self.last_record >= a.idle_exit_s):
            self.request_stop("idle")
        elif a.run_s is not None and now - self.started >= a.run_s:
            self.request_stop("run-s")

    def remaining(self):
        if self.args.max_records is None:
            return BATCH
        return max(0, min(BATCH, self.args.max_records - self.count))

    # -- rebalance events -------------------------------------------------
    def on_assigned(self, pairs):
        pairs = set(pairs)
        with self.owned_lock:
            if self.cooperative:
                self.owned |= pairs
            else:
                self.owned = set(pairs)
            full = tp_list(self.owned)
        emit({"event": "assigned", "partitions": tp_list(pairs), "assignment": full})

    def on_removed(self, event, pairs):
        pairs = set(pairs)
        if not pairs:
            return
        with self.owned_lock:
            if self.cooperative:
                self.owned -= pairs
            else:
                self.owned = set()
            full = tp_list(self.owned)
        emit({"event": event, "partitions": tp_list(pairs), "assignment": full})

    # -- records ----------------------------------------------------------
    def on_record(self, topic, partition, offset, key):
        self.count += 1
        self.last_record = time.monotonic()
        self.last_offsets[(topic, partition)] = offset
        if not self.args.quiet_records:
            emit({"event": "record", "topic": topic, "partition": partition,
                  "offset": offset, "key": decode_key(key)})

    def progress(self):
        per = {f"{t}-{p}": o for (t, p), o in sorted(self.last_offsets.items())}
        emit({"event": "progress", "count": self.count, "per_partition": per})


# ---------------------------------------------------------------------------
# confluent-kafka (librdkafka)
# ---------------------------------------------------------------------------

def run_confluent(args, member):
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    strategies = {"range": "range", "roundrobin": "roundrobin",
                  "cooperative-sticky": "cooperative-sticky"}
    if args.assignor not in strategies:
        return unsupported(args, "librdkafka has no eager 'sticky' assignor "
                                 "(partition.assignment.strategy accepts range, "
                                 "roundrobin, cooperative-sticky)")

    def error_cb(err):
        fatal = err.fatal()
        error(f"client: {err}", fatal)
        if fatal:
            member.exit_code = 1
            member.request_stop("fatal")

    conf = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "client.id": args.client_id,
        "partition.assignment.strategy": strategies[args.assignor],
        "session.timeout.ms": args.session_timeout_ms,
        "heartbeat.interval.ms": args.heartbeat_ms,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": args.commit == "auto",
        "auto.commit.interval.ms": 500,
        "error_cb": error_cb,
    }
    if args.instance_id:
        conf["group.instance.id"] = args.instance_id

    def pairs_of(partitions):
        return [(tp.topic, tp.partition) for tp in partitions]

    def on_assign(consumer, partitions):
        member.on_assigned(pairs_of(partitions))

    def on_revoke(consumer, partitions):
        member.on_removed("revoked", pairs_of(partitions))

    def on_lost(consumer, partitions):
        member.on_removed("lost", pairs_of(partitions))

    # The binding (un)assigns by itself after each callback (incrementally
    # for cooperative-sticky) because the callbacks do not do it.
    consumer = Consumer(conf)
    consumer.subscribe(args.topics, on_assign=on_assign, on_revoke=on_revoke,
                       on_lost=on_lost)
    ready(args, member)

    def poll_once():
        n = member.remaining()
        if n == 0:
            return
        msgs = consumer.consume(num_messages=n, timeout=POLL_TIMEOUT_S)
        processed = {}
        for msg in msgs:
            err = msg.error()
            if err is not None:
                fatal = err.fatal()
                error(f"consume: {err}", fatal)
                if fatal:
                    member.exit_code = 1
                    member.request_stop("fatal")
                continue
            member.on_record(msg.topic(), msg.partition(), msg.offset(), msg.key())
            processed[(msg.topic(), msg.partition())] = msg.offset()
        if args.commit == "after-process" and processed:
            offsets = [TopicPartition(t, p, o + 1) for (t, p), o in sorted(processed.items())]
            try:
                result = consumer.commit(offsets=offsets, asynchronous=False)
            except KafkaException as e:
                error(f"commit: {e.args[0] if e.args else e}")
                return
            failed = [tp for tp in (result or []) if tp.error is not None]
            for tp in failed:
                error(f"commit {tp.topic}-{tp.partition}: {tp.error}")
            ok = [[tp.topic, tp.partition, tp.offset] for tp in (result or [])
                  if tp.error is None]
            if ok:
                emit({"event": "committed", "offsets": sorted(ok)})

    def close():
        consumer.close()

    return loop(member, poll_once, close)


# ---------------------------------------------------------------------------
# kafka-python
# ---------------------------------------------------------------------------

def tolerate_null_records():
    """kafka-python 3.0.12 crashes on a Fetch partition whose `records` is
    null, which the protocol allows and crabka sends for caught-up
    partitions: read null as an empty record set (what it means)."""
    import kafka.record.memory_records as memory_records

    original = memory_records.MemoryRecords.__init__

    def init(self, bytes_data):
        original(self, b"" if bytes_data is None else bytes_data)

    memory_records.MemoryRecords.__init__ = init


def run_kafka_python(args, member):
    tolerate_null_records()
    from kafka import KafkaConsumer, TopicPartition
    from kafka.consumer.subscription_state import ConsumerRebalanceListener
    from kafka.errors import KafkaError
    from kafka.structs import OffsetAndMetadata

    try:
        if args.assignor == "range":
            from kafka.coordinator.assignors.range import RangePartitionAssignor as cls
        elif args.assignor == "roundrobin":
            from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor as cls
        elif args.assignor == "sticky":
            from kafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor as cls
        else:
            from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor as cls
    except ImportError as e:
        return unsupported(args, f"this kafka-python has no {args.assignor} assignor: {e}")

    class Listener(ConsumerRebalanceListener):
        # Called on kafka-python's IO event loop; keep them quick.
        def on_partitions_revoked(self, revoked):
            member.on_removed("revoked", [(tp.topic, tp.partition) for tp in revoked])

        def on_partitions_assigned(self, assigned):
            member.on_assigned([(tp.topic, tp.partition) for tp in assigned])

        def on_partitions_lost(self, lost):
            member.on_removed("lost", [(tp.topic, tp.partition) for tp in lost])

    conf = dict(
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        client_id=args.client_id,
        partition_assignment_strategy=[cls],
        session_timeout_ms=args.session_timeout_ms,
        heartbeat_interval_ms=args.heartbeat_ms,
        auto_offset_reset="earliest",
        enable_auto_commit=args.commit == "auto",
        auto_commit_interval_ms=500,
    )
    if args.instance_id:
        conf["group_instance_id"] = args.instance_id
    if args.api_version:
        conf["api_version"] = tuple(int(x) for x in args.api_version.split("."))

    consumer = KafkaConsumer(**conf)
    consumer.subscribe(topics=args.topics, listener=Listener())
    ready(args, member)

    def poll_once():
        n = member.remaining()
        if n == 0:
            return
        try:
            batches = consumer.poll(timeout_ms=int(POLL_TIMEOUT_S * 1000), max_records=n)
        except KafkaError as e:
            error(f"poll: {describe(e)}")
            time.sleep(POLL_TIMEOUT_S)
            return
        processed = {}
        for tp, records in sorted(batches.items()):
            for rec in records:
                member.on_record(rec.topic, rec.partition, rec.offset, rec.key)
                processed[tp] = rec.offset
        if args.commit == "after-process" and processed:
            offsets = {tp: OffsetAndMetadata(o + 1, "", -1) for tp, o in processed.items()}
            try:
                consumer.commit(offsets)
            except KafkaError as e:
                error(f"commit: {describe(e)}")
                return
            emit({"event": "committed",
                  "offsets": sorted([tp.topic, tp.partition, o + 1]
                                    for tp, o in processed.items())})

    def close():
        consumer.close()

    return loop(member, poll_once, close)


# ---------------------------------------------------------------------------

def unsupported(args, message):
    emit({"event": "unsupported", "client": args.client, "assignor": args.assignor,
          "message": message})
    return 3


def ready(args, member):
    member.started = time.monotonic()
    emit({"event": "ready", "client": args.client, "assignor": args.assignor,
          "protocol": "cooperative" if member.cooperative else "eager",
          "group": args.group, "topics": args.topics, "client_id": args.client_id})


def loop(member, poll_once, close):
    next_progress = time.monotonic() + PROGRESS_INTERVAL_S
    try:
        while True:
            member.check_timers()
            if member.stopped():
                break
            poll_once()
            if member.args.quiet_records and time.monotonic() >= next_progress:
                member.progress()
                next_progress = time.monotonic() + PROGRESS_INTERVAL_S
        emit({"event": "stopping", "reason": member.stop_reason})
        if member.args.quiet_records:
            member.progress()
        close()
    except Exception as e:  # report, then try to leave the group anyway
        traceback.print_exc(file=sys.stderr)
        error(describe(e), True)
        member.exit_code = 1
        member.request_stop("fatal")
        try:
            close()
        except Exception as e2:
            error(f"close: {describe(e2)}", True)
    emit({"event": "closed", "count": member.count, "reason": member.stop_reason})
    return member.exit_code


def read_stdin(member, ignore_eof):
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "stop":
            member.request_stop("stdin-stop")
            return
        if cmd:
            error(f"unknown stdin command: {cmd!r}")
    if not ignore_eof:
        member.request_stop("stdin-eof")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--client", required=True, choices=["confluent", "kafka-python"])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--topics", required=True, help="comma-separated")
    ap.add_argument("--assignor", required=True, choices=ASSIGNORS)
    ap.add_argument("--session-timeout-ms", type=int, default=6000)
    ap.add_argument("--heartbeat-ms", type=int, default=2000)
    ap.add_argument("--max-records", type=int, default=None)
    ap.add_argument("--idle-exit-s", type=float, default=None)
    ap.add_argument("--run-s", type=float, default=None)
    ap.add_argument("--commit", choices=COMMIT_MODES, default="after-process")
    ap.add_argument("--instance-id", default=None)
    ap.add_argument("--client-id", default=None)
    ap.add_argument("--quiet-records", action="store_true")
    ap.add_argument("--ignore-stdin", action="store_true")
    ap.add_argument("--api-version", default=None,
                    help="kafka-python only: broker version to assume, e.g. 2.8.0")
    args = ap.parse_args()
    args.topics = [t for t in args.topics.split(",") if t]
    if not args.topics:
        ap.error("--topics must name at least one topic")
    if args.max_records is not None and args.max_records < 1:
        ap.error("--max-records must be >= 1")
    if args.session_timeout_ms < 1 or args.heartbeat_ms < 1:
        ap.error("--session-timeout-ms and --heartbeat-ms must be >= 1")
    if args.api_version is not None:
        try:
            tuple(int(x) for x in args.api_version.split("."))
        except ValueError:
            ap.error("--api-version must look like 2.8.0")
    if args.client_id is None:
        args.client_id = f"odradek-tests-{args.client}"

    member = Member(args)

    def on_signal(signum, frame):
        member.request_stop("sigterm" if signum == signal.SIGTERM else "sigint")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threading.Thread(target=read_stdin, args=(member, args.ignore_stdin),
                     daemon=True, name="stdin").start()

    try:
        if args.client == "confluent":
            return run_confluent(args, member)
        return run_kafka_python(args, member)
    except Exception as e:  # failed before the loop (e.g. bad config)
        error(describe(e), True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
