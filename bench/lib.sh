# Shared set-up for bench/run.sh, bench/start.sh and bench/profile.sh (sourced, not run).
# Everything it makes lives in bench/out/ (gitignored). Needs root (namespaces, cgroups, mounts).

out=bench/out
ROOT=$PWD
# The release binary (scripts/release.sh: static musl, PGO) is what the tables measure; the plain
# `cargo build --release` (glibc, dynamic, no PGO) gets one row of its own for comparison.
BIN=$ROOT/target/$(uname -m)-unknown-linux-musl/release/launch
GLIBC_BIN=$ROOT/target/release/launch
PY=/usr/bin/python3
# A private state root: the benchmark neither sees nor waits for other containers' state (launch
# locks and scans its state root on every run), and its cleanup cannot touch theirs.
export LAUNCH_STATE_ROOT=/run/lbench-state
unset LAUNCH_LOG

need_root() {
    [ "$(id -u)" = 0 ] || { echo "$0: run as root (containers need namespaces, cgroups and mounts)" >&2; exit 1; }
}

# Install Debian packages whose command is missing: ensure_pkgs CMD:PACKAGE...
ensure_pkgs() {
    local missing=() pair
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "${pair%%:*}" ] || missing+=("${pair#*:}")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "bench: installing ${missing[*]} (Debian packages)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 ||
        { apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null; }
}

build_launch() {
    # BENCH_BUILD=0: measure the binaries already built (by an earlier run or scripts/release.sh).
    if [ "${BENCH_BUILD:-1}" = 0 ] && [ -x "$BIN" ] && [ -x "${BIN%/*}/launch-registry" ] && [ -x "$GLIBC_BIN" ]; then
        echo "bench: BENCH_BUILD=0: using $BIN as built" >&2
        return 0
    fi
    echo "bench: scripts/release.sh (static musl, PGO), and cargo build --release (glibc)" >&2
    [ "$(scripts/release.sh)" = "$BIN" ] || { echo "bench: scripts/release.sh built elsewhere" >&2; exit 1; }
    # `launch pull` and `[rootfs] image` exec launch-registry from launch's own directory.
    [ -x "${BIN%/*}/launch-registry" ] || { echo "bench: no launch-registry beside $BIN" >&2; exit 1; }
    cargo build --release --quiet
}

# One rootfs directory for every tool: /bin/true and its libraries (and a few more tools).
make_rootfs() {
    mkdir -p "$out"
    [ -x "$out/rootfs/bin/true" ] || examples/make-rootfs.sh --dir "$out/rootfs" >/dev/null
}

# launch manifests: pid, mount, uts, ipc (the defaults) + net; pivot_root; /proc; minimal /dev.
# Names start with "lbench" so a cleanup can tell our leftovers from anyone else's.
# The network: `net = true` is a network namespace of its own with `lo` up, which is what crun,
# runc (`network` in write_bundles' namespaces) and `bwrap --unshare-all` give too (the floor's
# `unshare -n` leaves `lo` down). Since 32dc743 it is the same plan as `[network] mode = "none"`,
# the new default; keep it written, so these rows measure what earlier runs measured (a
# manifest without it meant the host's network before 32dc743). bench/network.sh compares the
# other modes.
write_manifests() {
    cat > "$out/true.toml" <<'TOML'
name = "lbench"
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
    sed 's/^name = "lbench"/name = "lbench-limits"/' "$out/true.toml" > "$out/true-limits.toml"
    printf '[limits]\ncpu = "50%%"\nmemory = "256MiB"\n' >> "$out/true-limits.toml"
    # The same with every security default off: what the defaults cost.
    sed 's/^name = "lbench-limits"/name = "lbench-unconfined"/' "$out/true-limits.toml" \
        > "$out/true-limits-unconfined.toml"
    printf '[security]\nprofile = "unconfined"\n' >> "$out/true-limits-unconfined.toml"
}

# OCI bundles for crun and runc, equivalent to the manifests: the same namespaces and rootfs
# (read-write), /proc, a tmpfs /dev with devpts and shm (both runtimes add the default device
# nodes null zero full random urandom tty themselves), no sysfs/cgroup mounts, no masked paths,
# no seccomp, no hostname. Limits: cpu quota 50000/100000 and memory 256 MiB.
write_bundles() {
    "$PY" - "$ROOT/$out" <<'PY'
import json, os, sys
out = sys.argv[1]
def config(resources):
    c = {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False, "user": {"uid": 0, "gid": 0}, "args": ["/bin/true"], "cwd": "/",
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"],
        },
        "root": {"path": os.path.join(out, "rootfs"), "readonly": False},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777"]},
        ],
        "linux": {"namespaces": [{"type": t} for t in ("pid", "mount", "uts", "ipc", "network")]},
        # Only launch reads it (`launch run --bundle`): the container's name, so its cgroup and
        # state are named lbench* like the manifests' and found by cleanup_leftovers.
        "annotations": {"org.launch.name": "lbench-bundle" + ("-limits" if resources else "")},
    }
    if resources:
        c["linux"]["resources"] = resources
    return c
limits = {"cpu": {"quota": 50000, "period": 100000}, "memory": {"limit": 268435456}}
for name, res in (("oci", None), ("oci-limits", limits)):
    os.makedirs(os.path.join(out, name), exist_ok=True)
    with open(os.path.join(out, name, "config.json"), "w") as f:
        json.dump(config(res), f, indent=1)
PY
}

# crun 1.8 refuses a hybrid host whose cgroup2 mount holds a controller ("cgroups in hybrid mode
# not supported, drop all controllers from cgroupv2"): then it runs in a private mount namespace
# with a throwaway tmpfs over /sys/fs/cgroup/unified. Nothing global changes.
crun_needs_wrapper() {
    [ -r /sys/fs/cgroup/unified/cgroup.controllers ] &&
        grep -q . /sys/fs/cgroup/unified/cgroup.controllers
}
CRUN_WRAP='mount -t tmpfs tmpfs /sys/fs/cgroup/unified && exec'

# Remove what a benchmark run may have left behind: only names starting with "lbench".
# Everything is normally removed by the tools themselves; this is for interrupted runs.
cleanup_leftovers() {
    local d id
    for d in /run/crun/lbench-*; do
        [ -e "$d" ] || continue
        id=${d##*/}
        if crun_needs_wrapper; then
            unshare -m sh -c "$CRUN_WRAP crun delete -f \"\$0\"" "$id" >/dev/null 2>&1 || true
        else
            crun delete -f "$id" >/dev/null 2>&1 || true
        fi
    done
    for d in /run/runc/lbench-*; do
        [ -e "$d" ] && { runc delete -f "${d##*/}" >/dev/null 2>&1 || true; }
    done
    # cgroups named lbench-* anywhere in a hierarchy (crun: at the root; runc: under the caller's
    # group; launch: under launch/), deepest first. rmdir only removes empty groups.
    find /sys/fs/cgroup -mindepth 1 -depth -type d -name 'lbench*' -exec rmdir {} + 2>/dev/null || true
    # launch mounts only inside the container's mount namespace: nothing is mounted here.
    [ -d "$LAUNCH_STATE_ROOT" ] && rm -rf --one-file-system "$LAUNCH_STATE_ROOT"
    return 0
}

# Print leftovers (nothing is printed when clean).
list_leftovers() {
    ls -d /run/crun/lbench-* /run/runc/lbench-* /run/launch/lbench-* "$LAUNCH_STATE_ROOT" \
        /run/lbench-podman "$out/images/store" "$out/images/scratch" "$out"/network/podman-*root \
        "$out"/network/rootfs-podman* 2>/dev/null || true
    find /sys/fs/cgroup -mindepth 1 -type d -name 'lbench*' 2>/dev/null || true
    grep lbench /proc/self/mountinfo || true
    # bench/network.sh's namespaces and whatever ran in them name its directory.
    ps -eo pid=,args= | awk -v d="$ROOT/$out/network" 'index($0, d) && !/awk -v d=/' || true
}
