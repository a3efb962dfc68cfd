#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: installs the Python tools (LocalStack for
# the S3 Object Lock tests, `cryptography` for the third-party log verifier) into .venv,
# checks formatting and clippy lints, builds every binary, starts LocalStack on loopback, runs
# the whole cargo test suite, and stops LocalStack again. CI (.ci/run) calls exactly this script.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== Python tools (.venv)"
scripts/python-venv.sh

echo "== Browser for the shop till UI tests (chromium + chromium-driver)"
scripts/browser.sh

echo "== Deployment template (cfn-lint: deploy/outposts)"
.venv/bin/cfn-lint deploy/outposts/*.cfn.yaml

echo "== Format and lints (rustfmt, clippy with warnings as errors)"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --quiet -- -D warnings

echo "== Build (all binaries and tests)"
cargo build --workspace --bins --tests --quiet

echo "== LocalStack S3 on loopback"
port="${OUTPOST_S3_PORT:-4566}"
scripts/localstack.sh start "$port"
trap 'scripts/localstack.sh stop "$port" || true' EXIT
export OUTPOST_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
export OUTPOST_PYTHON="$PWD/.venv/bin/python"

echo "== cargo test"
cargo test --workspace --quiet --no-fail-fast -- --test-threads=2

echo "== Fuzz the feed parsers and the odds book (bounded, ~60 s per target)"
scripts/fuzz.sh
echo "== fuzz (replication wire protocol)"
scripts/fuzz-wire.sh
