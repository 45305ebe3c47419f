#!/usr/bin/env bash
# Long fuzz run of the FTP reply parser and the 227/229 parsers (not in CI).
#
# Coverage-guided, with libFuzzer: fuzz/fuzz_targets/replies.rs compiles src/ftp/reply.rs in
# and checks, for every input, no panic, bounded lines, and that every parsed reply, 227 and
# 229 round-trips. Uses the nightly toolchain when there is one (stable works too: the
# coverage instrumentation is plain LLVM passes). Needs a C++ compiler for libFuzzer.
#
#   benches/fuzz_replies.sh              # 10,000,000 inputs
#   RUNS=1000000 benches/fuzz_replies.sh
#
# Prints libFuzzer's final stats and the wall time; exits non-zero on a crash, leaving the
# crashing input in $WORK/artifacts/<time>/. The short property tests (tests/reply_props.rs) run in CI.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RUNS="${RUNS:-10000000}"
WORK="${CARGO_TARGET_DIR:-$ROOT/target}/fuzz-replies"
TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"
TOOLCHAIN=""
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    TOOLCHAIN="+nightly"
fi

export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks"
# --target keeps the instrumentation off build scripts.
cargo $TOOLCHAIN build --release --manifest-path "$ROOT/fuzz/Cargo.toml" \
    --target "$TRIPLE" --target-dir "$WORK/build" --bin replies
BIN="$WORK/build/$TRIPLE/release/replies"

ART="$WORK/artifacts/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$WORK/corpus" "$ART"
cp -n "$ROOT"/fuzz/seeds/* "$WORK/corpus/" 2>/dev/null || true
echo "fuzzing: $RUNS inputs, toolchain ${TOOLCHAIN:-default}, corpus $WORK/corpus"
start=$(date +%s.%N)
status=0
"$BIN" -runs="$RUNS" -max_len=20000 -print_final_stats=1 \
    -artifact_prefix="$ART/" "$WORK/corpus" "$ROOT/fuzz/seeds" || status=$?
end=$(date +%s.%N)
crashes=$(find "$ART" -type f | wc -l)
printf 'inputs %s, wall time %.0f s, crash files %s, exit %s\n' \
    "$RUNS" "$(awk "BEGIN { print $end - $start }")" "$crashes" "$status"
exit "$status"
