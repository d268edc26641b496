#!/bin/sh
# compare.sh DIR PAIRS NIDS-ARGS...
#
# Runs DIR/nids-malloc and DIR/nids PAIRS times each with the same
# arguments, alternating (odd pairs malloc first, even pairs mpool first,
# so neither build always runs second), and prints for each build the
# median and the range of: wall time (the whole process, exit included),
# the packets/s nids prints (setup, run and teardown), and peak RSS; then
# the median and range of the per-pair ratios.
#
#   sh examples/nids/compare.sh build/examples/nids 25 -q -r examples/nids/tests/test.rules -g bulk -n 2000000
#
# Needs GNU time as /usr/bin/time (Debian: apt-get install time).
set -eu
[ $# -ge 3 ] || { echo "usage: compare.sh DIR PAIRS NIDS-ARGS..." >&2; exit 1; }
dir=$1 pairs=$2
shift 2
[ -x /usr/bin/time ] || { echo "compare.sh: needs GNU time as /usr/bin/time" >&2; exit 1; }
for b in nids nids-malloc; do
    [ -x "$dir/$b" ] || { echo "compare.sh: no $dir/$b" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# one_run BUILD ARGS...: appends "wall_s rss_kb packets_per_s" to $work/BUILD
one_run() {
    b=$1
    shift
    /usr/bin/time -f 'TIME %e %M' -o "$work/time" "$dir/$b" "$@" >"$work/out" 2>"$work/err" ||
        { echo "compare.sh: $b failed:" >&2; cat "$work/err" >&2; exit 1; }
    pps=$(sed -n 's/^summary: .* build, .* s), \([0-9]*\) packets\/s.*/\1/p' "$work/out")
    set -- $(grep '^TIME' "$work/time")
    echo "$2 $3 $pps" >>"$work/$b"
}

: >"$work/nids"
: >"$work/nids-malloc"
i=1
while [ $i -le "$pairs" ]; do
    if [ $((i % 2)) -eq 1 ]; then order="nids-malloc nids"; else order="nids nids-malloc"; fi
    for b in $order; do one_run "$b" "$@"; done
    i=$((i + 1))
done

# median_range FILE COLUMN FORMAT: "median (min-max)", each printed with FORMAT
median_range() {
    cut -d' ' -f"$2" "$1" | sort -g | awk -v f="$3" '{ v[NR] = $1 } END {
        m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf f " (" f "-" f ")", m, v[1], v[NR] }'
}

echo "$pairs alternating pairs: nids $*"
printf '%-8s %-30s %-34s %s\n' build "wall s: median (range)" "packets/s: median (range)" "peak RSS KB: median (range)"
for b in nids-malloc nids; do
    name=${b#nids-}
    [ "$b" = nids ] && name=mpool
    printf '%-8s %-30s %-34s %s\n' "$name" "$(median_range "$work/$b" 1 %.3f)" "$(median_range "$work/$b" 3 %.0f)" \
        "$(median_range "$work/$b" 2 %.0f)"
done
paste -d' ' "$work/nids-malloc" "$work/nids" |
    awk '{ printf "%.4f %.4f %.4f\n", $1 / $4, $6 / $3, $5 / $2 }' >"$work/ratios"
echo "per-pair ratios, median (range):"
echo "  speed-up, wall time (malloc s / mpool s):  $(median_range "$work/ratios" 1 %.2f)"
echo "  speed-up, packets/s (mpool / malloc):      $(median_range "$work/ratios" 2 %.2f)"
echo "  peak RSS (mpool / malloc):                 $(median_range "$work/ratios" 3 %.2f)"
