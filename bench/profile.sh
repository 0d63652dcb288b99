#!/usr/bin/env bash
# Where `launch run` spends its start-up: strace (syscall counts and times, a timeline split into
# phases), perf stat, a system-wide perf profile split by syscall and library, a table of manifest
# variants that each remove one part (measured without a tracer, interleaved), and the cost of the
# v1 cgroup join done two ways. Writes bench/out/profile.md (bench/run.sh puts it into
# bench/RESULTS.md) and the raw outputs in bench/out/profile/. As root; ~2 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
need_root

ensure_pkgs strace:strace /usr/bin/time:time
command -v perf >/dev/null 2>&1 || ensure_pkgs perf:linux-perf || true
[ -x "$BIN" ] || build_launch
make_rootfs
write_manifests
P=$out/profile
rm -rf "$P"
mkdir -p "$P"
M=$ROOT/$out/true-limits.toml

# Variants: each removes (or adds) one part of the base run, so the differences are its cost.
v() { # v NAME [sed expression] [extra TOML]
    sed -e "s/^name = \"lbench-limits\"/name = \"lbench-$1\"/" ${2:+-e "$2"} \
        -e "s|^path = \"rootfs\"|path = \"$ROOT/$out/rootfs\"|" "$out/true-limits.toml" > "$P/$1.toml"
    [ -z "${3:-}" ] || printf '%b' "$3" >> "$P/$1.toml"
}
v nodev "" '[[mounts]]\ntype = "tmpfs"\ntarget = "/dev"\n'
v nonet 's/^net = true/net = false/'
v noproc '/^\[\[mounts\]\]/,/^target = "\/proc"/d'
v chroot 's/^path = "rootfs"/path = "rootfs"\npivot_root = false/'
v cpuonly '/^memory = /d'
for f in nodev nonet noproc chroot cpuonly; do "$BIN" validate "$P/$f.toml" >/dev/null; done

R=$ROOT/$out/rootfs
"$PY" - > "$P/spec.json" <<PY
import json, sys
B, M, P, O, R = "$BIN", "$M", "$ROOT/$P", "$ROOT/$out", "$R"
c = [
    ("launch-limits", "\`launch run true-limits.toml\` (base: limits)", [B, "run", M]),
    ("verbose", "the same with \`-v\` (logs every step)", [B, "-v", "run", M]),
    ("nolimits", "no limits (\`true.toml\`: no cgroups)", [B, "run", O + "/true.toml"]),
    ("cpuonly", "cpu limit only (no memory limit)", [B, "run", P + "/cpuonly.toml"]),
    ("nodev", "no minimal /dev (a bare tmpfs on /dev)", [B, "run", P + "/nodev.toml"]),
    ("noproc", "no /proc mount", [B, "run", P + "/noproc.toml"]),
    ("nonet", "no network namespace", [B, "run", P + "/nonet.toml"]),
    ("chroot", "chroot instead of pivot_root", [B, "run", P + "/chroot.toml"]),
    ("plan", "\`launch plan true-limits.toml\` (front end only)", [B, "plan", M]),
    ("version", "\`launch --version\` (binary start only)", [B, "--version"]),
    ("true", "\`/bin/true\`", ["/bin/true"]),
    ("floor", "\`unshare -pfmuin --fork chroot\`", ["unshare", "-pfmuin", "--fork", "chroot", R, "/bin/true"]),
    ("floor-nonet", "\`unshare -pfmui --fork chroot\` (no net ns)", ["unshare", "-pfmui", "--fork", "chroot", R, "/bin/true"]),
]
json.dump({"commands": [{"key": k, "label": l, "argv": a} for k, l, a in c]}, sys.stdout, indent=1)
PY

echo "bench: profile: variants (interleaved)" >&2
"$PY" bench/bench.py measure --spec "$P/spec.json" --out "$P/variants.json" --log "$P/variants.log" \
    --iso-rounds "${PROFILE_ISO_ROUNDS:-20}" --b2b-rounds 3 --b2b-runs "${PROFILE_B2B_RUNS:-200}" --rss-runs 0 --warmup 3
untraced=$("$PY" -c 'import json,statistics,sys; d=json.load(open(sys.argv[1]))["results"]["launch-limits"]["iso"]; print("%.3f" % (statistics.median(d)/1e6))' "$P/variants.json")

echo "bench: profile: strace" >&2
sleep 0.3
strace -f -c -o "$P/strace-c.txt" "$BIN" run "$M"
sleep 0.3
strace -f -c -w -o "$P/strace-c-wall.txt" "$BIN" run "$M"
for i in 1 2 3 4 5; do
    sleep 0.3
    strace -f -r -tt -T -o "$P/trace-$i.txt" "$BIN" run "$M"
done

perf_ok=0
if command -v perf >/dev/null 2>&1 && perf stat -e task-clock -o /dev/null true >/dev/null 2>&1; then
    perf_ok=1
    echo "bench: profile: perf" >&2
    EV=task-clock,context-switches,cpu-migrations,page-faults,cycles,instructions
    perf stat -e "$EV" -r 100 -o "$P/perf-stat-b2b.txt" "$BIN" run "$M" >/dev/null 2>&1
    perf stat -e "$EV" -r 20 --pre 'sleep 0.25' -o "$P/perf-stat-isolated.txt" "$BIN" run "$M" >/dev/null 2>&1
    RUNS=${PROFILE_PERF_RUNS:-300} PERIOD_US=100
    perf record -q -a -g -e cpu-clock -c $((PERIOD_US * 1000)) -o "$P/perf.data" -- \
        "$PY" bench/bench.py loop --n "$RUNS" -- "$BIN" run "$M" 2>/dev/null
    perf script -i "$P/perf.data" -F comm,tid,ip,sym,dso 2>/dev/null |
        "$PY" bench/bench.py perfsplit --runs "$RUNS" --period-us $PERIOD_US \
            --task-clock-ms "$(awk '/task-clock/ {print $1; exit}' "$P/perf-stat-b2b.txt")" > "$P/perfsplit.md"
fi

echo "bench: profile: cgroup join experiment" >&2
"$PY" bench/bench.py cgjoin --rounds 10 --pauses 0.004,0.02,0.25 > "$P/cgjoin.md"

# ---- the Markdown section ----
perfline() { # perfline FILE: "task-clock X ms, ... elapsed Y"
    awk '/task-clock/ {printf "task-clock %.2f ms (%s CPUs utilized), ", $1, $5}
         /context-switches/ {printf "%s context switches, ", $1}
         /cpu-migrations/ {printf "%s CPU migrations, ", $1}
         /page-faults/ {printf "%s page faults, ", $1}
         /seconds time elapsed/ {printf "%.2f ms elapsed", $1*1000}' "$1"
}
{
    echo "## Profile of \`launch run\` (bench/profile.sh)"
    echo
    echo "\`launch -v\` is not what is measured anywhere above (it logs every step; its cost is in the"
    echo "variants table). Raw outputs: bench/out/profile/."
    echo
    echo "### Variants: what each part costs (no tracer)"
    echo
    "$PY" bench/bench.py ablation --results "$P/variants.json" --base launch-limits
    echo "### Joining a v1 cgroup after the machine idled"
    echo
    cat "$P/cgjoin.md"
    echo "### Timeline of one start (strace)"
    echo
    "$PY" bench/bench.py phases "$P"/trace-*.txt --untraced-ms "$untraced"
    echo "### Syscalls of one isolated start: \`strace -f -c\` and \`strace -f -c -w\`"
    echo
    echo "Counts are exact; times are inflated by the tracer. First strace's system-time attribution"
    echo "(waits such as wait4 absorb time spent in the other process), then wall time (-w)."
    echo
    "$PY" bench/bench.py stracec "$P/strace-c.txt" --top 10
    echo
    "$PY" bench/bench.py stracec "$P/strace-c-wall.txt" --top 6
    echo
    echo "### CPU: perf"
    echo
    if [ $perf_ok = 1 ]; then
        echo "- \`perf stat -r 20\`, isolated (250 ms pause before each): $(perfline "$P/perf-stat-isolated.txt")."
        echo "- \`perf stat -r 100\`, back-to-back: $(perfline "$P/perf-stat-b2b.txt")."
        if grep -q 'not supported' "$P/perf-stat-b2b.txt"; then
            echo "- Hardware counters (cycles, instructions) are not supported in this VM; only software events."
        fi
        echo
        cat "$P/perfsplit.md"
    else
        echo "perf is not available or not permitted here (install linux-perf; perf_event_paranoid)."
        echo
    fi
} > "$out/profile.md"
echo "bench: wrote $out/profile.md" >&2
