/* mp_report's columns with names of every length: a pool's figures end
 * where the header's columns end, whether its label fits the label column
 * or, too long for it, stands whole on a line of its own with the figures
 * on the next; nested pools and every kind likewise. */
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#include "capture.h"
#include "check.h"

#include <mpool.h>

#include <stdbool.h>

/* Length of the line starting at s (without its newline). */
static size_t line_len(const char *text, size_t len, size_t at)
{
    size_t n = 0;
    while (at + n < len && text[at + n] != '\n')
        n++;
    return n;
}

/* Checks the report's lines; long_name is the name that cannot fit. */
static void check_columns(const char *text, const char *long_name)
{
    size_t len = strlen(text), width = line_len(text, len, 0); /* the header's last column ends every row */
    CHECK(width > 40);
    int rows = 0, long_seen = 0;
    bool after_label = false; /* the line before was a label on its own */
    for (size_t at = width + 1; at < len;) {
        size_t n = line_len(text, len, at);
        const char *l = text + at;
        for (size_t k = 0; k + strlen(long_name) <= n; k++)
            if (memcmp(l + k, long_name, strlen(long_name)) == 0) {
                long_seen++; /* whole, and on one line */
                break;
            }
        if (n == width) { /* a row of figures, after its label or beside it */
            CHECK(!after_label || strspn(l, " ") >= 40);
            rows++;
            after_label = false;
        } else if (!after_label && n > 40) {
            after_label = true; /* a label too long for its column */
        } else {
            fprintf(stderr, "line at %zu is %zu wide, the header %zu:\n%.*s\n", at, n, width, (int)n, l);
            check_failures++;
        }
        at += n + 1;
    }
    CHECK(!after_label);
    CHECK_EQ(long_seen, 4); /* the top arena and its three children with the long name */
    CHECK_EQ(rows, 1 + 3 * 4);
}

int main(void)
{
    char long_name[201];
    memset(long_name, 'n', 200);
    long_name[200] = '\0';
    const char *names[] = { "", "x", "exactly-thirty-one-bytes-long-x", long_name };
    mp_arena *top = mp_arena_create(NULL, &(mp_arena_opts){ .name = long_name });
    REQUIRE(top != NULL);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        REQUIRE(mp_objpool_create(top, &(mp_objpool_opts){ .name = names[i], .obj_size = 16 }) != NULL);
        REQUIRE(mp_heap_create(top, &(mp_heap_opts){ .name = names[i] }) != NULL);
        REQUIRE(mp_arena_create(top, &(mp_arena_opts){ .name = names[i] }) != NULL);
    }

    char *text = capture(mp_report, NULL);
    check_columns(text, long_name);
    free(text);
    mp_arena_destroy(top);
    return check_done();
}
