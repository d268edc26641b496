/*
 * cases.h - a test program made of named cases, each of which CTest runs as
 * a test of its own. The program lists its cases in a table:
 *
 *     static const check_case cases[] = {
 *         CHECK_CASE(version, test_version),
 *         CHECK_CASE(get_put, test_get_put_default),
 *     };
 *     int main(int argc, char **argv) { return check_cases(argc, argv, cases, CHECK_NCASES(cases)); }
 *
 * tests/CMakeLists.txt reads the CHECK_CASE lines (one per line, a name of
 * [a-z0-9_]) and registers <program>.<name> for each, run as `program name`.
 * Without an argument the program runs every case in order; --list prints
 * the names. Each case starts from the state main left.
 */
#ifndef MP_TEST_CASES_H
#define MP_TEST_CASES_H

#include "check.h"

typedef struct check_case {
    const char *name;
    void (*run)(void);
} check_case;

#define CHECK_CASE(name, fn) { #name, fn }
#define CHECK_NCASES(table) (sizeof(table) / sizeof((table)[0]))

static inline int check_cases(int argc, char **argv, const check_case *cases, size_t n)
{
    if (argc < 2) {
        for (size_t i = 0; i < n; i++)
            cases[i].run();
        return check_done();
    }
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < n; i++)
            printf("%s\n", cases[i].name);
        return 0;
    }
    for (size_t i = 0; argc == 2 && i < n; i++)
        if (strcmp(argv[1], cases[i].name) == 0) {
            cases[i].run();
            return check_done();
        }
    fprintf(stderr, "usage: %s [--list | CASE]; cases:", argv[0]);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %s", cases[i].name);
    fprintf(stderr, "\n");
    return 2;
}

#endif
