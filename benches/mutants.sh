#!/usr/bin/env bash
# Mutation check (not in CI: one build per mutant, hours on 2 cores): cargo-mutants over the
# sizing maths, the ledger and the reply parsers, against the library's unit tests
# (.cargo/mutants.toml). Survivors are listed in OUT/mutants.out/missed.txt; each is either an
# untested behaviour (add the test) or equivalent code (say why in the notes).
#
#   benches/mutants.sh                          # the default files below
#   benches/mutants.sh src/model/erlang.rs      # just these
#   SHARD=0/4 benches/mutants.sh                # a quarter of the mutants
#   FILTER=summary:: benches/mutants.sh src/summary/ledger.rs   # only the tests named so
#   FILTER="plan:: -- --skip plan::tests::slow" benches/mutants.sh src/plan/fit.rs
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-mutants >/dev/null || { echo "install it: cargo install cargo-mutants" >&2; exit 2; }
OUT=${OUT:-target/mutants-report}
# One target directory across runs and mutants, so dependencies are built once.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/mutants-build}
if [ "$#" -eq 0 ]; then
    set -- src/summary/ledger.rs src/ftp/reply.rs src/ftp/passive.rs 'src/model/*.rs' 'src/plan/*.rs'
fi
args=()
for f in "$@"; do args+=(--file "$f"); done
[ -n "${SHARD:-}" ] && args+=(--shard "$SHARD")
# cargo-mutants sizes the timeout on the unmutated tree's test time (at least 20 s), so a mutant
# that loops forever costs seconds, not minutes; TIMEOUT=s overrides it.
[ -n "${TIMEOUT:-}" ] && args+=(--timeout "$TIMEOUT")
# A filter on test names (the mutated module's own tests) for a shorter test phase; it is
# split on spaces, so it can carry the test harness's options too ("plan:: -- --skip slow_one":
# cargo test hands what follows its own -- to the harness).
if [ -n "${FILTER:-}" ]; then
    read -ra filter <<<"$FILTER"
    args+=(-- "${filter[@]}")
fi
mkdir -p "$OUT"
cargo mutants --output "$OUT" "${args[@]}" >"$OUT/log.txt" 2>&1 || true
for kind in caught missed timeout unviable; do
    printf '%-9s %s\n' "$kind" "$(wc -l <"$OUT/mutants.out/$kind.txt" 2>/dev/null || echo 0)"
done
echo "survivors: $OUT/mutants.out/missed.txt"
