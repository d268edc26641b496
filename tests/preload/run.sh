#!/bin/sh
# run.sh [-l LIB] [-r PROGRAM]... [-f FILTER] -- COMMAND [ARG...]
#
# Runs COMMAND twice, each time in a scratch directory of its own (its
# working directory and TMPDIR): first as the system runs it, then with the
# allocator under test loaded by LD_PRELOAD. The test passes when both runs
# exit 0 and print the same standard output; with -f, both outputs go
# through FILTER (a shell command reading stdin, e.g. 'sort') first, for a
# program whose output is correct in more than one order. Standard error is
# not compared (it may hold addresses or timings); it is shown on failure.
#
# The allocator under test:
#   MPOOL_PRELOAD_LIB (environment)  a library to test instead, e.g. jemalloc
#                                    standing in for the drop-in; the value
#                                    `none` runs the second run without a
#                                    preload (a check of the test itself)
#   -l LIB                           otherwise: the build's libmpool-malloc.so
#                                    (empty when the build has none)
# With neither, the test is skipped. The commands see MPOOL_PRELOAD_STRICT=1
# when the library is the build's drop-in (it must replace every malloc
# function), 0 for a stand-in, which may leave some to glibc; set
# MPOOL_PRELOAD_STRICT in the environment to choose.
#
# Exits 0 (pass), 1 (fail), 2 (usage) or 77 (skipped: no library, a
# -r PROGRAM not on PATH, or a run that exited 77 itself).
set -u

usage() {
    echo "usage: run.sh [-l LIB] [-r PROGRAM]... [-f FILTER] -- COMMAND [ARG...]" >&2
    exit 2
}
skip() { echo "SKIPPED: $*"; exit 77; }
fail() { echo "FAILED: $*" >&2; exit 1; }

lib='' filter='' strict=0
while [ $# -gt 0 ]; do
    case $1 in
    -l) [ $# -ge 2 ] || usage; lib=$2; shift 2 ;;
    -r) [ $# -ge 2 ] || usage
        command -v "$2" >/dev/null 2>&1 || skip "$2 is not installed"
        shift 2 ;;
    -f) [ $# -ge 2 ] || usage; filter=$2; shift 2 ;;
    --) shift; break ;;
    *) usage ;;
    esac
done
[ $# -gt 0 ] || usage

if [ -n "${MPOOL_PRELOAD_LIB-}" ]; then
    lib=$MPOOL_PRELOAD_LIB
elif [ -n "$lib" ]; then
    strict=1
else
    skip "no allocator to preload: the build has no mpool_malloc target (set MPOOL_PRELOAD_LIB to test another library)"
fi
MPOOL_PRELOAD_STRICT=${MPOOL_PRELOAD_STRICT-$strict}
export MPOOL_PRELOAD_STRICT
unset LD_PRELOAD

if [ "$lib" = none ]; then
    lib=''
else
    [ -f "$lib" ] || fail "$lib: no such file"
    case $lib in /*) ;; *) lib=$(pwd)/$lib ;; esac
    # A library ld.so cannot preload is ignored with a warning: the second
    # run would then test glibc again. Make sure a process maps it.
    real=$(readlink -f "$lib")
    env LD_PRELOAD="$lib" grep -qF "$real" /proc/self/maps ||
        fail "grep /proc/self/maps with LD_PRELOAD=$lib failed or did not have it mapped (see any message above)"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/mpool-preload.XXXXXX") || fail "mktemp failed"
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

# cmd_run NAME PRELOAD COMMAND...: runs the command in $work/NAME, with
# LD_PRELOAD=PRELOAD unless it is empty; sets st to its exit status.
cmd_run() {
    name=$1 pre=$2
    shift 2
    mkdir -p "$work/$name/tmp"
    if (cd "$work/$name" && TMPDIR=$work/$name/tmp && export TMPDIR &&
        if [ -n "$pre" ]; then LD_PRELOAD=$pre && export LD_PRELOAD; fi &&
        exec "$@" </dev/null >"$work/$name.out" 2>"$work/$name.err")
    then st=0; else st=$?; fi
}

show_err() { # name
    if [ -s "$work/$1.err" ]; then
        echo "--- standard error of the $1 run (last 20 lines):" >&2
        tail -n 20 "$work/$1.err" >&2
    fi
}

cmd_run plain '' "$@"
plain_st=$st
if [ "$plain_st" -eq 77 ]; then
    cat "$work/plain.out" "$work/plain.err"
    skip "the command skipped itself"
fi
if [ "$plain_st" -ne 0 ]; then
    show_err plain
    fail "without a preload, '$*' exited $plain_st: the test itself is broken"
fi

cmd_run preload "$lib" "$@"
pre_st=$st
if [ "$pre_st" -eq 77 ]; then
    cat "$work/preload.out" "$work/preload.err"
    skip "the command skipped itself under the preload"
fi
if grep -q 'cannot be preloaded' "$work/preload.err"; then
    show_err preload
    fail "ld.so did not preload $lib"
fi
if [ "$pre_st" -ne 0 ]; then
    show_err preload
    if [ "$pre_st" -gt 128 ]; then
        fail "with LD_PRELOAD=$lib, '$*' was killed by signal $((pre_st - 128)) (exit 0 without)"
    fi
    fail "with LD_PRELOAD=$lib, '$*' exited $pre_st (exit 0 without)"
fi

for name in plain preload; do
    if [ -n "$filter" ]; then
        sh -c "$filter" <"$work/$name.out" >"$work/$name.cmp" || fail "filter '$filter' failed"
    else
        cp "$work/$name.out" "$work/$name.cmp"
    fi
done
if ! cmp -s "$work/plain.cmp" "$work/preload.cmp"; then
    echo "--- output without a preload, +++ with LD_PRELOAD=$lib${filter:+ (both through '$filter')}:" >&2
    if command -v diff >/dev/null 2>&1; then
        diff -u "$work/plain.cmp" "$work/preload.cmp" | sed -n '3,42p' >&2
    else
        cmp "$work/plain.cmp" "$work/preload.cmp" >&2
    fi
    show_err preload
    fail "the outputs differ"
fi
lines=$(wc -l <"$work/plain.cmp" | tr -d ' ')
echo "same output ($lines lines${filter:+ through '$filter'}) and exit status 0, without and with LD_PRELOAD=${lib:-(none)}"
exit 0
