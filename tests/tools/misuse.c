/* Bugs that a memory tool must report on pool memory as it would on malloc
 * memory. Run as `misuse MODE`; tests/tools/CMake registration runs each
 * mode under memcheck and in an ASan build and expects the tool to fail it.
 * Modes:
 *   clean           correct use (must pass under every tool)
 *   use-after-put   write to an object after putting it back
 *   overflow        write one byte past the end of an object
 *   uninit          branch on a byte of a fresh object (memcheck only)
 */
#include <mpool.h>

#include <stdio.h>
#include <string.h>

static volatile char sink;

static int objpool_mode(const char *mode)
{
    mp_objpool *p = mp_objpool_create(NULL, &(mp_objpool_opts){ .name = "victim", .obj_size = 40 });
    char *o = mp_objpool_get(p);
    if (!strcmp(mode, "use-after-put")) {
        mp_objpool_put(p, o);
        o[3] = 1;
    } else if (!strcmp(mode, "overflow")) {
        o[40] = 1;
        mp_objpool_put(p, o);
    } else if (!strcmp(mode, "uninit")) {
        if (o[5] == 42)
            sink = 1;
        mp_objpool_put(p, o);
    } else {
        memset(o, 1, 40);
        mp_objpool_put(p, o);
    }
    mp_objpool_destroy(p);
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "clean";
    return objpool_mode(mode);
}
