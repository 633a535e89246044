#!/usr/bin/env bash
# Runs the cargo-fuzz (libFuzzer) targets in fuzz/ for a short time each.
# Not run in CI: a developer's tool.
#
#   scripts/fuzz.sh                 # every target, 60 s each
#   scripts/fuzz.sh 300             # every target, 300 s each
#   scripts/fuzz.sh 30 fuzz_email   # only the targets named, 30 s each
#   FUZZ_SECONDS=120 FUZZ_SANITIZER=none scripts/fuzz.sh
#
# Exits non-zero if any target finds a crash (or a timeout / OOM), leaving the
# input in fuzz/artifacts/<target>/. Reproduce one with
#   cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run <target> artifacts/<target>/crash-...
# (with FUZZ_SANITIZER=none add: -s none --target-dir target/sanitizer-none).
# The growing corpus is fuzz/corpus/<target>/ (git-ignored); the committed
# seeds are fuzz/seeds/<target>/ and are only read.
#
# Toolchain: cargo-fuzz needs nightly-only rustc flags (-Zsanitizer,
# -Cllvm-args for sancov). The machine has only the stable toolchain, so
# RUSTC_BOOTSTRAP=1 lets stable rustc accept them. AddressSanitizer works on
# stable that way: its runtime (librustc-stable_rt.asan.a) ships with the
# stable rust-std component, so the default is cargo-fuzz's own default,
# `address`, kept because unicode-normalization and tinyvec, which the
# password parser runs, contain `unsafe`. The parsers themselves are safe
# Rust, so `FUZZ_SANITIZER=none` (also works on stable) finds the same panics
# at 3-8x the executions per second (measured here: fuzz_code 74k -> 551k
# exec/s, fuzz_password 3k -> 9.6k); use it for long runs. The other
# sanitizers (memory, thread, leak) are of no use here; memory, and
# cargo-fuzz's --build-std / --careful, need the rust-src component, which
# is not installed and cannot be fetched here.
set -euo pipefail

cd "$(dirname "$0")/../fuzz"

export RUSTC_BOOTSTRAP=1

seconds="${1:-${FUZZ_SECONDS:-60}}"
[[ $# -gt 0 ]] && shift
sanitizer="${FUZZ_SANITIZER:-address}"
# Each sanitizer gets its own target dir: switching would otherwise rebuild
# the whole dependency tree (several minutes) every time.
target_dir=()
[[ "$sanitizer" != address ]] && target_dir=(--target-dir "target/sanitizer-$sanitizer")
if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    targets=(fuzz_nit fuzz_email fuzz_code fuzz_ident fuzz_password)
fi
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [[ "$seconds" -eq 0 ]]; then
    echo "fuzz.sh: seconds must be a positive integer, got '$seconds'" >&2
    exit 2
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz from crates.io" >&2
    cargo install cargo-fuzz --locked
fi

# Build everything first, so a build error is not mistaken for a crash.
for t in "${targets[@]}"; do
    cargo fuzz build --sanitizer "$sanitizer" "${target_dir[@]}" "$t"
done

mkdir -p artifacts/logs
declare -a failed=()
summary=""
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    seeds=()
    [[ -d "seeds/$t" ]] && seeds=("seeds/$t")
    # Password inputs over 4 KiB take an early refusal path: let them in.
    max_len=4096
    [[ "$t" == fuzz_password ]] && max_len=4200
    log="artifacts/logs/$t.log"
    echo "== $t: ${seconds}s, sanitizer $sanitizer (log: fuzz/$log)"
    set +e
    cargo fuzz run --sanitizer "$sanitizer" "${target_dir[@]}" "$t" "corpus/$t" "${seeds[@]}" -- \
        -max_total_time="$seconds" -max_len="$max_len" -timeout=10 \
        -print_final_stats=1 2>&1 | tee "$log" | grep -E '^(==|INFO: Running|#[0-9]+[[:space:]]+DONE|Done|stat::number_of_executed_units|thread .* panicked|SUMMARY|Failing input|artifact_prefix|Test unit written)'
    status=${PIPESTATUS[0]}
    set -e
    execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{print $2}' | tail -1)
    if [[ $status -ne 0 ]]; then
        failed+=("$t")
        summary+=$(printf '%-14s FAILED (exit %s) execs=%s\n' "$t" "$status" "${execs:-?}")$'\n'
    else
        summary+=$(printf '%-14s ok                execs=%s\n' "$t" "${execs:-?}")$'\n'
    fi
done

echo
echo "== summary (${seconds}s per target, sanitizer $sanitizer)"
printf '%s' "$summary"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "crashing targets: ${failed[*]} (inputs in fuzz/artifacts/<target>/)" >&2
    exit 1
fi
