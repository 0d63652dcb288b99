#!/usr/bin/env bash
# Quick check (~1 minute): start-to-exit of /bin/true in a container, launch with and without
# cgroup limits against the `unshare -pfmuin --fork chroot` floor, same rootfs directory,
# interleaved (bench/bench.py). Prints a table and writes bench/out/start.md.
# The full comparison with crun, runc and bubblewrap is `just bench` (bench/run.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
need_root
ensure_pkgs /usr/bin/time:time
build_launch
make_rootfs
write_manifests
trap 'cleanup_leftovers' EXIT
"$PY" - > "$out/start-spec.json" <<PY
import json, sys
B, O = "$BIN", "$ROOT/$out"
c = [
    ("floor", "\`unshare -pfmuin --fork chroot rootfs /bin/true\`",
     ["unshare", "-pfmuin", "--fork", "chroot", O + "/rootfs", "/bin/true"]),
    ("launch", "\`launch run true.toml\` (pid, mount, uts, ipc, net; pivot_root; /proc; minimal /dev)",
     [B, "run", O + "/true.toml"]),
    ("launch-limits", "\`launch run true-limits.toml\` (the same + cpu and memory limits)",
     [B, "run", O + "/true-limits.toml"]),
]
json.dump({"commands": [{"key": k, "label": l, "argv": a} for k, l, a in c]}, sys.stdout, indent=1)
PY
"$PY" bench/bench.py measure --spec "$out/start-spec.json" --out "$out/start.json" --log "$out/start.log" \
    --iso-rounds "${ISO_ROUNDS:-20}" --b2b-rounds 3 --b2b-runs "${RUNS:-100}" --rss-runs 0
"$PY" bench/bench.py ablation --results "$out/start.json" --base floor | tee "$out/start.md"
