#!/usr/bin/env bash
# The C kernels (seglosses/kernels/native/kernels.c) under AddressSanitizer (and UndefinedBehaviorSanitizer): builds the library with
# -fsanitize=address,undefined -fno-omit-frame-pointer -g, loads it in place of the normal build
# (SEGLOSSES_NATIVE_LIB, see seglosses/kernels/native/__init__.py), preloads gcc's libasan into Python and runs
# benchmarks/asan_native.py over the fuzz cases (edge cases, region sums/gradient and Lovasz, many shapes and dtypes).
#
#   benchmarks/asan_native.sh [--self-test] [asan_native.py options, e.g. --examples 500]
#
# Exits 0 with "no ASan errors" when the run is clean; 1 on any sanitizer report (printed, with the case that caused
# it) or a value mismatch; 2 when it cannot build or load. --self-test first builds a copy with an out-of-bounds read
# planted and checks that it is reported (that this harness sees errors at all).
# Environment: CC (default gcc: its libasan), PYTHON (default .venv/bin/python, else python3), SANITIZE (default
# address,undefined; "address" alone drops UBSan).
set -u
cd "$(dirname "$0")/.."
CC=${CC:-gcc}
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
SANITIZE=${SANITIZE:-address,undefined}
SELF_TEST=0
if [ "${1:-}" = "--self-test" ]; then SELF_TEST=1; shift; fi

ASAN_RT=$("$CC" -print-file-name=libasan.so)
if [ ! -e "$ASAN_RT" ]; then
    echo "asan_native: $CC has no libasan.so ($ASAN_RT)" >&2
    exit 2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

build() {  # build SOURCE OUTPUT
    "$CC" -O1 -g -fsanitize="$SANITIZE" -fno-sanitize-recover=all -fno-omit-frame-pointer -fopenmp \
        -shared -fPIC "$1" -o "$2" -lm
}

run() {  # run LIBRARY TAG [asan_native.py options]: 0 clean, 1 reports or mismatches
    local lib=$1 tag=$2
    shift 2
    rm -f "$work/$tag".*
    LD_PRELOAD="$ASAN_RT" \
        ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:log_path=$work/$tag.asan" \
        UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$work/$tag.asan" \
        SEGLOSSES_NATIVE_LIB="$lib" SEGLOSSES_CACHE_DIR="$work/cache" \
        "$PY" benchmarks/asan_native.py --progress "$work/$tag.progress" "$@"
    local rc=$?
    if compgen -G "$work/$tag.asan.*" > /dev/null; then
        echo "asan_native: sanitizer report(s) ($tag):"
        cat "$work/$tag".asan.*
        echo "asan_native: the case that ran last: $(tail -n 1 "$work/$tag.progress" 2>/dev/null)"
        return 1
    fi
    if [ $rc -ne 0 ]; then
        echo "asan_native: exit code $rc ($tag) without a sanitizer report; last case: $(tail -n 1 "$work/$tag.progress" 2>/dev/null)"
        return 1
    fi
    return 0
}

if [ $SELF_TEST = 1 ]; then
    # the row maximum of the softmax reads one pixel past each block: past the logits at the last block
    sed 's/for (int64_t s = 0; s < L; s++) mx\[s\] = xc\[s\]/for (int64_t s = 0; s <= L; s++) mx[s] = xc[s]/' \
        seglosses/kernels/native/kernels.c > "$work/broken.c"
    if cmp -s seglosses/kernels/native/kernels.c "$work/broken.c"; then
        echo "asan_native: --self-test could not plant its bug (the source changed)" >&2
        exit 2
    fi
    build "$work/broken.c" "$work/broken.so" || exit 2
    if run "$work/broken.so" selftest --examples 5 > "$work/out-selftest.log" 2>&1; then
        echo "asan_native: --self-test FAILED: a planted out-of-bounds read went unreported" >&2
        exit 1
    fi
    if ! grep -q "ERROR: AddressSanitizer: heap-buffer-overflow" "$work/out-selftest.log"; then
        echo "asan_native: --self-test FAILED: no heap-buffer-overflow report for the planted bug:" >&2
        tail -n 20 "$work/out-selftest.log" >&2
        exit 1
    fi
    echo "asan_native: self-test ok (a planted out-of-bounds read is reported: $(grep -m1 -o 'READ of size [0-9]* at [^ ]* thread T[0-9]*' "$work/out-selftest.log"))"
fi

build seglosses/kernels/native/kernels.c "$work/native-asan.so" || exit 2
echo "asan_native: $("$CC" --version | head -n 1), -fsanitize=$SANITIZE, runtime $ASAN_RT"
if run "$work/native-asan.so" main "$@"; then
    echo "asan_native: no ASan errors"
    exit 0
fi
exit 1
