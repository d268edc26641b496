#!/bin/sh
# gcc.sh - gcc compiling a generated C file at -O2 (cc1, as and ld all run
# under the preload), then the program it built. Prints the program's
# output and a checksum of the object file: gcc's output does not depend
# on where its memory is (reproducible builds rely on that), so any correct
# allocator gives the same bytes. The file is compiled by its relative name
# and without -g, so no path ends up in the object. Exits 77 when gcc is not
# installed.
set -eu
command -v gcc >/dev/null 2>&1 || { echo "gcc is not installed"; exit 77; }
LC_ALL=C
export LC_ALL

awk 'BEGIN {
    n = 250
    print "#include <stdio.h>"
    print "#include <string.h>"
    print "struct item { int key; double weight; char name[24]; struct item *next; };"
    for (f = 0; f < n; f++)
        printf "static int fn%d(const struct item *it, int x);\n", f
    for (f = 0; f < n; f++) {
        printf "static int fn%d(const struct item *it, int x) {\n", f
        printf "    int acc = %d;\n", f
        printf "    for (int i = 0; i < x %% %d + 3; i++) {\n", f % 17 + 2
        printf "        switch ((i + it->key) %% 5) {\n"
        for (c = 0; c < 5; c++)
            printf "        case %d: acc += (int)(it->weight * %d) ^ (i << %d); break;\n", c, (f + c) % 11 + 1, c
        printf "        }\n"
        printf "        if (acc > %d) acc = acc %% %d + (int)strlen(it->name);\n", 100000 + f, 977 + f
        printf "    }\n"
        printf "    return it->next ? acc + fn%d(it->next, x - 1) %% 7 : acc;\n", (f + 1) % n
        printf "}\n"
    }
    print "int main(void) {"
    print "    struct item items[8];"
    print "    for (int i = 0; i < 8; i++) {"
    print "        items[i].key = i * 3; items[i].weight = 1.5 + i;"
    print "        snprintf(items[i].name, sizeof items[i].name, \"item-%d\", i);"
    print "        items[i].next = i < 7 ? &items[i + 1] : 0;"
    print "    }"
    print "    long total = 0;"
    for (f = 0; f < n; f += 50)
        printf "    total += fn%d(&items[%d %% 8], %d);\n", f, f, f % 9 + 4
    print "    printf(\"total %ld\\n\", total);"
    print "    return 0;"
    print "}"
}' >prog.c

gcc -O2 -std=c11 -Wall -c prog.c -o prog.o
gcc prog.o -o prog
./prog
echo "object: $(wc -c <prog.o | tr -d ' ') bytes, checksum $(cksum <prog.o | cut -d' ' -f1)"
