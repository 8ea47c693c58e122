#!/usr/bin/env bash
# One prepared GPU measurement, written as one Markdown report.
#
#   scripts/gpu-report.sh build        # on a machine with the crates: the binaries (and the data)
#                                      # into target/gpu-report/, stripped, ready to be copied
#   scripts/gpu-report.sh run [OUT]    # on the GPU machine (no network needed): runs them and
#                                      # writes OUT/gpu-report.md (OUT: $OUT, or target/gpu-report/out)
#   scripts/gpu-report.sh [OUT]        # both
#
# What it measures, each step under its own time limit so that the whole stays under 8 minutes:
#   1. the adapter (and nvidia-smi where present);
#   2. the device probes and the step benches: the paper's MNIST net (BP, RBP, SRBP) and its
#      CIFAR-10 net, GPU against the CPU backend (`cargo bench -p rbprop-gpu --bench gpu_step`);
#   3. ensembles stacked on the device (one dispatch per operation for all members): the MNIST
#      net's BP and SRBP steps and the CIFAR-10 net's RBP step for K = 1, 8, 32, 64 members,
#      per member-step, against K = 1 and the CPU backend (`gpu_step --bench ensemble`);
#   4. the dense SRBP step's device time per kernel (RBP_GPU_PROFILE=1);
#   5. the paper's basic grid (45 runs), 2 epochs each: on the GPU in ensembles (the 5 seeds of
#      each cell stacked), on the GPU run by run, and on the CPU (solo runs, one per core): wall
#      seconds and run-epochs finished.
#
# RBP_REPORT_QUICK=1 shortens every step (the probes, the SRBP dense bench, ensembles of 1 and 8
# of the dense nets, the smoke grid instead of the basic one): a check that the script runs, on
# lavapipe for instance.
set -uo pipefail
cd "$(dirname "$0")/.."
bin=target/gpu-report

build() {
  set -e
  cargo build --release -p rbprop-cli
  local bench
  bench=$(cargo bench -p rbprop-gpu --bench gpu_step --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "gpu_step" and m.get("executable"):
        print(m["executable"])' | tail -1)
  [ -n "$bench" ] || { echo "gpu-report: the gpu_step bench did not build" >&2; exit 2; }
  mkdir -p "$bin"
  cp target/release/rbp "$bin/rbp"
  cp "$bench" "$bin/gpu_step"
  strip "$bin/rbp" "$bin/gpu_step" 2>/dev/null || true
  # the data the grid runs on, where this machine has it (the GPU machine may have none)
  local fm=${RBP_FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
  if [ -f "$fm/train-images-idx3-ubyte.gz" ]; then
    mkdir -p "$bin/fashion-mnist"
    cp "$fm"/*-ubyte.gz "$bin/fashion-mnist/"
  fi
  du -sh "$bin"
  set +e
}

# step TITLE SECONDS COMMAND…: runs COMMAND under a time limit, its output into the report
step() {
  local title=$1 limit=$2
  shift 2
  echo "gpu-report: $title" >&2
  {
    echo
    echo "## $title"
    echo
    echo '```'
    echo "\$ $*"
  } >>"$report"
  local start end rc
  start=$(date +%s%N)
  timeout "$limit" "$@" >>"$report" 2>&1
  rc=$?
  end=$(date +%s%N)
  local ms=$(((end - start) / 1000000))
  {
    echo '```'
    echo
    printf 'exit %s after %d.%01d s (limit %s s)%s\n' "$rc" $((ms / 1000)) $((ms % 1000 / 100)) \
      "$limit" "$([ "$rc" = 124 ] && echo ': stopped at the limit')"
  } >>"$report"
  return 0
}

# grid TITLE SECONDS ARGS…: a reproduce of the grid into a fresh results directory, timed
grid() {
  local title=$1 limit=$2
  shift 2
  local results
  results=$(mktemp -d)
  step "$title" "$limit" "$bin/rbp" reproduce "$grid_config" --results "$results" --quick 2 \
    --data "$data" "$@"
  local runs epochs
  runs=$(find "$results" -name summary.json | wc -l)
  epochs=$(find "$results" -name metrics.jsonl -exec cat {} + 2>/dev/null | wc -l)
  echo "runs written: $runs, run-epochs finished: $epochs" >>"$report"
  rm -rf "$results"
}

run() {
  local out=${1:-${OUT:-$bin/out}}
  mkdir -p "$out"
  report="$out/gpu-report.md"
  [ -x "$bin/rbp" ] && [ -x "$bin/gpu_step" ] ||
    { echo "gpu-report: no binaries in $bin; run 'scripts/gpu-report.sh build' first" >&2; exit 2; }
  local quick=${RBP_REPORT_QUICK:-}
  {
    echo "# GPU report"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$([ -n "$quick" ] && echo ', quick')."
    echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores."
  } >"$report"
  if command -v nvidia-smi >/dev/null 2>&1; then
    step "nvidia-smi" 30 nvidia-smi
  fi
  if [ -n "$quick" ]; then
    step "device probes" 120 "$bin/gpu_step" --bench probe
    step "dense step, SRBP" 180 "$bin/gpu_step" --bench srbp
    step "ensembles stacked on the device" 180 "$bin/gpu_step" --bench ensemble
  else
    step "device probes and step benches (dense and conv)" 150 "$bin/gpu_step" --bench
    step "ensembles stacked on the device" 120 "$bin/gpu_step" --bench ensemble
    RBP_GPU_PROFILE=1 step "dense SRBP step, device time per kernel" 40 "$bin/gpu_step" --bench srbp
  fi
  data=$bin/fashion-mnist
  grid_config=configs/paper/basic.toml
  if [ -n "$quick" ] || [ ! -f "$data/train-images-idx3-ubyte.gz" ]; then
    data=embedded:fashion-mnist-subset
    grid_config=configs/smoke/table1.toml
    echo >>"$report"
    echo "The grid below is the smoke grid on the embedded subset (no full Fashion-MNIST here)." >>"$report"
  fi
  grid "grid on the GPU, 2 epochs, ensembles (every cell's seeds stacked)" 60 --device gpu --jobs 1 --ensemble 8
  grid "grid on the GPU, 2 epochs, solo runs" 50 --device gpu --jobs 1 --ensemble 1
  grid "grid on the CPU, 2 epochs, solo runs, one per core" 50
  echo "gpu-report: wrote $report" >&2
}

case "${1:-}" in
  build) build ;;
  run) run "${2:-}" ;;
  *) build && run "${1:-}" ;;
esac
