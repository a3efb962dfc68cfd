#!/usr/bin/env bash
# Bounded fuzzing of the feed parsers and the odds book (CI): installs cargo-fuzz from
# crates.io into .tools/ on first use, seeds each target with the real fixtures, and runs each
# target for FUZZ_SECONDS (default 60). The machine has stable Rust only; cargo-fuzz needs
# nightly flags (-Z sanitizer), which RUSTC_BOOTSTRAP=1 allows on the stable compiler.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${FUZZ_SECONDS:-60}"
root="$PWD/.tools"
if [ ! -x "$root/bin/cargo-fuzz" ]; then
  echo "== installing cargo-fuzz into .tools"
  cargo install cargo-fuzz --version '^0.13' --locked --root "$root" --quiet
fi
export PATH="$root/bin:$PATH" RUSTC_BOOTSTRAP=1
# Own target dir: fuzz builds use sanitizer flags that would invalidate the main build cache.
export CARGO_TARGET_DIR="$PWD/fuzz/target"
corpus="$PWD/fuzz/corpus"
mkdir -p "$corpus/uof" "$corpus/betfair"
for f in fixtures/uof/*/*.xml; do cp -f "$f" "$corpus/uof/$(basename "$(dirname "$f")")-$(basename "$f")"; done
cp -f fixtures/betfair/betfairlightweight/streaming_*.json "$corpus/betfair/"
head -n 80 fixtures/betfair/betfairlightweight/BASIC-1.132153978 > "$corpus/betfair/basic-head.jsonl"
for t in uof betfair; do
  echo "== fuzz $t for ${secs}s"
  (cd fuzz && cargo fuzz run "$t" "$corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 2>&1 | tail -n 15)
  # cargo fuzz exits non-zero on a crash; pipefail propagates it.
done
