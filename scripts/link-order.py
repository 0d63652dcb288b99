#!/usr/bin/env python3
"""The link order of the release build (scripts/release.sh; why: docs/performance.md).

    link-order.py PROFDATA TRACES.profdata INSTRUMENTED-BINARY > order.txt

A start's resident memory is mostly the code pages it touches, and the kernel maps 64 KiB
around every one of them: functions that run in the same start belong next to each other.
The order, one symbol per line for lld's --symbol-ordering-file:

1. the functions of the training runs' container processes, in the order they first ran (their
   temporal profile traces: the launcher's start-up, its steps up to the clone, then the
   container side), those that most runs take first, then those fewer take; then those of the
   launchers' own run traces (wait, clean-up) the same way;
2. right after each of them, the functions it calls that have no profile of their own (the
   standard library and musl, which are not rebuilt with instrumentation), found in the
   instrumented binary's machine code, transitively through such functions;
3. everything else the profile saw, in `llvm-profdata order`'s balanced order (plan, validate).
"""
import re
import subprocess
import sys

profdata, traces, binary = sys.argv[1:4]


def run(*argv):
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def plain(name):
    # Profile names of local functions carry a "file;" prefix the linker's symbols do not.
    return name.split(";")[-1]


# 1. The traces.
trace_list, cur = [], None
for line in run(profdata, "show", "--temporal-profile-traces", traces).splitlines():
    if re.match(r"\s*Temporal Profile Trace \d+ ", line):
        cur = []
        trace_list.append(cur)
    elif cur is not None and line.startswith("    ") and line.strip():
        cur.append(plain(line.split()[0]))


def kind(t):
    if any("4exec5child4main" in f for f in t):
        return 2
    if any(f.startswith("_ZN6launch4exec3run17") for f in t):
        return 1
    return 0


def ranked(traces):
    """The functions of `traces`: those most of them run first (the path every start takes),
    then those fewer run, each group in the order they first ran (mean position in a trace)."""
    seen_in, pos = {}, {}
    for t in traces:
        for i, f in enumerate(dict.fromkeys(t)):
            seen_in[f] = seen_in.get(f, 0) + 1
            pos[f] = pos.get(f, 0.0) + i / max(len(t), 1)
    n = len(traces)

    def key(f):
        share = seen_in[f] / n
        group = 0 if share >= 0.75 else 1 if share >= 0.25 else 2
        return (group, pos[f] / seen_in[f])

    return sorted(seen_in, key=key)


first = []
for k in (2, 1):
    first.extend(ranked([t for t in trace_list if kind(t) == k]))

# Every function that has a profile (instrumented): the others are the ones to place by calls.
profiled = set()
for line in run(profdata, "show", "--all-functions", traces).splitlines():
    m = re.match(r"^  (\S.*):$", line)
    if m:
        profiled.add(plain(m.group(1)))

# 2. Direct calls and tail calls in the instrumented binary.
calls, fn = {}, None
head = re.compile(r"^[0-9a-f]+ <(.+)>:$")
call = re.compile(r"\s(?:call|jmp)\s+[0-9a-f]+ <([^+>]+)>")
for line in run("objdump", "-d", "--no-show-raw-insn", binary).splitlines():
    m = head.match(line)
    if m:
        fn = m.group(1)
        calls.setdefault(fn, [])
        continue
    m = call.search(line)
    if m and fn and m.group(1) != fn:
        calls[fn].append(m.group(1))

# Calls made only when something failed: placing them would bring in cold code.
cold = re.compile(r"panic|handle_error|unwrap_failed|expect_failed|capacity_overflow|abort|oom")

out, seen = [], set()


def emit(f, depth):
    if f in seen:
        return
    seen.add(f)
    out.append(f)
    if depth == 0:
        return
    for c in calls.get(f, []):
        if c not in profiled and not cold.search(c):
            emit(c, depth - 1)


for f in first:
    emit(f, 4)
# 3. The rest, balanced.
for line in run(profdata, "order", traces).splitlines():
    if line and not line.startswith("#"):
        f = plain(line)
        if f not in seen:
            seen.add(f)
            out.append(f)
sys.stdout.write("".join(f + "\n" for f in out))
