#!/bin/sh
# run.sh MODE BUILD_DIR SOURCE_DIR WORK_DIR CC CMAKE
# Installs the build into WORK_DIR/prefix and builds a consumer program
# against it, as a user would:
#   cmake      find_package(mpool), shared and static targets; also checks
#              that the shared library exports only mp_ symbols and has a
#              soname with the major version
#   pkgconfig  cc $(pkg-config --cflags --libs mpool), shared and static
# Exit 77 (CTest: skipped) when pkg-config is not installed.
set -eu
mode=$1 build=$2 src=$3 work=$4 cc=$5 cmake=$6

fail() { echo "install test ($mode): $*" >&2; exit 1; }

rm -rf "$work"
mkdir -p "$work"
"$cmake" --install "$build" --prefix "$work/prefix" >"$work/install.log" || fail "cmake --install failed (see $work/install.log)"
so=$(find "$work/prefix" -name 'libmpool.so.*.*.*' | head -n 1)
[ -n "$so" ] || fail "no versioned libmpool.so installed"
libdir=$(dirname "$so")
[ -f "$libdir/libmpool.a" ] || fail "no libmpool.a in $libdir"
[ -f "$work/prefix/include/mpool.h" ] || fail "no include/mpool.h"

run_consumer() {
    out=$("$@") || fail "$1 exited with $?"
    [ "$out" = "ok 0.1.0" ] || fail "$1 printed '$out'"
    echo "$1: $out"
}

case $mode in
cmake)
    [ -f "$libdir/cmake/mpool/mpoolConfig.cmake" ] || fail "no mpoolConfig.cmake"
    if command -v nm >/dev/null; then
        bad=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRVWi]$/ { print $3 }' | grep -v '^mp_' || true)
        [ -z "$bad" ] || fail "symbols without the mp_ prefix exported: $bad"
        nm -D --defined-only "$so" | grep -q ' T mp_objpool_get$' || fail "mp_objpool_get not exported"
    fi
    if command -v readelf >/dev/null; then
        readelf -d "$so" | grep -q 'SONAME.*\[libmpool\.so\.0\]' || fail "soname is not libmpool.so.0"
    fi
    "$cmake" -S "$src/tests/install/consumer" -B "$work/consumer" -DCMAKE_C_COMPILER="$cc" \
        -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_RPATH="$libdir" >"$work/configure.log" \
        || fail "configuring the consumer failed (see $work/configure.log)"
    "$cmake" --build "$work/consumer" >"$work/build.log" || fail "building the consumer failed (see $work/build.log)"
    run_consumer "$work/consumer/consumer_shared"
    run_consumer "$work/consumer/consumer_static"
    ;;
pkgconfig)
    command -v pkg-config >/dev/null || { echo "SKIP: pkg-config is not installed"; exit 77; }
    PKG_CONFIG_PATH="$libdir/pkgconfig"
    export PKG_CONFIG_PATH
    pkg-config --exists mpool || fail "pkg-config does not find mpool.pc"
    [ "$(pkg-config --modversion mpool)" = "0.1.0" ] || fail "pkg-config --modversion is not 0.1.0"
    # shellcheck disable=SC2046
    "$cc" -o "$work/consumer_shared" "$src/tests/install/consumer.c" $(pkg-config --cflags --libs mpool) \
        -Wl,-rpath,"$libdir" || fail "shared build with pkg-config failed"
    run_consumer "$work/consumer_shared"
    # shellcheck disable=SC2046
    "$cc" -o "$work/consumer_static" "$src/tests/install/consumer.c" $(pkg-config --cflags mpool) \
        -Wl,-Bstatic $(pkg-config --libs-only-l mpool) -Wl,-Bdynamic $(pkg-config --libs-only-L mpool) \
        $(pkg-config --static --libs-only-other mpool) || fail "static build with pkg-config failed"
    run_consumer "$work/consumer_static"
    ;;
*) fail "unknown mode" ;;
esac
