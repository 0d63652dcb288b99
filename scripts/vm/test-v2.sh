#!/usr/bin/env bash
# Run the whole integration-test binary (tests/it: every module, the same tests `cargo test`
# runs on this hybrid host) and the hello example inside a pure cgroup v2 guest. Fails loudly
# unless the guest ran every one of the binary's tests and all of them passed, and no cgroup
# was left behind.
#   scripts/vm/test-v2.sh            (as root; `just vm-test`)
#   LAUNCH_TEST_FILTER=rootless:: scripts/vm/test-v2.sh   (only the tests whose names contain
#                                    it, to iterate; every one of those must run and pass)
# Takes about 5 minutes on a 2-core machine (TCG; see README.md).
set -euo pipefail
cd "$(dirname "$0")/../.."

fail() {
    echo "######################################################################" >&2
    echo "## test-v2: FAILED: $*" >&2
    echo "######################################################################" >&2
    exit 1
}

# Build the launcher and the test binary on the host; the guest sees them through the shared,
# read-only host root at the same absolute paths.
cargo build --quiet
bin=$(cargo test --no-run --message-format=json --test it 2>/dev/null \
    | grep '"name":"it"' | grep '"kind":\["test"\]' \
    | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
[ -x "$bin" ] || fail "cannot find the test binary"
# Every test must run: the guest's runner must report exactly this many passed.
filter=${LAUNCH_TEST_FILTER:-}
expected=$("$bin" --list --format terse $filter | grep -c ': test$' || true)
[ "$expected" -gt 0 ] || fail "the test binary lists no tests"
echo "test-v2: $expected tests to run in the guest"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
# The guest needs: RAM for the tests running two at a time (one fills 256 MiB against a 64 MiB
# limit; twenty containers at once), a scratch disk for an ext4 TMPDIR (ext4 and its crc32c),
# and time: the suite takes minutes under TCG.
LAUNCH_TEST_BIN=$bin LAUNCH_BIN=$PWD/target/debug/launch \
    VM_PASS_ENV="LAUNCH_TEST_BIN LAUNCH_BIN LAUNCH_TEST_THREADS LAUNCH_TEST_FILTER ${VM_PASS_ENV:-}" \
    VM_MEM=${VM_MEM:-2048} VM_DISK_MB=${VM_DISK_MB:-2048} VM_TIMEOUT=${VM_TIMEOUT:-1500} \
    VM_EXTRA_MODULES="ext4 crc32c_generic veth bridge nf_tables nft_chain_nat nft_masq nft_nat \
        nft_ct nft_fib_inet nft_fib_ipv4 macvlan tun ${VM_EXTRA_MODULES:-}" \
    scripts/vm/cgroup2-run.sh scripts/vm/guest-tests.sh | tee "$log" || status=$?

if [ "$status" -ne 0 ]; then
    grep -E '^test .* FAILED$|^test result:|^guest: ' "$log" >&2 || true
    fail "the guest run ended with status $status"
fi
# The guest's test runner must have run every test, not fewer (a test silently not running).
result=$(grep -aE '^test result: ' "$log" || true)
[ "$(printf '%s\n' "$result" | grep -c .)" -eq 1 ] || fail "want one test result line from the guest, got: '$result'"
filtered='0 filtered out'
[ -z "$filter" ] || filtered='[0-9]+ filtered out'
if ! grep -Eq "^test result: ok\. $expected passed; 0 failed; 0 ignored; 0 measured; $filtered" <<<"$result"; then
    fail "the guest did not report '$expected passed; 0 failed': '$result'"
fi
grep -aq '^guest: leftover cgroups: 0$' "$log" || fail "the guest did not report that no cgroup was left"
echo "test-v2: all $expected integration tests and the hello example passed on pure cgroup v2 in the guest"
