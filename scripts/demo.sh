#!/usr/bin/env bash
# The README demo: installs tansu if needed, starts it on a free loopback
# port, writes sample records to a 6-partition topic, then consumes them
# with the tokio consumer, showing a live rate line and totals.
# Arguments: [RECORDS] [PARTITIONS] (default 500000 6).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --quiet --release -p odradek-tests --example demo -- "$@"
