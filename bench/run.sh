#!/usr/bin/env bash
# `just bench`: launch against crun, runc, bubblewrap and the `unshare … chroot` floor, starting
# /bin/true in a container with the same isolation, from the same rootfs directory; plus
# `launch plan`/`launch validate` whole-process time and a profile of one `launch run`.
# Writes bench/RESULTS.md (raw data in bench/out/). Debian 12, as root; takes ~10 minutes.
#
# Then bench/images.sh (issue 13): the start of a cached ~200 MB Debian image against the small
# directory root, its first pull + unpack from a loopback docker-registry against `skopeo copy` +
# `umoci unpack` and `podman pull`, unpack throughput against GNU tar for .tar, .tar.gz and
# .tar.zst, and the peak RSS of a pull as the image grows (section "Images" of the report).
#
# Then bench/network.sh (issue 14), in network namespaces of its own: a start with
# `[network] mode = "bridge"` against `mode = "none"` and `podman run --network bridge`, and bulk
# TCP throughput through a published port against loopback (root: bridge; rootless: pasta
# against podman's port forwarding) (section "Network" of the report).
#
# Knobs (environment): ISO_ROUNDS (isolated starts per command, 40), B2B_ROUNDS (blocks per
# command, 5), B2B_RUNS (starts per block, 200), RSS_RUNS (5), PROFILE=0 to skip bench/profile.sh,
# WAIT_QUIET (seconds to wait for a load average below 0.5 before measuring, 120),
# BENCH_ONLY=images (only bench/images.sh: its section is replaced in the existing
# bench/RESULTS.md and marked as a partial run; with ISO_ROUNDS=10 B2B_ROUNDS=2 IMG_ROUNDS=2 it
# takes ~5 minutes once the image is cached), BENCH_ONLY=network (only bench/network.sh, its
# section replaced likewise; ~5 minutes), BENCH_ONLY=main (everything but the images and the
# network), IMG_ROUNDS (rounds of each pull, unpack and pull-RSS row, 3), NET_* (see
# bench/network.sh), BENCH_BUILD=0 (measure the binaries already built instead of running
# scripts/release.sh and cargo build --release).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
need_root
ONLY=${BENCH_ONLY:-all}
case $ONLY in all | main | images | network) ;; *) echo "bench: BENCH_ONLY is all, main, images or network, not $ONLY" >&2; exit 2 ;; esac
ver() { "$@" 2>&1 | head -1; }

if [ "$ONLY" = images ]; then
    ensure_pkgs /usr/bin/time:time
    build_launch
    make_rootfs
    write_manifests
    cleanup_leftovers
    trap 'cleanup_leftovers' EXIT
    bench/images.sh
    "$PY" - "$out/images/meta.json" <<PY
import json, sys
json.dump({"date": "$(date -u '+%Y-%m-%d %H:%M UTC')",
           "launch": "$(git describe --always --dirty 2>/dev/null || echo unknown)"}, open(sys.argv[1], "w"))
PY
    "$PY" bench/bench.py images-report --start "$out/images/start.json" --ops "$out/images/ops.json" \
        --meta "$out/images/meta.json" --into bench/RESULTS.md
    left=$(list_leftovers)
    [ -z "$left" ] || { echo "bench: WARNING: leftovers:" >&2; echo "$left" >&2; }
    sed -n '/^### Targets (images)/,/^### Start/p' bench/RESULTS.md | sed '$d'
    echo "wrote the Images section of bench/RESULTS.md (partial run)"
    exit 0
fi

if [ "$ONLY" = network ]; then
    ensure_pkgs /usr/bin/time:time
    build_launch
    make_rootfs
    cleanup_leftovers
    trap 'cleanup_leftovers' EXIT
    bench/network.sh
    "$PY" bench/bench.py network-report --start "$out/network/start.json" --bulk "$out/network/bulk.json" \
        --meta "$out/network/meta.json" --into bench/RESULTS.md
    left=$(list_leftovers)
    [ -z "$left" ] || { echo "bench: WARNING: leftovers:" >&2; echo "$left" >&2; }
    sed -n '/^### Targets (network)/,/^### Start-to-exit of `\/bin\/true`: /p' bench/RESULTS.md | sed '$d'
    echo "wrote the Network section of bench/RESULTS.md (partial run)"
    exit 0
fi

ensure_pkgs crun:crun runc:runc bwrap:bubblewrap hyperfine:hyperfine /usr/bin/time:time \
    strace:strace unshare:util-linux
build_launch
make_rootfs
write_manifests
write_bundles
cleanup_leftovers
trap 'cleanup_leftovers' EXIT

R=$ROOT/$out/rootfs
wrap=0
crun_needs_wrapper && wrap=1

# The commands, in table order. Python builds the JSON (argv lists with exact quoting).
WRAP=$wrap R=$R BIN=$BIN GLIBC_BIN=$GLIBC_BIN OUT=$ROOT/$out CRUN_WRAP=$CRUN_WRAP "$PY" - > "$out/spec.json" <<'PY'
import json, os, sys
R, BIN, OUT, WRAP = os.environ["R"], os.environ["BIN"], os.environ["OUT"], os.environ["WRAP"] == "1"
CW = os.environ["CRUN_WRAP"]
TIME = ["/usr/bin/time", "-f", "%M", "-o", "{rss}"]
cmds = []
def add(key, label, argv, rss=None):
    cmds.append({"key": key, "label": label, "argv": argv, "rss_argv": rss or TIME + argv})
def crun(key, label, bundle, extra=()):
    run = ["crun", *extra, "run", "--bundle", bundle, "{id}"]
    if not WRAP:
        return add(key, label, run)
    # $0 = bundle, $1 = container id, $2 = /usr/bin/time's output file
    opts = "".join(x + " " for x in extra)
    script = CW + ' crun %srun --bundle "$0" "$1"' % opts
    rss = CW + ' /usr/bin/time -f %%M -o "$2" crun %srun --bundle "$0" "$1"' % opts
    add(key, label, ["unshare", "-m", "sh", "-c", script, bundle, "{id}"],
        ["unshare", "-m", "sh", "-c", rss, bundle, "{id}", "{rss}"])

add("true", "plain `/bin/true`", ["/bin/true"])
add("floor", "`unshare -pfmuin --fork chroot` (floor)",
    ["unshare", "-pfmuin", "--fork", "chroot", R, "/bin/true"])
add("bwrap", "bubblewrap `--unshare-all`",
    ["bwrap", "--unshare-all", "--die-with-parent", "--bind", R, "/", "--proc", "/proc",
     "--dev", "/dev", "/bin/true"])
add("launch", "**launch**", [BIN, "run", OUT + "/true.toml"])
add("launch-limits", "**launch, limits**", [BIN, "run", OUT + "/true-limits.toml"])
add("launch-limits-unconfined", "launch, limits, `[security] profile = \"unconfined\"`",
    [BIN, "run", OUT + "/true-limits-unconfined.toml"])
add("launch-glibc-limits", "launch, limits, plain `cargo build --release` (glibc, no PGO)",
    [os.environ["GLIBC_BIN"], "run", OUT + "/true-limits.toml"])
crun("crun-nocg", "crun, no cgroups (`--cgroup-manager=disabled`)", OUT + "/oci", ["--cgroup-manager=disabled"])
crun("crun", "crun", OUT + "/oci")
crun("crun-limits", "crun, limits", OUT + "/oci-limits")
add("runc", "runc", ["runc", "run", "--bundle", OUT + "/oci", "{id}"])
add("runc-limits", "runc, limits", ["runc", "run", "--bundle", OUT + "/oci-limits", "{id}"])
add("launch-bundle-limits", "**launch `run --bundle`**, limits (the same bundle as crun and runc)",
    [BIN, "run", "--bundle", OUT + "/oci-limits"])
if WRAP:
    add("crun-wrapper", "crun wrapper alone (`unshare -m sh -c 'mount …; exec /bin/true'`)",
        ["unshare", "-m", "sh", "-c", CW + " /bin/true"])
json.dump({"commands": cmds}, sys.stdout, indent=1)
PY

# Each tool once, so a broken set-up fails here with its message rather than in the middle.
"$PY" - "$out/spec.json" <<'PY'
import json, subprocess, sys
for c in json.load(open(sys.argv[1]))["commands"]:
    argv = [a.replace("{id}", "lbench-check-" + c["key"]) for a in c["argv"]]
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        sys.exit("bench: %s hangs (no exit after 60 s): %s" % (c["key"], " ".join(argv)))
    if p.returncode:
        sys.exit("bench: %s fails (exit %d): %s\n%s" % (c["key"], p.returncode, " ".join(argv), p.stderr))
PY

# Other builds on a 2-CPU machine swamp millisecond timings: wait (up to WAIT_QUIET seconds,
# default 120) for the 1-minute load average to fall below 0.5, then measure anyway.
for _ in $(seq "${WAIT_QUIET:-120}"); do
    awk '{exit !($1 < 0.5)}' /proc/loadavg && break
    sleep 1
done
echo "bench: load average before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
: > "$out/run.log"
"$PY" bench/bench.py measure --spec "$out/spec.json" --out "$out/results.json" --log "$out/run.log" \
    --iso-rounds "${ISO_ROUNDS:-40}" --b2b-rounds "${B2B_ROUNDS:-5}" --b2b-runs "${B2B_RUNS:-200}" \
    --rss-runs "${RSS_RUNS:-5}"

# The security target compares two starts a few tenths of a millisecond apart: measure that pair
# again, interleaved, with several times the samples (bench.py report judges the target on it).
"$PY" - "$out/spec.json" "$out/security-spec.json" <<'PY'
import json, sys
cmds = json.load(open(sys.argv[1]))["commands"]
keep = [c for c in cmds if c["key"] in ("launch-limits", "launch-limits-unconfined")]
json.dump({"commands": keep}, open(sys.argv[2], "w"), indent=1)
PY
"$PY" bench/bench.py measure --spec "$out/security-spec.json" --out "$out/security.json" \
    --log "$out/run.log" --iso-rounds "${SEC_ISO_ROUNDS:-160}" --b2b-rounds "${SEC_B2B_ROUNDS:-12}" \
    --b2b-runs "${B2B_RUNS:-200}" --rss-runs 0

# `launch plan` / `validate`: no containers, no cgroups, so hyperfine's consecutive runs are fine.
plan_args=("$BIN --version")
for m in hello limits mounts userns network; do
    plan_args+=("$BIN plan examples/manifests/$m.toml")
done
for m in hello limits mounts userns network; do
    plan_args+=("$BIN validate examples/manifests/$m.toml")
done
plan_args+=("$BIN plan --format json examples/manifests/limits.toml")
PLAN_WARMUP=30 PLAN_RUNS=300
echo "bench: hyperfine: launch plan / validate" >&2
hyperfine -N --style none --warmup $PLAN_WARMUP --runs $PLAN_RUNS --export-json "$out/plan.json" \
    "${plan_args[@]}" >/dev/null

if [ "${PROFILE:-1}" != 0 ]; then
    bench/profile.sh
fi

images=()
network=()
if [ "$ONLY" = all ]; then
    bench/images.sh
    images=(--images-start "$out/images/start.json" --images-ops "$out/images/ops.json")
    bench/network.sh
    network=(--network-start "$out/network/start.json" --network-bulk "$out/network/bulk.json"
        --network-meta "$out/network/meta.json")
fi

# Machine and tool versions.
MACHINE_CG=$(if [ "$wrap" = 1 ] || [ -d /sys/fs/cgroup/unified ]; then echo "hybrid (v1 controllers + cgroup2 at /sys/fs/cgroup/unified)";
             elif [ -f /sys/fs/cgroup/cgroup.controllers ]; then echo "v2"; else echo "v1"; fi)
"$PY" - "$out/meta.json" <<PY
import json, sys
json.dump({
    "date": "$(date -u '+%Y-%m-%d %H:%M UTC')",
    "nproc": "$(nproc)",
    "kernel": "$(uname -r)",
    "os": "$(. /etc/os-release; echo "$PRETTY_NAME")",
    "debian_version": "$(cat /etc/debian_version 2>/dev/null || echo '?')",
    "cgroups": "$MACHINE_CG",
    "launch": "$(git describe --always --dirty 2>/dev/null || echo unknown)",
    "tools": ["$(ver crun --version)", "$(ver runc --version)", "$(ver bwrap --version)",
              "$(ver hyperfine --version)", "$(ver unshare --version)"],
    "hyperfine": "$(hyperfine --version | cut -d' ' -f2)",
    "plan_runs": $PLAN_RUNS, "plan_warmup": $PLAN_WARMUP,
    "root": "$ROOT",
    "run_fs": "$(findmnt -no FSTYPE -T /run)",
}, open(sys.argv[1], "w"), indent=1)
PY

"$PY" bench/bench.py report --results "$out/results.json" --meta "$out/meta.json" \
    --plan "$out/plan.json" --profile "$out/profile.md" --security "$out/security.json" \
    "${images[@]}" "${network[@]}" > bench/RESULTS.md

cleanup_leftovers
left=$(list_leftovers)
[ -z "$left" ] || { echo "bench: WARNING: leftovers:" >&2; echo "$left" >&2; }
sed -n '/^## Start-to-exit/,/^## `launch plan`/p' bench/RESULTS.md | sed '$d'
echo "wrote bench/RESULTS.md"
