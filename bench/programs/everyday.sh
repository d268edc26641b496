#!/bin/sh
# everyday.sh - the everyday programs of bench/run --programs.
#
#   everyday.sh setup DIR [quick]   makes every program's input in DIR, once
#                                   per run of bench/run (not timed)
#   everyday.sh PROGRAM DIR         one timed run of PROGRAM on DIR's input
#
# PROGRAM is one of:
#   python  python3 objects.py: objects, dicts, JSON, sorting ($PYTHON, or
#           python3 from PATH)
#   sort    sort of 1.5 million generated lines by two keys
#   sqlite  sqlite3 on an in-memory database: 150 000 inserts in
#           transactions, two indexes, 2000 lookups, joins, grouping
#   git     git over 1500 generated files: init, add, commit, four rounds
#           of edits (one file in fifty) and commits, log -p, gc, fsck
#   gcc     gcc -O2 -c of a generated file of 300 functions
# quick divides every input by ten. A run prints what it computed, which
# bench/run compares between allocators.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 2 ] || { echo "usage: everyday.sh setup DIR [quick] | everyday.sh PROGRAM DIR" >&2; exit 2; }
what=$1 dir=$2
LC_ALL=C
export LC_ALL

setup() {
    d=1
    [ "${1-}" != quick ] || d=10
    mkdir -p "$dir"
    echo $((200000 / d)) >"$dir/python.n"
    awk -v n=$((1500000 / d)) 'BEGIN {
        seed = 3
        for (i = 0; i < n; i++) {
            seed = (seed * 1103515245 + 12345) % 2147483648
            printf "%s%d %d %s\n", substr("qwertyuiopasdfghjklzxcvbnm", 1 + seed % 26, 1 + seed % 9),
                seed % 1000003, seed % 9973, substr("mnbvcxzlkjhgfdsapoiuytrewq", 1 + (seed / 13) % 26)
        }
    }' >"$dir/sort.in"
    awk -v n=$((150000 / d)) -v q=$((2000 / d)) 'BEGIN {
        seed = 5
        print "CREATE TABLE customer (id INTEGER PRIMARY KEY, name TEXT, city TEXT);"
        print "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer INTEGER, item TEXT, qty INTEGER, note TEXT);"
        print "BEGIN;"
        for (i = 1; i <= 2000; i++)
            printf "INSERT INTO customer VALUES (%d, %cname-%d%c, %ccity-%d%c);\n", i, 39, i, 39, 39, i % 53, 39
        for (i = 1; i <= n; i++) {
            seed = (seed * 1103515245 + 12345) % 2147483648
            printf "INSERT INTO orders VALUES (%d, %d, %citem-%d%c, %d, %c%s%c);\n", i, 1 + seed % 2000, 39,
                seed % 997, 39, 1 + seed % 9, 39, sprintf("%0" (seed % 200) "d", 0), 39
            if (i % 5000 == 0) { print "COMMIT;"; print "BEGIN;" }
        }
        print "COMMIT;"
        print "CREATE INDEX orders_customer ON orders(customer);"
        print "CREATE INDEX orders_item ON orders(item, qty);"
        for (i = 0; i < q; i++)
            printf "SELECT count(*), sum(qty) FROM orders WHERE customer = %d;\n", 1 + (i * 37) % 2000
        print "SELECT c.city, count(*), sum(o.qty) FROM orders o JOIN customer c ON c.id = o.customer GROUP BY c.city ORDER BY c.city;"
        print "SELECT item, count(*), max(length(note)) FROM orders GROUP BY item ORDER BY 2 DESC, item LIMIT 20;"
        print "UPDATE orders SET note = note || item WHERE qty > 5;"
        print "DELETE FROM orders WHERE qty < 3;"
        print "SELECT count(*), sum(length(note)) FROM orders;"
    }' >"$dir/sqlite.sql"
    rm -rf "$dir/git.tree"
    mkdir -p "$dir/git.tree/src"
    awk -v n=$((1500 / d)) -v dir="$dir/git.tree/src" 'BEGIN {
        for (f = 0; f < n; f++) {
            name = sprintf("%s/m%04d.c", dir, f)
            for (l = 0; l < 60 + f % 50; l++)
                printf "int f%d_%d(int x) { return x * %d + %d; } /* %s */\n", f, l, (f + l) % 17, l,
                    substr("lorem ipsum dolor sit amet consectetur adipiscing elit", 1 + (f * l) % 40) > name
            close(name)
        }
    }'
    awk -v n=$((300 / d)) 'BEGIN {
        print "#include <stdio.h>"
        print "#include <string.h>"
        print "struct item { int key; double weight; char name[24]; struct item *next; };"
        for (f = 0; f < n; f++)
            printf "int fn%d(const struct item *it, int x);\n", f
        for (f = 0; f < n; f++) {
            printf "int fn%d(const struct item *it, int x) {\n    int acc = %d;\n", f, f
            printf "    for (int i = 0; i < x %% %d + 3; i++) {\n        switch ((i + it->key) %% 5) {\n", f % 17 + 2
            for (c = 0; c < 5; c++)
                printf "        case %d: acc += (int)(it->weight * %d) ^ (i << %d); break;\n", c, (f + c) % 11 + 1, c
            printf "        }\n        if (acc > %d) acc = acc %% %d + (int)strlen(it->name);\n    }\n", 100000 + f, 977 + f
            printf "    return it->next ? acc + fn%d(it->next, x - 1) %% 7 : acc;\n}\n", (f + 1) % n
        }
    }' >"$dir/gcc.c"
}

# git_run: init, add, commit, edits, history and maintenance, with fixed
# names and dates so that every commit id is the same in every run.
git_run() {
    HOME=$dir/git.home GIT_CONFIG_NOSYSTEM=1
    GIT_AUTHOR_NAME=Bench GIT_AUTHOR_EMAIL=bench@example.org
    GIT_COMMITTER_NAME=Bench GIT_COMMITTER_EMAIL=bench@example.org TZ=UTC
    export HOME GIT_CONFIG_NOSYSTEM GIT_AUTHOR_NAME GIT_AUTHOR_EMAIL GIT_COMMITTER_NAME GIT_COMMITTER_EMAIL TZ
    unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE
    rm -rf "$dir/git.repo" "$HOME"
    mkdir -p "$HOME"
    cp -R "$dir/git.tree" "$dir/git.repo"
    cd "$dir/git.repo"
    git init -q .
    git config gc.auto 0
    when=1700000000
    for round in 0 1 2 3 4; do
        if [ "$round" -gt 0 ]; then
            # One file in fifty gets a line changed and one added.
            set -- src/m*[07]4.c src/m*[18]1.c
            sed -i "1s/return x/return $round + x/" "$@"
            for f; do echo "int r$round(void) { return $round; }" >>"$f"; done
        fi
        git add -A
        when=$((when + 3600))
        GIT_AUTHOR_DATE="@$when +0000" GIT_COMMITTER_DATE="@$when +0000" git commit -q -m "round $round"
    done
    echo "log -p: $(git log -p | cksum)"
    git gc -q
    git fsck --no-progress --strict && echo "fsck ok"
    echo "head $(git rev-parse HEAD), objects $(git rev-list --all --objects | wc -l | tr -d ' ')"
}

case $what in
setup) setup "${3-}" ;;
python) exec "${PYTHON:-python3}" "$here/objects.py" "$(cat "$dir/python.n")" ;;
sort)
    sort -k2,2n -k1,1 "$dir/sort.in" -o "$dir/sort.out"
    echo "sorted $(wc -l <"$dir/sort.out" | tr -d ' ') lines, $(cksum <"$dir/sort.out")"
    ;;
sqlite) sqlite3 -batch :memory: <"$dir/sqlite.sql" | cksum ;;
git) git_run ;;
gcc)
    cd "$dir"
    gcc -O2 -std=c11 -c gcc.c -o gcc.o
    echo "object $(cksum <gcc.o)"
    ;;
*) echo "everyday.sh: unknown program '$what'" >&2; exit 2 ;;
esac
