#!/usr/bin/env bash
# Runs the Python s4db 0.10.0's own test suite (its sdist's tests/, from PyPI)
# against s4db_rs.compat.S4DB and the loopback S3 server
# (examples/s3_test_server.rs). Expects the s4db_rs package installed in
# PYTHON's environment (scripts/test.sh does both).
# Usage: python/tests/s4db_suite/run.sh PYTHON [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/../../.."
python=$(command -v "${1:?usage: run.sh PYTHON [pytest args...]}") || { echo "run.sh: no python at $1" >&2; exit 1; }
python=$(cd "$(dirname "$python")" && pwd)/$(basename "$python")
shift
work=target/s4db-suite
mkdir -p "$work"
"$python" -m pip install --quiet --disable-pip-version-check "s4db==0.10.0" "boto3>=1.34,<2"
if [ ! -f "$work/s4db-0.10.0/tests/test_s4db.py" ]; then
  "$python" -m pip download --quiet --disable-pip-version-check --no-binary :all: --no-deps \
    "s4db==0.10.0" -d "$work"
  tar -xzf "$work/s4db-0.10.0.tar.gz" -C "$work" s4db-0.10.0/tests
fi
cargo build --locked --quiet --example s3_test_server
target/debug/examples/s3_test_server > "$work/server.txt" &
server=$!
trap 'kill -INT $server 2>/dev/null || true; wait $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  [ -s "$work/server.txt" ] && break
  sleep 0.1
done
read -r endpoint bucket access secret _public < "$work/server.txt"
# Run from the suite's folder so that the installed s4db (not a source tree) is imported.
cd "$work/s4db-0.10.0"
S4DB_SUITE_ENDPOINT=$endpoint S4DB_SUITE_SERVER_BUCKET=$bucket \
S4DB_SUITE_ACCESS_KEY=$access S4DB_SUITE_SECRET_KEY=$secret \
PYTHONPATH="$OLDPWD/python/tests/s4db_suite" \
  "$python" -m pytest -p s4db_suite_plugin -p no:cacheprovider -rxXs "$@" tests
