#!/usr/bin/env bash
# The image part of `just bench` (issue 13), run by bench/run.sh (or alone: BENCH_ONLY=images
# bench/run.sh). Writes bench/out/images/start.json and ops.json, which `bench.py report` turns
# into the "Images" section of bench/RESULTS.md. Needs build_launch and write_manifests done.
#
# The image: Debian bookworm, `debootstrap --variant=minbase` (~193 MB, ~6,800 entries), packed
# with GNU tar in a fixed order with fixed owners and clamped times, compressed with `gzip -n -6`
# and `zstd -3`, and written as OCI image layouts by `bench.py oci-layout`; everything is cached
# under bench/out/images/ (remove that directory to rebuild). A "large" image adds three more
# layers of the same tree under /copy1../copy3 (~4× the bytes), for the peak RSS of a pull.
#
# Measured, each against what a user would use instead:
#   start   `launch run` of /bin/true from the cached image (`[rootfs] image`, pull = "never";
#           and `[rootfs] oci = DIR`) next to the small directory root of the `launch` row,
#           interleaved by bench.py measure (ISO_ROUNDS, B2B_ROUNDS, B2B_RUNS as in run.sh).
#   pull    first pull + unpack from a docker-registry on loopback, a fresh store each round:
#           `launch pull` + `launch plan` (which unpacks), `skopeo copy` + `umoci unpack`, and
#           `podman pull` (when podman installs).
#   unpack  the same tree as .tar, .tar.gz, .tar.zst: `launch import oci` of a layout whose blob
#           is in a fresh store but whose layer is not (the store's unpack: extraction, both
#           digests, syncfs), against `tar -x[z|--zstd]f` into a fresh directory (+ `sync -f`).
#   rss     peak RSS (`/usr/bin/time -f %M`) of `launch pull` (launch-registry) of the image and
#           of the large one.
# Knobs: IMG_ROUNDS (rounds of pull/unpack/rss, 3).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
need_root

I=$out/images
IA=$ROOT/$I
mkdir -p "$I"
ensure_pkgs debootstrap:debootstrap skopeo:skopeo umoci:umoci docker-registry:docker-registry \
    zstd:zstd curl:curl /usr/bin/time:time
ensure_pkgs podman:podman || echo "bench: podman did not install: its row is skipped" >&2
have_podman=0
command -v podman >/dev/null && have_podman=1

# --- the images (cached) ---------------------------------------------------------------------
if [ ! -x "$I/debian-rootfs/bin/true" ]; then
    echo "bench: debootstrap --variant=minbase bookworm (once; cached in $I)" >&2
    rm -rf "$I/debian-rootfs.tmp"
    debootstrap --variant=minbase --arch=amd64 bookworm "$I/debian-rootfs.tmp" \
        http://deb.debian.org/debian > "$I/debootstrap.log" 2>&1 ||
        { echo "bench: debootstrap failed, see $I/debootstrap.log" >&2; exit 1; }
    mv "$I/debian-rootfs.tmp" "$I/debian-rootfs"
fi
# Deterministic tars: sorted names, numeric owners, times clamped, no atime/ctime records.
pack() { # DEST PREFIX
    tar --sort=name --numeric-owner --format=posix \
        --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
        --mtime=@1704067200 --clamp-mtime --transform "s,^\./,./$2," \
        -C "$I/debian-rootfs" -cf "$1.tmp" . && mv "$1.tmp" "$1"
}
[ -s "$I/debian.tar" ] || pack "$I/debian.tar" ""
[ -s "$I/debian.tar.gz" ] || { gzip -n -6 -c "$I/debian.tar" > "$I/debian.tar.gz.tmp" && mv "$I/debian.tar.gz.tmp" "$I/debian.tar.gz"; }
[ -s "$I/debian.tar.zst" ] || { zstd -q -3 -T1 -c "$I/debian.tar" > "$I/debian.tar.zst.tmp" && mv "$I/debian.tar.zst.tmp" "$I/debian.tar.zst"; }
for n in 1 2 3; do
    [ -s "$I/copy$n.tar.gz" ] && continue
    pack "$I/copy$n.tar" "copy$n/"
    gzip -n -6 -c "$I/copy$n.tar" > "$I/copy$n.tar.gz.tmp" && mv "$I/copy$n.tar.gz.tmp" "$I/copy$n.tar.gz"
    rm -f "$I/copy$n.tar"
done
layout() { # NAME LAYER...
    local name=$1; shift
    [ -f "$I/$name/index.json" ] || "$PY" bench/bench.py oci-layout --out "$I/$name" "$@"
}
layout layout-tar "$I/debian.tar"
layout layout-tar-gz "$I/debian.tar.gz"
layout layout-tar-zst "$I/debian.tar.zst"
layout layout-large "$I/debian.tar.gz" "$I/copy1.tar.gz" "$I/copy2.tar.gz" "$I/copy3.tar.gz"

# --- the registry (loopback, stopped on exit) -------------------------------------------------
port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
REG=127.0.0.1:$port
cat > "$I/registry.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $IA/registry-data
http:
  addr: $REG
  secret: lbench
EOF
docker-registry serve "$I/registry.yml" > "$I/registry.log" 2>&1 &
reg_pid=$!
START_STORE=$IA/store
stop_all() {
    # `wait` returns the registry's status (killed: 143), which must not stop the clean-up.
    kill "$reg_pid" 2>/dev/null || true
    wait "$reg_pid" 2>/dev/null || true
    rm -rf --one-file-system "$START_STORE" "$IA/scratch" /run/lbench-podman
    cleanup_leftovers
}
trap stop_all EXIT
for _ in $(seq 100); do
    curl -fs "http://$REG/v2/" >/dev/null && break
    sleep 0.1
done
curl -fs "http://$REG/v2/" >/dev/null || { echo "bench: the registry did not start: $(cat "$I/registry.log")" >&2; exit 1; }
echo "bench: docker-registry on $REG (pid $reg_pid): pushing the images (skopeo)" >&2
skopeo copy -q --dest-tls-verify=false "oci:$IA/layout-tar-gz:1" "docker://$REG/lbench/debian:1"
skopeo copy -q --dest-tls-verify=false "oci:$IA/layout-large:1" "docker://$REG/lbench/large:1"

# --- start of a cached image ------------------------------------------------------------------
rm -rf "$START_STORE"
export LAUNCH_STORE=$START_STORE
"$BIN" import oci "$IA/layout-tar-gz" --name localhost/lbench/debian:1 >/dev/null
"$BIN" import oci "$IA/layout-large" --name localhost/lbench/large:1 >/dev/null
# The imports leave ~1 GB of dirty pages: written back during the starts, they would slow the
# image rows' metadata operations (ext4 journal) more than the directory root's.
sync
img_manifest() { # FILE NAME ROOTFS-LINES
    printf 'name = "%s"\n[rootfs]\n%s\n[process]\ncommand = ["/bin/true"]\n[namespaces]\nnet = true\n[[mounts]]\ntype = "proc"\ntarget = "/proc"\n' \
        "$2" "$3" > "$1"
}
img_manifest "$out/image.toml" lbench-image 'image = "localhost/lbench/debian:1"
pull = "never"'
img_manifest "$out/image-large.toml" lbench-image-large 'image = "localhost/lbench/large:1"
pull = "never"'
img_manifest "$out/image-oci.toml" lbench-image-oci 'oci = "images/layout-tar-gz"'
img_manifest "$I/pull.toml" lbench-pull "image = \"$REG/lbench/debian:1\"
pull = \"never\""

BIN=$BIN OUT=$ROOT/$out "$PY" - > "$I/start-spec.json" <<'PY'
import json, os
BIN, OUT = os.environ["BIN"], os.environ["OUT"]
cmds = []
def add(key, label, manifest):
    argv = [BIN, "run", OUT + "/" + manifest]
    cmds.append({"key": key, "label": label, "argv": argv,
                 "rss_argv": ["/usr/bin/time", "-f", "%M", "-o", "{rss}"] + argv})
add("launch", "**launch**, the small directory root (`[rootfs] path`)", "true.toml")
add("launch-image", "**launch**, the cached Debian image (`[rootfs] image`, `pull = \"never\"`; 1 layer, 193 MB)", "image.toml")
add("launch-image-large", "launch, the cached large image (4 layers, 4× the bytes)", "image-large.toml")
add("launch-image-oci", "launch, the same image as an OCI layout directory (`[rootfs] oci = DIR`)", "image-oci.toml")
json.dump({"commands": cmds}, open("/dev/stdout", "w"), indent=1)
PY
for k in image image-large image-oci; do
    "$BIN" run "$out/$k.toml" </dev/null >/dev/null || { echo "bench: launch run $out/$k.toml fails" >&2; "$BIN" run "$out/$k.toml" </dev/null; exit 1; }
done
echo "bench: images: start of a cached image" >&2
: > "$I/run.log"
"$PY" bench/bench.py measure --spec "$I/start-spec.json" --out "$I/start.json" --log "$I/run.log" \
    --iso-rounds "${ISO_ROUNDS:-40}" --b2b-rounds "${B2B_ROUNDS:-5}" --b2b-runs "${B2B_RUNS:-200}" \
    --rss-runs "${RSS_RUNS:-5}"
rm -rf --one-file-system "$START_STORE"
unset LAUNCH_STORE

# --- pulls, unpacks, peak RSS -------------------------------------------------------------------
ver() { "$@" 2>&1 | head -1; }
BIN=$BIN IA=$IA REG=$REG PODMAN=$have_podman \
INFO_TREE="$(du -s --apparent-size --block-size=1 "$I/debian-rootfs" | cut -f1)" \
INFO_ENTRIES="$(tar -tf "$I/debian.tar" | wc -l)" \
INFO_TOOLS="$(ver skopeo --version); $(ver umoci --version); $(if [ $have_podman = 1 ]; then ver podman --version; else echo 'podman: not installed'; fi); $(ver tar --version); $(ver zstd --version); $(ver gzip --version); docker-registry $(dpkg-query -W -f '${Version}' docker-registry)" \
"$PY" - > "$I/ops-spec.json" <<'PY'
import json, os
BIN, IA, REG = os.environ["BIN"], os.environ["IA"], os.environ["REG"]
rows = []
def add(key, group, label, steps, names, setup=(), env=None, rss_file=None, extra_dirs=()):
    rows.append({"key": key, "group": group, "label": label, "steps": steps, "step_names": names,
                 "setup": list(setup), "env": env or {}, "rss_file": rss_file,
                 "extra_dirs": list(extra_dirs)})
store = {"LAUNCH_STORE": "{dir}/store"}
ref = REG + "/lbench/debian:1"
add("pull-launch", "pull", "launch pull + launch plan (unpacks)",
    [[BIN, "pull", ref], [BIN, "plan", IA + "/pull.toml"]], ["pull", "unpack"], env=store)
add("pull-skopeo", "pull", "skopeo copy + umoci unpack",
    [["skopeo", "copy", "-q", "--src-tls-verify=false", "docker://" + ref, "oci:{dir}/oci:1"],
     ["umoci", "unpack", "--image", "{dir}/oci:1", "{dir}/bundle"]], ["pull", "unpack"])
if os.environ["PODMAN"] == "1":
    add("pull-podman", "pull", "podman pull (overlay storage)",
        # podman refuses a runroot path longer than 50 characters: a short one, removed after
        # each round like the row's directory.
        [["podman", "--root", "{dir}/root", "--runroot", "/run/lbench-podman", "--storage-driver",
          "overlay", "--events-backend", "none", "pull", "-q", "--tls-verify=false", ref]],
        ["pull + unpack"], extra_dirs=["/run/lbench-podman"])
for ext, key, flags in (("tar", "tar", ["-xf"]), ("tar.gz", "gz", ["-xzf"]), ("tar.zst", "zst", ["--zstd", "-xf"])):
    layout = IA + "/layout-" + ext.replace(".", "-")
    add("unpack-launch-" + key, "unpack-" + key, "`launch import oci` (blob stored, layer not): ." + ext,
        [[BIN, "import", "oci", layout]], ["unpack"], env=store,
        setup=[[BIN, "import", "oci", layout], ["sh", "-c", "rm -rf {dir}/store/layers/sha256/*"]])
    add("unpack-tar-" + key, "unpack-" + key, "GNU `tar %s` (+ `sync -f`): .%s" % (" ".join(flags), ext),
        [["tar", *flags, IA + "/debian." + ext, "-C", "{dir}/root"], ["sync", "-f", "{dir}/root"]],
        ["tar", "sync"], setup=[["mkdir", "{dir}/root"]])
for key, name, label in (("rss-small", "debian", "the image (1 layer)"), ("rss-large", "large", "the large image (4 layers)")):
    add(key, "rss", "`launch pull` of " + label,
        [["/usr/bin/time", "-f", "%M", "-o", "{dir}/rss", BIN, "pull", REG + "/lbench/" + name + ":1"]],
        ["pull"], env=store, rss_file="{dir}/rss")
sizes = {}
for name in ("layout-tar", "layout-tar-gz", "layout-tar-zst", "layout-large"):
    idx = json.load(open(IA + "/" + name + "/index.json"))
    m = json.load(open(IA + "/" + name + "/blobs/sha256/" + idx["manifests"][0]["digest"][7:]))
    sizes[name] = [l["size"] for l in m["layers"]]
info = {"tree_bytes": int(os.environ["INFO_TREE"]), "entries": int(os.environ["INFO_ENTRIES"]),
        "layers": sizes, "tools": os.environ["INFO_TOOLS"], "registry": REG}
json.dump({"rows": rows, "scratch": IA + "/scratch", "info": info}, open("/dev/stdout", "w"), indent=1)
PY
echo "bench: images: pulls, unpacks and peak RSS, ${IMG_ROUNDS:-3} rounds" >&2
"$PY" bench/bench.py ops --spec "$I/ops-spec.json" --out "$I/ops.json" --log "$I/run.log" \
    --rounds "${IMG_ROUNDS:-3}"
