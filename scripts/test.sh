#!/usr/bin/env bash
# The test command (README): formatting, lints, the sans-IO boundary, every
# test (unit, property, differential, real-broker integration), and a
# bounded fuzzing smoke run. Installs what it needs into ~/.cache/odradek.
#
#   bash scripts/test.sh            # everything
#   FUZZ_SECONDS=0 bash scripts/test.sh   # skip fuzzing
set -euo pipefail
cd "$(dirname "$0")/.."

fuzz_seconds=${FUZZ_SECONDS:-20}
step() { printf '\n==> %s (%ss)\n' "$*" "$SECONDS" >&2; }

step "toolchain (disk: $(df -h --output=avail . | tail -1 | tr -d ' ') free)"
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
cargo --version

step "test brokers (tansu; crabka, built once into the cache) and Python clients"
bash scripts/install-tansu.sh >/dev/null
bash scripts/install-crabka.sh >/dev/null
bash scripts/install-python-clients.sh >/dev/null

step "rustfmt"
cargo fmt --all --check
cargo fmt --manifest-path fuzz/Cargo.toml --check
cargo fmt --manifest-path tests/brokers/crabka/Cargo.toml --check

step "clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
# The fuzz targets are their own workspace (cargo-fuzz); lint them too.
cargo clippy --manifest-path fuzz/Cargo.toml --locked -- -D warnings

step "sans-IO boundary of odradek-core"
bash scripts/check-core-boundary.sh

step "tests"
cargo test --workspace --locked --no-fail-fast

if [ "$fuzz_seconds" -gt 0 ]; then
    step "fuzz smoke, ${fuzz_seconds}s per target"
    bash scripts/fuzz.sh "$fuzz_seconds"
fi

step "all checks passed (target: $(du -sh target 2>/dev/null | cut -f1), disk: $(df -h --output=avail . | tail -1 | tr -d ' ') free)"
