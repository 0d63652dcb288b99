#!/usr/bin/env bash
# Benchmarks: whole-process time of `launch plan` and `launch validate` on the examples.
# Writes bench/RESULTS.md. Needs hyperfine (installed from Debian if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }
cargo build --release --quiet
bin=target/release/launch
out=bench/out
mkdir -p "$out"

args=()
for m in hello limits mounts userns network; do
    args+=("$bin plan examples/manifests/$m.toml")
done
args+=("$bin validate examples/manifests/limits.toml" "$bin plan --format json examples/manifests/limits.toml")
hyperfine -N --warmup 50 --runs 500 --export-markdown "$out/plan.md" --export-json "$out/plan.json" "${args[@]}"

{
    echo "# Benchmark results"
    echo
    echo "Machine: $(nproc) CPUs, $(uname -r), $(. /etc/os-release; echo "$PRETTY_NAME"); $(date -u +%Y-%m-%d)."
    echo "launch $(git describe --always --dirty 2>/dev/null || echo unknown), release build; hyperfine $(hyperfine --version | cut -d' ' -f2), 500 runs after 50 warm-ups, no shell (-N)."
    echo
    echo "## \`launch plan\` / \`launch validate\`, whole process (target: ≤ 2 ms)"
    echo
    cat "$out/plan.md"
} > bench/RESULTS.md
echo "wrote bench/RESULTS.md"
