#!/usr/bin/env bash
# Start-to-exit time of /bin/true in a container: launch (with and without cgroup limits) against
# the `unshare -pfmuin --fork chroot` floor, same rootfs directory, same machine, same run.
# Writes bench/out/start.md. Issue 6 extends this into the full peer comparison.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { apt-get update -qq && apt-get install -y -qq hyperfine >/dev/null; }
cargo build --release --quiet
out=bench/out
mkdir -p "$out"
[ -x "$out/rootfs/bin/true" ] || examples/make-rootfs.sh --dir "$out/rootfs" >/dev/null
cat > "$out/true.toml" <<'TOML'
name = "bench"
[rootfs]
path = "rootfs"
[process]
command = ["/bin/true"]
[namespaces]
net = true
[[mounts]]
type = "proc"
target = "/proc"
TOML
sed 's/^name = "bench"/name = "bench-limits"/' "$out/true.toml" > "$out/true-limits.toml"
printf '[limits]\ncpu = "50%%"\nmemory = "256MiB"\n' >> "$out/true-limits.toml"
bin=$PWD/target/release/launch
hyperfine -N --warmup 20 --runs "${RUNS:-200}" --export-markdown "$out/start.md" --export-json "$out/start.json" \
    "unshare -pfmuin --fork chroot $out/rootfs /bin/true" \
    "$bin run $out/true.toml" \
    "$bin run $out/true-limits.toml"
