#!/usr/bin/env bash
# Fuzzes every decoder with cargo-fuzz (libFuzzer + AddressSanitizer).
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 30; 0 = only build)
# The machine's stable toolchain is enough: RUSTC_BOOTSTRAP lets it take the
# sanitizer flags cargo-fuzz passes. A -malloc_limit_mb keeps any decoder from
# allocating more than its input justifies.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
echo "== building the fuzz targets"
cargo fuzz build -O
[ "$seconds" = "0" ] && exit 0
for target in record scan index root page python_s4db; do
  echo "== fuzzing $target for ${seconds}s"
  # Inputs found go to a scratch directory; the committed corpus is seed-* only.
  scratch=$(mktemp -d)
  cargo fuzz run -O "$target" "$scratch" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -malloc_limit_mb=64 -rss_limit_mb=1024 -max_len=65536
  rm -rf "$scratch"
done
echo "== fuzzing found nothing"
