#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 10). Needs cargo-fuzz;
# RUSTC_BOOTSTRAP lets the stable toolchain build the instrumented code.
# Crashes land in fuzz/artifacts/<target>/; copy them to fuzz/regressions/
# so `cargo test` replays them for ever after.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${1:-10}"
export RUSTC_BOOTSTRAP=1
for target in json_body store_keys search_query multipart linkify email_parse; do
    echo "fuzzing $target for ${SECONDS_EACH}s"
    cargo fuzz run --dev --sanitizer none "$target" -- -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048
done
