#!/usr/bin/env bash
# Side by side: this crate, from Rust and from Python (its s4db-rs package,
# python/), against the Python s4db (PyPI `s4db`): the same workload, the
# same S3 server, one run, one machine. Then the limits bench.
#
#   benches/compare/run.sh [--records N] [--no-limits]
#
# N defaults to 1,000,000 (about 4 minutes, most of it the Python side).
# Steps: build the Rust workload and the test S3 server (s3s-fs on loopback,
# examples/s3_test_server.rs); install the Python s4db and this repository's
# Python package (pip install ./python, a release build) into a virtual
# environment under target/compare/; start the server; run the Python s4db
# workload, then the s4db_rs one, then the Rust one, against it; print the
# results and the table of ratios; then `cargo bench --bench limits` against
# the same server (skip with --no-limits). Results stay in target/compare/.
set -euo pipefail
cd "$(dirname "$0")/../.."

PYTHON_S4DB_VERSION=0.10.0
records=1000000
limits=1
while [ $# -gt 0 ]; do
  case "$1" in
    --records)
      [ $# -ge 2 ] || { echo "run.sh: --records needs a number" >&2; exit 2; }
      records="$2"; shift 2 ;;
    --no-limits) limits=0; shift ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$records" in
  ''|*[!0-9]*) echo "run.sh: --records takes a whole number" >&2; exit 2 ;;
esac
for tool in cargo python3; do
  command -v "$tool" >/dev/null 2>&1 || { echo "run.sh: $tool not found" >&2; exit 1; }
done

out=target/compare
mkdir -p "$out"

echo "== build (release): examples workload and s3_test_server" >&2
cargo build --release --locked --example workload --example s3_test_server >&2

echo "== Python s4db $PYTHON_S4DB_VERSION in $out/venv" >&2
if [ ! -x "$out/venv/bin/python" ]; then
  python3 -m venv "$out/venv" || {
    echo "run.sh: could not create a virtual environment (on Debian: apt-get install python3-venv)" >&2
    exit 1
  }
fi
"$out/venv/bin/python" -m pip install --quiet --disable-pip-version-check "s4db==$PYTHON_S4DB_VERSION" >&2
echo "== s4db_rs (this repository's Python package, release build) in $out/venv" >&2
"$out/venv/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps ./python >&2
py="$out/venv/bin/python"

echo "== S3 server" >&2
server_pid=""
stop_server() {
  if [ -n "$server_pid" ]; then
    kill -INT "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
}
trap stop_server EXIT
rm -f "$out/server.txt"
target/release/examples/s3_test_server > "$out/server.txt" &
server_pid=$!
for _ in $(seq 1 100); do
  [ -s "$out/server.txt" ] && break
  kill -0 "$server_pid" 2>/dev/null || { echo "run.sh: the S3 server did not start" >&2; exit 1; }
  sleep 0.1
done
read -r endpoint bucket access_key secret_key _public < "$out/server.txt" || {
  echo "run.sh: the S3 server printed no endpoint" >&2; exit 1; }
export AWS_ENDPOINT_URL="$endpoint" AWS_ACCESS_KEY_ID="$access_key" \
  AWS_SECRET_ACCESS_KEY="$secret_key" AWS_REGION=us-east-1
unset AWS_SESSION_TOKEN AWS_PROFILE
echo "server: $endpoint, bucket $bucket" >&2

run_id="$(date +%s)-$$"
echo "== Python workload, $records records" >&2
"$py" benches/compare/workload.py --records "$records" \
  --bucket "$bucket" --prefix "python-$run_id/" > "$out/python.json"
echo "== s4db_rs workload (Python), $records records" >&2
"$py" benches/compare/workload_rs.py --records "$records" \
  --bucket "$bucket" --prefix "pyrs-$run_id/" > "$out/python_rs.json"
echo "== Rust workload, $records records" >&2
target/release/examples/workload --records "$records" \
  "s3://$bucket/rust-$run_id/" > "$out/rust.json"

echo
echo "Python s4db: $(cat "$out/python.json")"
echo "s4db_rs:    $(cat "$out/python_rs.json")"
echo "Rust:       $(cat "$out/rust.json")"
echo
echo "Machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ //'),"\
"$(awk '/MemTotal/ {printf " %.0f GiB RAM", $2/1048576}' /proc/meminfo 2>/dev/null),"\
" $(uname -sr), $(rustc --version | cut -d' ' -f1-2), $("$py" --version)"
echo
"$py" benches/compare/table.py "$out/rust.json" "$out/python_rs.json" "$out/python.json" | tee "$out/table.md"

if [ "$limits" = 1 ]; then
  echo
  echo "== limits of this machine (cargo bench --bench limits), same server" >&2
  S4DB_LIMITS_BUCKET="$bucket" cargo bench --locked --bench limits
fi
