#!/usr/bin/env bash
# Fails if odradek-core depends on an async runtime, socket or clock crate,
# or if its source reads a clock. Clippy's disallowed-methods (core/clippy.toml)
# catches the calls; this catches the dependencies, direct or transitive.
set -euo pipefail
cd "$(dirname "$0")/.."

forbidden='^(tokio|tokio-util|async-std|smol|async-io|async-net|async-executor|async-global-executor|mio|socket2|polling|futures-timer|async-task|blocking)$'

deps=$(cargo tree -p odradek-core -e normal,build --prefix none --format '{p}' | awk '{print $1}' | sort -u)
bad=$(grep -E "$forbidden" <<<"$deps" || true)
if [ -n "$bad" ]; then
    echo "odradek-core must not depend on runtime/socket/clock crates, but depends on:" >&2
    echo "$bad" >&2
    exit 1
fi

# A backstop for code clippy does not see (e.g. behind a cfg that CI does not build).
clock=$(grep -rnE 'Instant::now|SystemTime::now|std::net::|std::thread::' core/src || true)
if [ -n "$clock" ]; then
    echo "odradek-core source reads a clock or touches sockets/threads:" >&2
    echo "$clock" >&2
    exit 1
fi
echo "core boundary ok: $(wc -l <<<"$deps") crates, none of them a runtime, socket or clock crate"
