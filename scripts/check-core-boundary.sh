#!/usr/bin/env bash
# Fails if odradek-core or the client layer nested in it (odradek-client,
# core/client) depends on an async runtime, socket or clock crate, or if
# their source reads a clock. Clippy's disallowed-methods (core/clippy.toml,
# which clippy also finds from core/client) catches the calls; this catches
# the dependencies, direct or transitive.
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

# The client layer reads the clock only through its runtime trait, and
# opens no socket and spawns no thread: the runtime crates do.
client_deps=$(cargo tree -p odradek-client -e normal,build --prefix none --format '{p}' | awk '{print $1}' | sort -u)
bad=$(grep -E "$forbidden" <<<"$client_deps" || true)
if [ -n "$bad" ]; then
    echo "odradek-client must not depend on runtime/socket/clock crates, but depends on:" >&2
    echo "$bad" >&2
    exit 1
fi
# Its tests (tests.rs) may take a base instant and run a driver thread.
clock=$(grep -rnE --exclude=tests.rs 'Instant::now|SystemTime::now|std::net::|thread::spawn|thread::Builder|thread::sleep' core/client/src || true)
if [ -n "$clock" ]; then
    echo "odradek-client source reads a clock or touches sockets/threads:" >&2
    echo "$clock" >&2
    exit 1
fi
echo "core boundary ok: $(wc -l <<<"$deps") crates, none of them a runtime, socket or clock crate"
echo "client boundary ok: $(wc -l <<<"$client_deps") crates, none of them a runtime, socket or clock crate"
