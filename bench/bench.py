#!/usr/bin/python3
"""Interleaved start-up benchmark driver for `just bench` (bench/run.sh) and bench/profile.sh.

hyperfine runs each command's runs consecutively, so slow drift (other builds on the machine,
CPU frequency, page cache) lands on whole commands. This driver alternates the commands instead,
round by round (A B C A B C ..., the order rotated every round), and measures, per command:

  isolated      one start-to-exit after a pause (--pause, default 250 ms) with nothing running:
                on cgroup v1 the first cgroup migration after ~200 ms of idleness costs 6-8 ms
                (PERFORMANCE.md), so this is what one `docker run`-like start costs.
  back-to-back  --b2b-runs starts in a row of the same command (ms/start = block time / runs),
                blocks of the different commands alternating, --b2b-rounds blocks each.
  peak RSS      /usr/bin/time -f %M around the launcher (wait4's ru_maxrss: the launcher and the
                children it reaped; for crun the wrapper's own processes are outside it).

Each start is posix_spawn (vfork-like, no shell) + wait4, timed with perf_counter_ns; stdin is
/dev/null, stdout and stderr go to a log file. A command that exits non-zero is reported and
dropped from the rest of the run.

  bench.py measure --spec SPEC.json --out RESULTS.json [--iso-rounds N] [--b2b-rounds R]
                   [--b2b-runs B] [--rss-runs K] [--warmup W] [--pause S]
  bench.py report  --results RESULTS.json [--plan PLAN.json] [--profile PROFILE.md] --meta META.json
  (and the helpers of bench/profile.sh, bench/images.sh and bench/network.sh: loop, stracec,
  phases, perfsplit, ablation, cgjoin, ops, oci-layout, images-report, bulk, stamps, nettrace,
  network-report; `bench.py CMD --help`)

SPEC.json: {"commands": [{"key": ..., "label": ..., "argv": [...], "rss_argv": [...]?}]}
"{id}" in an argv becomes a fresh id per start (container names must be unique); "{rss}" in
rss_argv becomes the file /usr/bin/time writes to.
"""

import argparse
import json
import os
import re
import signal
import statistics
import sys
import tempfile
import time

# ---------------------------------------------------------------------------------------------
# measuring


class Command:
    def __init__(self, spec, log_fd, null_fd):
        self.key = spec["key"]
        self.label = spec["label"]
        self.argv = spec["argv"]
        self.rss_argv = spec.get("rss_argv")
        self.log_fd = log_fd
        self.null_fd = null_fd
        self.failed = None
        self.n = 0
        self.path = resolve(self.argv[0])

    def fill(self, argv, extra=None):
        self.n += 1
        ident = "lbench-%s-%d-%d" % (self.key, os.getpid(), self.n)
        out = []
        for a in argv:
            a = a.replace("{id}", ident)
            if extra:
                for k, v in extra.items():
                    a = a.replace(k, v)
            out.append(a)
        return out

    def start(self, argv=None):
        """One start-to-exit: (wall ns, user s, sys s, maxrss KiB), or None if it failed."""
        argv = self.fill(argv or self.argv)
        path = resolve(argv[0])
        actions = [
            (os.POSIX_SPAWN_DUP2, self.null_fd, 0),
            (os.POSIX_SPAWN_DUP2, self.log_fd, 1),
            (os.POSIX_SPAWN_DUP2, self.log_fd, 2),
        ]
        t0 = time.perf_counter_ns()
        pid = os.posix_spawn(path, argv, ENV, file_actions=actions)
        signal.alarm(TIMEOUT)
        try:
            _, status, ru = os.wait4(pid, 0)
        except TimeoutError:
            os.kill(pid, signal.SIGKILL)
            os.wait4(pid, 0)
            self.failed = "no exit after %d s: %s" % (TIMEOUT, " ".join(argv))
            os.write(self.log_fd, ("bench.py: %s: %s\n" % (self.key, self.failed)).encode())
            return None
        finally:
            signal.alarm(0)
        t1 = time.perf_counter_ns()
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            self.failed = "exit status %d: %s" % (code, " ".join(argv))
            os.write(self.log_fd, ("bench.py: %s: %s\n" % (self.key, self.failed)).encode())
            return None
        return (t1 - t0, ru.ru_utime, ru.ru_stime, ru.ru_maxrss, ru.ru_minflt)


def resolve(prog):
    if "/" in prog:
        return prog
    for d in ENV.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").split(":"):
        p = os.path.join(d, prog)
        if os.access(p, os.X_OK):
            return p
    raise SystemExit("bench.py: %s not found in PATH" % prog)


TIMEOUT = 60  # seconds a single start may take before it counts as hung


def _alarm(signum, frame):
    raise TimeoutError()


signal.signal(signal.SIGALRM, _alarm)

# The commands run with this environment: no LAUNCH_LOG (logging is not what we measure).
ENV = {k: v for k, v in os.environ.items() if k not in ("LAUNCH_LOG",)}


def rotated(items, r):
    r %= max(len(items), 1)
    return items[r:] + items[:r]


def measure(args):
    spec = json.load(open(args.spec))
    log_fd = os.open(args.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    null_fd = os.open("/dev/null", os.O_RDONLY)
    cmds = [Command(c, log_fd, null_fd) for c in spec["commands"]]
    res = {c.key: {"label": c.label, "argv": c.argv, "iso": [], "b2b": [], "b2b_blocks": [],
                   "utime": [], "stime": [], "maxrss_tree": [], "minflt": [], "rss": []} for c in cmds}
    t_start = time.time()
    load_before = open("/proc/loadavg").read().split()[:3]

    def alive():
        return [c for c in cmds if not c.failed]

    say("warm-up: %d starts of each of %d commands" % (args.warmup, len(cmds)))
    for _ in range(args.warmup):
        for c in alive():
            c.start()

    say("isolated: %d rounds, %.0f ms pause before each start" % (args.iso_rounds, args.pause * 1000))
    for r in range(args.iso_rounds):
        for c in rotated(alive(), r):
            time.sleep(args.pause)
            m = c.start()
            if m:
                d = res[c.key]
                d["iso"].append(m[0])
                d["utime"].append(m[1])
                d["stime"].append(m[2])
                d["maxrss_tree"].append(m[3])
                d["minflt"].append(m[4])
        progress(r + 1, args.iso_rounds)

    say("back-to-back: %d rounds of %d starts in a row per command" % (args.b2b_rounds, args.b2b_runs))
    for r in range(args.b2b_rounds):
        for c in rotated(alive(), r):
            times = []
            t0 = time.perf_counter_ns()
            for _ in range(args.b2b_runs):
                m = c.start()
                if not m:
                    break
                times.append(m[0])
            t1 = time.perf_counter_ns()
            if len(times) == args.b2b_runs:
                res[c.key]["b2b"].extend(times)
                res[c.key]["b2b_blocks"].append((t1 - t0) / args.b2b_runs)
        progress(r + 1, args.b2b_rounds)

    if args.rss_runs:
        say("peak RSS: %d starts of each under /usr/bin/time -f %%M" % args.rss_runs)
        tmp = tempfile.NamedTemporaryFile(prefix="bench-rss-", delete=False)
        tmp.close()
        for _ in range(args.rss_runs):
            for c in alive():
                if not c.rss_argv:
                    continue
                if c.start(c.fill(c.rss_argv, {"{rss}": tmp.name})):
                    with open(tmp.name) as f:
                        res[c.key]["rss"].append(int(f.read().split()[-1]))
        os.unlink(tmp.name)

    for c in cmds:
        res[c.key]["failed"] = c.failed
    out = {
        "commands": [c.key for c in cmds],
        "results": res,
        "settings": {k: getattr(args, k) for k in ("iso_rounds", "pause", "b2b_rounds", "b2b_runs",
                                                  "rss_runs", "warmup")},
        "load_before": load_before,
        "load_after": open("/proc/loadavg").read().split()[:3],
        "seconds": round(time.time() - t_start, 1),
    }
    json.dump(out, open(args.out, "w"), indent=1)
    say("wrote %s (%.0f s)" % (args.out, out["seconds"]))
    if any(c.failed for c in cmds):
        for c in cmds:
            if c.failed:
                say("FAILED %s: %s (see %s)" % (c.key, c.failed, args.log))


def say(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def progress(i, n):
    if sys.stderr.isatty():
        print("\r  %d/%d" % (i, n), end="\n" if i == n else "", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# statistics


def pct(xs, p):
    """Percentile with linear interpolation (p in 0..100)."""
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100
    f = int(k)
    c = min(f + 1, len(xs) - 1)
    return xs[f] + (xs[c] - xs[f]) * (k - f)


def summary(ns_list):
    """median, p10, p90 in ms."""
    ms = [x / 1e6 for x in ns_list]
    if not ms:
        return None
    return {"med": statistics.median(ms), "p10": pct(ms, 10), "p90": pct(ms, 90), "n": len(ms)}


def stats_of(d, shift=0.0):
    """The figures of one command; `shift` ms is subtracted (crun's wrapper)."""
    iso = summary(d["iso"])
    b2b = summary(d["b2b"])
    out = {}
    if iso:
        out["iso"] = {k: (v - shift if k != "n" else v) for k, v in iso.items()}
    if b2b:
        out["b2b"] = {k: (v - shift if k != "n" else v) for k, v in b2b.items()}
        blocks = [x / 1e6 - shift for x in d["b2b_blocks"]]
        out["b2b"]["per_start"] = statistics.median(blocks)
        out["b2b"]["blocks"] = blocks
    if d["utime"]:
        # utime/stime are split by sampled ticks, unreliable for millisecond processes; their sum
        # (sum_exec_runtime) is exact.
        out["cpu_ms"] = statistics.median([u + s for u, s in zip(d["utime"], d["stime"])]) * 1000
    if d["rss"]:
        out["rss_mib"] = statistics.median(d["rss"]) / 1024
    if d.get("minflt"):
        out["minflt"] = statistics.median(d["minflt"])
    if d["maxrss_tree"]:
        out["rss_tree_mib"] = statistics.median(d["maxrss_tree"]) / 1024
    return out


# ---------------------------------------------------------------------------------------------
# report


def fmt(x, digits=1):
    return "–" if x is None or x != x else ("%.*f" % (digits, x))


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def report(args):
    data = json.load(open(args.results))
    meta = json.load(open(args.meta))
    res = data["results"]
    keys = data["commands"]
    settings = data["settings"]

    # crun runs inside `unshare -m sh -c 'mount -t tmpfs ... && exec crun ...'` (see run.sh).
    # Its cost beyond the exec it replaces is wrapper(/bin/true) - /bin/true; subtract that.
    shift = {"iso": 0.0, "b2b": 0.0}
    if "crun-wrapper" in res and "true" in res:
        w = stats_of(res["crun-wrapper"])
        t = stats_of(res["true"])
        if "iso" in w and "iso" in t:
            shift["iso"] = w["iso"]["med"] - t["iso"]["med"]
        if "b2b" in w and "b2b" in t:
            shift["b2b"] = w["b2b"]["per_start"] - t["b2b"]["per_start"]
        if "cpu_ms" in w and "cpu_ms" in t:
            shift["cpu"] = w["cpu_ms"] - t["cpu_ms"]

    st = {}
    for k in keys:
        s = stats_of(res[k])
        if k.startswith("crun") and k != "crun-wrapper":
            for mode in ("iso", "b2b"):
                for f in ("med", "p10", "p90", "per_start"):
                    if f in s.get(mode, {}):
                        s[mode][f] -= shift[mode]
            if "cpu_ms" in s:
                s["cpu_ms"] -= shift.get("cpu", 0.0)
        st[k] = s

    def get(k, mode, f="med"):
        return st.get(k, {}).get(mode, {}).get(f)

    L = []
    w = L.append
    w("# Benchmark results")
    w("")
    w("Generated by `just bench` (bench/run.sh) on %s. Do not edit by hand: re-run it." % meta["date"])
    w("")
    w("- Machine: %s CPUs, Linux %s, %s (Debian %s), cgroups: %s." % (
        meta["nproc"], meta["kernel"], meta["os"], meta["debian_version"], meta["cgroups"]))
    # Only the load before says whether something else ran: the back-to-back blocks keep a CPU
    # busy themselves, so the 1-minute figure after them is always 2-3 on two CPUs.
    w("- Load average (1/5/15 min) before: %s%s; after (the bench's own starts included): %s." % (
        " ".join(data["load_before"]),
        (" — **the machine was busy** (other builds/tests): absolute times are inflated and "
         "noisier; ratios measured in the same interleaved run are what to compare")
        if float(data["load_before"][0]) > 0.7 else " (quiet)",
        " ".join(data["load_after"])))
    w("- Tools: launch `%s` (release build: `scripts/release.sh`, static musl + PGO; one row shows "
      "the plain `cargo build --release`), %s." % (meta["launch"], ", ".join(meta["tools"])))
    w("- Method: bench/bench.py alternates the commands round by round (order rotated each "
      "round), posix_spawn + wait4, no shell. **Isolated**: %d starts each, %.0f ms pause before "
      "each. **Back-to-back**: %d blocks of %d starts in a row each (ms/start = block time / %d; "
      "median block). Peak RSS: `/usr/bin/time -f %%M` around the launcher (median of %d). "
      "Spread: p10–p90 of the single starts. Warm-up: %d starts each. Measuring took %.0f s." % (
          settings["iso_rounds"], settings["pause"] * 1000, settings["b2b_rounds"],
          settings["b2b_runs"], settings["b2b_runs"], settings["rss_runs"], settings["warmup"],
          data["seconds"]))
    w("- Same rootfs directory for every tool (`examples/make-rootfs.sh --dir bench/out/rootfs`); "
      "the container runs `/bin/true` with pid, mount, uts, ipc and net namespaces, its own root "
      "(pivot_root), /proc mounted; launch, crun and runc also build a minimal /dev (tmpfs, device "
      "nodes, devpts, shm); bwrap `--dev /dev` likewise. Limits: cpu 50%% (quota 50000 / period "
      "100000) and memory 256 MiB. launch uses a private state root (`LAUNCH_STATE_ROOT=/run/lbench-state`); "
      "/run is %s here." % meta.get("run_fs", "?"))
    w("- crun 1.8 refuses this hybrid host unless a tmpfs hides /sys/fs/cgroup/unified, so it runs "
      "as `unshare -m sh -c 'mount -t tmpfs tmpfs /sys/fs/cgroup/unified && exec crun …'` (a "
      "private mount namespace; nothing global changes). That wrapper costs "
      "%s ms isolated / %s ms back-to-back beyond the exec it replaces (row *crun wrapper alone* "
      "minus *plain /bin/true*; %s ms of CPU); **the crun rows below have it subtracted** "
      "(times and CPU; as-run samples in bench/out/results.json); their peak RSS is crun's own "
      "(`/usr/bin/time` runs inside the wrapper)." % (fmt(shift["iso"], 2), fmt(shift["b2b"], 2),
                                                     fmt(shift.get("cpu"), 2)))
    w("")
    w("## Start-to-exit of `/bin/true` in a container")
    w("")
    w("Ratios: against **crun with the same limits** (×crun-L) and against the **`unshare -pfmuin "
      "--fork chroot` floor** (×floor). CPU ms: user+system time of the launcher and its "
      "children (the container included), isolated starts, median.")
    w("")
    w("| command | isolated ms (p10–p90) | ×crun-L | ×floor | back-to-back ms/start (p10–p90) "
      "| ×crun-L | ×floor | CPU ms | peak RSS MiB |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for k in keys:
        s = st[k]
        label = res[k]["label"]
        if res[k].get("failed"):
            w("| %s | failed: `%s` | | | | | | | |" % (label, res[k]["failed"]))
            continue
        iso = s.get("iso")
        b2b = s.get("b2b")
        cells = [label]
        if iso:
            cells.append("%s (%s–%s)" % (fmt(iso["med"], 2), fmt(iso["p10"]), fmt(iso["p90"])))
            cells.append(fmt(ratio(iso["med"], get("crun-limits", "iso")), 2))
            cells.append(fmt(ratio(iso["med"], get("floor", "iso")), 2))
        else:
            cells += ["–"] * 3
        if b2b:
            cells.append("%s (%s–%s)" % (fmt(b2b["per_start"], 2), fmt(b2b["p10"]), fmt(b2b["p90"])))
            cells.append(fmt(ratio(b2b["per_start"], get("crun-limits", "b2b", "per_start")), 2))
            cells.append(fmt(ratio(b2b["per_start"], get("floor", "b2b", "per_start")), 2))
        else:
            cells += ["–"] * 3
        cells.append(fmt(s.get("cpu_ms")))
        cells.append(fmt(s.get("rss_mib"), 2))
        w("| " + " | ".join(cells) + " |")
    w("")

    # targets
    w("## Targets")
    w("")
    w("| target | measured | met? |")
    w("|---|---|:---:|")

    def target(name, value_txt, ok):
        w("| %s | %s | %s |" % (name, value_txt, "–" if ok is None else ("yes" if ok else "**no**")))

    for mode, word, f in (("iso", "isolated", "med"), ("b2b", "back-to-back", "per_start")):
        l, c, fl = get("launch-limits", mode, f), get("crun-limits", mode, f), get("floor", mode, f)
        r1, r2 = ratio(l, c), ratio(l, fl)
        target("launch with limits ≤ 0.5× crun with the same limits (%s)" % word,
               "%s ms vs %s ms = %s×" % (fmt(l, 2), fmt(c, 2), fmt(r1, 2)),
               None if r1 is None else r1 <= 0.5)
        target("launch with limits ≤ 1.5× `unshare -pfmuin --fork chroot` (%s)" % word,
               "%s ms vs %s ms = %s×" % (fmt(l, 2), fmt(fl, 2), fmt(r2, 2)),
               None if r2 is None else r2 <= 1.5)
    # The security ratio compares two starts 0.3-0.6 ms apart whose single starts spread over
    # ~1.5 ms (p10-p90): 40 isolated starts each leave its median ratio ±0.03 from run to run.
    # run.sh measures the pair again in its own interleaved A/B with several times the samples;
    # the target is judged on that one, and the main table's figure is shown beside it.
    sec = None
    if getattr(args, "security", None) and os.path.exists(args.security):
        sec = json.load(open(args.security))
    for mode, word, f in (("iso", "isolated", "med"), ("b2b", "back-to-back", "per_start")):
        l, u = get("launch-limits", mode, f), get("launch-limits-unconfined", mode, f)
        r_main = ratio(l, u)
        note = ""
        if sec:
            s_l = stats_of(sec["results"]["launch-limits"]).get(mode, {}).get(f)
            s_u = stats_of(sec["results"]["launch-limits-unconfined"]).get(mode, {}).get(f)
            n = (sec["settings"]["iso_rounds"] if mode == "iso"
                 else "%d×%d" % (sec["settings"]["b2b_rounds"], sec["settings"]["b2b_runs"]))
            note = " (their own A/B, %s starts each; the main table's rows: %s×)" % (n, fmt(r_main, 2))
            l, u = s_l, s_u
        r = ratio(l, u)
        target("launch with limits and the default security ≤ 1.1× the same unconfined (%s)" % word,
               "%s ms vs %s ms = %s×%s" % (fmt(l, 2), fmt(u, 2), fmt(r, 2), note),
               None if r is None else r <= 1.1)
    for k in ("launch", "launch-limits"):
        lr, br = st.get(k, {}).get("rss_mib"), st.get("bwrap", {}).get("rss_mib")
        target("%s peak RSS ≤ bubblewrap's" % res.get(k, {}).get("label", k),
               "%s MiB vs %s MiB" % (fmt(lr, 2), fmt(br, 2)),
               None if lr is None or br is None else lr <= br)
    plan = json.load(open(args.plan)) if args.plan and os.path.exists(args.plan) else None
    if plan:
        worst = None
        for r in plan["results"]:
            if " plan " in r["command"] or r["command"].endswith(" plan"):
                med = r["median"] * 1000
                worst = med if worst is None else max(worst, med)
        target("`launch plan` ≤ 2 ms whole process (slowest example, median)",
               "%s ms" % fmt(worst, 2), None if worst is None else worst <= 2.0)
    images = None
    if args.images_start and args.images_ops and os.path.exists(args.images_ops):
        images, image_targets = images_section(args.images_start, args.images_ops)
        for text, m, ok in image_targets:
            target(text + " (section *Images*)", m, ok)
    network = None
    if args.network_meta and os.path.exists(args.network_meta):
        network, net_targets = network_section(args.network_start, args.network_bulk, args.network_meta)
        for text, m, ok in net_targets:
            target(text + " (section *Network*)", m, ok)
    w("")

    if plan:
        w("## `launch plan` / `launch validate`, whole process (target: ≤ 2 ms)")
        w("")
        w("hyperfine %s, `-N` (no shell), %d runs after %d warm-ups%s." % (
            meta.get("hyperfine", ""), meta.get("plan_runs", 0), meta.get("plan_warmup", 0),
            "; `launch --version` is the floor of starting this binary at all"))
        w("")
        w("| command | median ms | mean ± σ ms | min ms | p90 ms |")
        w("|---|---:|---:|---:|---:|")
        for r in plan["results"]:
            times = [t * 1000 for t in r["times"]]
            w("| `%s` | %s | %s ± %s | %s | %s |" % (
                r["command"].replace(meta.get("root", "") + "/", ""), fmt(r["median"] * 1000, 2),
                fmt(r["mean"] * 1000, 2), fmt(r["stddev"] * 1000, 2), fmt(r["min"] * 1000, 2),
                fmt(pct(times, 90), 2)))
        w("")

    if images:
        L.extend(images)
        w("")
    if network:
        L.extend(network)
        w("")
    w("## What each row runs")
    w("")
    w(NETNS_NOTE)
    w("")
    import shlex
    for k in keys:
        w("- %s: `%s`" % (res[k]["label"], shlex.join(res[k]["argv"]).replace(meta.get("root", "") + "/", "")))
    w("")

    if args.profile and os.path.exists(args.profile):
        w(open(args.profile).read().rstrip())
        w("")
    sys.stdout.write("\n".join(L) + "\n")


# Part of "What each row runs": the network isolation of the start rows, equal for every tool.
NETNS_NOTE = (
    "Network isolation is the same in every container row: a network namespace of its own with "
    "only `lo`, brought up — launch by `[namespaces] net = true` in bench/lib.sh's manifests, "
    "which since 32dc743 (`[network]`, whose default is now `mode = \"none\"`) plans exactly the "
    "same steps as before (`launch plan` of true.toml is the same from 8a76d78 and 90819ad: "
    "CLONE_NEWNET, then `ioctl(SIOCSIFFLAGS, \"lo\", IFF_UP)`); crun and runc by `network` in "
    "the bundles' namespaces (both bring `lo` up); bubblewrap by `--unshare-all` (which includes "
    "`--unshare-net` and brings `lo` up). The floor (`unshare -n`) leaves `lo` down, as it always "
    "did. So 32dc743 needed no change here and the rows stay comparable with earlier runs; "
    "`mode = \"bridge\"` and podman are compared in the section *Network*.")


# ---------------------------------------------------------------------------------------------
# profile helpers (bench/profile.sh)


def loop(args):
    """Start a command N times in a row (under perf record): no shell between the starts."""
    null = os.open("/dev/null", os.O_RDWR)
    log = os.open(args.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    if args.argv and args.argv[0] == "--":
        args.argv = args.argv[1:]
    path = resolve(args.argv[0])
    for _ in range(args.n):
        if args.pause:
            time.sleep(args.pause)
        pid = os.posix_spawn(path, args.argv, ENV, file_actions=[
            (os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, log, 1), (os.POSIX_SPAWN_DUP2, log, 2)])
        _, status, _ = os.wait4(pid, 0)
        if status:
            raise SystemExit("bench.py loop: %s failed (%d)" % (args.argv, status))


def stracec(args):
    """Top syscalls of `strace -f -c` output, as a Markdown table."""
    rows = []
    for line in open(args.file):
        # "% time  seconds  usecs/call  calls  [errors]  syscall"
        f = line.split()
        if len(f) in (5, 6) and f[0].replace(".", "").isdigit() and f[3].isdigit() and f[-1] != "total":
            rows.append((f[-1], float(f[0]), float(f[1]), int(f[3]), int(f[4]) if len(f) == 6 else 0))
    rows.sort(key=lambda r: -r[2])
    print("| syscall | % time | ms | calls | errors |")
    print("|---|---:|---:|---:|---:|")
    for name, p, sec, calls, err in rows[: args.top]:
        print("| %s | %.1f | %.3f | %d | %d |" % (name, p, sec * 1000, calls, err))
    rest = rows[args.top:]
    if rest:
        print("| (%d others) | %.1f | %.3f | %d | %d |" % (
            len(rest), sum(r[1] for r in rest), sum(r[2] for r in rest) * 1000,
            sum(r[3] for r in rest), sum(r[4] for r in rest)))
    print("| **total** | 100 | %.3f | %d | |" % (sum(r[2] for r in rows) * 1000, sum(r[3] for r in rows)))


def _parse_strace(path):
    """Lines of `strace -f -r -tt -T`: (pid, start s, end s, name, args+result text)."""
    import re
    head = re.compile(r"^(\d+)\s+(\d+):(\d+):(\d+\.\d+)\s+(?:\(\+\s*[\d.]+\)\s+)?(.*)$")
    dur = re.compile(r"<([\d.]+)>\s*$")
    pending = {}
    calls = []
    events = []
    for line in open(path):
        m = head.match(line.rstrip("\n"))
        if not m:
            continue
        pid = int(m.group(1))
        t = int(m.group(2)) * 3600 + int(m.group(3)) * 60 + float(m.group(4))
        body = m.group(5)
        if body.startswith("+++") or body.startswith("---"):
            events.append((pid, t, body))
            continue
        if body.startswith("<..."):
            name = body.split()[1]
            start, text = pending.pop((pid, name), (t, ""))
            d = dur.search(body)
            calls.append((pid, start, start + float(d.group(1)) if d else t, name, text + body))
            continue
        name = body.split("(", 1)[0]
        if body.endswith("<unfinished ...>"):
            pending[(pid, name)] = (t, body)
            continue
        d = dur.search(body)
        calls.append((pid, t, t + (float(d.group(1)) if d else 0.0), name, body))
    calls.sort(key=lambda c: c[1])
    return calls, events


MOUNTY = ("mount", "umount2", "pivot_root", "mount_setattr", "open_tree", "move_mount", "fsopen",
          "fsconfig", "fsmount", "chroot")
FILEY = ("openat", "openat2", "open", "close", "dup", "dup2", "dup3", "mkdir", "mkdirat", "symlinkat",
         "mknodat", "mknod", "umask",
         "statx", "newfstatat", "read", "write", "unlinkat", "rmdir", "getdents64", "fcntl", "chmod",
         "chdir", "fchdir")


def _phases_of(path):
    """Phases of one traced `launch run`: ([(name, traced ms, syscalls)], total ms, syscalls,
    container-side breakdown {kind: (calls, ms)}, /dev binds (count, ms), slowest calls)."""
    calls, events = _parse_strace(path)
    if not calls:
        raise SystemExit("no syscalls in " + path)
    launcher = calls[0][0]
    t0 = calls[0][1]
    child = None
    for c in calls:
        if c[0] == launcher and c[3] == "clone3":
            m = c[4].rsplit("=", 1)[-1].split()
            child = int(m[0]) if m and m[0].isdigit() else None
            break
    L = [c for c in calls if c[0] == launcher]
    C = [c for c in calls if c[0] == child]
    end = max([e[1] for e in events if e[0] == launcher and e[2].startswith("+++")] or [calls[-1][2]])

    def first(cs, pred):
        for c in cs:
            if pred(c):
                return c
        raise SystemExit("%s: unexpected trace (is this a `launch run` with limits?)" % path)

    manifest = first(L, lambda c: c[3] in ("openat", "open") and ".toml" in c[4])
    state = first(L, lambda c: c[3] == "mkdir")
    clone = first(L, lambda c: c[3] == "clone3")
    go = first(C, lambda c: c[3] in ("recvfrom", "recvmsg", "read") and "Release" in c[4])
    cexec = first(C, lambda c: c[3] == "execve")
    cexit = max([e[1] for e in events if e[0] == child and e[2].startswith("+++")] or [cexec[2]])
    marks = [
        ("exec `launch`, Rust runtime start", t0, manifest[1]),
        ("read the manifest, probe the host, validate, build the plan", manifest[1], state[1]),
        ("host steps: state dir + journal, cgroup mkdirs and limit writes", state[1], clone[1]),
        ("clone3 with the new namespaces", clone[1], clone[2]),
        ("after clone3 until the container process is released (launcher: cgroup joins or id maps if any; handshake)", clone[2], go[2]),
        ("container side: cgroup self-join, loopback, mounts, /dev, pivot_root, ids (until execve)", go[2], cexec[1]),
        ("/bin/true: execve, its own start-up and exit", cexec[1], cexit),
        ("after exit: reap, usage stats, cgroup rmdirs, state dir removal", cexit, end),
    ]
    both = [c for c in calls if c[0] in (launcher, child)]
    waits = ("wait4", "waitid", "recvfrom", "recvmsg")
    rows = []
    for i, (name, a, b) in enumerate(marks):
        who = child if i in (5, 6) else launcher  # the process doing the work in that phase
        cs = [clone] if i == 3 else [c for c in both if a <= c[1] < b and c[0] == who and c[3] not in waits]
        rows.append((name, (b - a) * 1000, len(cs), sum(c[2] - c[1] for c in cs) * 1000))
    side = [c for c in C if go[2] <= c[1] < cexec[1]]
    by = {}
    for c in side:
        kind = "mount family" if c[3] in MOUNTY else ("file and fd calls" if c[3] in FILEY else "other")
        n, d = by.get(kind, (0, 0.0))
        by[kind] = (n + 1, d + (c[2] - c[1]) * 1000)
    names = {}
    for c in side:
        names[c[3]] = names.get(c[3], 0) + 1
    devs = [c for c in side if c[3] == "mount" and "MS_BIND" in c[4] and '"/dev/' in c[4].split(",")[0]]
    nodes = [c for c in side if c[3] in ("mknodat", "mknod")]
    # v1 cgroup joins: the launcher writing the pid into cgroup.procs, or the container process
    # writing "0" into inherited `tasks` fds.
    joins = [c for c in L if c[3] == "write" and clone[2] <= c[1] < go[2] and re.match(r'write\(\d+, "\d+"', c[4])]
    self_joins = [c for c in C if c[3] == "write" and re.match(r'write\(\d+, "0", 1[ )]', c[4])]
    slow = sorted(both, key=lambda c: -(c[2] - c[1]))
    slow = [c for c in slow if c[3] not in ("wait4", "waitid", "recvfrom", "recvmsg", "read")][:6]
    return {"rows": rows, "total": (end - t0) * 1000, "nsys": len(both), "by": by, "names": names,
            "devs": (len(devs), sum(c[2] - c[1] for c in devs) * 1000),
            "nodes": (len(nodes), sum(c[2] - c[1] for c in nodes) * 1000),
            "joins": [(c[2] - c[1]) * 1000 for c in joins],
            "self_joins": [(c[2] - c[1]) * 1000 for c in self_joins],
            "slow": [("launcher" if c[0] == launcher else "container", _short(c), (c[2] - c[1]) * 1000) for c in slow]}


def phases(args):
    """Where a traced `launch run` spends its wall time, phase by phase (median of the traces)."""
    runs = [_phases_of(p) for p in args.traces]
    med = statistics.median
    total = med([r["total"] for r in runs])
    nsys = med([r["nsys"] for r in runs])
    print("%d runs of `launch run true-limits.toml`, each after a 300 ms pause, traced with `strace -f "
          "-r -tt -T` (bench/out/profile/trace-*.txt); medians. A traced run takes %.2f ms and makes "
          "%d syscalls (launcher, container process until execve, /bin/true); untraced it takes "
          "%s ms (isolated, variants table below): strace stops the process at every syscall, so "
          "*traced ms* overstates phases with many syscalls; *in syscalls* is the time spent inside "
          "the calls of the process doing that phase's work (waits excluded)."
          % (len(runs), total, nsys, fmt(args.untraced_ms, 2)))
    print()
    print("| phase | traced ms | syscalls | in syscalls ms |")
    print("|---|---:|---:|---:|")
    for i, (name, _, _, _) in enumerate(runs[0]["rows"]):
        print("| %s | %.2f | %d | %.2f |" % (
            name, med([r["rows"][i][1] for r in runs]), med([r["rows"][i][2] for r in runs]),
            med([r["rows"][i][3] for r in runs])))
    print("| **total** | %.2f | %d | |" % (total, nsys))
    print()
    joins = [r["joins"] for r in runs if r["joins"]]
    if joins:
        print("- The v1 cgroup joins (writes of the pid into `cgroup.procs`, traced): first write "
              "%.2f ms, the others %.3f ms each (medians): the first migration after idle waits for "
              "an RCU grace period (see the cgroup-join experiment below)." % (
                  med([j[0] for j in joins]), med([x for j in joins for x in j[1:]] or [0])))
    sj = [r["self_joins"] for r in runs if r["self_joins"]]
    if sj:
        print("- The v1 cgroup joins done by the container process itself (`\"0\"` into %d inherited "
              "`tasks` fds, traced): %.3f ms for all of them (median): no wait for the global lock "
              "(see the cgroup-join experiment below)." % (len(sj[0]), med([sum(j) for j in sj])))
    by = {}
    for r in runs:
        for kind, (n, d) in r["by"].items():
            by.setdefault(kind, []).append((n, d))
    print("- Container side, time inside the syscalls (traced, medians): " + "; ".join(
        "%s %d calls, %.2f ms" % (kind, med([x[0] for x in v]), med([x[1] for x in v]))
        for kind, v in sorted(by.items(), key=lambda x: -med([y[1] for y in x[1]]))) + ". By name: " +
        ", ".join("%s %d" % (n, c) for n, c in sorted(runs[0]["names"].items(), key=lambda x: -x[1])) + ".")
    d = runs[0]["devs"]
    if d[0]:
        print("- The %d `/dev` bind mounts: %.2f ms inside mount(2) (median of the runs' sums)." % (
            d[0], med([r["devs"][1] for r in runs])))
    d = runs[0]["nodes"]
    if d[0]:
        print("- The %d `/dev` nodes made with mknod: %.2f ms inside mknodat(2) (median of the runs' sums)." % (
            d[0], med([r["nodes"][1] for r in runs])))
    print("- Slowest single syscalls of the first traced run (not counting waits): " + "; ".join(
        "%s `%s` %.2f ms" % s for s in runs[0]["slow"]) + ".")
    print()


def _short(c):
    """`name(first argument)` of a traced call."""
    text = c[4]
    if "<unfinished" in text:
        text = text.split("<unfinished", 1)[0]
    elif text.startswith("<..."):
        return "%s(…)" % c[3]
    arg = text.split("(", 1)[1].split(",", 1)[0].split(")", 1)[0][:60] if "(" in text else ""
    return "%s(%s)" % (c[3], arg.strip())


def perfsplit(args):
    """Where the launcher's CPU goes, from `perf script` of a system-wide cpu-clock profile."""
    import re
    kernel = "[kernel.kallsyms]"
    samples = {}
    comms = {}
    user_syms = {}
    head = re.compile(r"^(\S.*?)\s+(\d+)\s*$")
    frame = re.compile(r"^\s+[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$")

    def flush(comm, frames):
        if comm is None:
            return
        group = comm
        if comm.startswith("kworker"):
            group = "kworker (kernel workers)"
        elif comm.startswith("swapper"):
            group = "idle"
        comms[group] = comms.get(group, 0) + 1
        if comm != "launch" or not frames:
            return
        cat = classify(frames, kernel)
        samples[cat] = samples.get(cat, 0) + 1
        if not frames[0][1].endswith(kernel.strip("[]")) and frames[0][1] != kernel:
            key = "%s (%s)" % (frames[0][0].split("+")[0], os.path.basename(frames[0][1]))
            user_syms[key] = user_syms.get(key, 0) + 1

    comm, frames = None, []
    for line in sys.stdin:
        if not line.strip():
            flush(comm, frames)
            comm, frames = None, []
            continue
        if not line[0].isspace():
            flush(comm, frames)
            m = head.match(line.rstrip())
            comm, frames = (m.group(1) if m else line.split()[0]), []
            continue
        m = frame.match(line.rstrip())
        if m:
            frames.append((m.group(1), m.group(2)))
    flush(comm, frames)

    tot = sum(samples.values())
    # perf's own sampling (a timer interrupt and a call-chain copy every period, slow in a VM)
    # inflates what it sees; scale the samples of `launch` and `true` to perf stat's task-clock.
    per = args.period_us / 1000.0 / args.runs  # ms of CPU per sample per run
    raw = (tot + comms.get("true", 0)) * per
    scale = args.task_clock_ms / raw if args.task_clock_ms and raw else 1.0
    per *= scale
    print("Where the CPU time of a start goes: %d back-to-back `launch run true-limits.toml`, "
          "`perf record -a -g -e cpu-clock -c %d` (a sample every %d µs), bench/out/profile/perf.data. "
          "Samples are scaled so that `launch` + `true` add up to perf stat's task-clock "
          "(%s ms; perf record's own sampling inflated them ×%.2f). Processes named `launch` (the "
          "launcher, and the container process until it execs): **%.2f ms per start**; `true` (the "
          "container's command, from its execve): %.2f ms; kernel workers, system-wide (deferred "
          "clean-up such as destroying network namespaces, plus anything else running): %.2f ms." % (
              args.runs, args.period_us * 1000, args.period_us, fmt(args.task_clock_ms, 2),
              1 / scale if scale else 0, tot * per, comms.get("true", 0) * per,
              comms.get("kworker (kernel workers)", 0) * per))
    print()
    print("| where (processes named `launch`) | ms per start | share |")
    print("|---|---:|---:|")
    rest = 0
    for cat, n in sorted(samples.items(), key=lambda x: -x[1]):
        if n < tot * 0.012:
            rest += n
            continue
        print("| %s | %.2f | %.0f%% |" % (cat, n * per, 100.0 * n / tot))
    if rest:
        print("| everything else (each < 1.2%%) | %.2f | %.0f%% |" % (rest * per, 100.0 * rest / tot))
    print()
    top = sorted(user_syms.items(), key=lambda x: -x[1])[:10]
    if top:
        print("Top user-space symbols (self time, ms per start): " + "; ".join(
            "`%s` %.3f" % (k, v * per) for k, v in top) + ".")
        print()


def classify(frames, kernel):
    leaf_sym, leaf_dso = frames[0]
    if leaf_dso != kernel:
        dso = os.path.basename(leaf_dso)
        if dso.startswith("ld-linux"):
            return "user: dynamic loader (ld-linux: relocations, symbol lookup)"
        if dso == "launch":
            return "user: launch's own code"
        if dso.startswith("libc"):
            return "user: libc (malloc, memcpy, …)"
        return "user: " + dso
    syms = [f[0].split("+")[0] for f in frames]
    sc = None
    for s in syms:
        if s.startswith(("__x64_sys_", "__do_sys_", "__ia32_sys_", "__se_sys_")):
            sc = s
    if sc:
        name = re.sub(r"^(__x64_sys_|__do_sys_|__ia32_sys_|__se_sys_)", "", sc)
        if name == "clone3" or name == "clone":
            for key, label in (("copy_net_ns", "new network namespace"), ("copy_mnt_ns", "new mount namespace"),
                               ("copy_pid_ns", "new pid namespace"), ("copy_ipcs", "new ipc namespace"),
                               ("copy_utsname", "new uts namespace"), ("create_new_namespaces", "namespaces, other")):
                if key in syms:
                    return "kernel: clone3 → " + label
            return "kernel: clone3 → copy the process"
        if name in ("exit_group", "exit"):
            for key, label in (("exit_mmap", "unmap memory"), ("put_mnt_ns", "drop the mount namespace"),
                               ("free_nsproxy", "drop namespaces"), ("switch_task_namespaces", "drop namespaces"),
                               ("exit_task_namespaces", "drop namespaces")):
                if key in syms:
                    return "kernel: exit → " + label
            return "kernel: exit, other"
        if name in ("mount", "umount", "pivot_root", "mount_setattr"):
            return "kernel: " + name
        if any(s.startswith(("cgroup", "kernfs", "__cgroup")) for s in syms):
            return "kernel: %s (cgroupfs)" % name
        if any(s.startswith(("ext4_", "jbd2")) for s in syms):
            return "kernel: %s (ext4: state dir, journal)" % name
        if any(s.startswith(("proc_", "seq_read")) for s in syms):
            return "kernel: %s (/proc)" % name
        return "kernel: " + name
    if "asm_exc_page_fault" in syms or "exc_page_fault" in syms:
        return "kernel: page faults"
    if "ret_from_fork" in syms or "ret_from_fork_asm" in syms:
        return "kernel: return from fork"
    return "kernel: other (interrupts, scheduling)"


def ablation(args):
    """Table of the profile's variants: cost of each part of a launch run, without a tracer."""
    data = json.load(open(args.results))
    res = data["results"]
    st = {k: stats_of(res[k]) for k in data["commands"]}
    base = st.get(args.base, {})
    print("| variant | isolated ms (p10–p90) | Δ vs `%s` | back-to-back ms/start | Δ | CPU ms | page faults |" % args.base)
    print("|---|---:|---:|---:|---:|---:|---:|")
    for k in data["commands"]:
        s = st[k]
        if res[k].get("failed"):
            print("| %s | failed: %s | | | | | |" % (res[k]["label"], res[k]["failed"]))
            continue
        iso, b2b = s.get("iso", {}), s.get("b2b", {})
        di = iso.get("med", 0) - base.get("iso", {}).get("med", 0)
        db = b2b.get("per_start", 0) - base.get("b2b", {}).get("per_start", 0)
        print("| %s | %s (%s–%s) | %+.2f | %s | %+.2f | %s | %s |" % (
            res[k]["label"], fmt(iso.get("med"), 2), fmt(iso.get("p10")), fmt(iso.get("p90")), di,
            fmt(b2b.get("per_start"), 2), db, fmt(s.get("cpu_ms"), 2), fmt(s.get("minflt"), 0)))
    print()
    print("%d isolated starts each (%.0f ms pause), %d×%d back-to-back, interleaved (bench.py); CPU ms "
          "and page faults (minor) from wait4's rusage of the isolated starts, the whole process tree; "
          "load average %s → %s." % (data["settings"]["iso_rounds"], data["settings"]["pause"] * 1000,
                                data["settings"]["b2b_rounds"], data["settings"]["b2b_runs"],
                                " ".join(data["load_before"]), " ".join(data["load_after"])))
    print()


def cgjoin(args):
    """Cost of joining a v1 cgroup after the machine idled for a while: the launcher writing the
    child's pid into cgroup.procs (what launch, crun and runc do) versus the child writing "0"
    into cgroup.procs or `tasks` itself."""
    base = "/sys/fs/cgroup/cpu/lbench-cgjoin-%d" % os.getpid()
    if not os.path.isdir("/sys/fs/cgroup/cpu"):
        print("(no v1 cpu hierarchy: experiment skipped)")
        return
    pauses = [float(p) for p in args.pauses.split(",")]
    os.mkdir(base)
    res = {(m, p): [] for m in "abc" for p in pauses}
    try:
        for _ in range(args.rounds):
            for p in pauses:
                for m in "abc":
                    res[(m, p)].append(_join_once(base, m, p))
    finally:
        time.sleep(0.05)
        os.rmdir(base)
    print("| how a process joins a v1 cgroup (`cpu`), median ms of %d, after the machine idled … | %s |" % (
        args.rounds, " | ".join("%g ms" % (p * 1000) for p in pauses)))
    print("|---|" + "---:|" * len(pauses))
    for m, label in (("a", "another process writes its pid into `cgroup.procs` (crun, runc)"),
                     ("c", "the process writes `0` into `cgroup.procs` itself"),
                     ("b", "the process writes `0` into `tasks` itself, single-threaded (launch)")):
        print("| %s | %s |" % (label, " | ".join("%.3f" % statistics.median(res[(m, p)]) for p in pauses)))
    print()
    print("Writing a pid (or a whole thread group) takes the global `cgroup_threadgroup_rwsem` for "
          "writing, which waits for an RCU grace period unless another writer was there moments "
          "ago; a single thread moving itself (`tasks` ← 0) skips that lock (kernel/cgroup, "
          "cgroup_procs_write_start).")
    print()


def _join_once(base, mode, pause):
    r, w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.close(go_w)
        os.read(go_r, 1)
        d = 0
        if mode in "bc":
            time.sleep(pause)
            f = os.open(base + ("/tasks" if mode == "b" else "/cgroup.procs"), os.O_WRONLY)
            t = time.perf_counter_ns()
            os.write(f, b"0")
            d = time.perf_counter_ns() - t
            os.close(f)
        os.write(w, str(d).encode())
        os._exit(0)
    os.close(w)
    os.close(go_r)
    if mode == "a":
        time.sleep(pause)
        f = os.open(base + "/cgroup.procs", os.O_WRONLY)
        t = time.perf_counter_ns()
        os.write(f, str(pid).encode())
        d = time.perf_counter_ns() - t
        os.close(f)
        os.write(go_w, b"x")
        os.read(r, 100)
    else:
        os.write(go_w, b"x")
        d = int(os.read(r, 100))
    os.waitpid(pid, 0)
    os.close(r)
    os.close(go_w)
    return d / 1e6



# ---------------------------------------------------------------------------------------------
# images: OCI layouts made from layer files, and long operations (pulls, unpacks) in rounds


def oci_layout(args):
    """Write an OCI image layout DIR whose image (tag --tag) has the given layer files (tar,
    tar+gzip or tar+zstd, bottom first), hard-linked into blobs/ (copied across filesystems).
    Deterministic: the same layers give the same digests."""
    import hashlib
    import shutil
    import subprocess

    def sha_file(path, decompress=None):
        h = hashlib.sha256()
        if decompress:
            p = subprocess.Popen(decompress + [path], stdout=subprocess.PIPE)
            f = p.stdout
        else:
            f = open(path, "rb")
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
        f.close()
        if decompress and p.wait():
            raise SystemExit("bench.py: %s failed" % " ".join(decompress + [path]))
        return "sha256:" + h.hexdigest()

    out = args.out
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp + "/blobs/sha256")

    def put(data=None, path=None):
        if path is not None:
            digest = sha_file(path)
            dst = tmp + "/blobs/sha256/" + digest[7:]
            try:
                os.link(path, dst)
            except OSError:
                shutil.copyfile(path, dst)
            return digest, os.path.getsize(path)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        with open(tmp + "/blobs/sha256/" + digest[7:], "wb") as f:
            f.write(data)
        return digest, len(data)

    layers, diff_ids = [], []
    for path in args.layers:
        with open(path, "rb") as f:
            magic = f.read(4)
        if magic[:2] == b"\x1f\x8b":
            media, dec = "application/vnd.oci.image.layer.v1.tar+gzip", ["gzip", "-dc"]
        elif magic == b"\x28\xb5\x2f\xfd":
            media, dec = "application/vnd.oci.image.layer.v1.tar+zstd", ["zstd", "-dcq"]
        else:
            media, dec = "application/vnd.oci.image.layer.v1.tar", None
        digest, size = put(path=path)
        diff_ids.append(sha_file(path, dec) if dec else digest)
        layers.append({"mediaType": media, "digest": digest, "size": size})
    config = {
        "created": "2024-01-01T00:00:00Z", "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                   "Cmd": ["/bin/bash"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "bench/images.sh"} for _ in layers],
    }
    cd, cs = put(data=json.dumps(config, sort_keys=True).encode())
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
                "layers": layers}
    md, ms = put(data=json.dumps(manifest, sort_keys=True).encode())
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md,
                            "size": ms, "annotations": {"org.opencontainers.image.ref.name": args.tag},
                            "platform": {"architecture": "amd64", "os": "linux"}}]}
    with open(tmp + "/index.json", "w") as f:
        json.dump(index, f, sort_keys=True)
    with open(tmp + "/oci-layout", "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    shutil.rmtree(out, ignore_errors=True)
    os.rename(tmp, out)
    say("wrote %s: %d layer(s), %.0f MB, manifest %s" % (
        out, len(layers), sum(l["size"] for l in layers) / 1e6, md))



def ops(args):
    """Long operations (pulls, unpacks), interleaved round by round like `measure`: every row
    gets a fresh scratch directory per round ({dir}), its untimed `setup` commands, a `sync`,
    then its timed `steps` one after the other (wall time each, CPU and peak RSS from wait4),
    then its directory removed (mounts beneath it unmounted first). A row whose command fails is
    reported and dropped."""
    import shutil
    import subprocess
    spec = json.load(open(args.spec))
    log_fd = os.open(args.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    null_fd = os.open("/dev/null", os.O_RDONLY)
    rows = spec["rows"]
    res = {r["key"]: {"label": r["label"], "group": r["group"], "steps": r.get("step_names") or
                      [" ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(st[:3]))
                       for st in r["steps"]],
                      "argv": r["steps"], "wall": [], "cpu": [], "maxrss": [], "rss": [], "failed": None}
           for r in rows}
    load_before = open("/proc/loadavg").read().split()[:3]
    t_start = time.time()

    def fill(x, d):
        return x.replace("{dir}", d)

    def run(argv, env, timed):
        path = resolve(argv[0])
        actions = [(os.POSIX_SPAWN_DUP2, null_fd, 0), (os.POSIX_SPAWN_DUP2, log_fd, 1),
                   (os.POSIX_SPAWN_DUP2, log_fd, 2)]
        os.write(log_fd, ("bench.py ops: %s\n" % " ".join(argv)).encode())
        t0 = time.perf_counter_ns()
        pid = os.posix_spawn(path, argv, env, file_actions=actions)
        _, status, ru = os.wait4(pid, 0)
        t1 = time.perf_counter_ns()
        code = os.waitstatus_to_exitcode(status)
        if code:
            raise RuntimeError("exit status %d: %s" % (code, " ".join(argv)))
        return (t1 - t0) / 1e9, ru.ru_utime + ru.ru_stime, ru.ru_maxrss

    def remove(d):
        mounts = []
        for line in open("/proc/self/mountinfo"):
            mp = line.split()[4].replace("\\040", " ")
            if mp == d or mp.startswith(d + "/"):
                mounts.append(mp)
        for mp in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", mp], stdout=log_fd, stderr=log_fd)
        shutil.rmtree(d, ignore_errors=True)

    os.makedirs(spec["scratch"], exist_ok=True)
    alive = [r for r in rows]
    for rnd in range(args.rounds):
        for r in rotated(alive, rnd):
            d = os.path.join(spec["scratch"], "%s-%d" % (r["key"], rnd))
            remove(d)
            for x in r.get("extra_dirs", []):
                remove(x)
            os.makedirs(d)
            env = dict(ENV)
            env.update({k: fill(v, d) for k, v in r.get("env", {}).items()})
            try:
                for st in r.get("setup", []):
                    run([fill(a, d) for a in st], env, False)
                os.sync()
                walls, cpus, rss = [], [], []
                for st in r["steps"]:
                    w, c, m = run([fill(a, d) for a in st], env, True)
                    walls.append(w)
                    cpus.append(c)
                    rss.append(m)
                out = res[r["key"]]
                out["wall"].append(walls)
                out["cpu"].append(cpus)
                out["maxrss"].append(rss)
                if r.get("rss_file"):
                    with open(fill(r["rss_file"], d)) as f:
                        out["rss"].append(int(f.read().split()[-1]))
            except RuntimeError as e:
                res[r["key"]]["failed"] = str(e)
                say("FAILED %s: %s (see %s)" % (r["key"], e, args.log))
            finally:
                remove(d)
                for x in r.get("extra_dirs", []):
                    remove(x)
        alive = [r for r in alive if not res[r["key"]]["failed"]]
        say("ops: round %d/%d done" % (rnd + 1, args.rounds))
    out = {"rows": [r["key"] for r in rows], "results": res, "rounds": args.rounds,
           "load_before": load_before, "load_after": open("/proc/loadavg").read().split()[:3],
           "seconds": round(time.time() - t_start, 1), "info": spec.get("info", {})}
    json.dump(out, open(args.out, "w"), indent=1)
    say("wrote %s (%.0f s)" % (args.out, out["seconds"]))



def images_section(start_path, ops_path, partial=None):
    """The "Images" section of bench/RESULTS.md (bench/images.sh's results), and its targets as
    (text, measured, met) rows."""
    start = json.load(open(start_path))
    ops = json.load(open(ops_path))
    info = ops["info"]
    sres = start["results"]
    st = {k: stats_of(sres[k]) for k in start["commands"]}
    ores = ops["results"]
    L, targets = [], []
    w = L.append

    def med(xs):
        return statistics.median(xs) if xs else None

    def total(k):
        r = ores.get(k)
        if not r or r["failed"] or not r["wall"]:
            return None
        return med([sum(x) for x in r["wall"]])

    def step(k, i):
        r = ores.get(k)
        if not r or r["failed"] or not r["wall"]:
            return None
        return med([x[i] for x in r["wall"]])

    def cpu(k):
        r = ores.get(k)
        if not r or r["failed"] or not r["cpu"]:
            return None
        return med([sum(x) for x in r["cpu"]])

    mb = lambda b: b / 1e6
    lay = info["layers"]
    w("<!-- images: begin (bench/images.sh; spliced in alone by BENCH_ONLY=images) -->")
    w("## Images (issue 13)")
    w("")
    if partial:
        w("**Partial run**: this section alone was re-run (`BENCH_ONLY=images`) on %s, launch `%s`; "
          "the sections above are from the full run named at the top." % (partial["date"], partial["launch"]))
        w("")
    w("- The image: Debian bookworm `debootstrap --variant=minbase`, %.0f MB in %d entries, one "
      "layer: %.0f MB as .tar, %.0f MB as .tar.gz (`gzip -n -6`), %.0f MB as .tar.zst (`zstd -3`). "
      "The large image adds three layers of the same tree under /copy1../copy3: %d layers, %.0f MB "
      "compressed. Built once and cached in bench/out/images/ (bench/images.sh)." % (
          mb(info["tree_bytes"]), info["entries"], mb(sum(lay["layout-tar"])), mb(sum(lay["layout-tar-gz"])),
          mb(sum(lay["layout-tar-zst"])), len(lay["layout-large"]), mb(sum(lay["layout-large"]))))
    w("- Tools: %s; Debian's docker-registry on loopback (%s), plain http." % (info["tools"], info["registry"]))
    w("- Load average before the starts: %s; before the pulls and unpacks: %s, after: %s%s." % (
        " ".join(start["load_before"]), " ".join(ops["load_before"]), " ".join(ops["load_after"]),
        " — **the machine was busy**: times are inflated and noisy, compare within a table"
        if max(float(start["load_before"][0]), float(ops["load_before"][0])) > 0.7 else ""))
    w("")

    # start
    base = st.get("launch", {})
    w("### Start of `/bin/true` from a cached image")
    w("")
    w("The same namespaces, /proc and minimal /dev as the `launch` row above; the image root is an "
      "overlayfs of the store's unpacked layers with an upper directory in the container's state "
      "directory. bench.py measure, interleaved: %d isolated starts each (%.0f ms pause), %d blocks "
      "of %d back to back; private store (`LAUNCH_STORE`), filled by `launch import oci` before." % (
          start["settings"]["iso_rounds"], start["settings"]["pause"] * 1000,
          start["settings"]["b2b_rounds"], start["settings"]["b2b_runs"]))
    w("")
    w("| command | isolated ms (p10–p90) | × directory root | back-to-back ms/start | × directory root | peak RSS MiB |")
    w("|---|---:|---:|---:|---:|---:|")
    for k in start["commands"]:
        s = st[k]
        if sres[k].get("failed"):
            w("| %s | failed: %s | | | | |" % (sres[k]["label"], sres[k]["failed"]))
            continue
        iso, b2b = s.get("iso", {}), s.get("b2b", {})
        w("| %s | %s (%s–%s) | %s | %s | %s | %s |" % (
            sres[k]["label"], fmt(iso.get("med"), 2), fmt(iso.get("p10")), fmt(iso.get("p90")),
            fmt(ratio(iso.get("med"), base.get("iso", {}).get("med")), 2), fmt(b2b.get("per_start"), 2),
            fmt(ratio(b2b.get("per_start"), base.get("b2b", {}).get("per_start")), 2), fmt(s.get("rss_mib"), 2)))
    w("")
    for mode, f, word in (("iso", "med", "isolated"), ("b2b", "per_start", "back-to-back")):
        a = st.get("launch-image", {}).get(mode, {}).get(f)
        b = base.get(mode, {}).get(f)
        r = ratio(a, b)
        targets.append(("start of the cached ~200 MB image ≤ 1.2× the small directory root (%s)" % word,
                        "%s ms vs %s ms = %s×" % (fmt(a, 2), fmt(b, 2), fmt(r, 2)), r is not None and r <= 1.2))
    a = st.get("launch-image-large", {}).get("iso", {}).get("med")
    b = st.get("launch-image", {}).get("iso", {}).get("med")
    r = ratio(a, b)
    targets.append(("start does not grow with the image: the 4× large image ≤ 1.1× the image (isolated)",
                    "%s ms vs %s ms = %s×" % (fmt(a, 2), fmt(b, 2), fmt(r, 2)), r is not None and r <= 1.1))

    # pull
    w("### First pull + unpack from a local registry")
    w("")
    w("A fresh store (directory) for every round; %d rounds, the rows alternating (bench.py ops); a "
      "`sync` before each timed command. Medians of the rounds, seconds; CPU: user + system of the "
      "process tree. launch unpacks on the first `launch plan` of a manifest naming the image "
      "(`pull = \"never\"`), and syncs the filesystem (`syncfs`) before it trusts a layer; umoci and "
      "podman were not asked to." % ops["rounds"])
    w("")
    w("| command | pull s | unpack s | total s | × skopeo + umoci | CPU s |")
    w("|---|---:|---:|---:|---:|---:|")
    ref = total("pull-skopeo")
    for k in ops["rows"]:
        r = ores[k]
        if r["group"] != "pull":
            continue
        if r["failed"]:
            w("| %s | failed: %s | | | | |" % (r["label"], r["failed"]))
            continue
        two = len(r["steps"]) == 2
        w("| %s | %s | %s | %s | %s | %s |" % (
            r["label"], fmt(step(k, 0), 2) if two else "", fmt(step(k, 1), 2) if two else "",
            fmt(total(k), 2), fmt(ratio(total(k), ref), 2), fmt(cpu(k), 2)))
    w("")
    a = total("pull-launch")
    rr = ratio(a, ref)
    targets.append(("first pull + unpack ≤ 1.0× `skopeo copy` + `umoci unpack`",
                    "%s s vs %s s = %s×%s" % (fmt(a, 2), fmt(ref, 2), fmt(rr, 2),
                                              "; podman pull %s s" % fmt(total("pull-podman"), 2)
                                              if total("pull-podman") else ""),
                    rr is not None and rr <= 1.0))

    # unpack
    w("### Unpack throughput: .tar, .tar.gz, .tar.zst")
    w("")
    w("The same %.0f MB tar. launch: `launch import oci` of a layout whose blob is already in a fresh "
      "store and whose layer is not (set up untimed by an import, then the layer's directory "
      "removed): the store's unpack, with the blob's digest and the diff_id computed as it streams "
      "and `syncfs` at the end, plus a few small JSON reads. GNU tar: `tar -x[z|--zstd]f` into a "
      "fresh directory (gzip and zstd as its child processes), and `sync -f` after it for the same "
      "durability. Throughput ratio = tar's time / launch's time (≥ 1: launch at least as fast)." %
      mb(sum(lay["layout-tar"])))
    w("")
    w("| format | launch s | MB/s | CPU s | GNU tar s | CPU s | tar + `sync -f` s | × tar | × tar + sync |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key, ext in (("tar", ".tar"), ("gz", ".tar.gz"), ("zst", ".tar.zst")):
        a = total("unpack-launch-" + key)
        t = step("unpack-tar-" + key, 0)
        ts = total("unpack-tar-" + key)
        w("| %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            ext, fmt(a, 2), fmt(mb(sum(lay["layout-tar"])) / a if a else None, 0), fmt(cpu("unpack-launch-" + key), 2),
            fmt(t, 2), fmt(cpu("unpack-tar-" + key), 2), fmt(ts, 2), fmt(ratio(t, a), 2), fmt(ratio(ts, a), 2)))
        rr = ratio(t, a)
        targets.append(("unpack throughput ≥ 1.0× GNU tar, %s" % ext,
                        "%s s vs tar %s s = %s× (vs tar + sync -f %s s: %s×)" % (
                            fmt(a, 2), fmt(t, 2), fmt(rr, 2), fmt(ts, 2), fmt(ratio(ts, a), 2)),
                        rr is not None and rr >= 1.0))
    w("")

    # rss
    w("### Peak RSS of a pull")
    w("")
    w("`/usr/bin/time -f %%M` around `launch pull` (which execs launch-registry), a fresh store each "
      "round; medians of %d." % ops["rounds"])
    w("")
    w("| image | compressed MB | peak RSS MiB (min–max) | pull s |")
    w("|---|---:|---:|---:|")
    rss = {}
    for k, name in (("rss-small", "layout-tar-gz"), ("rss-large", "layout-large")):
        r = ores.get(k)
        if not r or r["failed"] or not r["rss"]:
            w("| %s | | failed: %s | |" % (r["label"] if r else k, r["failed"] if r else "not run"))
            continue
        rss[k] = med(r["rss"]) / 1024
        w("| %s | %.0f | %.2f (%.2f–%.2f) | %s |" % (r["label"], mb(sum(lay[name])), rss[k],
                                                    min(r["rss"]) / 1024, max(r["rss"]) / 1024, fmt(total(k), 2)))
    w("")
    rr = ratio(rss.get("rss-large"), rss.get("rss-small"))
    targets.append(("peak RSS of a pull flat as the image grows: the 4× image ≤ 1.1× the image's",
                    "%s MiB vs %s MiB = %s×" % (fmt(rss.get("rss-large"), 2), fmt(rss.get("rss-small"), 2), fmt(rr, 2)),
                    rr is not None and rr <= 1.1))

    T = ["### Targets (images)", "", "| target | measured | met? |", "|---|---|:---:|"]
    for text, m, ok in targets:
        T.append("| %s | %s | %s |" % (text, m, "yes" if ok else "**no**"))
    T.append("")
    # the targets right after the section's introduction
    at = L.index("### Start of `/bin/true` from a cached image")
    L[at:at] = T
    L.append("<!-- images: end -->")
    return L, targets


def images_report(args):
    """Print the Images section alone, or splice it into an existing RESULTS.md (--into)."""
    meta = json.load(open(args.meta)) if args.meta else {}
    partial = {"date": meta.get("date", "?"), "launch": meta.get("launch", "?")} if args.into else None
    lines, _ = images_section(args.start, args.ops, partial)
    text = "\n".join(lines) + "\n"
    if not args.into:
        sys.stdout.write(text)
        return
    old = open(args.into).read() if os.path.exists(args.into) else "# Benchmark results\n\n"
    b = old.find("<!-- images: begin")
    e = old.find("<!-- images: end -->")
    if b >= 0 and e > b:
        new = old[:b] + text + old[e + len("<!-- images: end -->\n"):]
    else:
        at = old.find("## What each row runs")
        new = old[:at] + text + "\n" + old[at:] if at >= 0 else old.rstrip("\n") + "\n\n" + text
    open(args.into, "w").write(new)


# ---------------------------------------------------------------------------------------------
# network (bench/network.sh, issue 14): bulk TCP transfers, `launch -v` step times, a traced
# bridge start, and the "Network" section of bench/RESULTS.md


def bulk(args):
    """Bulk TCP transfers, interleaved round by round: the servers (sinks: plain processes or
    containers running `tcpbulk sink`) start first and say "ready"; then every round runs each
    row's client (`tcpbulk send`, which prints one JSON line) once, the rows' order rotated
    every round; one warm-up round is not recorded. Servers exit by themselves after the number
    of transfers they were told to expect (they are killed after a timeout otherwise)."""
    import select
    import subprocess
    spec = json.load(open(args.spec))
    rows, servers = spec["rows"], spec["servers"]
    logdir = os.path.dirname(os.path.abspath(args.out))
    res = {r["key"]: {"label": r["label"], "group": r["group"], "server": r["server"],
                      "client": r["client"], "seconds": [], "gbps": [], "send_user": [], "send_sys": [],
                      "sink_user": [], "sink_sys": [], "failed": None} for r in rows}
    srv_state = {}
    load_before = open("/proc/loadavg").read().split()[:3]
    loads = []
    t_start = time.time()
    for s in servers:
        err = open(os.path.join(logdir, "bulk-server-%s.log" % s["key"]), "wb")
        p = subprocess.Popen(s["argv"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=err, env=ENV)
        line, deadline = b"", time.time() + 60
        while time.time() < deadline and p.poll() is None and not line.endswith(b"\n"):
            r, _, _ = select.select([p.stdout], [], [], 0.2)
            if r:
                c = os.read(p.stdout.fileno(), 1)
                if not c:
                    break
                line += c
        ok = line.strip() == b"ready"
        srv_state[s["key"]] = {"proc": p, "err": err.name, "failed": None if ok else
                               "no \"ready\" (%s): %s" % (line.decode(errors="replace").strip() or
                                                          "exit %s" % p.poll(),
                                                          _tail(err.name))}
        if ok and s.get("post"):
            # a set-up step once the server runs ({pid}: the server process's pid)
            q = subprocess.run([a.replace("{pid}", str(p.pid)) for a in s["post"]], capture_output=True,
                               text=True, env=ENV)
            if q.returncode:
                srv_state[s["key"]]["failed"] = "its set-up failed: %s" % (q.stdout + q.stderr).strip()
        say("bulk: server %s %s" % (s["key"], "ready" if ok else "FAILED: " + srv_state[s["key"]]["failed"]))
    for r in rows:
        f = srv_state[r["server"]]["failed"]
        if f:
            res[r["key"]]["failed"] = "its server: " + f
    alive = [r for r in rows if not res[r["key"]]["failed"]]
    say("bulk: %d rows, %d bytes per transfer, %d rounds after a warm-up round" % (
        len(alive), spec["bytes"], args.rounds))
    for rnd in range(args.rounds + 1):
        loads.append(open("/proc/loadavg").read().split()[0])
        for r in rotated([x for x in alive if not res[x["key"]]["failed"]], rnd):
            argv = [a.replace("{bytes}", str(spec["bytes"])) for a in r["client"]]
            try:
                p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                   timeout=args.timeout, env=ENV)
            except subprocess.TimeoutExpired:
                res[r["key"]]["failed"] = "no end after %d s: %s" % (args.timeout, " ".join(argv))
                continue
            if p.returncode:
                res[r["key"]]["failed"] = "exit %d: %s: %s" % (p.returncode, " ".join(argv), p.stderr.strip())
                continue
            m = json.loads(p.stdout.strip().splitlines()[-1])
            if rnd == 0:
                continue
            d = res[r["key"]]
            d["seconds"].append(m["seconds"])
            d["gbps"].append(m["bytes"] / m["seconds"] / 1e9)
            for k, v in (("send_user", "user"), ("send_sys", "sys"), ("sink_user", "sink_user"),
                         ("sink_sys", "sink_sys")):
                d[k].append(m[v])
        say("bulk: round %d/%d done%s" % (rnd, args.rounds, " (warm-up)" if rnd == 0 else ""))
    loads.append(open("/proc/loadavg").read().split()[0])
    for key, st in srv_state.items():
        p = st["proc"]
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            say("bulk: server %s still runs: SIGTERM" % key)
            p.terminate()
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p.returncode and not st["failed"]:
            st["exit"] = p.returncode
    for k, d in res.items():
        if d["failed"]:
            say("bulk: FAILED %s: %s" % (k, d["failed"]))
    out = {"rows": [r["key"] for r in rows], "results": res, "bytes": spec["bytes"],
           "rounds": args.rounds, "servers": {s["key"]: {"argv": s["argv"], "post": s.get("post"), "exit": srv_state[s["key"]].get("exit"),
                                                         "failed": srv_state[s["key"]]["failed"]}
                                              for s in servers},
           "load_before": load_before, "load_after": open("/proc/loadavg").read().split()[:3],
           "loads": loads, "seconds": round(time.time() - t_start, 1), "info": spec.get("info", {})}
    json.dump(out, open(args.out, "w"), indent=1)
    say("wrote %s (%.0f s)" % (args.out, out["seconds"]))


def _tail(path, n=400):
    try:
        return open(path, errors="replace").read()[-n:].strip().replace("\n", " / ")
    except OSError:
        return ""


def stamps(args):
    """`launch -v run …` N times (each after a pause): every line it writes to stderr is stamped
    as it arrives (ms since the spawn), and so is its exit. -v prints a step's line as the step
    begins, so the gap to the next line is that step's time (plus the logging)."""
    import subprocess
    if args.argv and args.argv[0] == "--":
        args.argv = args.argv[1:]
    runs = []
    for _ in range(args.runs):
        time.sleep(args.pause)
        t0 = time.perf_counter_ns()
        p = subprocess.Popen(args.argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, env=ENV)
        lines = []
        for raw in p.stderr:
            lines.append(((time.perf_counter_ns() - t0) / 1e6, raw.decode(errors="replace").rstrip("\n")))
        p.wait()
        lines.append(((time.perf_counter_ns() - t0) / 1e6, "exit %d" % p.returncode))
        if p.returncode:
            raise SystemExit("bench.py stamps: %s failed:\n%s" % (" ".join(args.argv),
                                                                 "\n".join(l for _, l in lines)))
        runs.append(lines)
    json.dump({"argv": args.argv, "runs": runs}, open(args.out, "w"), indent=1)


def nettrace(args):
    """Timings of the network work in traced bridge starts (`strace --seccomp-bpf -f -tt -T -e
    trace=clone,clone3,execve,wait4,sendto,recvfrom,sendmsg,close,exit_group`): each `nft`
    process (spawn to reaped) and its slowest close(2), the veth's creation (RTM_NEWLINK with
    a peer) and deletion (RTM_DELLINK) on the launcher's netlink socket, and the time from the
    container's exit to the launcher's. Medians over the traces, JSON."""
    import re
    line_re = re.compile(r"^(\d+)\s+(\d+):(\d+):(\d+\.\d+)\s+(.*)$")
    per = []
    for path in args.traces:
        evs = []
        for line in open(path):
            m = line_re.match(line.rstrip("\n"))
            if not m:
                continue
            t = int(m.group(2)) * 3600 + int(m.group(3)) * 60 + float(m.group(4))
            evs.append((int(m.group(1)), t, m.group(5)))
        if not evs:
            continue
        launcher = evs[0][0]
        def dur(body):
            m = re.search(r"<([\d.]+)>\s*$", body)
            return float(m.group(1)) if m else 0.0
        # nft children: processes that exec'd nft (the PATH search tries several directories)
        nft = {}
        for pid, t, body in evs:
            if pid != launcher and pid not in nft and body.startswith("execve(") and '/nft"' in body:
                argv = re.search(r"\[(.*?)\]", body)
                nft[pid] = {"argv": argv.group(1).replace('"', "").replace(",", "") if argv else "nft"}
        for pid, v in nft.items():
            mine = [(t, b) for p2, t, b in evs if p2 == pid]
            v["start"] = mine[0][0]
            ends = [t for t, b in mine if b.startswith("+++")]
            v["end"] = ends[0] if ends else mine[-1][0]
            v["close"] = max([dur(b) for t, b in mine if b.startswith("close(")] or [0.0])
            # reaped by the launcher: its wait4 returns
            reap = [t for p2, t, b in evs if p2 == launcher and
                    (b.startswith("wait4(%d," % pid) or b.startswith("<... wait4 resumed>")) and "= %d" % pid in b]
            if reap:
                v["end"] = max(v["end"], reap[0])
        net = {}
        pending = None
        for pid, t, body in evs:
            if pid != launcher:
                continue
            if body.startswith("sendto(") and "RTM_NEWLINK" in body and "NLM_F_EXCL" in body:
                pending = ("veth_create", t)
            elif body.startswith("sendto(") and "RTM_DELLINK" in body:
                pending = ("veth_delete", t)
            elif body.startswith("recvfrom(") and pending:
                net[pending[0]] = (t + dur(body) - pending[1]) * 1000
                pending = None
        exits = [(p, t) for p, t, b in evs if b.startswith("+++ exited")]
        # the container process: the launcher's clone3 child
        child = None
        for pid, t, body in evs:
            if pid == launcher and body.startswith("clone3(") and "CLONE_NEWNET" in body:
                m = re.search(r"= (\d+)", body)
                child = int(m.group(1)) if m else None
        c_exit = [t for p, t in exits if p == child]
        l_exit = [t for p, t in exits if p == launcher]
        row = {"total": ((l_exit[0] if l_exit else evs[-1][1]) - evs[0][1]) * 1000,
               "after_container": (l_exit[0] - c_exit[0]) * 1000 if c_exit and l_exit else None,
               "nft": [{"argv": v["argv"], "ms": (v["end"] - v["start"]) * 1000, "close_ms": v["close"] * 1000}
                       for _, v in sorted(nft.items(), key=lambda kv: kv[1]["start"])]}
        row.update(net)
        per.append(row)
    med = statistics.median
    out = {"runs": len(per), "total": med([r["total"] for r in per]),
           "after_container": med([r["after_container"] for r in per if r["after_container"] is not None] or [float("nan")])}
    for k in ("veth_create", "veth_delete"):
        v = [r[k] for r in per if k in r]
        out[k] = med(v) if v else None
    n = min(len(r["nft"]) for r in per) if per else 0
    out["nft"] = [{"argv": per[0]["nft"][i]["argv"], "ms": med([r["nft"][i]["ms"] for r in per]),
                   "close_ms": med([r["nft"][i]["close_ms"] for r in per])} for i in range(n)]
    json.dump(out, open(args.out, "w"), indent=1)


def _stamp_steps(path):
    """{normalised step: median ms} of a `bench.py stamps` file, in the order of its first run,
    and the number of runs. Times: from the step's line to the next line (the first row: from
    the spawn to the first line; the last step's row runs until launch's exit)."""
    import re
    data = json.load(open(path))
    per = []
    for run in data["runs"]:
        names, times = ["start of `launch` until its first step (exec, manifest, host probe, plan)"], [0.0]
        for t, line in run:
            m = re.match(r"launch: step \d+/\d+ (\w+): (.*)", line)
            if m:
                text = m.group(2)
                text = re.sub(r"lbench-[\w-]*?-[0-9a-f]{8}\b", "NAME", text)
                text = re.sub(r"/proc/\d+/", "/proc/PID/", text)
                text = re.sub(r"P_PID, \d+", "P_PID, PID", text)
                text = re.sub(r"vl-[0-9a-f]{8}", "vl-ID", text)
                text = re.sub(r"devices-[0-9a-f]{12}", "devices-HASH", text)
                names.append("%s: %s" % (m.group(1), text))
                times.append(t)
            elif line.startswith("exit "):
                times.append(t)
        dur = [b - a for a, b in zip(times, times[1:])]
        per.append(list(zip(names, dur)))
    out = {}
    for i, (name, _) in enumerate(per[0]):
        out[name] = statistics.median([r[i][1] for r in per if i < len(r)])
    return out, len(per)


def _stamp_rows(bridge_path, none_path, floor=0.2, width=110):
    b, n = _stamp_steps(bridge_path)
    o, _ = _stamp_steps(none_path) if none_path and os.path.exists(none_path) else ({}, 0)
    rows, small_b, small_o, k = [], 0.0, 0.0, 0
    names = list(b) + [x for x in o if x not in b]
    last_b, last_o = list(b)[-1], (list(o)[-1] if o else None)
    for name in names:
        bv, ov = b.get(name), o.get(name)
        if name == last_b or name == last_o:
            continue
        if max(bv or 0, ov or 0) < floor:
            small_b += bv or 0
            small_o += ov or 0
            k += 1
            continue
        short = name if len(name) <= width else name[:width] + "…"
        rows.append((short.replace("|", "\\|").replace("`", "'"), bv, ov))
    rows.append(("the %d other steps, each under %.1f ms" % (k, floor), small_b, small_o))
    rows.append(("the last step (`waitid`: /bin/true runs and exits) until launch exits: the teardown",
                 b[last_b], o.get(last_o) if last_o else None))
    rows.append(("**total** (spawn to exit)", sum(b.values()), sum(o.values()) if o else None))
    return rows, n


def network_section(start_path, bulk_path, meta_path, partial=None):
    """The "Network" section of bench/RESULTS.md (bench/network.sh's results) and its targets as
    (text, measured, met) rows."""
    start = json.load(open(start_path)) if start_path and os.path.exists(start_path) else None
    bulkd = json.load(open(bulk_path)) if bulk_path and os.path.exists(bulk_path) else None
    meta = json.load(open(meta_path)) if meta_path and os.path.exists(meta_path) else {}
    root = meta.get("root", "")
    L, targets = [], []
    w = L.append
    med = statistics.median
    w("<!-- network: begin (bench/network.sh; spliced in alone by BENCH_ONLY=network) -->")
    w("## Network (issue 14)")
    w("")
    if partial:
        w("**Partial run**: this section alone was re-run (`BENCH_ONLY=network`) on %s, launch `%s`; "
          "the sections above are from the full run named at the top." % (partial["date"], partial["launch"]))
        w("")
    w("- Where: nothing runs in the machine's own network namespace. bench/network.sh makes three "
      "namespaces of its own with `unshare` (each with a private mount namespace): **A** for launch "
      "as root (its bridge `launch0`, veths and `table inet launch` live and die there), **B** for "
      "podman as root (its CNI bridge `cni-podman0` and iptables-nft rules; private tmpfs over /run, "
      "/tmp, /var/tmp and /var/lib/cni, so podman's run state, netns files and IPAM leases stay "
      "there too; its storage in `bench/out/network/podman-root`), and **C** for the rootless rows "
      "(a private /dev/net/tun of mode 0666, this machine's being 0600; a veth to a further "
      "namespace and a default route, which pasta needs to start). A and B have the same subnet "
      "by default (10.88.0.0/16), hence two. Host-side checks before and after: %s." % (
          meta.get("host_check", "not recorded")))
    if meta.get("tools"):
        w("- Tools: %s." % "; ".join(meta["tools"]))
    for n in meta.get("notes", []):
        w("- " + n)
    loads = []
    if start:
        loads.append("before the starts %s, after them %s" % (" ".join(start["load_before"]), " ".join(start["load_after"])))
    if bulkd:
        ls = [float(x) for x in bulkd.get("loads", [])]
        loads.append("during the transfers %s–%s (1-minute, sampled each round; the transfers keep "
                     "both CPUs busy themselves)" % (fmt(min(ls), 2), fmt(max(ls), 2)) if ls else "")
    # Only the figure before the starts tells whether something else ran: the bench's own back-to-back
    # blocks and transfers raise the later ones.
    busy = start and float(start["load_before"][0]) > 0.7
    w("- Load average (1/5/15 min): %s%s. The compared commands alternate within every round, so "
      "load hits both sides of a ratio." % ("; ".join(x for x in loads if x),
                                          " — **the machine was busy before the run** (other work on its 2 "
                                          "CPUs): absolute times are inflated, compare within a table"
                                          if busy else ""))
    w("")

    # --- start ---
    st = {}
    shift = {}
    if start:
        sres = start["results"]
        st = {k: stats_of(sres[k]) for k in start["commands"]}
        w_ = st.get("podman-wrapper", {})
        t_ = st.get("true", {})
        for mode, f in (("iso", "med"), ("b2b", "per_start")):
            if w_.get(mode) and t_.get(mode):
                shift[mode] = w_[mode][f] - t_[mode][f]
        for k in start["commands"]:
            if k.startswith("podman") and k != "podman-wrapper":
                for mode in ("iso", "b2b"):
                    for f in ("med", "p10", "p90", "per_start"):
                        if f in st[k].get(mode, {}):
                            st[k][mode][f] -= shift.get(mode, 0.0)

    def g(k, mode):
        return st.get(k, {}).get(mode, {}).get("med" if mode == "iso" else "per_start")

    for mode, word in (("iso", "isolated"), ("b2b", "back-to-back")):
        a, b = g("launch-bridge", mode), g("launch-none", mode)
        r = ratio(a, b)
        targets.append(("start with `mode = \"bridge\"` ≤ 1.5× the same with `mode = \"none\"` (%s)" % word,
                        "%s ms vs %s ms = %s×" % (fmt(a, 2), fmt(b, 2), fmt(r, 2)),
                        None if r is None else r <= 1.5))
    for mode, word in (("iso", "isolated"), ("b2b", "back-to-back")):
        a, b = g("launch-bridge", mode), g("podman-bridge", mode)
        r = ratio(a, b)
        why = start["results"].get("podman-bridge", {}).get("failed") if start else None
        targets.append(("start with `mode = \"bridge\"` ≤ 0.5× `podman run --network bridge` (%s)" % word,
                        ("%s ms vs %s ms = %s×" % (fmt(a, 2), fmt(b, 2), fmt(r, 2))) if r is not None
                        else "podman: %s" % (why or meta.get("podman_missing", "not measured")),
                        None if r is None else r <= 0.5))

    # --- bulk ---
    bres = bulkd["results"] if bulkd else {}

    def gb(k):
        d = bres.get(k)
        return med(d["gbps"]) if d and d["gbps"] and not d["failed"] else None

    def per_round(k1, k2):
        """The median of the ratios within each round (both rows ran in every round)."""
        d1, d2 = bres.get(k1), bres.get(k2)
        if not d1 or not d2 or d1["failed"] or d2["failed"] or len(d1["gbps"]) != len(d2["gbps"]):
            return ""
        return "; per round: median %s×" % fmt(med([x / y for x, y in zip(d1["gbps"], d2["gbps"])]), 2)

    a, b = gb("launch-bridge-port"), gb("lo-root")
    r = ratio(a, b)
    targets.append(("bulk TCP through a published port (`bridge`, root) ≥ 0.9× plain loopback",
                    "%s GB/s vs %s GB/s = %s×%s" % (fmt(a, 2), fmt(b, 2), fmt(r, 2),
                                                    per_round("launch-bridge-port", "lo-root")),
                    None if r is None else r >= 0.9))
    a, b = gb("launch-pasta"), gb("podman-rl")
    r = ratio(a, b)
    why = bres.get("podman-rl", {}).get("failed") if bres else None
    targets.append(("bulk TCP through a published port, rootless: launch (`pasta`) ≥ podman's rootless "
                    "port forwarding (rootlessport)",
                    ("%s GB/s vs %s GB/s = %s×%s" % (fmt(a, 2), fmt(b, 2), fmt(r, 2),
                                                     per_round("launch-pasta", "podman-rl"))) if r is not None
                    else "launch %s GB/s; podman: %s" % (fmt(a, 2), why or meta.get("podman_missing", "not measured")),
                    None if r is None else r >= 1.0))

    T = ["### Targets (network)", "", "| target | measured | met? |", "|---|---|:---:|"]
    for text, m, ok in targets:
        T.append("| %s | %s | %s |" % (text, m, "–" if ok is None else ("yes" if ok else "**no**")))
    T.append("")
    L.extend(T)

    if start:
        sres = start["results"]
        w("### Start-to-exit of `/bin/true`: `mode = \"bridge\"` against `mode = \"none\"` and podman")
        w("")
        w("The same manifest but for `[network]` (pid, mount, uts, ipc and net namespaces, "
          "pivot_root, /proc, minimal /dev; no limits), the same rootfs (a copy for podman, which "
          "writes /etc/mtab into it), run from namespace A; podman from B through `nsenter -t PID "
          "-m -n -p`, whose own cost (row *nsenter alone* minus *plain /bin/true*: %s ms isolated, "
          "%s ms back-to-back) **is subtracted from the podman rows**. bench.py measure, the rows "
          "alternating: %d isolated starts each (%.0f ms pause), %d blocks of %d back to back; peak "
          "RSS of %d runs. A bridge start leases an address, adds its nftables rules (one `nft` "
          "process), creates the veth, and after the exit deletes the veth, lists the table and "
          "deletes its rules (two more `nft` processes); the bridge itself is made by the first "
          "start and kept." % (
              fmt(shift.get("iso"), 2), fmt(shift.get("b2b"), 2), start["settings"]["iso_rounds"],
              start["settings"]["pause"] * 1000, start["settings"]["b2b_rounds"],
              start["settings"]["b2b_runs"], start["settings"]["rss_runs"]))
        w("")
        w("| command | isolated ms (p10–p90) | × none | × podman | back-to-back ms/start | × none | × podman | CPU ms | peak RSS MiB |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for k in start["commands"]:
            s = st[k]
            if sres[k].get("failed"):
                w("| %s | failed: `%s` | | | | | | | |" % (sres[k]["label"], sres[k]["failed"]))
                continue
            iso, b2b = s.get("iso", {}), s.get("b2b", {})
            w("| %s | %s (%s–%s) | %s | %s | %s | %s | %s | %s | %s |" % (
                sres[k]["label"], fmt(iso.get("med"), 2), fmt(iso.get("p10")), fmt(iso.get("p90")),
                fmt(ratio(iso.get("med"), g("launch-none", "iso")), 2),
                fmt(ratio(iso.get("med"), g("podman-bridge", "iso")), 2),
                fmt(b2b.get("per_start"), 2),
                fmt(ratio(b2b.get("per_start"), g("launch-none", "b2b")), 2),
                fmt(ratio(b2b.get("per_start"), g("podman-bridge", "b2b")), 2),
                fmt(s.get("cpu_ms")), fmt(s.get("rss_mib"), 2)))
        w("")
        w("CPU ms: user + system of the command's process tree as wait4 reports it (podman's conmon "
          "and the container are not its children: they are missing from podman's figure).")
        w("")

    # --- where a bridge start goes ---
    sb = {}
    sp = meta.get("stamps") or {}
    if sp.get("bridge") and os.path.exists(sp["bridge"]):
        sb["rows"], sb["runs"] = _stamp_rows(sp["bridge"], sp.get("none"))
    tr = json.load(open(meta["trace"])) if meta.get("trace") and os.path.exists(meta["trace"]) else None
    if sb or tr:
        w("### Where a bridge start goes")
        w("")
    if sb:
        w("`launch -v run`, its stderr lines stamped as they arrive (bench.py stamps; a step's line is "
          "written as it begins, so the gap to the next line is that step, plus the logging), %d runs "
          "each after a 300 ms pause, medians; steps under 0.2 ms are summed in the last rows." % sb.get("runs", 0))
        w("")
        w("| step | `bridge` ms | `none` ms |")
        w("|---|---:|---:|")
        for name, b_ms, n_ms in sb.get("rows", []):
            w("| %s | %s | %s |" % (name, fmt(b_ms, 2), fmt(n_ms, 2) if n_ms is not None else ""))
        w("")
    if tr:
        nft = tr.get("nft", [])
        w("Traced (`strace --seccomp-bpf`, which stops only at the traced calls: clone, execve, "
          "wait4, netlink send/receive, close, exit; %d runs, medians; times somewhat inflated): a "
          "bridge start takes %s ms, of which %s ms after the container's exit. %s The veth: "
          "created in %s ms, deleted (RTM_DELLINK) in %s ms." % (
              tr["runs"], fmt(tr.get("total"), 1), fmt(tr.get("after_container"), 1),
              " ".join("`%s` (%s): %s ms from spawn to reaped, of which %s ms in its slowest close(2)." % (
                  n["argv"], _nft_role(i, n["argv"]), fmt(n["ms"], 1), fmt(n["close_ms"], 1))
                  for i, n in enumerate(nft)),
              fmt(tr.get("veth_create"), 1), fmt(tr.get("veth_delete"), 1)))
        w("")

    # --- bulk ---
    if bulkd:
        w("### Bulk TCP throughput")
        w("")
        w("%s MiB per transfer by `tcpbulk send` (bench/tcpbulk.c, static, plain blocking "
          "write(2) of 1 MiB buffers) from the host side's 127.0.0.1 to `tcpbulk sink` (read(2) "
          "into 1 MiB) in the container or, for the loopback rows, a plain process; time from "
          "connect to the sink's byte count received. %d rounds after a warm-up round, all rows in "
          "every round, their order rotated; medians (GB = 10⁹ bytes). CPU: user + system seconds of "
          "the sender and of the sink per transfer. Their user time is next to nothing: the system "
          "time is the kernel's copies and TCP work (on loopback the receive path runs in the "
          "sender's context too), which any program pays, so the tool is not what limits a row; "
          "plain loopback is the ceiling." % (fmt(bulkd["bytes"] / 2**20, 0), bulkd["rounds"]))
        w("")
        w("| path | GB/s (min–max) | × loopback | s per transfer | sender CPU s (user + sys) | sink CPU s (user + sys) |")
        w("|---|---:|---:|---:|---:|---:|")
        base = {"root": gb("lo-root"), "rootless": gb("lo-rl")}
        for k in bulkd["rows"]:
            d = bres[k]
            if d["failed"]:
                w("| %s | failed: %s | | | | |" % (d["label"], d["failed"].replace("|", "\\|")))
                continue
            w("| %s | %s (%s–%s) | %s | %s | %s + %s | %s + %s |" % (
                d["label"], fmt(med(d["gbps"]), 2), fmt(min(d["gbps"]), 2), fmt(max(d["gbps"]), 2),
                fmt(ratio(med(d["gbps"]), base.get(d["group"])), 2), fmt(med(d["seconds"]), 3),
                fmt(med(d["send_user"]), 2), fmt(med(d["send_sys"]), 2),
                fmt(med(d["sink_user"]), 2), fmt(med(d["sink_sys"]), 2)))
        w("")

    # --- what each row runs ---
    w("### What each network row runs")
    w("")
    w("‹A›, ‹B›, ‹C›: the pid of the first process of namespace A, B or C.")
    w("")
    def strip(a):
        a = a.replace(root + "/", "") if root else a
        for name, pid in meta.get("worlds", {}).items():
            a = re.sub(r"nsenter -t %s " % pid, "nsenter -t ‹%s› " % name, a)
        return a
    import shlex
    if start:
        for k in start["commands"]:
            w("- %s: `%s`" % (start["results"][k]["label"], strip(shlex.join(start["results"][k]["argv"]))))
    if bulkd:
        for k, s in bulkd["servers"].items():
            w("- server `%s`: `%s`%s" % (k, strip(shlex.join(s["argv"])), (", then `%s`" % strip(s["post"][-1]))
                                        if s.get("post") else ""))
        for k in bulkd["rows"]:
            d = bres[k]
            w("- %s: `%s` (server `%s`)" % (d["label"], strip(shlex.join(d["client"])), d["server"]))
    for name in meta.get("manifests", []):
        w("")
        w("`%s`:" % name["path"])
        w("")
        w("```toml")
        w(name["text"].rstrip())
        w("```")
    w("")
    w("<!-- network: end -->")
    return L, targets


def _nft_role(i, argv):
    if " list " in " %s " % argv:
        return "lists the table, for the handles of the container's rules"
    return "adds the container's rules" if i == 0 else "deletes them by handle"


def splice_section(path, name, text, before="## What each row runs"):
    """Replace the `<!-- NAME: begin … -->` … `<!-- NAME: end -->` block of PATH with TEXT, or
    insert TEXT before the heading `before` (at the end when there is none)."""
    old = open(path).read() if os.path.exists(path) else "# Benchmark results\n\n"
    b = old.find("<!-- %s: begin" % name)
    end = "<!-- %s: end -->" % name
    e = old.find(end)
    if b >= 0 and e > b:
        new = old[:b] + text + old[e + len(end) + 1:]
    else:
        at = old.find(before)
        new = old[:at] + text + "\n" + old[at:] if at >= 0 else old.rstrip("\n") + "\n\n" + text
    open(path, "w").write(new)


def network_report(args):
    """Print the Network section alone, or splice it into an existing RESULTS.md (--into)."""
    meta = json.load(open(args.meta)) if args.meta else {}
    partial = {"date": meta.get("date", "?"), "launch": meta.get("launch", "?")} if args.into else None
    lines, _ = network_section(args.start, args.bulk, args.meta, partial)
    text = "\n".join(lines) + "\n"
    if not args.into:
        sys.stdout.write(text)
        return
    splice_section(args.into, "network", text)
    # The start rows' network isolation (a full run writes it; say it in a partial run too).
    old = open(args.into).read()
    head = "## What each row runs\n\n"
    if NETNS_NOTE not in old and head in old:
        open(args.into, "w").write(old.replace(head, head + NETNS_NOTE + "\n\n", 1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure")
    m.add_argument("--spec", required=True)
    m.add_argument("--out", required=True)
    m.add_argument("--log", default="/dev/null")
    m.add_argument("--iso-rounds", type=int, default=40)
    m.add_argument("--pause", type=float, default=0.25)
    m.add_argument("--b2b-rounds", type=int, default=3)
    m.add_argument("--b2b-runs", type=int, default=200)
    m.add_argument("--rss-runs", type=int, default=5)
    m.add_argument("--warmup", type=int, default=5)
    r = sub.add_parser("report")
    r.add_argument("--results", required=True)
    r.add_argument("--meta", required=True)
    r.add_argument("--plan")
    r.add_argument("--profile")
    r.add_argument("--security")
    r.add_argument("--images-start")
    r.add_argument("--images-ops")
    r.add_argument("--network-start")
    r.add_argument("--network-bulk")
    r.add_argument("--network-meta")
    lp = sub.add_parser("loop")
    lp.add_argument("--n", type=int, default=200)
    lp.add_argument("--pause", type=float, default=0.0)
    lp.add_argument("--log", default="/dev/null")
    lp.add_argument("argv", nargs=argparse.REMAINDER)
    sc = sub.add_parser("stracec")
    sc.add_argument("file")
    sc.add_argument("--top", type=int, default=12)
    ph = sub.add_parser("phases")
    ph.add_argument("traces", nargs="+")
    ph.add_argument("--untraced-ms", type=float)
    ps = sub.add_parser("perfsplit")
    ps.add_argument("--runs", type=int, required=True)
    ps.add_argument("--period-us", type=int, required=True)
    ps.add_argument("--task-clock-ms", type=float)
    ab = sub.add_parser("ablation")
    ab.add_argument("--results", required=True)
    ab.add_argument("--base", default="launch-limits")
    cj = sub.add_parser("cgjoin")
    cj.add_argument("--rounds", type=int, default=10)
    cj.add_argument("--pauses", default="0.004,0.02,0.25")
    op = sub.add_parser("ops")
    op.add_argument("--spec", required=True)
    op.add_argument("--out", required=True)
    op.add_argument("--log", default="/dev/null")
    op.add_argument("--rounds", type=int, default=3)
    ir = sub.add_parser("images-report")
    ir.add_argument("--start", required=True)
    ir.add_argument("--ops", required=True)
    ir.add_argument("--meta")
    ir.add_argument("--into")
    bk = sub.add_parser("bulk")
    bk.add_argument("--spec", required=True)
    bk.add_argument("--out", required=True)
    bk.add_argument("--rounds", type=int, default=7)
    bk.add_argument("--timeout", type=int, default=300)
    sp = sub.add_parser("stamps")
    sp.add_argument("--runs", type=int, default=5)
    sp.add_argument("--pause", type=float, default=0.3)
    sp.add_argument("--out", required=True)
    sp.add_argument("argv", nargs=argparse.REMAINDER)
    nt = sub.add_parser("nettrace")
    nt.add_argument("--out", required=True)
    nt.add_argument("traces", nargs="+")
    nr = sub.add_parser("network-report")
    nr.add_argument("--start")
    nr.add_argument("--bulk")
    nr.add_argument("--meta")
    nr.add_argument("--into")
    ol = sub.add_parser("oci-layout")
    ol.add_argument("--out", required=True)
    ol.add_argument("--tag", default="1")
    ol.add_argument("layers", nargs="+")
    args = ap.parse_args()
    {"measure": measure, "report": report, "loop": loop, "stracec": stracec, "phases": phases,
     "perfsplit": perfsplit, "ablation": ablation, "cgjoin": cgjoin, "oci-layout": oci_layout, "ops": ops,
     "images-report": images_report, "bulk": bulk, "stamps": stamps, "nettrace": nettrace,
     "network-report": network_report}[args.cmd](args)


if __name__ == "__main__":
    main()
