#!/usr/bin/env bash
# Build a small root filesystem from this host's own binaries, as a tarball (like `docker export`
# gives) or a directory. No download, no docker: bash, coreutils, procps and their libraries.
#
#   examples/make-rootfs.sh examples/manifests/seed-rootfs.tar     # for seed.toml
#   examples/make-rootfs.sh --dir examples/manifests/rootfs        # for chroot.toml
set -euo pipefail

mode=tar
if [ "${1:-}" = "--dir" ]; then mode=dir; shift; fi
out=${1:?usage: make-rootfs.sh [--dir] OUTPUT}

tools=(bash sh ls cat echo ps hostname id env sleep mkdir rm touch grep sed head tail wc stty true false
       uname readlink mount umount kill yes dd seq tr cut sort ln chmod stat test printf)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,etc,proc,sys,dev,tmp,root,run,usr/bin}
chmod 755 "$stage"  # mktemp made it 0700; a root filesystem's / is 0755, or only root could use it
chmod 1777 "$stage/tmp"

copy() { # copy a host file into the stage, keeping its path, following symlinks
    local src=$1 dst=$stage$1
    [ -e "$dst" ] && return 0
    mkdir -p "$(dirname "$dst")"
    cp -L "$src" "$dst"
}
for t in "${tools[@]}"; do
    p=$(type -P "$t" 2>/dev/null || true)
    case "$p" in /*) ;; *) continue ;; esac
    copy "$p"
    # ldd prints "lib => /path (addr)" and "/lib64/ld-linux... (addr)"
    while read -r lib; do copy "$lib"; done < <(ldd "$p" 2>/dev/null | grep -o '/[^ ]*' || true)
    # Tools are found at /bin/NAME whatever the host's layout.
    [ -e "$stage/bin/$t" ] || cp -L "$p" "$stage/bin/$t"
done
printf 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$stage/etc/passwd"
printf 'root:x:0:\ntty:x:5:nobody\nnogroup:x:65534:\n' > "$stage/etc/group"
echo 'PS1="\u@\h:\w# "' > "$stage/root/.bashrc"

if [ "$mode" = dir ]; then
    rm -rf "$out"; mkdir -p "$out"; cp -a "$stage/." "$out/"
else
    tar --numeric-owner --owner=0 --group=0 -C "$stage" -cf "$out" .
fi
echo "made $out ($(du -sh "$out" | cut -f1))"
