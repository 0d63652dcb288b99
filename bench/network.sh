#!/usr/bin/env bash
# The network part of `just bench` (issue 14), run by bench/run.sh (or alone: BENCH_ONLY=network
# bench/run.sh). Writes bench/out/network/{start,bulk,meta}.json (and raw logs beside them),
# which `bench.py report` / `bench.py network-report` turn into the "Network" section of
# bench/RESULTS.md. Needs build_launch and make_rootfs done (bench/lib.sh).
#
# Nothing runs in the machine's own network namespace, and nothing of its interfaces, routes,
# firewall, sysctls, /run, /var/lib or /dev changes: every measurement runs in namespaces made
# here with `unshare` (network + private mount namespace; B and C also a pid namespace, so that
# killing their first process kills whatever podman, conmon, pasta or slirp4netns left):
#   A  launch as root: its bridge launch0, the veths and `table inet launch` live and die here.
#   B  podman as root (CNI: bridge cni-podman0, iptables-nft rules, host-local IPAM). tmpfs over
#      /run (run root, netns files, crun state), /tmp, /var/tmp and /var/lib (the original
#      entries symlinked back, but cni and containers fresh), and over /sys/fs/cgroup/unified
#      when crun 1.8 refuses this hybrid host (bench/lib.sh's crun wrapper, once for the world).
#      A separate namespace from A because both default to 10.88.0.0/16.
#   C  rootless, as `nobody`: launch with pasta and podman (slirp4netns; rootlessport or slirp's
#      own port handler). tmpfs over /run, /tmp, /var/tmp; /dev/net/tun of mode 0666 in a
#      private tmpfs (this machine's is 0600); a veth to a further namespace and a default route
#      (pasta refuses to start without a routable interface).
# The host's `ip link`/`ip addr`/routes/rules, `nft list ruleset`, `iptables-save`,
# `ip6tables-save`, forwarding sysctls, /run/netns, /var/lib/cni, users and subordinate ids are
# recorded before and compared after (bench/out/network/host-{before,after}.txt).
#
# Measured:
#   start  start-to-exit of /bin/true with `[network] mode = "bridge"` (also with a published
#          port) against the same manifest with `mode = "none"`, and `podman run --network
#          bridge` (also with -p) on the same rootfs; bench.py measure, interleaved (NET_ISO_ROUNDS
#          isolated starts, NET_B2B_ROUNDS blocks of NET_B2B_RUNS back to back).
#   bulk   NET_BULK_BYTES per TCP transfer (bench/tcpbulk.c) from the host side's 127.0.0.1 to a
#          sink in a container: through launch's published port (bridge, root) against plain
#          loopback; through launch's pasta port (rootless) against podman's rootless port
#          forwarding; NET_BULK_ROUNDS rounds, all rows in every round (bench.py bulk).
#   where  one bridge start split by `launch -v`'s lines (stamped as they arrive) and by a light
#          strace (the nft processes, the veth's netlink calls).
# Knobs: NET_ISO_ROUNDS (30), NET_B2B_ROUNDS (3), NET_B2B_RUNS (20), NET_BULK_ROUNDS (9),
# NET_BULK_BYTES (1073741824), NET_STAMP_RUNS (7).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
need_root

N=$out/network
NA=$ROOT/$N
mkdir -p "$N"
ensure_pkgs ip:iproute2 nft:nftables nsenter:util-linux setpriv:util-linux unshare:util-linux \
    gcc:gcc pasta:passt strace:strace /usr/bin/time:time
have_podman=1
podman_missing=
if ! command -v podman >/dev/null; then
    ensure_pkgs podman:podman || true
    command -v podman >/dev/null || { have_podman=0; podman_missing="podman is not installed and did not install"; }
fi
[ -x "$BIN" ] || { echo "bench: no $BIN (build_launch first)" >&2; exit 1; }
make_rootfs

ISO=${NET_ISO_ROUNDS:-30} B2BR=${NET_B2B_ROUNDS:-3} B2BN=${NET_B2B_RUNS:-20}
BULK_ROUNDS=${NET_BULK_ROUNDS:-9} BULK_BYTES=${NET_BULK_BYTES:-1073741824} STAMPS=${NET_STAMP_RUNS:-7}
NOBODY=65534
PODMAN_RUNROOT=/run/lbench-podman   # inside B's private /run (podman refuses runroots > 50 chars)

# --- the helper and the roots ------------------------------------------------------------------
if [ ! -x "$N/tcpbulk" ] || [ bench/tcpbulk.c -nt "$N/tcpbulk" ]; then
    gcc -O2 -static -Wall -o "$N/tcpbulk.tmp" bench/tcpbulk.c && mv "$N/tcpbulk.tmp" "$N/tcpbulk"
fi
TCPBULK=$NA/tcpbulk
# The bench's small rootfs + tcpbulk, and the files launch and podman bind over (present in every
# copy, so that no tool makes its own mount points in one copy only). podman writes /etc/mtab
# into a --rootfs: it gets copies of its own, remade every run.
mkroot() { # DIR OWNER
    rm -rf --one-file-system "$1"
    mkdir -p "$1"
    cp -a "$out/rootfs/." "$1/"
    cp "$N/tcpbulk" "$1/bin/tcpbulk"
    : > "$1/etc/resolv.conf"; : > "$1/etc/hosts"; : > "$1/etc/hostname"
    chown -R "$2" "$1"
}
mkroot "$N/rootfs" 0:0
mkroot "$N/rootfs-podman" 0:0
mkroot "$N/rootfs-podman-rl" $NOBODY:$NOBODY
rm -rf --one-file-system "$N/podman-root" "$N/podman-rl-root"
mkdir -p "$N/podman-root" "$N/podman-rl-root"
chown $NOBODY:$NOBODY "$N/podman-rl-root"
# nobody must reach the binary, the manifests and its roots.
chmod o+x "$ROOT/$out" "$NA"
for d in "$ROOT" "$BIN"; do
    setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups test -x "$d" ||
        { echo "bench: nobody cannot reach $d: the rootless rows need it" >&2; exit 1; }
done

# --- manifests ---------------------------------------------------------------------------------
manifest() { # FILE NAME NETWORK-TOML COMMAND-TOML [EXTRA-TOML]
    printf 'name = "%s"\n[rootfs]\npath = "rootfs"\n[process]\ncommand = %s\n%s\n%s[[mounts]]\ntype = "proc"\ntarget = "/proc"\n' \
        "$2" "$4" "$3" "${5:-}" > "$1"
    chmod 644 "$1"
}
TRUE='["/bin/true"]'
SINKS=$((BULK_ROUNDS + 1))          # transfers per row: the warm-up round and the rounds
manifest "$N/none.toml" lbench-net-none '[network]
mode = "none"' "$TRUE"
manifest "$N/bridge.toml" lbench-net-bridge '[network]
mode = "bridge"' "$TRUE"
manifest "$N/bridge-port.toml" lbench-net-bridge-port '[network]
mode = "bridge"
[[ports]]
host = 18080
container = 80' "$TRUE"
# The sink serves two rows (through the port and straight to its address).
manifest "$N/bulk-bridge.toml" lbench-net-bulk '[network]
mode = "bridge"
address = "10.88.0.200"
[[ports]]
host = 17002
container = 5201' "[\"/bin/tcpbulk\", \"sink\", \"5201\", \"$((2 * SINKS))\"]"
# A diagnostic: the same on a bridge of its own whose MTU (bridge, veth, the container's eth0) the
# bench raises to 65520 once it runs (launch has no MTU setting; 1500 is its default, as Docker's
# and podman's).
manifest "$N/bulk-mtu.toml" lbench-net-mtu '[network]
mode = "bridge"
bridge = "lbench1"
subnet = "10.89.0.0/16"
address = "10.89.0.200"
[[ports]]
host = 17005
container = 5201' "[\"/bin/tcpbulk\", \"sink\", \"5201\", \"$SINKS\"]"
manifest "$N/bulk-pasta.toml" lbench-net-pasta '[network]
mode = "pasta"
[[ports]]
host = 17012
container = 5201' "[\"/bin/tcpbulk\", \"sink\", \"5201\", \"$SINKS\"]" '[namespaces]
user = true
'
# (bulk-pasta.toml is validated where it runs: as nobody, in C; as root it is refused.)
for m in none bridge bridge-port bulk-bridge bulk-mtu; do "$BIN" validate "$N/$m.toml" >/dev/null; done

# --- the host's state, before and after ---------------------------------------------------------
host_state() ( # a subshell: empty listings (grep without a match) are fine here
    set +e +o pipefail
    echo "## ip -d link"; ip -d link show
    echo "## ip addr"; ip addr show | grep -v 'valid_lft'
    echo "## ip route"; ip route show table all
    echo "## ip -6 route"; ip -6 route show table all
    echo "## ip rule"; ip rule show; ip -6 rule show
    echo "## nft -s list ruleset"; nft -s list ruleset 2>&1
    echo "## iptables-save"; iptables-save 2>&1 | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'
    echo "## ip6tables-save"; ip6tables-save 2>&1 | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]//'
    echo "## sysctl"
    sysctl net.ipv4.ip_forward net.ipv6.conf.all.forwarding net.ipv4.conf.all.route_localnet \
        net.ipv4.conf.lo.route_localnet 2>&1
    echo "## /run/netns"; ls -A /run/netns 2>&1
    echo "## /var/lib/cni, /run/lbench-podman"; ls -d /var/lib/cni /run/lbench-podman 2>&1
    echo "## users"; getent passwd | cut -d: -f1 | sort | md5sum; cat /etc/subuid /etc/subgid 2>/dev/null | md5sum
    echo "## /dev/net/tun"; stat -c '%a %U' /dev/net/tun
    echo "## cgroups"; find /sys/fs/cgroup -name 'lbench*' -o -name libpod_parent 2>/dev/null | sort
)
host_state > "$N/host-before.txt"

# --- the worlds ---------------------------------------------------------------------------------
INIT="sleep infinity"
command -v catatonit >/dev/null && INIT_PID1="catatonit -P" || INIT_PID1="sleep infinity"
HYBRID=
crun_needs_wrapper && HYBRID="mount -t tmpfs tmpfs /sys/fs/cgroup/unified"
UNSHARE_PIDS=() WORLD_INITS=() WORLD_NETNS=()
start_world() { # NAME PIDNS(0|1) SETUP -> W_NAME=pid of the world's first process
    local name=$1 pidns=$2 setup=$3 u w init=$INIT
    local ready=$NA/world-$name.ready
    local flags=(--mount --net --propagation private)
    [ "$pidns" = 1 ] && { flags+=(--pid --fork --mount-proc); init=$INIT_PID1; }
    rm -f "$ready"
    unshare "${flags[@]}" -- sh -ec "$setup
: > '$ready'
exec $init" </dev/null >"$N/world-$name.log" 2>&1 &
    u=$!
    UNSHARE_PIDS+=("$u")
    for _ in $(seq 200); do
        [ -e "$ready" ] && break
        kill -0 "$u" 2>/dev/null || break
        sleep 0.05
    done
    [ -e "$ready" ] || { echo "bench: namespace $name did not start: $(cat "$N/world-$name.log")" >&2; exit 1; }
    if [ "$pidns" = 1 ]; then
        w=$(cat "/proc/$u/task/$u/children")
        w=${w%% *}
    else
        w=$u
    fi
    WORLD_INITS+=("$w")
    WORLD_NETNS+=("$(readlink "/proc/$w/ns/net")")
    printf -v "W_$name" %s "$w"
}
stop_worlds() {
    local p ns w
    for p in "${WORLD_INITS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    # Whatever still runs in one of these network namespaces was started here (A has no pid
    # namespace of its own: a container whose launcher was killed would keep A alive).
    for p in /proc/[0-9]*; do
        ns=$(readlink "$p/ns/net" 2>/dev/null) || continue
        for w in "${WORLD_NETNS[@]}"; do
            [ "$ns" = "$w" ] && { kill -KILL "${p#/proc/}" 2>/dev/null || true; }
        done
    done
    # (braces: the shell's own "Killed" notice for A's unshare goes to /dev/null too)
    { for p in "${UNSHARE_PIDS[@]}"; do wait "$p" || true; done; } 2>/dev/null
    WORLD_INITS=() UNSHARE_PIDS=() WORLD_NETNS=()
}
finish() {
    stop_worlds
    rm -rf --one-file-system "$N/podman-root" "$N/podman-rl-root" "$N/rootfs-podman" "$N/rootfs-podman-rl"
    # podman's cgroups (--cgroup-parent /lbench-podman: it and its conmon group, in every v1
    # hierarchy), then launch's and the rest named lbench*.
    find /sys/fs/cgroup -depth -type d -path '*/lbench-podman*' -exec rmdir {} + 2>/dev/null || true
    cleanup_leftovers
    rm -f "$NA"/world-*.ready
}
trap finish EXIT

echo "bench: network: namespaces A (launch, root), B (podman, root), C (rootless)" >&2
start_world A 0 'ip link set lo up'
start_world B 1 "mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/lbench-orig/varlib
mount --bind /var/lib /run/lbench-orig/varlib
mount -t tmpfs -o mode=0755 tmpfs /var/lib
for e in /run/lbench-orig/varlib/*; do
    case \${e##*/} in cni|containers) ;; *) ln -s \"\$e\" /var/lib/ ;; esac
done
mkdir -p /var/lib/cni /var/lib/containers
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=1777 tmpfs /var/tmp
$HYBRID
ip link set lo up"
start_world C 1 "mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/netns /run/lbench-rl/xdg /run/lbench-rl/home /run/lbench-rl/launch
chown -R $NOBODY:$NOBODY /run/lbench-rl
chmod 0700 /run/lbench-rl/xdg
mount -t tmpfs -o mode=0755 tmpfs /dev/net
mknod -m 0666 /dev/net/tun c 10 200
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=1777 tmpfs /var/tmp
$HYBRID
ip link set lo up
ip netns add out
ip link add h0 type veth peer name o0 netns out
ip addr add 192.0.2.10/24 dev h0
ip link set h0 up
ip route add default via 192.0.2.1
ip -n out addr add 192.0.2.1/24 dev o0
ip -n out link set o0 up"
echo "bench: network: A=$W_A B=$W_B C=$W_C (pids of their first processes)" >&2

# Command prefixes.
IN_A=(nsenter -t "$W_A" -m -n)
IN_B=(nsenter -t "$W_B" -m -n -p)
IN_C=(nsenter -t "$W_C" -m -n -p)
AS_NOBODY=(setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups env -i
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/run/lbench-rl/home
    XDG_RUNTIME_DIR=/run/lbench-rl/xdg LAUNCH_STATE_ROOT=/run/lbench-rl/launch)
PODMAN=(podman --root "$NA/podman-root" --runroot "$PODMAN_RUNROOT" --cgroup-manager cgroupfs
    --events-backend none)
# root lacks CAP_SYS_RESOURCE here: podman's default ulimits above the hard limit are refused.
PODMAN_RUN=(run --rm --cgroup-parent /lbench-podman --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
PODMAN_RL=(podman --root "$NA/podman-rl-root" --runroot /run/lbench-rl/runroot --events-backend none
    --log-level error)

if [ $have_podman = 1 ]; then
    # Each podman once, so a broken set-up is recorded with its message rather than measured.
    if ! "${IN_B[@]}" "${PODMAN[@]}" "${PODMAN_RUN[@]}" --network bridge --rootfs "$NA/rootfs-podman" \
        /bin/true > "$N/podman-check.log" 2>&1; then
        have_podman=0
        podman_missing="podman as root fails here: $(tr '\n' ' ' < "$N/podman-check.log")"
        echo "bench: $podman_missing" >&2
    fi
fi
have_podman_rl=$have_podman
if [ $have_podman = 1 ] && ! "${IN_C[@]}" "${AS_NOBODY[@]}" "${PODMAN_RL[@]}" run --rm \
    --rootfs "$NA/rootfs-podman-rl" /bin/true > "$N/podman-rl-check.log" 2>&1; then
    have_podman_rl=0
    echo "bench: rootless podman fails here: $(cat "$N/podman-rl-check.log")" >&2
fi

# --- start-to-exit --------------------------------------------------------------------------------
BIN=$BIN N=$NA HAVE_PODMAN=$have_podman W_B=$W_B PODMAN_ARGS="$(printf '%s\n' "${PODMAN[@]}" "${PODMAN_RUN[@]}")" \
"$PY" - > "$N/start-spec.json" <<'PY'
import json, os
BIN, N = os.environ["BIN"], os.environ["N"]
cmds = []
TIME = ["/usr/bin/time", "-f", "%M", "-o", "{rss}"]
def add(key, label, argv):
    cmds.append({"key": key, "label": label, "argv": argv, "rss_argv": TIME + argv})
add("true", "plain `/bin/true`", ["/bin/true"])
add("launch-none", "**launch**, `mode = \"none\"` (loopback only)", [BIN, "run", N + "/none.toml"])
add("launch-bridge", "**launch**, `mode = \"bridge\"`", [BIN, "run", N + "/bridge.toml"])
add("launch-bridge-port", "launch, `mode = \"bridge\"` + one published port", [BIN, "run", N + "/bridge-port.toml"])
if os.environ["HAVE_PODMAN"] == "1":
    IN_B = ["nsenter", "-t", os.environ["W_B"], "-m", "-n", "-p"]
    P = IN_B + os.environ["PODMAN_ARGS"].split("\n")
    root = ["--rootfs", N + "/rootfs-podman", "/bin/true"]
    add("podman-bridge", "`podman run --network bridge`", P + ["--network", "bridge"] + root)
    add("podman-bridge-port", "`podman run --network bridge -p 127.0.0.1:18081:80`",
        P + ["--network", "bridge", "-p", "127.0.0.1:18081:80"] + root)
    add("podman-wrapper", "nsenter alone (`nsenter -t PID -m -n -p /bin/true`)", IN_B + ["/bin/true"])
json.dump({"commands": cmds}, open("/dev/stdout", "w"), indent=1)
PY
# Each command once (in A), failing here with its message.
"${IN_A[@]}" "$PY" - "$NA/start-spec.json" <<'PY'
import json, subprocess, sys
for c in json.load(open(sys.argv[1]))["commands"]:
    p = subprocess.run(c["argv"], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
    if p.returncode:
        sys.exit("bench: %s fails (exit %d): %s\n%s" % (c["key"], p.returncode, " ".join(c["argv"]), p.stderr))
PY
echo "bench: network: start-to-exit (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
: > "$N/run.log"
"${IN_A[@]}" "$PY" "$ROOT/bench/bench.py" measure --spec "$NA/start-spec.json" --out "$NA/start.json" \
    --log "$NA/run.log" --iso-rounds "$ISO" --b2b-rounds "$B2BR" --b2b-runs "$B2BN" --rss-runs 3 --warmup 3

# --- where a bridge start goes --------------------------------------------------------------------
echo "bench: network: launch -v stamps and a traced bridge start" >&2
for m in bridge none; do
    "${IN_A[@]}" "$PY" "$ROOT/bench/bench.py" stamps --runs "$STAMPS" --out "$NA/stamps-$m.json" -- \
        "$BIN" -v run "$NA/$m.toml"
done
traces=()
for i in 1 2 3 4 5; do
    sleep 0.3
    "${IN_A[@]}" strace --seccomp-bpf -f -tt -T -o "$NA/trace-bridge-$i.txt" \
        -e trace=clone,clone3,execve,wait4,sendto,recvfrom,sendmsg,close,exit_group \
        "$BIN" run "$NA/bridge.toml"
    traces+=("$NA/trace-bridge-$i.txt")
done
"$PY" bench/bench.py nettrace --out "$NA/trace.json" "${traces[@]}"

# --- bulk TCP throughput ----------------------------------------------------------------------------
BIN=$BIN N=$NA TCPBULK=$TCPBULK W_A=$W_A W_B=$W_B W_C=$W_C HAVE_PODMAN=$have_podman \
HAVE_PODMAN_RL=$have_podman_rl SINKS=$SINKS BYTES=$BULK_BYTES \
PODMAN_ARGS="$(printf '%s\n' "${PODMAN[@]}" "${PODMAN_RUN[@]}")" \
PODMAN_RL_ARGS="$(printf '%s\n' "${PODMAN_RL[@]}")" AS_NOBODY="$(printf '%s\n' "${AS_NOBODY[@]}")" \
"$PY" - > "$N/bulk-spec.json" <<'PY'
import json, os
E = os.environ
BIN, N, T, SINKS = E["BIN"], E["N"], E["TCPBULK"], E["SINKS"]
ns = lambda w, *f: ["nsenter", "-t", E["W_" + w], *f]
servers, rows = [], []
def server(key, argv):
    servers.append({"key": key, "argv": argv})
def row(key, label, group, srv, world, address, port):
    rows.append({"key": key, "label": label, "group": group, "server": srv,
                 "client": ns(world, "-n") + [T, "send", address, str(port), "{bytes}"]})
nobody = E["AS_NOBODY"].split("\n")
# root
server("lo-root", ns("A", "-n") + [T, "sink", "17001", SINKS])
server("launch-bridge", ns("A", "-m", "-n") + [BIN, "run", N + "/bulk-bridge.toml"])
row("lo-root", "root: plain loopback, 127.0.0.1 → a process on the host side", "root", "lo-root", "A", "127.0.0.1", 17001)
row("launch-bridge-port", "root: **launch** `bridge`, published port 127.0.0.1:17002 → 5201 (DNAT, veth)", "root",
    "launch-bridge", "A", "127.0.0.1", 17002)
row("launch-bridge-direct", "root: launch `bridge`, straight to the container's address 10.88.0.200:5201 (veth, no NAT)",
    "root", "launch-bridge", "A", "10.88.0.200", 5201)
# {pid}: launch (nsenter -m -n execs it); its child is the container's first process.
mtu = ("set -e; c=$(cat /proc/{pid}/task/{pid}/children); c=${c%% *}; "
       "nsenter -t %s -n sh -ec 'ip link set lbench1 mtu 65520; "
       "for v in $(ip -o link show master lbench1 | cut -d: -f2 | cut -d@ -f1); do ip link set $v mtu 65520; done'; "
       "nsenter -t $c -n ip link set eth0 mtu 65520" % E["W_A"])
servers.append({"key": "launch-mtu", "argv": ns("A", "-m", "-n") + [BIN, "run", N + "/bulk-mtu.toml"],
                "post": ["sh", "-c", mtu]})
row("launch-mtu", "root, diagnostic: launch `bridge`, published port, its bridge, veth and eth0 set to MTU 65520 after the start",
    "root", "launch-mtu", "A", "127.0.0.1", 17005)
if E["HAVE_PODMAN"] == "1":
    P = ns("B", "-m", "-n", "-p") + E["PODMAN_ARGS"].split("\n")
    server("podman-root", P + ["--network", "bridge", "-p", "127.0.0.1:17003:5201", "--rootfs",
                               N + "/rootfs-podman", "/bin/tcpbulk", "sink", "5201", SINKS])
    row("podman-root", "root: `podman run --network bridge -p 127.0.0.1:17003:5201` (CNI portmap, iptables DNAT)",
        "root", "podman-root", "B", "127.0.0.1", 17003)
# rootless
server("lo-rl", ns("C", "-n") + [T, "sink", "17011", SINKS])
server("launch-pasta", ns("C", "-m", "-n", "-p") + nobody + [BIN, "run", N + "/bulk-pasta.toml"])
row("lo-rl", "rootless: plain loopback, 127.0.0.1 → a process on the host side", "rootless", "lo-rl", "C", "127.0.0.1", 17011)
row("launch-pasta", "rootless: **launch** `pasta`, published port 127.0.0.1:17012 → 5201", "rootless",
    "launch-pasta", "C", "127.0.0.1", 17012)
if E["HAVE_PODMAN_RL"] == "1":
    PR = ns("C", "-m", "-n", "-p") + nobody + E["PODMAN_RL_ARGS"].split("\n") + ["run", "--rm"]
    root = ["--rootfs", N + "/rootfs-podman-rl", "/bin/tcpbulk", "sink", "5201", SINKS]
    server("podman-rl", PR + ["-p", "127.0.0.1:17013:5201"] + root)
    server("podman-rl-slirp", PR + ["--network", "slirp4netns:port_handler=slirp4netns", "-p", "127.0.0.1:17014:5201"] + root)
    row("podman-rl", "rootless: `podman run -p 127.0.0.1:17013:5201` (slirp4netns, default port handler: rootlessport)",
        "rootless", "podman-rl", "C", "127.0.0.1", 17013)
    row("podman-rl-slirp", "rootless: podman, `--network slirp4netns:port_handler=slirp4netns`", "rootless",
        "podman-rl-slirp", "C", "127.0.0.1", 17014)
json.dump({"servers": servers, "rows": rows, "bytes": int(E["BYTES"])}, open("/dev/stdout", "w"), indent=1)
PY
echo "bench: network: bulk TCP, $BULK_ROUNDS rounds of $BULK_BYTES bytes (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
"$PY" bench/bench.py bulk --spec "$N/bulk-spec.json" --out "$N/bulk.json" --rounds "$BULK_ROUNDS"

# --- the end: worlds gone, the host as it was ---------------------------------------------------------
stop_worlds
find /sys/fs/cgroup -depth -type d -path '*/lbench-podman*' -exec rmdir {} + 2>/dev/null || true
host_state > "$N/host-after.txt"
if diff -u "$N/host-before.txt" "$N/host-after.txt" > "$N/host-diff.txt"; then
    host_check="unchanged (bench/out/network/host-{before,after}.txt)"
else
    host_check="**changed**, see bench/out/network/host-diff.txt"
    echo "bench: WARNING: the host's network state changed during the run:" >&2
    cat "$N/host-diff.txt" >&2
fi

# --- meta ------------------------------------------------------------------------------------------------
ver() { "$@" 2>&1 | head -1; }
# The commit of the source the binary was built from (changes under bench/ do not change it).
src=(src Cargo.toml Cargo.lock build.rs)
launch_rev=$(git log -1 --format=%h -- "${src[@]}" 2>/dev/null || echo unknown)
git diff --quiet HEAD -- "${src[@]}" 2>/dev/null || launch_rev="$launch_rev-dirty"
tools=("launch $launch_rev (the last commit of its source)" "$(ver nft --version)" "$(ver ip -V)"
    "pasta $(dpkg-query -W -f '${Version}' passt 2>/dev/null || echo '?')"
    "$(ver slirp4netns --version)" "kernel $(uname -r)")
if [ $have_podman = 1 ]; then
    tools+=("$(ver podman --version) with $(ver crun --version), conmon $(dpkg-query -W -f '${Version}' conmon 2>/dev/null || echo '?'), CNI plugins $(dpkg-query -W -f '${Version}' containernetworking-plugins 2>/dev/null || echo '?') (network backend: CNI, Debian's /etc/cni/net.d/87-podman-bridge.conflist)")
fi
HOST_CHECK=$host_check PODMAN_MISSING=$podman_missing ROOTDIR=$ROOT N=$NA W_A=$W_A W_B=$W_B W_C=$W_C \
TOOLS="$(printf '%s\n' "${tools[@]}")" LAUNCH_REV="$launch_rev" \
"$PY" - "$N/meta.json" <<'PY'
import json, os, sys, time
E = os.environ
N = E["N"]
manifests = [{"path": "bench/out/network/%s.toml" % m, "text": open(N + "/%s.toml" % m).read()}
             for m in ("none", "bridge", "bulk-bridge", "bulk-pasta")]
json.dump({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "launch": E["LAUNCH_REV"],
           "root": E["ROOTDIR"], "host_check": E["HOST_CHECK"], "podman_missing": E["PODMAN_MISSING"],
           "tools": [t for t in E["TOOLS"].split("\n") if t],
           "stamps": {"bridge": N + "/stamps-bridge.json", "none": N + "/stamps-none.json"},
           "trace": N + "/trace.json", "manifests": manifests,
           "worlds": {"A": E["W_A"], "B": E["W_B"], "C": E["W_C"]},
           "notes": [
               "podman as root: Debian's defaults (crun, CNI `87-podman-bridge.conflist`, conmon) with "
               "`--cgroup-manager cgroupfs` (PID 1 is not systemd here), `--events-backend none` (less "
               "work for podman), `--cgroup-parent /lbench-podman` (so that the bench finds and removes "
               "its groups) and `--ulimit nofile=1024:1024 --ulimit nproc=1024:1024` (root lacks "
               "CAP_SYS_RESOURCE here, and podman's default limits are refused).",
               "Rootless podman runs as `nobody`, like launch, and `nobody` has no /etc/subuid range: "
               "podman maps that one id (\"Using rootless single mapping into the namespace\"), which "
               "is also what launch's `user = true` maps; so no user was created and /etc is untouched. "
               "Its network path (slirp4netns, and rootlessport for `-p`) is the one it takes with "
               "subordinate ids too. podman 4.3 has no pasta (4.4 added it).",
           ]}, open(sys.argv[1], "w"), indent=1)
PY
