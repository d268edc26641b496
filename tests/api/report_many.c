/* mp_report with many alike siblings (a pool per connection): more than 8
 * siblings of one kind and name show as the first 3, each with its
 * children, then one line "... and N more KIND NAME, M pools under
 * them" with the own figures of all of them summed, in the columns; runs of 8 or fewer, and other names around a
 * run, show whole; mp_report_json keeps every pool. */
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#include "capture.h"
#include "check.h"

#include <mpool.h>

enum { FLOWS = 100, FEW = 8 };

static int count(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static int lines(const char *s) { return count(s, "\n"); }

int main(void)
{
    mp_arena *root = mp_arena_create(NULL, &(mp_arena_opts){ .name = "server" });
    REQUIRE(root != NULL);
    mp_objpool *before = mp_objpool_create(root, &(mp_objpool_opts){ .name = "before", .obj_size = 16 });
    REQUIRE(before != NULL);
    for (int i = 0; i < FLOWS; i++) {
        mp_arena *flow = mp_arena_create(root, &(mp_arena_opts){ .name = "flow" });
        REQUIRE(flow != NULL);
        mp_objpool *pkts = mp_objpool_create(flow, &(mp_objpool_opts){ .name = "packets", .obj_size = 64 });
        REQUIRE(pkts != NULL);
        REQUIRE(mp_objpool_get(pkts) != NULL); /* one object out per flow */
    }
    for (int i = 0; i < FEW; i++) /* a run of 8: shown whole */
        REQUIRE(mp_objpool_create(root, &(mp_objpool_opts){ .name = "few", .obj_size = 16 }) != NULL);

    char *text = capture(mp_report, NULL);
    /* header, server, before, 3 flows with their packets, the summary (its
     * label too long for its column: two lines), 8 few */
    CHECK_EQ(lines(text), 1 + 1 + 1 + 3 * 2 + 2 + FEW);
    CHECK_EQ(count(text, "arena flow"), 3 + 1);
    CHECK_EQ(count(text, "objpool packets"), 3);
    CHECK_EQ(count(text, "objpool few"), FEW);
    const char *more = strstr(text, "  ... and 97 more arena flow, 97 pools under them");
    CHECK(more != NULL);
    if (more) {
        /* the summed columns: the 97 packets pools' objects out, and as many allocations */
        const char *end = strchr(more, '\n');
        end = end ? strchr(end + 1, '\n') : NULL; /* the figures' line */
        char line[256] = { 0 };
        memcpy(line, more, end && (size_t)(end - more) < sizeof line - 1 ? (size_t)(end - more) : sizeof line - 1);
        CHECK(strstr(line, "        97         97") != NULL);
        CHECK(strstr(text, "objpool before") < more && more < strstr(text, "objpool few")); /* in its place */
    }
    free(text);

    char *json = capture(mp_report_json, NULL);
    CHECK_EQ(count(json, "\"name\":\"flow\""), FLOWS); /* JSON keeps every pool */
    CHECK_EQ(count(json, "\"name\":\"packets\""), FLOWS);
    free(json);

    mp_arena_destroy(root);
    return check_done();
}
