#!/bin/bash
# Inside the pure cgroup v2 guest (see README.md): the limit tests, then the hello example.
set -euo pipefail
fs=$(stat -fc %T /sys/fs/cgroup)
echo "guest: kernel $(uname -r), /sys/fs/cgroup is $fs, controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
[ "$fs" = cgroup2fs ] || { echo "guest: not pure cgroup v2" >&2; exit 1; }
cd "$LAUNCH_REPO"
"$LAUNCH_TEST_BIN" limits:: --test-threads=1
echo "guest: hello"
LAUNCH_STATE_ROOT=/tmp/launch-state "$LAUNCH_BIN" examples/manifests/hello.toml
echo "guest: leftover cgroups: $(find /sys/fs/cgroup -mindepth 2 -type d | wc -l)"
[ -z "$(find /sys/fs/cgroup -mindepth 2 -type d)" ] || { find /sys/fs/cgroup -mindepth 2 -type d; exit 1; }
