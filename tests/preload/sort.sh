#!/bin/sh
# sort.sh - sort on a generated input of 400 000 lines (about 16 MB): by
# whole line, numerically by a field, by two keys, unique, and with two
# threads and a small buffer so that it sorts runs into temporary files and
# merges them. Prints a checksum of each result. Exits 77 when sort is not
# installed.
set -eu
command -v sort >/dev/null 2>&1 || { echo "sort is not installed"; exit 77; }
LC_ALL=C
export LC_ALL

awk 'BEGIN {
    seed = 1
    for (i = 0; i < 400000; i++) {
        seed = (seed * 1103515245 + 12345) % 2147483648
        printf "%s%d %d %s-%d\n", substr("qwertyuiopasdfghjklzxcvbnm", 1 + seed % 26, 1 + seed % 7), seed % 100000,
            seed % 977, substr("mnbvcxzlkjhgfdsapoiuytrewq", 1 + (seed / 7) % 26), i % 1000
    }
}' >input

sum() { echo "$1: $(cksum <"$2" | cut -d' ' -f1) $(wc -l <"$2" | tr -d ' ') lines"; }
sort input >out.1
sum "whole line" out.1
sort -n -k2,2 -s input >out.2
sum "numeric field 2" out.2
sort -k3,3 -k2,2nr input >out.3
sum "two keys" out.3
sort -u -k3,3 input >out.4
sum "unique by field 3" out.4
sort --parallel=2 -S 1M -T "${TMPDIR:-.}" -k3,3 -k1,1 input >out.5
sum "small buffer, two threads, merged" out.5
sort -m out.1 out.1 >out.6
sum "merge of sorted files" out.6
