#!/usr/bin/env bash
# Fuzzes the replication frame decoder and the session state machines for a bounded time
# (default 30 s per target, OUTPOST_FUZZ_SECONDS to change), on the stable toolchain:
# cargo-fuzz needs nightly-only rustc flags, which RUSTC_BOOTSTRAP=1 unlocks on stable; the
# sanitizer is off (safe Rust; libFuzzer's coverage guidance still works). Installs
# cargo-fuzz from crates.io on first use. A crash leaves its input in
# fuzz/artifacts/<target>/ and fails this script; replay it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none -O <target> fuzz/artifacts/<target>/<file>
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

# Same project-local install as scripts/fuzz.sh.
root="$PWD/../.tools"
if [ ! -x "$root/bin/cargo-fuzz" ]; then
    echo "installing cargo-fuzz into .tools"
    cargo install cargo-fuzz --locked --version '^0.13' --root "$root" --quiet
fi
export PATH="$root/bin:$PATH"
seconds="${OUTPOST_FUZZ_SECONDS:-30}"
export RUSTC_BOOTSTRAP=1
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
for target in wire_decoder wire_sessions; do
    echo "== fuzz $target for ${seconds}s"
    rc=0
    cargo fuzz run --sanitizer none -O "$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1 || rc=$?
    grep -E "^(Done|stat::number_of_executed_units)|panicked|ERROR|SUMMARY|Test unit written" "$log" || true
    if [ "$rc" -ne 0 ]; then
        tail -n 40 "$log" >&2
        echo "fuzz target $target failed (exit $rc); crashing input in fuzz/artifacts/$target/" >&2
        exit 1
    fi
done
