#!/usr/bin/env bash
# Publishes finished experiments: packs each experiment's raw runs — its experiment.toml and, per
# run (its directory RESULTS/<experiment>/<run-id>/, the id a path such as rbp/sparse-8/seed-1),
# config.toml, metrics.jsonl and summary.json (no checkpoints) — into
# docs/results/runs/<experiment>.tar.gz, then regenerates docs/results/runs/table.{md,csv} and
# docs/results/runs/figures/*.svg from the packed runs alone (CI checks that they regenerate).
#   usage: scripts/publish-results.sh RESULTS EXPERIMENT...
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: $0 RESULTS EXPERIMENT..." >&2; exit 2; }
results=$1
shift
out=docs/results/runs
mkdir -p "$out"
for e in "$@"; do
  [ -f "$results/$e/experiment.toml" ] || { echo "$results/$e: no experiment.toml" >&2; exit 2; }
  files=$(cd "$results" && { echo "$e/experiment.toml"; find "$e" -mindepth 2 \
    \( -name config.toml -o -name metrics.jsonl -o -name summary.json \) | LC_ALL=C sort; })
  # reproducible archives: sorted names, no timestamps or owners
  (cd "$results" && tar --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - $files) \
    | gzip -n -9 > "$out/$e.tar.gz"
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for a in "$out"/*.tar.gz; do tar -C "$tmp" -xzf "$a"; done
cargo run --release -q -- table "$tmp" > /dev/null
cargo run --release -q -- plot "$tmp" > /dev/null
cp "$tmp/table.md" "$tmp/table.csv" "$out/"
rm -rf "$out/figures"
mkdir -p "$out/figures"
cp "$tmp"/figures/*.svg "$out/figures/"
echo "published $* into $out"
