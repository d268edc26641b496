/* mp_report and mp_report_json: one line per pool, names escaped, every
 * counter present, the tree in creation order; bad arguments do nothing. */
#define _POSIX_C_SOURCE 200809L /* open_memstream */
#include "capture.h"
#include "check.h"

#include <mpool.h>

static int count(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

int main(void)
{
    mp_objpool *a = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "first \"quoted\\\"", .obj_size = 32 });
    mp_objpool *b = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "second", .obj_size = 8 });
    REQUIRE(a && b);
    void *o1 = mp_objpool_get(a), *o2 = mp_objpool_get(a);

    char *json = capture(mp_report_json, NULL);
    const char *head = "{\"mpool\":\"" MPOOL_TEST_VERSION "\",\"pools\":[";
    CHECK(strncmp(json, head, strlen(head)) == 0);
    CHECK(strstr(json, "\"name\":\"first \\\"quoted\\\\\\\"\"") != NULL); /* escaped */
    CHECK(strstr(json, "\"name\":\"second\"") != NULL);
    CHECK(strstr(json, "\"objects_in_use\":2,\"allocs\":2,\"frees\":0") != NULL);
    CHECK(strstr(json, "\"bytes_in_use\":64,") != NULL);
    CHECK_EQ(count(json, "\"kind\":\"objpool\""), 2);
    CHECK(strstr(json, "first") < strstr(json, "second")); /* creation order */
    CHECK_EQ(count(json, "{"), count(json, "}"));
    CHECK_EQ(count(json, "["), count(json, "]"));
    CHECK_EQ(count(json, "\n"), 1); /* one line */
    free(json);

    char *text = capture(mp_report, NULL);
    CHECK(strncmp(text, "pool ", 5) == 0); /* header line */
    CHECK_EQ(count(text, "\n"), 3);         /* header + one line per pool */
    CHECK(strstr(text, "objpool second") != NULL);
    free(text);

    mp_objpool_put(a, o1);
    mp_objpool_put(a, o2);
    mp_objpool_destroy(a);
    mp_objpool_destroy(b);
    json = capture(mp_report_json, NULL);
    CHECK_STR_EQ(json, "{\"mpool\":\"" MPOOL_TEST_VERSION "\",\"pools\":[]}\n");
    free(json);

    mp_report(NULL, NULL); /* no stream: nothing, no crash */
    mp_report_json(NULL, NULL);
    return check_done();
}
