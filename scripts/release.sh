#!/usr/bin/env bash
# Build the release binary: linked statically against musl and optimised with the profile of real
# runs (PGO). Prints the binary's path on stdout; progress goes to stderr.
#
#   scripts/release.sh            (also: just release)
#
# Why (numbers in docs/performance.md and bench/RESULTS.md): a launcher's peak RSS is mostly its
# own code, because the kernel maps 64 KiB around every page a process touches (fault-around).
# - static musl: no dynamic loader, no libc.so/libgcc_s mappings and no symbol relocation at
#   every start (peak RSS 3.6 -> 1.9 MiB, start ~0.4 ms faster than the default glibc build);
# - PGO: the hot path is optimised for speed while the rest stays small, and with machine
#   function splitting the blocks a training run never reached leave their functions
#   (`name.cold`), so a function that ran is only the code that ran;
# - the link order (lld, scripts/link-order.py): functions in the order training runs first
#   called them, the launcher's start-up, its steps and the container side each together, so a
#   start touches as few 64 KiB windows as it can (docs/performance.md: 2.2 -> 1.7 MiB).
# Training covers what users run: `plan`/`validate` on every example manifest and, as root,
# containers from a directory rootfs (the `docker export` case: pivot_root, /proc, network
# namespace, with and without cpu+memory limits, and unconfined), from a tarball in a user
# namespace, an OCI bundle, and the examples on the host's own root, all with a private state
# root. Container processes write their own profile (src/sys/pgo.rs). The profile is rebuilt on
# every release build, so it never goes stale.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "release: $*" >&2; }

target=$(uname -m)-unknown-linux-musl
host=$(rustc -vV | sed -n 's/^host: //p')
profdata=$(rustc --print sysroot)/lib/rustlib/$host/bin/llvm-profdata

# The toolchain pieces this needs, from rustup: musl's standard library and llvm-profdata.
if ! rustup target list --installed | grep -qx "$target"; then
    log "rustup target add $target"
    rustup target add "$target" >&2
fi
if [ ! -x "$profdata" ]; then
    log "rustup component add llvm-tools"
    rustup component add llvm-tools >&2
fi

# And a C compiler for musl: ring (rustls' crypto, for registry pulls over https) compiles a few
# C and assembly files, zstd-sys the bundled libzstd (.tar.zst layers); the cc crate picks
# `musl-gcc` (Debian's musl-tools) for this target.
if ! command -v musl-gcc >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        log "apt-get install musl-tools (musl-gcc, for ring and libzstd)"
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends musl-tools >&2
    else
        log "error: musl-gcc not found: install musl-tools (Debian/Ubuntu) or musl-gcc"
        exit 1
    fi
fi

# The link order (scripts/link-order.py) needs python3 and objdump (binutils).
for tool in python3 objdump; do
    command -v "$tool" >/dev/null || { log "error: $tool not found (the link order needs it)"; exit 1; }
done

pgo=$PWD/target/pgo
# RELR relocations (binutils >= 2.38; musl >= 1.2.4 applies them in the static-PIE start-up):
# the ~3,000 relative relocations of a position-independent static binary take 1.4 KiB instead
# of 76 KiB, which every start reads (40 KiB less peak RSS; docs/performance.md). The binary
# keeps its ASLR: a non-PIE link would drop the relocations too, and the randomisation with them.
link="-Clink-arg=-Wl,-z,pack-relative-relocs"
rm -rf "$pgo/raw" "$pgo/state"
mkdir -p "$pgo/raw"

log "1/3: instrumented build"
# Temporal instrumentation records when each function first ran, for the link order below;
# `launch_pgo_train` makes container processes write their own profile (src/sys/pgo.rs).
RUSTFLAGS="-Cprofile-generate=$pgo/raw -Cllvm-args=-pgo-temporal-instrumentation --cfg launch_pgo_train $link" \
    cargo build --release --quiet --target "$target" --target-dir "$pgo/build"
bin=$pgo/build/$target/release/launch

log "2/3: training runs"
export LAUNCH_STATE_ROOT=$pgo/state
export LAUNCH_PGO_CHILD_DIR=$pgo/raw
# One file per process: temporal profiles cannot be merged at run time (no %m).
export LLVM_PROFILE_FILE=$pgo/raw/launch-%p.profraw
unset LAUNCH_LOG
# A rootfs directory and tarball of our own, so the examples that need one (chroot.toml,
# seed.toml) plan the same way in a fresh clone as in a working checkout.
train=$pgo/train
mkdir -p "$train/examples"
[ -x "$train/examples/rootfs/bin/true" ] ||
    examples/make-rootfs.sh --dir "$train/examples/rootfs" >/dev/null
[ -s "$train/examples/seed-rootfs.tar" ] ||
    examples/make-rootfs.sh "$train/examples/seed-rootfs.tar" >/dev/null
cp examples/manifests/*.toml "$train/examples/"
for m in "$train"/examples/*.toml; do
    for cmd in plan "plan --format json" validate; do
        # shellcheck disable=SC2086 # $cmd is two words on purpose
        "$bin" $cmd "$m" >/dev/null || { log "training: launch $cmd $m failed"; exit 1; }
    done
done
if [ "$(id -u)" = 0 ]; then
    body='[process]
command = ["/bin/sh", "-c", "cat /proc/self/cgroup > /dev/null"]
[[mounts]]
type = "proc"
target = "/proc"'
    manifest() { # NAME ROOTFS-LINE NAMESPACES [LIMITS]
        printf 'name = "%s"\n[rootfs]\n%s\n[namespaces]\n%s\n%s\n%s\n' "$1" "$2" "$3" "${4:-}" "$body"
    }
    manifest train-dir 'path = "examples/rootfs"' 'net = true' > "$train/dir.toml"
    manifest train-limits 'path = "examples/rootfs"' 'net = true' \
        "$(printf '[limits]\ncpu = "50%%"\nmemory = "256MiB"')" > "$train/limits.toml"
    manifest train-tar 'tar = "examples/seed-rootfs.tar"' 'net = true
user = { map_root = true }' > "$train/tar.toml"
    manifest train-unconfined 'path = "examples/rootfs"' 'net = true' \
        "$(printf '[security]\nprofile = "unconfined"')" > "$train/unconfined.toml"
    runs=("$train/dir.toml" "$train/limits.toml" "$train/tar.toml" "$train/unconfined.toml")
    for name in hello limits mounts network userns; do runs+=("examples/manifests/$name.toml"); done
    # And an OCI bundle, as `launch run --bundle` takes it.
    rm -rf "$train/bundle"
    "$bin" export oci "$train/limits.toml" "$train/bundle" >/dev/null
    for i in 1 2 3; do
        for m in "${runs[@]}"; do
            "$bin" run "$m" </dev/null >/dev/null || { log "training run of $m failed"; exit 1; }
        done
        "$bin" run --bundle "$train/bundle" </dev/null >/dev/null ||
            { log "training run of the bundle failed"; exit 1; }
    done
else
    log "not root: training without container runs (the run path stays unprofiled)"
fi
# Two profiles. The optimisation uses the launcher processes' counts only: a container process
# writes its counters in the middle of the functions on its stack (it never returns from execve),
# and IR profiles derive most block counts from the flow through a function, so those partial
# flows would mark blocks that ran as never run. The link order uses the first-call traces of all.
"$profdata" merge -o "$pgo/merged.profdata" "$pgo"/raw/launch-*.profraw
"$profdata" merge --temporal-profile-trace-reservoir-size=10000 -o "$pgo/traces.profdata" "$pgo/raw"
# The link order (scripts/link-order.py): functions that run together, placed together.
python3 scripts/link-order.py "$profdata" "$pgo/traces.profdata" "$bin" > "$pgo/order.txt"
# The order needs lld: rustup's toolchains ship it (rust-lld, behind a `ld.lld` for cc to find).
gcc_ld=$(rustc --print sysroot)/lib/rustlib/$host/bin/gcc-ld
if [ -x "$gcc_ld/ld.lld" ]; then
    link="$link -Clink-arg=-fuse-ld=lld -Clink-arg=-B$gcc_ld -Clink-arg=-Wl,--symbol-ordering-file=$pgo/order.txt -Clink-arg=-Wl,--no-warn-symbol-ordering"
else
    log "warning: no rust-lld in this toolchain ($gcc_ld/ld.lld): linking without the order (a larger peak RSS)"
fi

log "3/3: optimised build"
touch src/main.rs # cargo does not know the order file: link again
RUSTFLAGS="-Cprofile-use=$pgo/merged.profdata -Cllvm-args=-enable-split-machine-functions $link" cargo build --release --quiet --target "$target"
echo "$PWD/target/$target/release/launch"
