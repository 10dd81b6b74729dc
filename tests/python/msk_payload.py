#!/usr/bin/env python3
"""Print kafka-python's AWS_MSK_IAM client message for fixed inputs.

Used by tests/tests/msk_differential.rs: Odradek's payload must be the same
bytes as kafka-python's for the same credentials, host, region and time.

Usage:
    msk_payload.py --host H --region R --access-key A --secret-key S
                   --unix-time T [--token TOKEN]

Writes the message exactly as kafka-python would send it (UTF-8 JSON, no
trailing newline) to stdout, and kafka-python's version to stderr.

kafka-python takes the signing time from `datetime.datetime.now(timezone.utc)`
inside kafka/net/sasl/msk.py; the script replaces that module's `datetime`
with one whose `now` returns T, and changes nothing else.
"""

import argparse
import datetime as real_datetime
import sys
import types

import kafka
import kafka.net.sasl.msk as msk


def fixed_clock(unix_time):
    class FixedDatetime(real_datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return real_datetime.datetime.fromtimestamp(
                unix_time, tz or real_datetime.timezone.utc
            )

    shim = types.SimpleNamespace(
        datetime=FixedDatetime, timezone=real_datetime.timezone
    )
    return shim


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--access-key", required=True)
    parser.add_argument("--secret-key", required=True)
    parser.add_argument("--unix-time", required=True, type=int)
    parser.add_argument("--token", default=None)
    args = parser.parse_args()

    msk.datetime = fixed_clock(args.unix_time)
    client = msk.AwsMskIamClient(
        host=args.host,
        access_key=args.access_key,
        secret_key=args.secret_key,
        region=args.region,
        token=args.token,
    )
    sys.stdout.buffer.write(client.first_message())
    sys.stdout.buffer.flush()
    print(f"kafka-python {kafka.__version__}", file=sys.stderr)


if __name__ == "__main__":
    main()
