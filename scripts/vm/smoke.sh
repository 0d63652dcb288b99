#!/bin/bash
# smoke.sh - guest script for scripts/vm/cgroup2-run.sh: checks that the guest
# really is pure cgroup v2 and that a cgroup can be created, limited, used and
# removed.  Exits 0 only if every check passed.
#   scripts/vm/cgroup2-run.sh scripts/vm/smoke.sh
set -uo pipefail

C=/sys/fs/cgroup
PASS=0
FAIL=0
# res STATUS NAME [DETAIL]: record a check from the status of the test before it
res() {
    if [ "$1" -eq 0 ]; then
        echo "smoke: PASS $2${3:+ ($3)}"
        PASS=$((PASS + 1))
    else
        echo "smoke: FAIL $2${3:+ ($3)}"
        FAIL=$((FAIL + 1))
    fi
}
has() { case " $1 " in *" $2 "*) return 0 ;; esac; return 1; }
missing() { local c m=""; for c in cpu memory pids; do has "$1" "$c" || m="$m $c"; done; echo "${m# }"; }

echo "smoke: kernel $(uname -r), $(nproc) cpus, $(awk '/MemTotal/{print $2 " kB"}' /proc/meminfo) RAM"
echo "smoke: cwd $PWD, uid $(id -u), own cgroup $(cat /proc/self/cgroup)"

# --- pure v2 -------------------------------------------------------------------
fstype=$(stat -fc %T "$C")
[ "$fstype" = cgroup2fs ]
res $? fstype "$C is $fstype"

v1=$(awk '$3 == "cgroup" {print $2}' /proc/mounts | tr '\n' ' ')
[ -z "$v1" ]
res $? no-v1-mounts "${v1:+v1 mounted at: }$v1"
echo "smoke: cgroup2 mounts: $(awk '$3 == "cgroup2" {print $2 " " $4}' /proc/mounts)"

ctl=$(cat "$C/cgroup.controllers")
echo "smoke: cgroup.controllers: $ctl"
echo "smoke: root cgroup.subtree_control: '$(cat "$C/cgroup.subtree_control")'"
miss=$(missing "$ctl")
[ -z "$miss" ]
res $? controllers "${miss:+missing: }${miss:-cpu memory pids}"

# --- a test cgroup of our own ------------------------------------------------------
before=$(cat "$C/cgroup.subtree_control")
enabled=""
for c in cpu memory pids; do
    if ! has "$before" "$c"; then
        echo "+$c" >"$C/cgroup.subtree_control" && enabled="$enabled $c"
    fi
done
sc=$(cat "$C/cgroup.subtree_control")
miss=$(missing "$sc")
[ -z "$miss" ]
res $? subtree_control "${miss:+missing: }$sc"

T=$C/launch-smoke-$$
mkdir "$T"
res $? mkdir "$T"
if [ -d "$T" ]; then
    echo "50000 100000" >"$T/cpu.max"
    echo 64M >"$T/memory.max"
    echo 32 >"$T/pids.max"
    got="cpu.max=$(cat "$T/cpu.max" 2>&1) memory.max=$(cat "$T/memory.max" 2>&1) pids.max=$(cat "$T/pids.max" 2>&1)"
    [ "$got" = "cpu.max=50000 100000 memory.max=67108864 pids.max=32" ]
    res $? limits "$got"
    inside=$(sh -c "echo \$\$ >'$T/cgroup.procs' && cat /proc/self/cgroup" 2>&1)
    [ "$inside" = "0::/launch-smoke-$$" ]
    res $? attach "child saw $inside"
    cur=$(cat "$T/pids.current" 2>&1)
    [ "$cur" = 0 ]
    res $? empty-after-exit "pids.current=$cur"
    left=$(tr '\n' ' ' <"$T/cgroup.procs")
    rmdir "$T"
    res $? rmdir "${left:+procs left: }$left"
fi
for c in $enabled; do echo "-$c" >"$C/cgroup.subtree_control"; done
after=$(cat "$C/cgroup.subtree_control")
[ "$after" = "$before" ]
res $? restore-subtree_control "now '$after', was '$before'"

# --- what the harness promises -------------------------------------------------------
[ -f "./${LAUNCH_VM_SCRIPT:-smoke.sh}" ]
res $? cwd-is-share "$PWD"
if [ -n "${LAUNCH_REPO:-}" ]; then
    [ -r "$LAUNCH_REPO/Cargo.toml" ]
    res $? repo-visible "$LAUNCH_REPO (read-only)"
fi
f=$(mktemp) && echo x >"$f" && rm -f "$f"
res $? tmp-writable
echo x >.smoke-write && rm -f .smoke-write
res $? share-writable

echo "smoke: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
