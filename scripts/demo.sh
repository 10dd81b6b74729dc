#!/usr/bin/env bash
# The README demo: installs tansu if needed, starts it on a free loopback
# port, writes records with Odradek's encoder and reads them back with its
# decoder, showing live rates. Arguments: [RECORDS] [PARTITIONS].
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --quiet --release -p odradek-tests --example demo -- "$@"
