#!/bin/sh
# build.sh SOURCE_DIR CMAKE CTEST CC - this project's own build: a fresh
# configure of SOURCE_DIR in the working directory, `cmake --build`, and
# the API tests it built, with cmake, make, the compiler, the linker and the
# tests all running under the same preload (run.sh). Prints what succeeded
# and how many tests ran; the logs are shown on failure.
set -eu
[ $# -eq 4 ] || { echo "usage: build.sh SOURCE_DIR CMAKE CTEST CC" >&2; exit 2; }
src=$1 cmake=$2 ctest=$3 cc=$4

step() { # name log command...
    name=$1 log=$2
    shift 2
    if ! "$@" >"$log" 2>&1; then
        echo "$name failed:" >&2
        tail -n 30 "$log" >&2
        exit 1
    fi
    echo "$name: ok"
}

step configure configure.log "$cmake" -S "$src" -B build -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_COMPILER="$cc" \
    -DMPOOL_BUILD_TESTS=ON -DMPOOL_BUILD_BENCH=OFF -DMPOOL_BUILD_EXAMPLES=OFF
step build build.log "$cmake" --build build -j 2
n=$(find build/tests -maxdepth 1 -type f -name 'api_*' | wc -l | tr -d ' ')
[ "$n" -gt 0 ] || { echo "the build made no api_* test programs" >&2; exit 1; }
echo "test programs built: $n api"
step "api tests" test.log "$ctest" --test-dir build -L api -j 2 --output-on-failure --no-tests=error
grep -E '^[0-9]+% tests passed' test.log
