#!/bin/sh
# run.sh MODE BUILD_DIR SOURCE_DIR WORK_DIR CC CMAKE VERSION
# Uses mpool as a user would, and checks that every place the version
# appears says VERSION (the build's, from project()):
#   cmake       installs BUILD_DIR into WORK_DIR/prefix; find_package(mpool
#               VERSION EXACT), shared and static targets; the shared library
#               exports only mp_ symbols and its soname has MP_ABI_VERSION;
#               where the build has the malloc drop-in, libmpool-malloc.so
#               exports only malloc's names, has the soname
#               libmpool-malloc.so.1 and preloads, and mpool::malloc links
#   pkgconfig   installs likewise; cc $(pkg-config --cflags --libs mpool) links
#               the shared library, and $(pkg-config --static --libs
#               mpool-static) the static one (no libmpool.so needed)
#   subproject  a parent project (tests/install/parent) builds SOURCE_DIR
#               with add_subdirectory, then with FetchContent: mpool adds no
#               tests, benchmarks or examples and keeps the parent's build type
# The installed header's MP_VERSION_*, the library's file name, mp_version(),
# mpoolConfigVersion.cmake, both .pc files and the man pages must all say
# VERSION.
# Exit 77 (CTest: skipped) when pkg-config is not installed.
set -eu
mode=$1 build=$2 src=$3 work=$4 cc=$5 cmake=$6 version=$7

fail() { echo "install test ($mode): $*" >&2; exit 1; }
ctest=$(dirname "$cmake")/ctest
[ -x "$ctest" ] || ctest=ctest

rm -rf "$work"
mkdir -p "$work"

run_consumer() {
    out=$("$@") || fail "$1 exited with $?"
    [ "$out" = "ok $version" ] || fail "$1 printed '$out', want 'ok $version'"
    echo "$1: $out"
}

# needs PROGRAM yes|no: does PROGRAM load libmpool.so?
needs() {
    command -v readelf >/dev/null || return 0
    if readelf -d "$1" | grep -q 'NEEDED.*\[libmpool\.so'; then got=yes; else got=no; fi
    [ "$got" = "$2" ] || fail "$1: needs libmpool.so: $got, want $2"
}

install_tree() {
    "$cmake" --install "$build" --prefix "$work/prefix" >"$work/install.log" ||
        fail "cmake --install failed (see $work/install.log)"
    so=$(find "$work/prefix" -name 'libmpool.so.*.*.*' | head -n 1)
    [ -n "$so" ] || fail "no versioned libmpool.so installed"
    libdir=$(dirname "$so")
    [ -f "$libdir/libmpool.a" ] || fail "no libmpool.a in $libdir"
    header=$work/prefix/include/mpool.h
    [ -f "$header" ] || fail "no include/mpool.h"
    # The version, everywhere it is written down.
    hv=$(awk '$1 == "#define" && $2 ~ /^MP_VERSION_(MAJOR|MINOR|PATCH)$/ { v[$2] = $3 }
              END { print v["MP_VERSION_MAJOR"] "." v["MP_VERSION_MINOR"] "." v["MP_VERSION_PATCH"] }' "$header")
    [ "$hv" = "$version" ] || fail "installed mpool.h says $hv, the build $version"
    [ "$(basename "$so")" = "libmpool.so.$version" ] || fail "installed $(basename "$so"), want libmpool.so.$version"
    cv=$(sed -n 's/^set(PACKAGE_VERSION "\(.*\)")$/\1/p' "$libdir/cmake/mpool/mpoolConfigVersion.cmake")
    [ "$cv" = "$version" ] || fail "mpoolConfigVersion.cmake says '$cv', the build $version"
    for pc in mpool mpool-static; do
        [ -f "$libdir/pkgconfig/$pc.pc" ] || fail "no $pc.pc"
        pv=$(sed -n 's/^Version: *//p' "$libdir/pkgconfig/$pc.pc")
        [ "$pv" = "$version" ] || fail "$pc.pc says '$pv', the build $version"
    done
    # The man pages, when the build made them: every page, its version, and
    # a page per function pointing at the reference.
    if [ -d "$build/man" ]; then
        man=$(find "$work/prefix" -type d -name man | head -n 1)
        [ -n "$man" ] || fail "no man pages installed"
        for page in man3/mpool.3 man3/mpool_objpools.3 man3/mpool_arenas.3 man3/mpool_heaps.3 \
                    man3/mpool_reserves.3 man7/mpool_tuning.7 man7/mpool_debugging.7; do
            [ -f "$man/$page" ] || fail "no $page in $man"
            grep -q "^\.TH .*\"mpool $version\"" "$man/$page" || fail "$page does not say mpool $version"
        done
        [ "$(cat "$man/man3/mp_heap_alloc.3")" = ".so man3/mpool.3" ] || fail "man3/mp_heap_alloc.3 is not a link to mpool(3)"
    fi
    echo "version $version: header, library file, mpoolConfigVersion.cmake, mpool.pc, mpool-static.pc"
}

case $mode in
cmake)
    install_tree
    [ -f "$libdir/cmake/mpool/mpoolConfig.cmake" ] || fail "no mpoolConfig.cmake"
    if command -v nm >/dev/null; then
        bad=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRVWi]$/ { print $3 }' | grep -v '^mp_' || true)
        [ -z "$bad" ] || fail "symbols without the mp_ prefix exported: $bad"
        nm -D --defined-only "$so" | grep -q ' T mp_objpool_get$' || fail "mp_objpool_get not exported"
    fi
    if command -v readelf >/dev/null; then
        abi=$(awk '$1 == "#define" && $2 == "MP_ABI_VERSION" { print $3 }' "$header")
        readelf -d "$so" | grep -q "SONAME.*\[libmpool\.so\.$abi\]" || fail "soname is not libmpool.so.$abi"
    fi
    "$cmake" -S "$src/tests/install/consumer" -B "$work/consumer" -DCMAKE_C_COMPILER="$cc" \
        -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_RPATH="$libdir" \
        -DMPOOL_EXPECTED_VERSION="$version" >"$work/configure.log" 2>&1 ||
        fail "configuring the consumer failed (see $work/configure.log)"
    "$cmake" --build "$work/consumer" >"$work/build.log" 2>&1 || fail "building the consumer failed (see $work/build.log)"
    run_consumer "$work/consumer/consumer_shared"
    needs "$work/consumer/consumer_shared" yes
    run_consumer "$work/consumer/consumer_static"
    needs "$work/consumer/consumer_static" no
    if [ -f "$build/libmpool-malloc.a" ]; then
        [ -f "$libdir/libmpool-malloc.a" ] || fail "no libmpool-malloc.a installed"
        [ -x "$work/consumer/consumer_malloc" ] || fail "the package has no mpool::malloc"
        run_consumer "$work/consumer/consumer_malloc"
        needs "$work/consumer/consumer_malloc" no
    fi
    if [ -f "$build/libmpool-malloc.so" ]; then
        drop=$libdir/libmpool-malloc.so.$version
        [ -f "$drop" ] && [ -L "$libdir/libmpool-malloc.so.1" ] || fail "no libmpool-malloc.so.$version and .so.1 installed"
        if command -v nm >/dev/null; then
            names=$(nm -D --defined-only "$drop" | awk '$2 ~ /^[TDBRVWi]$/ { print $3 }' | sort | tr '\n' ' ')
            want="__libc_calloc __libc_free __libc_malloc __libc_memalign __libc_pvalloc __libc_realloc __libc_valloc aligned_alloc calloc cfree free malloc malloc_trim malloc_usable_size memalign posix_memalign pvalloc realloc reallocarray valloc "
            [ "$names" = "$want" ] || fail "libmpool-malloc.so exports '$names', want '$want'"
        fi
        if command -v readelf >/dev/null; then
            readelf -d "$drop" | grep -q 'SONAME.*\[libmpool-malloc\.so\.1\]' || fail "libmpool-malloc's soname is not libmpool-malloc.so.1"
        fi
        out=$(env LD_PRELOAD="$libdir/libmpool-malloc.so.1" MPOOL_SHOW_STATS=1 "$work/consumer/consumer_shared" 2>&1) ||
            fail "consumer_shared under LD_PRELOAD=libmpool-malloc.so.1 failed: $out"
        case $out in *"heap default"*) ;; *) fail "no stats from the preloaded drop-in: $out" ;; esac
        echo "libmpool-malloc.so.$version: soname libmpool-malloc.so.1, exports malloc's names only, preloads"
    fi
    ;;
pkgconfig)
    command -v pkg-config >/dev/null || { echo "SKIP: pkg-config is not installed"; exit 77; }
    install_tree
    PKG_CONFIG_PATH="$libdir/pkgconfig"
    export PKG_CONFIG_PATH
    for pc in mpool mpool-static; do
        pkg-config --exists $pc || fail "pkg-config does not find $pc.pc"
        [ "$(pkg-config --modversion $pc)" = "$version" ] || fail "pkg-config --modversion $pc is not $version"
    done
    # shellcheck disable=SC2046
    "$cc" -o "$work/consumer_shared" "$src/tests/install/consumer.c" $(pkg-config --cflags --libs mpool) \
        -Wl,-rpath,"$libdir" || fail "shared build with pkg-config failed"
    run_consumer "$work/consumer_shared"
    needs "$work/consumer_shared" yes
    # shellcheck disable=SC2046
    "$cc" -o "$work/consumer_static" "$src/tests/install/consumer.c" \
        $(pkg-config --static --cflags --libs mpool-static) || fail "static build with pkg-config failed"
    run_consumer "$work/consumer_static"
    needs "$work/consumer_static" no
    ;;
subproject)
    # build_parent DIR BUILD_TYPE ARGS...: configure, build and check.
    build_parent() {
        dir=$work/$1 bt=$2
        shift 2
        "$cmake" -S "$src/tests/install/parent" -B "$dir" -DCMAKE_C_COMPILER="$cc" -DMPOOL_SOURCE_DIR="$src" \
            ${bt:+-DCMAKE_BUILD_TYPE=$bt} "$@" >"$dir.configure.log" 2>&1 ||
            fail "configuring the parent ($*) failed (see $dir.configure.log)"
        cached=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$dir/CMakeCache.txt")
        [ "$cached" = "$bt" ] || fail "the parent's cached build type is '$cached', want '$bt'"
        grep -q "mpool $version: subproject of mpool_parent" "$dir.configure.log" ||
            fail "no 'mpool $version: subproject' line when configuring (see $dir.configure.log)"
        "$cmake" --build "$dir" >"$dir.build.log" 2>&1 || fail "building the parent failed (see $dir.build.log)"
        n=$(cd "$dir" && "$ctest" -N | sed -n 's/^Total Tests: //p')
        [ "$n" = 1 ] || fail "the parent has $n tests, want its own 1"
        run_consumer "$dir/app"
    }
    build_parent parent-subdir ""
    needs "$work/parent-subdir/app" yes
    build_parent parent-fetch Debug -DPARENT_FETCHCONTENT=ON -DMPOOL_BUILD_SHARED=OFF
    needs "$work/parent-fetch/app" no
    [ ! -e "$work/parent-fetch/_deps/mpool-build/libmpool.so" ] || fail "MPOOL_BUILD_SHARED=OFF built libmpool.so"
    ;;
*) fail "unknown mode" ;;
esac
