#!/usr/bin/env bash
# The whole test suite, on a fresh Debian machine as on a developer's:
# installs what the tests need and is missing (Chromium and chromedriver
# for the browser tests, Dovecot for the email tests, pebble for ACME), then runs every
# unit, integration and browser test. `.ci/run` calls this same script.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo is required: install the Rust toolchain (https://rustup.rs)" >&2
    exit 1
fi

missing=()
if ! command -v chromium >/dev/null 2>&1; then missing+=(chromium); fi
if ! command -v chromedriver >/dev/null 2>&1; then missing+=(chromium-driver); fi
# pebble: Let's Encrypt's ACME test server, for the --acme-domain tests.
if ! command -v pebble >/dev/null 2>&1; then missing+=(pebble); fi
if ! command -v dovecot >/dev/null 2>&1 && [ ! -x /usr/sbin/dovecot ]; then
    missing+=(dovecot-imapd)
fi
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing what the tests need: ${missing[*]}"
    as_root=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            as_root=(sudo)
        else
            echo "the tests need ${missing[*]}: install them as root (apt-get install ${missing[*]})" >&2
            exit 1
        fi
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${as_root[@]}" apt-get update -q
    "${as_root[@]}" apt-get install -y -q "${missing[@]}"
fi

cargo test --locked "$@"
