#!/usr/bin/env bash
# Build the crabka test broker into a cache outside the repository.
#
# crabka (a KRaft Kafka broker in Rust, on-disk log) is the second, stricter
# broker the integration tests run against (see shared/reference/brokers.md
# and tests/brokers/crabka/). crabka-broker 0.3.8 and the crabka-* crates it
# uses are yanked on crates.io, so cargo resolves them only through the
# committed tests/brokers/crabka/Cargo.lock; --locked makes cargo check every
# crate against that lock's checksums. 0.3.8 declares rust-version 1.96 and
# compiles on 1.95, hence --ignore-rust-version. The launcher is built in
#
#     ${ODRADEK_CACHE:-$HOME/.cache/odradek}/crabka-target
#
# and copied to ${ODRADEK_CACHE:-$HOME/.cache/odradek}/bin/crabka (the build
# directory is then removed). A cold
# build takes about 10 minutes on 2 cores; afterwards the binary is reused
# until the launcher's sources or lock change (a stamp file holds their hash).
#
# Output: progress on stderr; the absolute path of the binary is the only
# line printed on stdout. Exit status is non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

LAUNCHER="tests/brokers/crabka"
# The checksum of the yanked crabka-broker 0.3.8 .crate: the lock must name it.
BROKER_SHA256="062fa98460fe2b02255966161edda38e856e5547c0f8796d14c2854e40e11441"

CACHE="${ODRADEK_CACHE:-$HOME/.cache/odradek}"
BIN_DIR="$CACHE/bin"
BIN="$BIN_DIR/crabka"
STAMP="$BIN_DIR/crabka.stamp"
TARGET="$CACHE/crabka-target"

log() { printf 'install-crabka: %s\n' "$*" >&2; }
die() { printf 'install-crabka: ERROR: %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null 2>&1 || die "cargo not found on PATH"
grep -q "checksum = \"$BROKER_SHA256\"" "$LAUNCHER/Cargo.lock" \
    || die "$LAUNCHER/Cargo.lock does not pin crabka-broker 0.3.8 with checksum $BROKER_SHA256"

# What the binary is built from: the launcher's manifest, lock and sources.
want="$(cat "$LAUNCHER/Cargo.toml" "$LAUNCHER/Cargo.lock" "$LAUNCHER"/src/*.rs | sha256sum | cut -d' ' -f1)"

mkdir -p "$BIN_DIR"
# Serialise concurrent installers (each test process may call this).
exec 9>"$CACHE/.install-crabka.lock"
flock 9

if [[ -x "$BIN" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
    log "already installed: $BIN"
    printf '%s\n' "$(cd "$BIN_DIR" && pwd -P)/crabka"
    exit 0
fi

log "building the launcher in $TARGET (about 10 minutes cold on 2 cores) ..."
CARGO_TARGET_DIR="$TARGET" cargo build --release --locked --ignore-rust-version \
    --manifest-path "$LAUNCHER/Cargo.toml" >&2 \
    || die "cargo build of $LAUNCHER failed (see cargo's output above)"

built="$TARGET/release/odradek-crabka"
[[ -x "$built" ]] || die "cargo succeeded but $built is missing"
# Copy beside the destination, then rename: concurrent users never see a
# half-written binary.
cp "$built" "$BIN.tmp.$$"
mv -f "$BIN.tmp.$$" "$BIN"
printf '%s\n' "$want" >"$STAMP"
# The build directory is a few GB and only the binary is used; a rebuild
# happens only when the launcher changes, and then starts cold anyway.
rm -rf "$TARGET"
log "installed $BIN"
printf '%s\n' "$(cd "$BIN_DIR" && pwd -P)/crabka"
