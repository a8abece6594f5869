#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ for FUZZ_SECONDS seconds each (default 15).
# Installs cargo-fuzz when missing; needs a nightly toolchain (rustup toolchain install nightly).
# Exits non-zero as soon as a target crashes (the reproducer lands in fuzz/artifacts/TARGET/).
set -euo pipefail

cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-15}"
toolchain="${FUZZ_TOOLCHAIN:-nightly}"

if ! cargo +"$toolchain" fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

targets="$(cargo +"$toolchain" fuzz list)"
if [ -z "$targets" ]; then
    echo "fuzz.sh: no fuzz targets found" >&2
    exit 1
fi

cargo +"$toolchain" fuzz build
for t in $targets; do
    echo "=== fuzz target $t for ${seconds}s"
    mkdir -p "fuzz/corpus/$t"
    # -rss_limit_mb guards against unbounded allocation, which counts as a crash too
    cargo +"$toolchain" fuzz run "$t" -- -max_total_time="$seconds" -rss_limit_mb=2048
done
echo "fuzz.sh: all targets ran ${seconds}s without a crash"
