#!/usr/bin/env bash
# The README demo: installs tansu if needed, starts it on a free loopback
# port, writes sample records to a 12-partition topic while a 3-member
# consumer group (one member per adapter: tokio, async-std, blocking)
# consumes them, with a live line per member, the final assignment, and an
# exactly-once check across the group.
# Arguments: [RECORDS] [PARTITIONS] [ASSIGNOR] (default 300000 12 cooperative-sticky).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --quiet --release -p odradek-tests --example demo -- "$@"
