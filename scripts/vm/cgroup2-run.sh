#!/usr/bin/env bash
# cgroup2-run.sh - run a test script inside a QEMU guest whose only cgroup
# hierarchy is cgroup v2, and carry its exit status back to the host.
#
# Usage: scripts/vm/cgroup2-run.sh GUEST_SCRIPT [FILE...]
#
# The guest boots Debian's stock kernel (TCG, uncompressed vmlinux via PVH)
# with a busybox initramfs.  The host's root filesystem is shared read-only
# over 9p and the guest script runs as root as PID 1 of /host (switch_root), with
# proc, sysfs, devtmpfs, devpts, tmpfs /tmp /run /var/tmp /dev/shm and a
# pure cgroup2 hierarchy at /sys/fs/cgroup (cgroup_no_v1=all; the root's
# cgroup.subtree_control is left as the kernel boots it, i.e. empty).
# A fresh per-run share directory, holding GUEST_SCRIPT and every FILE, is
# mounted read-write at /tmp/share (inside /host) and is the script's cwd.
#
# Exit status: the guest script's own status; 2 = usage error; 3 = the guest
# never ran the script (host setup, download, boot, 9p, cgroup2 or timeout
# before the script started); 4 = the script started but no status came back
# (timeout or guest crash while it ran).  See scripts/vm/README.md.
set -euo pipefail

PROG=cgroup2-run
SCRIPT_DIR=$(cd -P "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd -P "$SCRIPT_DIR/../.." && pwd)

WORK=${LAUNCH_VM_CACHE:-$HOME/.cache/launch-vm}
VM_MEM=${VM_MEM:-1024}
VM_CPUS=${VM_CPUS:-2}
VM_TIMEOUT=${VM_TIMEOUT:-600}
VM_ACCEL=${VM_ACCEL:-tcg}
VM_DISK_MB=${VM_DISK_MB:-64}
VM_EXTRA_MODULES=${VM_EXTRA_MODULES:-}
VM_PASS_ENV=${VM_PASS_ENV:-}
VM_KEEP=${VM_KEEP:-0}
VM_APPEND=${VM_APPEND:-}

# Modules loaded at boot: 9p + virtio transport for the shares, virtio_blk for
# the scratch disk (io.max tests), overlay/veth/bridge/tun for container tests.
BASE_MODULES="virtio_pci 9pnet_virtio 9p virtio_blk overlay veth bridge tun"

EXIT_USAGE=2
EXIT_NOT_RUN=3
EXIT_NO_RESULT=4

T0=${EPOCHREALTIME/./}
elapsed() { local us=$(( ${EPOCHREALTIME/./} - T0 )); printf '%d.%01d' $((us / 1000000)) $((us % 1000000 / 100000)); }
log() { printf '[%s +%ss] %s\n' "$PROG" "$(elapsed)" "$*" >&2; }

usage() {
    cat >&2 <<EOF
usage: $0 GUEST_SCRIPT [FILE...]
Runs GUEST_SCRIPT as root in a pure-cgroup-v2 QEMU guest (host / read-only
as the root via switch_root), cwd = /tmp/share holding GUEST_SCRIPT and the FILEs.
env: VM_TIMEOUT=$VM_TIMEOUT VM_MEM=$VM_MEM VM_CPUS=$VM_CPUS VM_ACCEL=$VM_ACCEL VM_DISK_MB=$VM_DISK_MB
     VM_PASS_ENV='NAME...' VM_EXTRA_MODULES='mod...' VM_APPEND='kernel args'
     VM_LOG=file VM_KEEP=0|1
     LAUNCH_VM_CACHE=$WORK
exit: script's status; 2 usage; 3 guest never ran the script; 4 no status came back
EOF
    STAGE=usage
    exit "$EXIT_USAGE"
}
usage_err() { echo "$PROG: $*" >&2; STAGE=usage; exit "$EXIT_USAGE"; }

# ---------------------------------------------------------------------------
# failure reporting and cleanup
# ---------------------------------------------------------------------------
STAGE=setup        # usage | setup | boot | running | finished
FAIL_REASON=""
QPID=""            # pid of `timeout` (own process group, parent of qemu)
READER_PID=""
RUN=""
SHARE=""
LOG=""
LOCKED=0

# shellcheck disable=SC2317  # reached through the EXIT trap
loud() {
    local code=$1 what=$2 reason=$3
    {
        echo "######################################################################"
        echo "## $PROG: FAILED (exit $code): $what"
        echo "## reason: $reason"
        [ -n "$LOG" ] && echo "## console log: $LOG"
        echo "######################################################################"
    } >&2
}

# shellcheck disable=SC2317  # reached through the EXIT trap
stop_qemu() {
    [ -n "$QPID" ] || return 0
    if kill -0 "$QPID" 2>/dev/null; then
        log "stopping qemu (timeout pid $QPID)"
        kill -TERM "$QPID" 2>/dev/null || true     # timeout forwards it to qemu
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "$QPID" 2>/dev/null || break
            sleep 0.5
        done
        kill -KILL -- "-$QPID" 2>/dev/null || true  # timeout leads its own group
    fi
    wait "$QPID" 2>/dev/null || true
    QPID=""
}

# shellcheck disable=SC2317  # reached through the EXIT trap
on_exit() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    stop_qemu
    if [ -n "$READER_PID" ]; then
        wait "$READER_PID" 2>/dev/null
    fi
    if [ "$STAGE" = boot ] && [ -n "$SHARE" ] && [ -f "$SHARE/.launch-vm/status" ]; then
        STAGE=running
    fi
    if [ "$STAGE" != finished ] && [ "$STAGE" != usage ]; then
        if [ "$STAGE" = running ]; then
            loud "$EXIT_NO_RESULT" "the guest script started but its exit status never came back" \
                "${FAIL_REASON:-harness interrupted (rc=$rc)}"
            rc=$EXIT_NO_RESULT
        else
            [ -n "$FAIL_REASON" ] || FAIL_REASON="harness error during $STAGE (rc=$rc)"
            loud "$EXIT_NOT_RUN" "the guest did NOT run the tests" "$FAIL_REASON"
            rc=$EXIT_NOT_RUN
        fi
    fi
    if [ -n "$RUN" ] && [ -d "$RUN" ]; then
        if [ "$VM_KEEP" = 1 ]; then log "kept run dir $RUN"; else rm -rf "$RUN"; fi
    fi
    exit "$rc"
}
trap on_exit EXIT
trap 'FAIL_REASON="interrupted by SIGINT"; exit 130' INT
trap 'FAIL_REASON="interrupted by SIGTERM"; exit 143' TERM

die() { FAIL_REASON=$*; exit 1; }

# ---------------------------------------------------------------------------
# arguments
# ---------------------------------------------------------------------------
[ $# -ge 1 ] || usage
case $1 in -h|--help) usage ;; esac
GUEST_SCRIPT=$1
shift
if [ ! -f "$GUEST_SCRIPT" ] || [ ! -r "$GUEST_SCRIPT" ]; then
    usage_err "guest script '$GUEST_SCRIPT' is not a readable file"
fi
for f in "$@"; do
    [ -e "$f" ] || usage_err "FILE '$f' does not exist"
done
for v in VM_MEM VM_CPUS VM_TIMEOUT VM_DISK_MB; do
    [[ ${!v} =~ ^[0-9]+$ ]] || usage_err "$v must be a number, got '${!v}'"
done
[ "$(id -u)" = 0 ] || usage_err "must run as root (apt-get, 9p passthrough)"

mkdir -p "$WORK"
WORK=$(cd -P "$WORK" && pwd)

# ---------------------------------------------------------------------------
# host tools (apt-get), serialised with other runs through a lock
# ---------------------------------------------------------------------------
lock() {
    exec 9>"$WORK/.lock"
    if ! flock -n 9; then
        log "waiting for another $PROG run to finish its setup ($WORK/.lock)"
        flock 9
    fi
    LOCKED=1
    # leftovers of runs that were killed hard (we hold the lock: no setup is running)
    rm -rf "$WORK"/kernel.tmp.* "$WORK"/busybox.tmp.* "$WORK"/initrd.tmp.* "$WORK"/mods.*
    [ ! -d "$WORK/runs" ] || find "$WORK/runs" -mindepth 1 -maxdepth 1 -name 'run.*' -mmin +1440 -exec rm -rf {} +
}
unlock() { [ "$LOCKED" = 1 ] && exec 9>&- && LOCKED=0; return 0; }

APT_UPDATED=0
apt_update() {
    [ "$APT_UPDATED" = 1 ] && return 0
    log "apt-get update"
    apt-get update -q -o DPkg::Lock::Timeout=300 >"$WORK/apt.log" 2>&1 || { cat "$WORK/apt.log" >&2; die "apt-get update failed"; }
    APT_UPDATED=1
}

apt_install() {
    log "apt-get install $*"
    local a=(-y -q --no-install-recommends -o DPkg::Lock::Timeout=300)
    if ! DEBIAN_FRONTEND=noninteractive apt-get install "${a[@]}" "$@" >"$WORK/apt.log" 2>&1; then
        apt_update
        DEBIAN_FRONTEND=noninteractive apt-get install "${a[@]}" "$@" >"$WORK/apt.log" 2>&1 \
            || { cat "$WORK/apt.log" >&2; die "apt-get install $* failed"; }
    fi
}

QBOOT=/usr/share/qemu/qboot.rom
ensure_host_tools() {
    local need=()
    command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
    [ -f "$QBOOT" ] || need+=(qemu-system-data)
    command -v cpio >/dev/null || need+=(cpio)
    command -v modprobe >/dev/null && command -v depmod >/dev/null || need+=(kmod)
    command -v xz >/dev/null || need+=(xz-utils)
    command -v gzip >/dev/null || need+=(gzip)
    command -v flock >/dev/null || need+=(util-linux)
    command -v dpkg-deb >/dev/null || need+=(dpkg)
    if ((${#need[@]})); then apt_install "${need[@]}"; fi
}

# run apt-get download PKG into DIR, retrying after apt-get update
apt_download() {
    local pkg=$1 dir=$2
    log "downloading $pkg"
    if ! (cd "$dir" && apt-get download -q "$pkg") >"$WORK/apt.log" 2>&1; then
        apt_update
        (cd "$dir" && apt-get download -q "$pkg") >"$WORK/apt.log" 2>&1 \
            || { cat "$WORK/apt.log" >&2; die "apt-get download $pkg failed"; }
    fi
}

# ---------------------------------------------------------------------------
# kernel + busybox (apt-get download + dpkg -x, cached)
# ---------------------------------------------------------------------------
kernel_pkg() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}'; }

ensure_kernel() {
    local kpkg="" cur cached=0
    # Resolving linux-image-amd64 costs ~1 s: reuse the answer for a day.
    cur=$(cat "$WORK/kernel/current" 2>/dev/null || true)
    if [ "${VM_REFRESH:-0}" != 1 ] && [ -n "$cur" ] && [ -f "$WORK/kernel/$cur/.complete" ] &&
        [ -n "$(find "$WORK/kernel/current" -mmin -1440 2>/dev/null)" ]; then
        kpkg=linux-image-$cur
        cached=1
    fi
    [ -n "$kpkg" ] || kpkg=$(kernel_pkg)
    if [ -z "$kpkg" ]; then apt_update; kpkg=$(kernel_pkg); fi
    if [ -z "$kpkg" ]; then
        # registry unreachable: fall back to whatever kernel is cached
        KVER=$(cat "$WORK/kernel/current" 2>/dev/null || true)
        if [ -z "$KVER" ] || [ ! -d "$WORK/kernel/$KVER" ]; then
            die "cannot resolve linux-image-amd64 and no cached kernel"
        fi
        log "WARNING: cannot resolve linux-image-amd64; using cached kernel $KVER"
    else
        KVER=${kpkg#linux-image-}
    fi
    KDIR=$WORK/kernel/$KVER
    if [ ! -f "$KDIR/.complete" ]; then
        local tmp
        tmp=$(mktemp -d "$WORK/kernel.tmp.XXXXXX")
        apt_download "$kpkg" "$tmp"
        log "unpacking $kpkg"
        dpkg -x "$tmp"/"$kpkg"_*.deb "$tmp/root"
        [ -f "$tmp/root/boot/vmlinuz-$KVER" ] || die "no /boot/vmlinuz-$KVER in $kpkg"
        # Uncompressed ELF vmlinux boots through PVH and skips the in-guest
        # decompression (several seconds under TCG).
        local off
        off=$(grep -abo $'\xfd7zXZ' "$tmp/root/boot/vmlinuz-$KVER" | head -1 | cut -d: -f1 || true)
        if [ -n "$off" ]; then
            tail -c +$((off + 1)) "$tmp/root/boot/vmlinuz-$KVER" | xz -dc --single-stream >"$tmp/root/boot/vmlinux-$KVER" 2>/dev/null || true
        fi
        if [ "$(head -c4 "$tmp/root/boot/vmlinux-$KVER" 2>/dev/null | od -An -c | tr -d ' ')" != 177ELF ]; then
            log "WARNING: could not extract an ELF vmlinux; booting the compressed bzImage (slower)"
            rm -f "$tmp/root/boot/vmlinux-$KVER"
        fi
        depmod -b "$tmp/root" "$KVER"
        rm -rf "$KDIR" "$tmp"/*.deb
        mkdir -p "$WORK/kernel"
        mv "$tmp/root" "$KDIR"
        rmdir "$tmp"
        touch "$KDIR/.complete"
        # drop kernels that are no longer current
        local d
        for d in "$WORK"/kernel/*/; do
            [ "${d%/}" = "$KDIR" ] || rm -rf "${d%/}"
        done
    fi
    if [ "$cached" = 0 ]; then echo "$KVER" >"$WORK/kernel/current"; fi
    KERNEL=$KDIR/boot/vmlinux-$KVER
    [ -s "$KERNEL" ] || KERNEL=$KDIR/boot/vmlinuz-$KVER
}

ensure_busybox() {
    BUSYBOX=$WORK/busybox/busybox
    [ -x "$BUSYBOX" ] && return 0
    local tmp
    tmp=$(mktemp -d "$WORK/busybox.tmp.XXXXXX")
    apt_download busybox-static "$tmp"
    dpkg -x "$tmp"/busybox-static_*.deb "$tmp/root"
    [ -x "$tmp/root/bin/busybox" ] || die "busybox-static has no /bin/busybox"
    mkdir -p "$WORK/busybox"
    mv "$tmp/root/bin/busybox" "$BUSYBOX.new"
    mv "$BUSYBOX.new" "$BUSYBOX"
    rm -rf "$tmp"
}

# ---------------------------------------------------------------------------
# guest /init (busybox sh).  Run-specific data comes from the kernel command
# line (launchvm.token) and from the share's .launch-vm/ directory.
# ---------------------------------------------------------------------------
guest_init() {
    cat <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
up() { cut -d' ' -f1 /proc/uptime; }
msg() { echo "launch-vm guest [t=$(up)s]: $*"; }
TOKEN=$(sed -n 's/.*launchvm\.token=\([A-Za-z0-9]*\).*/\1/p' /proc/cmdline)
fatal() {
    msg "FATAL: $*"
    echo "@@LAUNCH-VM FATAL $TOKEN@@"
    sync
    poweroff -f
    sleep 10
}
msg "init, kernel $(uname -r), $(nproc) cpus, $(awk '/MemTotal/{print $2 " kB"}' /proc/meminfo)"
while read -r m; do
    [ -n "$m" ] || continue
    modprobe "$m" || fatal "modprobe $m failed"
done </etc/launch-vm/modules
hostname launch-vm
ip link set lo up

O=trans=virtio,version=9p2000.L,msize=524288
mkdir -p /mnt/share /host
mount -t 9p -o "$O" launchshare /mnt/share || fatal "cannot mount the 9p share"
[ -f /mnt/share/.launch-vm/script ] || fatal "share has no .launch-vm/script"
mount -t 9p -o "$O,ro,cache=loose" hostroot /host || fatal "cannot mount the host root (9p)"
H=/host
m() { mount "$@" || fatal "mount $* failed"; }
m -t proc proc $H/proc
m -t sysfs sysfs $H/sys
m -t devtmpfs devtmpfs $H/dev
# what udev/systemd add to /dev: bash's process substitution <(...) needs /dev/fd
ln -sfn /proc/self/fd $H/dev/fd
ln -sf /proc/self/fd/0 $H/dev/stdin
ln -sf /proc/self/fd/1 $H/dev/stdout
ln -sf /proc/self/fd/2 $H/dev/stderr
mkdir -p $H/dev/pts $H/dev/shm
m -t devpts -o newinstance,gid=5,mode=620,ptmxmode=666 devpts $H/dev/pts
ln -sf pts/ptmx $H/dev/ptmx
m -t tmpfs -o mode=1777 tmpfs $H/dev/shm
m -t tmpfs -o mode=1777 tmpfs $H/tmp
m -t tmpfs -o mode=755 tmpfs $H/run
m -t tmpfs -o mode=1777 tmpfs $H/var/tmp
mkdir -p $H/tmp/share
m --bind /mnt/share $H/tmp/share
# The repository at its own path, even when that path is under /tmp or /run, which the tmpfs
# mounts above hide (CI clones into a temporary folder).
REPO_PATH=$(cat /mnt/share/.launch-vm/repo)
mkdir -p "$H$REPO_PATH" 2>/dev/null || true
m -t 9p -o "$O,ro,cache=loose" launchrepo "$H$REPO_PATH"
# pure cgroup v2, mounted like systemd does
mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 $H/sys/fs/cgroup 2>/dev/null ||
    mount -t cgroup2 cgroup2 $H/sys/fs/cgroup || fatal "cannot mount cgroup2"
C=$H/sys/fs/cgroup
[ "$(stat -fc %t $C)" = 63677270 ] || fatal "$C is not cgroup2fs (f_type $(stat -fc %t $C))"
! awk '$3 == "cgroup" {f=1} END {exit !f}' /proc/mounts || fatal "a cgroup v1 hierarchy is mounted"
CTL=$(cat $C/cgroup.controllers)
for c in cpu memory pids io cpuset; do
    case " $CTL " in *" $c "*) ;; *) fatal "controller $c missing from cgroup.controllers ($CTL)";; esac
done
msg "cgroup2 at /sys/fs/cgroup, controllers: $CTL; subtree_control: '$(cat $C/cgroup.subtree_control)'"

NAME=$(cat /mnt/share/.launch-vm/script)
echo "START $TOKEN" >/mnt/share/.launch-vm/status
echo "@@LAUNCH-VM START $TOKEN@@"
msg "running ./$NAME as PID 1 of the host root (switch_root /host), cwd /tmp/share"
# switch_root, not chroot: the kernel refuses to create user namespaces from a chroot
# (clone(CLONE_NEWUSER) fails with EPERM when the root differs from the mount namespace's).
# switch_root moves /host onto / and makes it the root of the namespace.
cp /etc/launch-vm/stage2 $H/tmp/share/.launch-vm/stage2
exec switch_root $H /bin/sh /tmp/share/.launch-vm/stage2 "$TOKEN" "$NAME"
fatal "switch_root to /host failed"
INIT
}

# The second stage: PID 1 in the host root after switch_root. It must never exit (PID 1).
guest_stage2() {
    cat <<'STAGE2'
TOKEN=$1 NAME=$2
up() { cut -d' ' -f1 /proc/uptime; }
T1=$(up)
# shellcheck disable=SC2016  # $LAUNCH_VM_SCRIPT is expanded by the inner shell
/usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root USER=root LOGNAME=root TERM=dumb LANG=C.UTF-8 SHELL=/bin/sh \
    /bin/sh -c '. /tmp/share/.launch-vm/env && cd /tmp/share && exec "./$LAUNCH_VM_SCRIPT"' </dev/null
RC=$?
echo "launch-vm guest [t=$(up)s]: ./$NAME exited with status $RC after $(awk "BEGIN{print $(up) - $T1}")s"
echo "EXIT $RC $TOKEN" >/tmp/share/.launch-vm/result
sync
echo "@@LAUNCH-VM EXIT $RC $TOKEN@@"
# No busybox here: power off through sysrq.
echo o >/proc/sysrq-trigger
while :; do sleep 10; done
STAGE2
}

build_initrd() {
    local mods="$BASE_MODULES $VM_EXTRA_MODULES" m ko lst
    lst=$(mktemp "$WORK/mods.XXXXXX")
    : >"$lst.load"
    for m in $mods; do
        local deps
        deps=$(modprobe -d "$KDIR" -S "$KVER" --show-depends "$m" 2>&1) || die "kernel $KVER has no module '$m': $deps"
        printf '%s\n' "$deps" | awk '$1 == "insmod" {print $2}' >>"$lst"
        # built-in modules need no loading
        if grep -q '^insmod ' <<<"$deps"; then echo "$m" >>"$lst.load"; fi
    done
    local hash
    hash=$( { guest_init; guest_stage2; cat "$lst.load"; sort -u "$lst"; echo "$KVER"; sha256sum <"$BUSYBOX"; } | sha256sum | cut -c1-16)
    INITRD=$WORK/initrd/initrd-$KVER-$hash.gz
    if [ -s "$INITRD" ]; then rm -f "$lst" "$lst.load"; return 0; fi
    log "building initramfs (kernel $KVER, modules: $(tr '\n' ' ' <"$lst.load"))"
    local R
    R=$(mktemp -d "$WORK/initrd.tmp.XXXXXX")
    mkdir -p "$R"/{bin,dev,proc,sys,tmp,mnt,host,etc/launch-vm,lib/modules/"$KVER"}
    cp "$BUSYBOX" "$R/bin/busybox"
    sort -u "$lst" | while read -r ko; do
        local rel=${ko#"$KDIR"}
        mkdir -p "$R$(dirname "$rel")"
        cp "$ko" "$R$rel"
    done
    cp "$KDIR"/lib/modules/"$KVER"/modules.{order,builtin,builtin.modinfo} "$R/lib/modules/$KVER/" 2>/dev/null || true
    depmod -b "$R" "$KVER"
    cp "$lst.load" "$R/etc/launch-vm/modules"
    guest_init >"$R/init"
    chmod +x "$R/init"
    guest_stage2 >"$R/etc/launch-vm/stage2"
    mkdir -p "$WORK/initrd"
    (cd "$R" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -1) >"$INITRD.tmp"
    rm -f "$WORK"/initrd/initrd-*.gz   # keep only the current one
    mv "$INITRD.tmp" "$INITRD"
    rm -rf "$R" "$lst" "$lst.load"
}

# ---------------------------------------------------------------------------
# setup
# ---------------------------------------------------------------------------
lock
ensure_host_tools
ensure_kernel
ensure_busybox
build_initrd
unlock
log "kernel $KVER ($(basename "$KERNEL")), initramfs $(du -h "$INITRD" | cut -f1)"

# per-run share directory
mkdir -p "$WORK/runs"
RUN=$(mktemp -d "$WORK/runs/run.XXXXXX")
SHARE=$RUN/share
mkdir -p "$SHARE/.launch-vm"
NAME=$(basename "$GUEST_SCRIPT")
cp -L "$GUEST_SCRIPT" "$SHARE/$NAME"
chmod 755 "$SHARE/$NAME"
for f in "$@"; do
    b=$(basename "$f")
    [ "$b" != .launch-vm ] || die "FILE '$f': the name .launch-vm is reserved"
    [ ! -e "$SHARE/$b" ] || die "FILE '$f': a file named '$b' is already in the share"
    cp -rL --reflink=auto "$f" "$SHARE/$b"
done
echo "$NAME" >"$SHARE/.launch-vm/script"
echo "$REPO" >"$SHARE/.launch-vm/repo"
TOKEN=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
sq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }
{
    echo "export LAUNCH_VM=1"
    echo "export LAUNCH_VM_SCRIPT=$(sq "$NAME")"
    echo "export LAUNCH_VM_SHARE=/tmp/share"
    echo "export LAUNCH_REPO=$(sq "$REPO")"
    echo "export LAUNCH_VM_HOST_CWD=$(sq "$PWD")"
    for v in $VM_PASS_ENV; do
        [[ $v =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "VM_PASS_ENV: bad variable name '$v'"
        if [ -n "${!v+x}" ]; then echo "export $v=$(sq "${!v}")"; fi
    done
} >"$SHARE/.launch-vm/env"
case $REPO/ in /tmp/*|/run/*|/dev/*|/proc/*|/sys/*|/var/tmp/*)
    log "WARNING: $REPO is hidden in the guest (tmpfs/proc mounted over it); only the share is visible" ;;
esac

# console log
if [ -n "${VM_LOG:-}" ]; then
    LOG=$VM_LOG
    mkdir -p "$(dirname "$LOG")"
else
    mkdir -p "$WORK/logs"
    LOG=$WORK/logs/$PROG-$(date +%Y%m%d-%H%M%S)-$$.log
    ln -sfn "$(basename "$LOG")" "$WORK/logs/last.log"
    # keep the newest 20 logs
    find "$WORK/logs" -name "$PROG-*.log" -printf '%T@ %p\n' | sort -rn | tail -n +21 | cut -d' ' -f2- | xargs -r rm -f
fi
: >"$LOG"

# ---------------------------------------------------------------------------
# boot
# ---------------------------------------------------------------------------
QEMU=(qemu-system-x86_64)
case $VM_ACCEL in
    tcg) QEMU+=(-accel "tcg,thread=multi" -cpu max) ;;
    kvm) QEMU+=(-accel kvm -cpu host) ;;
    *) die "VM_ACCEL must be tcg or kvm" ;;
esac
QEMU+=(-smp "$VM_CPUS" -m "$VM_MEM" -nodefaults -nographic -serial stdio -no-reboot)
[ -f "$QBOOT" ] && QEMU+=(-bios "$QBOOT")
QEMU+=(-kernel "$KERNEL" -initrd "$INITRD")
QEMU+=(-append "console=ttyS0 panic=-1 quiet loglevel=3 cgroup_no_v1=all $VM_APPEND launchvm.token=$TOKEN")
QEMU+=(-virtfs "local,path=$SHARE,mount_tag=launchshare,security_model=none,id=share")
QEMU+=(-virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap,id=hostroot")
QEMU+=(-virtfs "local,path=$REPO,mount_tag=launchrepo,security_model=none,readonly=on,multidevs=remap,id=launchrepo")
if [ "$VM_DISK_MB" -gt 0 ]; then
    truncate -s "${VM_DISK_MB}M" "$RUN/disk.raw"
    QEMU+=(-drive "file=$RUN/disk.raw,format=raw,if=virtio,cache=unsafe")
fi

mkfifo "$RUN/console"
# console -> strip CRs -> host stdout + log file (line by line, unbuffered)
sed -u 's/\r//g' <"$RUN/console" | tee -p -a "$LOG" &
READER_PID=$!
STAGE=boot
log "booting $VM_ACCEL guest: $VM_CPUS vCPU, ${VM_MEM} MiB, timeout ${VM_TIMEOUT}s; share $SHARE -> /tmp/share"
TBOOT=${EPOCHREALTIME/./}
# `timeout` becomes a process-group leader; qemu is its only child.
timeout --kill-after=10 "$VM_TIMEOUT" "${QEMU[@]}" </dev/null >"$RUN/console" 2>&1 &
QPID=$!
set +e
wait "$QPID"
QRC=$?
set -e
QPID=""
wait "$READER_PID" 2>/dev/null || true
READER_PID=""
BOOT_SECS=$(( (${EPOCHREALTIME/./} - TBOOT) / 1000000 ))
log "qemu exited with status $QRC after ${BOOT_SECS}s"

# ---------------------------------------------------------------------------
# result
# ---------------------------------------------------------------------------
RESULT=""
if [ -f "$SHARE/.launch-vm/result" ]; then
    read -r w rc tok <"$SHARE/.launch-vm/result" || true
    if [ "${w:-}" = EXIT ] && [ "${tok:-}" = "$TOKEN" ] && [[ ${rc:-} =~ ^[0-9]+$ ]]; then RESULT=$rc; fi
fi
if [ -z "$RESULT" ]; then
    rc=$(sed -n "s/.*@@LAUNCH-VM EXIT \([0-9]*\) $TOKEN@@.*/\1/p" "$LOG" | tail -1)
    if [ -n "$rc" ]; then
        log "WARNING: no result file in the share; using the console marker"
        RESULT=$rc
    fi
fi

if [ -n "$RESULT" ]; then
    [ "$QRC" -eq 0 ] || log "WARNING: qemu exited with status $QRC after the script finished"
    STAGE=finished
    if [ "$RESULT" -eq 0 ]; then
        log "guest script $NAME passed (exit 0); log: $LOG"
    else
        log "guest script $NAME FAILED with exit status $RESULT; log: $LOG"
    fi
    exit "$RESULT"
fi

case $QRC in
    124|137) why="timeout: qemu killed after ${VM_TIMEOUT}s (VM_TIMEOUT)" ;;
    0) why="guest powered off without reporting a result" ;;
    *) why="qemu exited with status $QRC: $(grep -a . "$LOG" | tail -1)" ;;
esac
if ! grep -aq 'launch-vm guest.*: init,' "$LOG"; then
    why="$why; the guest never reached its /init (the kernel did not boot, or not in time: see the console log)"
fi
if grep -aq "@@LAUNCH-VM FATAL $TOKEN@@" "$LOG"; then
    why="guest setup failed: $(grep -a 'launch-vm guest.*FATAL:' "$LOG" | tail -1 | sed 's/.*FATAL: //')"
elif grep -aq 'Kernel panic' "$LOG"; then
    why="guest kernel panic: $(grep -a 'Kernel panic' "$LOG" | tail -1)"
fi
if [ -f "$SHARE/.launch-vm/status" ] || grep -aq "@@LAUNCH-VM START $TOKEN@@" "$LOG"; then
    STAGE=running
else
    STAGE=boot
fi
FAIL_REASON=$why
exit 1
