#!/bin/bash
# Inside the pure cgroup v2 guest (see README.md): the whole integration-test binary
# (tests/it, every module), then the hello example, then a check that no cgroup is left.
# test-v2.sh checks the runner's `N passed; 0 failed` against the number of tests.
set -euo pipefail
up() { cut -d' ' -f1 /proc/uptime; }
fs=$(stat -fc %T /sys/fs/cgroup)
echo "guest: kernel $(uname -r), /sys/fs/cgroup is $fs, controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
[ "$fs" = cgroup2fs ] || { echo "guest: not pure cgroup v2" >&2; exit 1; }

# Where the tests write, made writable in this throwaway guest (the host's / and the checkout
# are read-only 9p shares here):
# - the checkout, through an overlay with its upper layer in a tmpfs: the fixtures are built
#   into target/test-fixtures and CARGO_TARGET_TMPDIR (target/tmp). Snapshots are only
#   compared (INSTA_UPDATE=no), never written.
# - TMPDIR (the tests' sandboxes and scratch dirs) on ext4 on the scratch disk, as on a real
#   host: the guest's /tmp is a tmpfs, and tmpfs has no user.* xattrs before Linux 6.6, which
#   tar_extract's round trip needs.
rw=/run/launch-it
mkdir -p "$rw/repo" "$rw/tmp"
mount -t tmpfs -o mode=755 tmpfs "$rw/repo"
mkdir -p "$rw/repo/upper" "$rw/repo/work"
mount -t overlay -o "lowerdir=$LAUNCH_REPO,upperdir=$rw/repo/upper,workdir=$rw/repo/work" \
    overlay "$LAUNCH_REPO"
# - /etc, through an overlay with its upper layer in a tmpfs: tests/it/rootless.rs makes a test
#   user (useradd, userdel) and gives it lines in /etc/subuid and /etc/subgid, in this guest's
#   /etc only; the host's stays as it is.
mkdir -p "$rw/etc"
mount -t tmpfs -o mode=755 tmpfs "$rw/etc"
mkdir -p "$rw/etc/upper" "$rw/etc/work"
mount -t overlay -o "lowerdir=/etc,upperdir=$rw/etc/upper,workdir=$rw/etc/work" overlay /etc
mkfs.ext4 -q -F -E nodiscard /dev/vda
mount -t ext4 /dev/vda "$rw/tmp"
chmod 1777 "$rw/tmp"
export TMPDIR=$rw/tmp INSTA_UPDATE=no CI=true
# The exported bundles run under crun here (the OCI export tests take the runtime from this
# variable; runc on the hybrid host): the same bundle, another runtime, pure cgroup v2.
export LAUNCH_OCI_RUNTIME=${LAUNCH_OCI_RUNTIME:-crun}
command -v "$LAUNCH_OCI_RUNTIME" >/dev/null || echo "guest: WARNING: no $LAUNCH_OCI_RUNTIME on the host" >&2

cd "$LAUNCH_REPO"
# Only tmux's own check prints the path it needs; say it here too.
command -v tmux >/dev/null || echo "guest: WARNING: no tmux on the host; the terminal tests will fail" >&2
t0=$(up)
# LAUNCH_TEST_FILTER (test-v2.sh passes it on): only the tests whose names contain it.
filter=${LAUNCH_TEST_FILTER:-}
echo "guest: running $("$LAUNCH_TEST_BIN" --list --format terse $filter | grep -c ': test$') tests"
status=0
"$LAUNCH_TEST_BIN" ${LAUNCH_TEST_THREADS:+--test-threads="$LAUNCH_TEST_THREADS"} $filter || status=$?
echo "guest: the test binary exited with status $status after $(awk "BEGIN{print $(up) - $t0}") s"

echo "guest: hello"
LAUNCH_STATE_ROOT=$rw/state "$LAUNCH_BIN" examples/manifests/hello.toml || status=$?
# launch keeps the shared parent group (`limits.parent`, `launch` by default: every container
# gets a group for its device allow-list); empty, it is no leftover. rmdir fails on anything
# left inside it, which the check below then reports.
rmdir /sys/fs/cgroup/launch 2>/dev/null || true
left=$(find /sys/fs/cgroup -mindepth 1 -type d)
echo "guest: leftover cgroups: $(printf '%s' "$left" | grep -c . || true)"
if [ -n "$left" ]; then
    printf '%s\n' "$left" >&2
    status=1
fi
exit "$status"
