# Recipes for developers. CI runs .ci/run, which runs the same checks as `just ci`.

# List recipes.
default:
    @just --list

# Format the code.
fmt:
    cargo fmt

# Lint as CI does.
lint:
    cargo fmt --check
    cargo clippy --all-targets -- -D warnings

# Run every test (as root: the tests use real namespaces, cgroups and mounts).
test:
    cargo test

# The whole integration suite on pure cgroup v2, in a QEMU guest (~5 min; see scripts/vm/README.md).
vm-test:
    scripts/vm/test-v2.sh

# Re-record insta snapshots, then review the diff before committing.
snap:
    INSTA_UPDATE=always cargo test --test it
    git diff --stat -- tests/it/snapshots
    @echo "review: git diff -- tests/it/snapshots"

# Regenerate the committed JSON Schema.
schema:
    UPDATE_SCHEMA=1 cargo test --quiet --test it schema::committed_schema_is_current

# Generate the man page into target/man/launch.1 (view: man -l target/man/launch.1).
man:
    mkdir -p target/man
    cargo run --quiet -- man > target/man/launch.1
    @echo "wrote target/man/launch.1"

# The release binary: static (musl) and profile-guided; prints its path (docs/performance.md).
release:
    scripts/release.sh

# Benchmarks (not part of CI's pass/fail): results in bench/RESULTS.md.
bench:
    bench/run.sh

# Exactly what CI runs.
ci:
    bash .ci/run
