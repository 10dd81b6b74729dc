#!/usr/bin/env bash
# Runs every fuzz target for a bounded time and fails on any crash.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Uses the nightly toolchain when rustup has one; otherwise stable with
# RUSTC_BOOTSTRAP=1 (cargo-fuzz needs nightly-only sanitizer flags).
# cargo-fuzz is installed into the cache if missing. Corpora live in the
# cache too, so coverage accumulates across runs and fresh clones.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-30}
shift || true
cache=${ODRADEK_CACHE:-$HOME/.cache/odradek}
export PATH="$cache/cargo/bin:$HOME/.cargo/bin:$PATH"

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "installing cargo-fuzz into $cache/cargo" >&2
    cargo install cargo-fuzz --locked --version 0.13.2 --root "$cache/cargo" >&2
fi

if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz)
else
    echo "no nightly toolchain: using stable with RUSTC_BOOTSTRAP=1" >&2
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <("${fuzz[@]}" list --fuzz-dir fuzz)
fi

"${fuzz[@]}" build --fuzz-dir fuzz -O --debug-assertions >&2

logs="$cache/fuzz-logs"
mkdir -p "$logs"
total_runs=0
for target in "${targets[@]}"; do
    corpus="$cache/fuzz-corpus/$target"
    mkdir -p "$corpus"
    echo "fuzzing $target for ${seconds}s (corpus: $(find "$corpus" -type f | wc -l) inputs)" >&2
    # -malloc_limit_mb doubles as an allocation check: a decoder that
    # allocates from an untrusted length fails here even without crashing.
    status=0
    "${fuzz[@]}" run --fuzz-dir fuzz -O --debug-assertions "$target" "$corpus" -- \
        -max_total_time="$seconds" -rss_limit_mb=1024 -malloc_limit_mb=256 -print_final_stats=1 \
        2>"$logs/$target.log" || status=$?
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$logs/$target.log" | grep -o '[0-9]*$' || echo 0)
    total_runs=$((total_runs + ${runs:-0}))
    echo "  $target: ${runs:-0} inputs run, corpus now $(find "$corpus" -type f | wc -l)" >&2
    if [ "$status" -ne 0 ]; then
        grep -E 'panicked|ERROR|SUMMARY|Test unit written|==[0-9]+==' "$logs/$target.log" >&2 || tail -40 "$logs/$target.log" >&2
        echo "fuzz target $target failed (full log: $logs/$target.log)" >&2
        exit 1
    fi
done
echo "fuzzing passed: ${#targets[@]} targets, ${seconds}s each, $total_runs inputs in all"
