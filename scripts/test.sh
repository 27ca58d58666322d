#!/usr/bin/env bash
# Runs every check CI runs, on a fresh machine with a Rust toolchain.
# Usage: scripts/test.sh            (what CI runs; about 25 minutes on 2 cores from a cold cache)
# The S3 tests need no install: they start s3s-fs (a real S3 server, SigV4 checked) in-process on loopback.
# The Python package tests and the comparison smoke run need python3 (with venv) and PyPI; they
# install maturin, pytest, mypy, dask[distributed] (the shard-build example), boto3 and the Python s4db (0.8.0 and 0.10.0) into virtual
# environments under target/.
#        S4DB_LONG=1 scripts/test.sh  (the long variants: 5,000 property-test cases, 100 kill rounds,
#                                      500 crash rounds, 60 s of fuzzing per target)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "scripts/test.sh: cargo not found; install Rust with rustup (https://rustup.rs)" >&2
  exit 1
fi
for component in rustfmt clippy; do
  if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
    rustup component add "$component"
  fi
done

fuzz_seconds=5
if [ "${S4DB_LONG:-0}" = "1" ]; then
  export PROPTEST_CASES="${PROPTEST_CASES:-5000}"
  export S4DB_KILL_ROUNDS="${S4DB_KILL_ROUNDS:-100}"
  export S4DB_CRASH_ROUNDS="${S4DB_CRASH_ROUNDS:-500}"
  fuzz_seconds=60
fi

echo "== cargo fmt --check (the crate and the Python binding)"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
cargo clippy -p s4db-python --locked -- -D warnings
echo "== cargo test"
cargo test --locked
echo "== the library alone: cargo check --no-default-features (no clap, no indicatif; serde, serde_json and base64 only through rusty-s3 and reqwest)"
cargo check --no-default-features --locked --lib
crates=$(cargo tree --no-default-features --locked -e normal --prefix none | awk '{print $1}' | sort -u)
direct=$(cargo tree --no-default-features --locked -e normal --depth 1 --prefix none | awk 'NR > 1 {print $1}' | sort -u)
for c in clap indicatif; do
  if echo "$crates" | grep -qx "$c"; then echo "the library without the cli feature still pulls $c" >&2; exit 1; fi
done
for c in serde serde_json base64; do
  if echo "$direct" | grep -qx "$c"; then echo "the library without the cli feature depends on $c directly" >&2; exit 1; fi
done
echo "== cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked
echo "== benchmark smoke runs (small data, each benchmark once)"
S4DB_BENCH_N=20000 cargo bench --locked --bench engine -- --test
S4DB_BENCH_REMOTE_N=5000 cargo bench --locked --bench remote -- --test
S4DB_BENCH_COLD_SIZES=20000 cargo bench --locked --bench cold -- --test
S4DB_LIMITS_SMALL=1 cargo bench --locked --bench limits -- --test
echo "== the shard-build example, small (stage, ingest and merge of 2 and 8 shards on a file:// remote)"
cargo run --release --locked --quiet --example shard_build -- --records 20000 --shards 2,8
echo "== the Python package: pip install ./python into target/py (maturin from PyPI), then pytest and mypy --strict"
if [ ! -x target/py/bin/python ]; then
  python3 -m venv target/py || {
    echo "scripts/test.sh: could not create a virtual environment (on Debian: apt-get install python3-venv)" >&2
    exit 1
  }
fi
target/py/bin/python -m pip install --quiet --disable-pip-version-check "pytest>=8,<10" "mypy>=1.10,<2" "dask[distributed]>=2024.1" "boto3>=1.34,<2"
target/py/bin/python -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps ./python
# The loopback S3 server the S4DB and migration tests start, and the CLI the
# killed-migration test runs. The migration tests install the Python s4db
# 0.8.0 and 0.10.0 from PyPI into target/py-s4db-VERSION themselves.
cargo build --locked --quiet --example s3_test_server --bin s4db
# From the top of the repository, so that the installed package (not the
# python/s4db_rs source folder, which lacks the native module) is imported.
target/py/bin/pytest -q python/tests --ignore=python/tests/s4db_suite
target/py/bin/mypy --strict python/tests/typed_example.py python/examples/bulk_load_and_read.py
echo "== the Python s4db 0.10.0's own test suite against s4db_rs.compat.S4DB (its sdist from PyPI; python/README.md lists the expected differences)"
bash python/tests/s4db_suite/run.sh target/py/bin/python -q
echo "== comparison with the Python s4db, smoke run (20,000 records; installs it from PyPI into target/compare/venv)"
bash benches/compare/run.sh --records 20000 --no-limits
echo "== fuzz targets: build, and ${fuzz_seconds}s each (scripts/fuzz.sh for longer runs)"
bash scripts/fuzz.sh "$fuzz_seconds"
echo "== all checks passed"
