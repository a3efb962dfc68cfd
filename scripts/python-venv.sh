#!/usr/bin/env bash
# Create (if missing) the repo's Python virtualenv at .venv and install the pinned tool set:
# LocalStack in host mode (our S3 Object Lock test server), `cryptography`, which the
# Python log verifier uses, zxing-cpp, which reads back the shop slip's barcode, and cfn-lint,
# which checks the Outposts CloudFormation template.
#
# Usage: scripts/python-venv.sh            # idempotent; fast when already up to date
#        PYTHON=python3.11 scripts/python-venv.sh
#
# Prints the venv path on success. The pins are the ones measured in
# ../shared/notes/feasibility.md section 2; each one fixes a real failure on Python 3.11:
#   localstack-core newer than 4.12.0 uses 3.12-only syntax despite its metadata,
#   cbor2 6.x removed cbor2._decoder, pyOpenSSL >= 24.3 dropped X509.add_extensions,
#   service-identity 26 needs a newer cryptography.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO_ROOT/.venv"
PYTHON="${PYTHON:-python3}"

REQUIREMENTS=(
  'localstack-core[base-runtime]==4.12.0'
  'cbor2==5.6.5'
  'cryptography==43.0.3'
  'pyopenssl==24.2.1'
  'service-identity==24.2.0'
  # Shop slips: an independent Code 128 reader for the printed barcode (shop-terminal tests).
  'zxing-cpp==3.1.1'
  'numpy==2.4.6'
  # The AWS Outposts CloudFormation template (deploy/outposts): schema and property checks.
  'cfn-lint==1.51.0'
)

# The marker records exactly what was installed, so editing the pins above triggers a
# reinstall while an unchanged re-run returns immediately (no pip resolver round trip).
MARKER="$VENV/.outpost-requirements"
WANT="$(printf '%s\n' "${REQUIREMENTS[@]}")"

if [[ -x "$VENV/bin/python" && -f "$MARKER" ]] && [[ "$(cat "$MARKER")" == "$WANT" ]]; then
  echo "$VENV"
  exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "python-venv: creating $VENV with $("$PYTHON" --version 2>&1)" >&2
  "$PYTHON" -m venv "$VENV"
fi

echo "python-venv: installing pinned packages (first run takes ~30 s)" >&2
rm -f "$MARKER"
# pip output goes to stderr: stdout carries only the venv path for callers to capture.
"$VENV/bin/python" -m pip install --quiet "${REQUIREMENTS[@]}" >&2
# Written only after pip succeeded, so an interrupted install is retried next time.
printf '%s\n' "$WANT" >"$MARKER"
echo "$VENV"
