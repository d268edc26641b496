/* consumer.c - uses the installed header and library; prints "ok <version>"
 * when the object pool behaves and the library linked is the version of the
 * header it was compiled with (tests/install/run.sh compares that version
 * with the build's). */
#include <mpool.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    mp_objpool_opts o = { .name = "consumer", .obj_size = 32 };
    mp_objpool *p = mp_objpool_create(NULL, &o);
    if (!p)
        return 1;
    char *s = mp_objpool_get(p);
    if (!s || mp_usable_size(s) < 32)
        return 2;
    strcpy(s, "pooled");
    mp_stats st;
    if (mp_objpool_stats(p, &st) != 0 || st.objects_in_use != 1)
        return 3;
    mp_objpool_put(p, s);
    mp_objpool_destroy(p);
    char header[32];
    snprintf(header, sizeof header, "%d.%d.%d", MP_VERSION_MAJOR, MP_VERSION_MINOR, MP_VERSION_PATCH);
    printf("ok %s\n", mp_version());
    if (strcmp(mp_version(), header) != 0) {
        fprintf(stderr, "consumer: library %s, header %s\n", mp_version(), header);
        return 4;
    }
    return 0;
}
