#!/usr/bin/env bash
# Run the project's limit tests (tests/it/limits.rs, the same ones `cargo test` runs on this
# host) and the hello example inside a pure cgroup v2 guest. Fails loudly unless the guest ran
# them and every one passed.
#   scripts/vm/test-v2.sh            (as root; `just vm-test`)
set -euo pipefail
cd "$(dirname "$0")/../.."

# Build the launcher and the test binary on the host; the guest sees them through the shared,
# read-only host root at the same absolute paths.
cargo build --quiet
bin=$(cargo test --no-run --message-format=json --test it 2>/dev/null \
    | grep '"name":"it"' | grep '"kind":\["test"\]' \
    | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)
[ -x "$bin" ] || { echo "test-v2: cannot find the test binary" >&2; exit 1; }

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
LAUNCH_TEST_BIN=$bin LAUNCH_BIN=$PWD/target/debug/launch VM_PASS_ENV="LAUNCH_TEST_BIN LAUNCH_BIN" \
    scripts/vm/cgroup2-run.sh scripts/vm/guest-tests.sh | tee "$log" || status=$?

if [ "$status" -ne 0 ]; then
    echo "test-v2: FAILED: the guest run ended with status $status" >&2
    exit "$status"
fi
# The guest's test runner must have run the tests, not zero of them.
if ! grep -Eq 'test result: ok\. [1-9][0-9]* passed; 0 failed' "$log"; then
    echo "test-v2: FAILED: no passing test run seen in the guest's output" >&2
    exit 1
fi
echo "test-v2: pure cgroup v2 tests passed in the guest"
