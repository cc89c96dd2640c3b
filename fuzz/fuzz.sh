#!/usr/bin/env bash
# Builds and runs the libFuzzer targets in fuzz/ on the STABLE toolchain,
# with plain cargo (no cargo-fuzz needed): the RUSTFLAGS below are the ones
# `cargo fuzz build --sanitizer none` (cargo-fuzz 0.13) passes.
#
#   fuzz/fuzz.sh build                  build every target (release, instrumented)
#   fuzz/fuzz.sh run [TARGET...]        fuzz each target for FUZZ_SECONDS; exit 1 on any crash
#   fuzz/fuzz.sh replay [TARGET...]     run seeds + corpus once (-runs=0): a regression check
#   fuzz/fuzz.sh repro TARGET FILE...   run the target on these inputs only (a crash's reproduction)
#   fuzz/fuzz.sh list                   the targets
#
# Environment:
#   FUZZ_SECONDS    seconds per target for `run` (default 20)
#   FUZZ_SECONDS_<target>  the same for one target (e.g. FUZZ_SECONDS_keyfile=3)
#   FUZZ_BUDGET     seconds for all targets of one `run`, build not counted
#                   (default: no cap); targets left when it is spent are skipped
#   FUZZ_REPORT     append one tab-separated line of figures per target to this file
#   FUZZ_SANITIZER  none (default, stable) | address (needs a nightly toolchain)
#   FUZZ_TOOLCHAIN  toolchain for FUZZ_SANITIZER=address (default nightly)
#   FUZZ_JOBS       cargo build jobs (default 2)
#   FUZZ_ARGS       extra libFuzzer flags for `run`, e.g. "-max_len=8192"
#
# Layout: targets in fuzz/fuzz_targets/, committed seeds in fuzz/seeds/<t>/
# (read, never written); the growing corpus in fuzz/corpus/<t>/ and crash
# inputs in fuzz/artifacts/<t>/ (both git-ignored), as cargo-fuzz lays them
# out, so `cargo fuzz run --sanitizer none <t>` works on the same tree.
set -euo pipefail

FUZZ_DIR=$(cd "$(dirname "$0")" && pwd)
cd "$FUZZ_DIR"
SECONDS_PER=${FUZZ_SECONDS:-20}
BUDGET=${FUZZ_BUDGET:-0}
SANITIZER=${FUZZ_SANITIZER:-none}
JOBS=${FUZZ_JOBS:-2}
HOST=$(rustc -vV | sed -n 's/^host: //p')

FLAGS=(
  -Cpasses=sancov-module
  -Cllvm-args=-sanitizer-coverage-level=4
  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
  -Cllvm-args=-sanitizer-coverage-pc-table
  -Cllvm-args=-sanitizer-coverage-trace-compares
  --cfg fuzzing
  -Cllvm-args=-simplifycfg-branch-fold-threshold=0
  -Cllvm-args=-sanitizer-coverage-stack-depth
  -Cdebug-assertions
  -Ccodegen-units=1
)
CARGO=(cargo)
TARGET_DIR="$FUZZ_DIR/target"
case $SANITIZER in
  none) ;;
  address)
    CARGO=(cargo "+${FUZZ_TOOLCHAIN:-nightly}")
    FLAGS+=(-Zsanitizer=address)
    TARGET_DIR="$FUZZ_DIR/target/asan"
    ;;
  *) echo "fuzz: FUZZ_SANITIZER must be none or address" >&2; exit 2 ;;
esac
BIN_DIR="$TARGET_DIR/$HOST/release"
# RUSTFLAGS below is the whole flag set; an encoded one would win over it.
unset CARGO_ENCODED_RUSTFLAGS

targets() {
  sed -n '/^\[\[bin\]\]/,/^path/ s/^name = "\(.*\)"/\1/p' Cargo.toml
}

build() {
  # --target keeps the flags away from build scripts and proc macros.
  RUSTFLAGS="${FLAGS[*]}" "${CARGO[@]}" build --locked --release --bins \
    -j "$JOBS" --target "$HOST" --target-dir "$TARGET_DIR"
}

# The helper targets keep their vaults here (tmpfs when there is one);
# removed when this script exits.
scratch() {
  local base=/dev/shm
  [[ -d $base && -w $base ]] || base=${TMPDIR:-/tmp}
  DEVC_VAULT_FUZZ_TMP=$(mktemp -d "$base/devc-vault-fuzz.XXXXXX")
  export DEVC_VAULT_FUZZ_TMP
  trap 'rm -rf "$DEVC_VAULT_FUZZ_TMP"' EXIT
}

# Inputs that failed: crashes, timeouts, out-of-memory (not slow units).
count_failures() {
  find "$1" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l
}

# One line of figures from a libFuzzer log.
figures() {
  local log=$1 t=$2 secs=$3 crashes=$4
  local done execs rate cov ft corp
  done=$(grep -E '^#[0-9]+[[:space:]]+(DONE|INITED)' "$log" | tail -1 || true)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done")
  corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<<"$done")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$secs" "${execs:-?}" "${rate:-?}" \
    "${cov:-?}" "${ft:-?}" "${corp:-?}" "$crashes"
}

run_targets() {
  local mode=$1
  shift
  local list=("$@")
  ((${#list[@]})) || mapfile -t list < <(targets)
  scratch
  local start=$SECONDS failed=() t
  printf 'target\tseconds\texecs\texec/s\tcov\tft\tcorpus\tcrashes\n'
  for t in "${list[@]}"; do
    [[ -x "$BIN_DIR/$t" ]] || { echo "fuzz: no such target: $t" >&2; exit 2; }
    local corpus="$FUZZ_DIR/corpus/$t" artifacts="$FUZZ_DIR/artifacts/$t/"
    mkdir -p "$corpus" "$artifacts"
    local args=(-artifact_prefix="$artifacts" -timeout=10 -print_final_stats=1) secs cap
    if [[ $mode == replay ]]; then
      args+=(-runs=0)
      secs=0
      cap=300
    else
      local own="FUZZ_SECONDS_$t"
      secs=${!own:-$SECONDS_PER}
      if ((BUDGET > 0)); then
        local left=$((BUDGET - (SECONDS - start)))
        if ((left < 5)); then
          echo "fuzz: budget spent, skipping $t" >&2
          continue
        fi
        ((secs > left)) && secs=$left
      fi
      # shellcheck disable=SC2206 # FUZZ_ARGS is a list of flags
      args+=(-max_total_time="$secs" ${FUZZ_ARGS:-})
      cap=$((secs + 120))
    fi
    local log before after status=0
    log=$(mktemp)
    before=$(count_failures "$artifacts")
    # `timeout` is a backstop only: -max_total_time ends the run by itself.
    timeout --kill-after=10 "$cap" "$BIN_DIR/$t" "${args[@]}" "$corpus" "$FUZZ_DIR/seeds/$t" \
      >"$log" 2>&1 || status=$?
    after=$(count_failures "$artifacts")
    local line
    line=$(figures "$log" "$t" "$secs" $((after - before)))
    echo "$line"
    [[ -n ${FUZZ_REPORT:-} ]] && echo "$line" >>"$FUZZ_REPORT"
    if ((status != 0)); then
      failed+=("$t")
      echo "fuzz: $t FAILED (exit $status); new inputs in $artifacts:" >&2
      find "$artifacts" -type f -newer "$log" -printf '  %p\n' >&2 || true
      grep -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse|INITED)|^(INFO|WARNING): ' "$log" \
        | tail -40 >&2
      echo "fuzz: reproduce with: fuzz/fuzz.sh repro $t <crash file>" >&2
    fi
    rm -f "$log"
  done
  if ((${#failed[@]})); then
    echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]}" >&2
    return 1
  fi
  echo "fuzz: ${mode}: all targets passed ($((SECONDS - start)) s)"
}

cmd=${1:-run}
shift || true
case $cmd in
  list) targets ;;
  build) build ;;
  run | replay) build && run_targets "$cmd" "$@" ;;
  repro)
    (($# >= 2)) || { echo "usage: fuzz/fuzz.sh repro TARGET FILE..." >&2; exit 2; }
    build
    scratch
    t=$1
    shift
    RUST_BACKTRACE=1 "$BIN_DIR/$t" "$@"
    ;;
  *) sed -n '2,/^set -e/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
