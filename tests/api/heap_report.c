/* mp_report and mp_report_json show heaps: a root heap as a line of its
 * own ("heap NAME ..."), a heap under an arena indented under it, and in
 * the JSON a pool of kind "heap" with every counter, which match
 * mp_heap_stats; a destroyed heap is gone from both. */
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#include "capture.h"
#include "heap.h"

#include <mpool.h>

/* The counters the JSON report gives the heap called name. */
static bool json_stats_of(const char *json, const char *name, mp_stats *out)
{
    char want[128];
    snprintf(want, sizeof want, "\"kind\":\"heap\",\"name\":\"%s\",\"stats\":{", name);
    const char *at = strstr(json, want);
    if (!at)
        return false;
    at += strlen(want);
    return sscanf(at, "\"bytes_in_use\":%zu,\"bytes_peak\":%zu,\"bytes_mapped\":%zu,\"objects_in_use\":%zu,"
                      "\"allocs\":%zu,\"frees\":%zu",
                  &out->bytes_in_use, &out->bytes_peak, &out->bytes_mapped, &out->objects_in_use, &out->allocs,
                  &out->frees) == 6;
}

static void same_as_stats(const char *json, const mp_heap *h, const char *name)
{
    mp_stats j, s = heap_stats(h);
    if (!json_stats_of(json, name, &j)) {
        fprintf(stderr, "no heap '%s' with stats in the JSON report: %s\n", name, json);
        check_failures++;
        return;
    }
    CHECK_EQ(j.bytes_in_use, s.bytes_in_use);
    CHECK_EQ(j.bytes_peak, s.bytes_peak);
    CHECK_EQ(j.bytes_mapped, s.bytes_mapped);
    CHECK_EQ(j.objects_in_use, s.objects_in_use);
    CHECK_EQ(j.allocs, s.allocs);
    CHECK_EQ(j.frees, s.frees);
}

int main(void)
{
    mp_heap *root = mp_heap_create(NULL, &(mp_heap_opts){ .name = "reqs" });
    mp_arena *a = mp_arena_create(NULL, &(mp_arena_opts){ .name = "server" });
    REQUIRE(root && a);
    mp_heap *kid = mp_heap_create(a, &(mp_heap_opts){ .name = "kid" });
    REQUIRE(kid != NULL);
    void *p[3];
    for (int i = 0; i < 3; i++)
        REQUIRE((p[i] = mp_heap_alloc(root, 100)) != NULL);
    mp_free(p[2]);
    void *k = mp_heap_alloc(kid, 5000);
    REQUIRE(k != NULL);

    char *json = capture(mp_report_json, NULL);
    same_as_stats(json, root, "reqs");
    same_as_stats(json, kid, "kid");
    mp_stats j;
    if (json_stats_of(json, "reqs", &j)) {
        CHECK_EQ(j.objects_in_use, 2);
        CHECK_EQ(j.allocs, 3);
        CHECK_EQ(j.frees, 1);
        CHECK(j.bytes_in_use >= 200 && j.bytes_in_use <= heap_held_max(p[0], 100, 1) + heap_held_max(p[1], 100, 1));
    }
    /* Per-class figures: reqs's one class (112 B, 2 out of 3 made), kid's
     * 5120 B class. */
    CHECK(strstr(json, "\"classes\":[{\"size\":112,\"objects_in_use\":2,\"allocs\":3,\"frees\":1,") != NULL);
    CHECK(strstr(json, "\"classes\":[{\"size\":5120,\"objects_in_use\":1,\"allocs\":1,\"frees\":0,") != NULL);
    /* kid is listed among the arena's children, not as a root. */
    const char *server = strstr(json, "\"name\":\"server\"");
    const char *kidpos = strstr(json, "\"name\":\"kid\"");
    const char *children = server ? strstr(server, "\"children\":[{") : NULL;
    CHECK(children && kidpos && children < kidpos);
    free(json);
    json = capture(mp_report_json, a); /* the arena's tree alone */
    CHECK(strstr(json, "\"name\":\"kid\"") != NULL);
    CHECK(strstr(json, "\"name\":\"reqs\"") == NULL);
    free(json);

    CHECK(report_has_root("heap reqs"));
    char *text = capture(mp_report, NULL);
    CHECK(strstr(text, "\n  heap kid ") != NULL); /* indented under its arena */
    CHECK(strstr(text, "\n  class 112 B ") != NULL); /* under heap reqs */
    CHECK(strstr(text, "\n    class 5120 B ") != NULL); /* under heap kid, one level deeper */
    free(text);

    mp_free(p[0]);
    mp_free(p[1]);
    mp_heap_destroy(root);
    mp_arena_destroy(a);
    json = capture(mp_report_json, NULL);
    CHECK(strstr(json, "\"name\":\"reqs\"") == NULL);
    CHECK(strstr(json, "\"name\":\"kid\"") == NULL);
    free(json);
    CHECK(!report_has_root("heap reqs"));
    return check_done();
}
