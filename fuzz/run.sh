#!/usr/bin/env bash
# Runs every cargo-fuzz target for a fixed time (default 60 s each; CI's short form), from
# the small committed seeds in fuzz/seeds/<target>/, growing a corpus in a temporary
# directory so the repository stays small. Prints each target's executions; a crash fails
# the run and leaves its input in fuzz/artifacts/<target>/. Targets are built optimized
# (about 5 minutes on 2 cores; the dev profile builds in 2 but runs some 50 times fewer
# inputs, `fuzz/run.sh 5 dev` for a quick look). The long runs are by hand:
#   fuzz/run.sh 3600            # an hour per target
# cargo-fuzz needs nightly compiler features: RUSTC_BOOTSTRAP=1 lets the stable toolchain
# accept them (see fuzz/README.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
seconds="${1:-60}"
profile="${2:-release}"
case "$profile" in
  dev) build=(--dev) ;;
  release) build=(-O) ;;
  *) echo "usage: fuzz/run.sh [SECONDS] [dev|release]" >&2; exit 2 ;;
esac
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
# The fuzz crate has its own target directory: the main build's CARGO_TARGET_DIR (if any)
# must not receive the sanitizer-built artifacts.
unset CARGO_TARGET_DIR
export RUSTC_BOOTSTRAP=1
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cargo fuzz build "${build[@]}" 2>&1 | tail -1
for target in $(cargo fuzz list); do
  mkdir -p "$work/$target"
  log="$work/$target.log"
  if ! cargo fuzz run "${build[@]}" "$target" "$work/$target" "seeds/$target" -- \
      -max_total_time="$seconds" -rss_limit_mb=4096 -print_final_stats=1 >"$log" 2>&1; then
    tail -40 "$log"
    echo "fuzz: $target FAILED (input in fuzz/artifacts/$target/)"
    exit 1
  fi
  execs="$(grep -m1 '^stat::number_of_executed_units' "$log" | awk '{print $2}')"
  echo "fuzz: $target ok, ${execs:-?} executions in ${seconds}s, corpus $(ls "$work/$target" | wc -l) inputs"
done
