#!/usr/bin/env bash
# Builds two shared libsodium libraries from the source PyNaCl ships, for
# measuring P0 on a CPU with AVX-512 as if it had AVX2 only (BENCHMARKS.md,
# item 16):
#
#   OUT/libsodium-as-shipped.so  libsodium as PyNaCl builds it (the control:
#                                it must time like PyNaCl's own wheel)
#   OUT/libsodium-avx2.so        the same, with its AVX-512F check answering
#                                "no", so argon2 runs libsodium's AVX2 code
#
# Usage: scripts/libsodium-avx2.sh [OUT]       (default OUT: target/libsodium)
# Then:  BENCH_LIBSODIUM=OUT/libsodium-avx2.so BENCH_BIN=<avx2-only build> \
#          python3 scripts/bench.py --only p0
#
# Needs pip (PyPI), a C compiler and make. Only for measuring; nothing
# here is part of recupera.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(mkdir -p "${1:-$ROOT/target/libsodium}" && cd "${1:-$ROOT/target/libsodium}" && pwd)
PYNACL_VERSION=${PYNACL_VERSION:-$(python3 -c 'import nacl; print(nacl.__version__)' 2>/dev/null || echo 1.6.2)}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# The source distribution of PyNaCl only (`--no-binary pynacl`: its build
# dependencies may still come as wheels). Its name is PyNaCl-… up to 1.5.
python3 -m pip download --quiet --no-deps --no-binary pynacl -d "$WORK" "pynacl==$PYNACL_VERSION"
ARCHIVE=$(find "$WORK" -maxdepth 1 -iname 'pynacl-*.tar.gz' | head -n 1)
[[ -n $ARCHIVE ]] || { echo "libsodium-avx2.sh: no PyNaCl $PYNACL_VERSION source archive from pip" >&2; exit 1; }
tar -xzf "$ARCHIVE" -C "$WORK"
SRC=$(find "$WORK" -mindepth 3 -maxdepth 3 -type d -path '*/src/libsodium' | head -n 1)
[[ -n $SRC && -x $SRC/configure ]] || { echo "libsodium-avx2.sh: no libsodium source in $ARCHIVE" >&2; exit 1; }

build() { # build NAME: configure and make a copy of SRC, keep its .so as OUT/NAME
    local dir="$WORK/$1"
    cp -r "$SRC" "$dir"
    if [[ $1 == libsodium-avx2.so ]]; then
        local runtime="$dir/src/libsodium/sodium/runtime.c"
        grep -q 'return _cpu_features.has_avx512f;' "$runtime" || {
            echo "libsodium-avx2.sh: $runtime has no AVX-512F check to turn off" >&2
            exit 1
        }
        sed -i 's/return _cpu_features.has_avx512f;/return 0; \/* measuring AVX2 only *\//' "$runtime"
    fi
    # PyNaCl's own configure flags (setup.py), shared instead of static.
    # The build's output goes to OUT/NAME.log (kept when the build fails).
    if ! (cd "$dir" && ./configure --enable-shared --disable-static --disable-debug \
        --disable-dependency-tracking --with-pic && make -j"$(nproc)") >"$OUT/$1.log" 2>&1; then
        echo "libsodium-avx2.sh: building $1 failed; see $OUT/$1.log" >&2
        exit 1
    fi
    cp "$dir/src/libsodium/.libs/libsodium.so" "$OUT/$1"
    echo "built $OUT/$1"
}

build libsodium-as-shipped.so
build libsodium-avx2.so
