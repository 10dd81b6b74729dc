#!/usr/bin/env bash
# Install the independent Kafka clients used by the integration and interop
# tests into a virtualenv outside the repository:
#
#     ${ODRADEK_CACHE:-$HOME/.cache/odradek}/venv
#
# confluent-kafka bundles a recent librdkafka (Debian's kcat/librdkafka does not
# work against tansu, see shared/reference/brokers.md); kafka-python is a pure
# Python client, installed with the libraries it needs for lz4, snappy and zstd.
# Every package is pinned exactly and installed from wheels only.
#
# Idempotent and fast: a stamp file in the venv records the pinned set; when it
# matches, nothing is installed.
#
# Output: progress on stderr; the absolute path of the venv's python is the
# only line printed on stdout. Exit status is non-zero on any failure.
set -euo pipefail

# The full closure, pinned. Keep in sync with tests/python/*.py.
REQUIREMENTS="confluent-kafka==2.16.1
kafka-python==3.0.12
lz4==4.4.5
python-snappy==0.7.3
cramjam==2.14.0
zstandard==0.25.0"

CACHE="${ODRADEK_CACHE:-$HOME/.cache/odradek}"
VENV="$CACHE/venv"
PY="$VENV/bin/python"
STAMP="$VENV/.odradek-requirements"

log() { printf 'install-python-clients: %s\n' "$*" >&2; }
die() { printf 'install-python-clients: ERROR: %s\n' "$*" >&2; exit 1; }

command -v python3 >/dev/null 2>&1 || die "python3 not found on PATH"
# The stamp also records the base interpreter so a changed python3 rebuilds.
BASE="$(python3 -c 'import sys; print(sys.version.split()[0], sys.base_prefix)')"
WANT="$BASE
$REQUIREMENTS"

mkdir -p "$CACHE"
# Serialise concurrent installers (nextest runs each test in its own process).
if command -v flock >/dev/null 2>&1; then
    exec 9>"$CACHE/.install-python-clients.lock"
    flock 9
fi

if [[ -x "$PY" && -f "$STAMP" ]] && [[ "$(cat "$STAMP")" == "$WANT" ]]; then
    log "already installed: $VENV"
    printf '%s\n' "$(cd "$VENV/bin" && pwd -P)/python"
    exit 0
fi

if [[ -d "$VENV" ]]; then
    log "removing stale virtualenv $VENV"
    rm -rf "$VENV"
fi
log "creating virtualenv $VENV"
python3 -m venv "$VENV" >&2 || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"

REQ_FILE="$VENV/.odradek-requirements.txt"
printf '%s\n' "$REQUIREMENTS" > "$REQ_FILE"
log "installing pinned clients: $(echo $REQUIREMENTS)"
if ! "$PY" -m pip install --no-input --disable-pip-version-check \
        --only-binary=:all: --no-deps -r "$REQ_FILE" >&2; then
    die "pip install into $VENV failed (is PyPI reachable? see pip's output above)"
fi
"$PY" -m pip check >&2 || die "installed packages have unmet dependencies (see pip check above); update the pins"
"$PY" -c 'import confluent_kafka, kafka, lz4, snappy, zstandard' \
    || die "the installed clients do not import (see the traceback above)"

printf '%s\n' "$WANT" > "$STAMP"
log "installed confluent-kafka $("$PY" -c 'import confluent_kafka as c; print(c.version(), "(librdkafka", c.libversion()[0] + ")")')"
printf '%s\n' "$(cd "$VENV/bin" && pwd -P)/python"
