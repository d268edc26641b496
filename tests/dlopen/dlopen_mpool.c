/* The shared library loads with dlopen and works: its thread-local table
 * is initial-exec TLS, which a library opened after start-up may use only
 * while it fits the static TLS the C library keeps spare. The program is
 * not linked with mpool; it finds every function with dlsym, uses a heap
 * and the default heap on two threads (each thread's first call
 * sets up its caches), and closes the library again. It declares the few
 * types it needs itself: it must not see the header's inline functions. */
#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct mp_heap mp_heap;
static struct {
    mp_heap *(*heap_default)(void);
    void *(*heap_alloc)(mp_heap *, size_t);
    void (*free)(void *);
    size_t (*usable_size)(const void *);
    mp_heap *(*heap_create)(void *, const void *);
    void (*heap_destroy)(mp_heap *);
} mp;

static int failures;

static void *work(void *arg)
{
    mp_heap *h = arg;
    for (int round = 0; round < 1000; round++) {
        char *p[64];
        for (int i = 0; i < 64; i++) {
            p[i] = mp.heap_alloc(i % 2 ? h : mp.heap_default(), (size_t)(1 + i * 37));
            if (!p[i] || mp.usable_size(p[i]) < (size_t)(1 + i * 37)) {
                failures++;
                return NULL;
            }
            memset(p[i], i, (size_t)(1 + i * 37));
        }
        for (int i = 0; i < 64; i++) {
            if (p[i][i * 37] != (char)i)
                failures++;
            mp.free(p[i]);
        }
    }
    return NULL;
}

#define LOAD(field, name)                                                  \
    do {                                                                   \
        *(void **)&mp.field = dlsym(lib, name);                            \
        if (!mp.field) {                                                   \
            fprintf(stderr, "dlsym(%s): %s\n", name, dlerror());           \
            return 1;                                                      \
        }                                                                  \
    } while (0)

int main(void)
{
    void *lib = dlopen(MPOOL_SHARED_PATH, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "dlopen(%s): %s\n", MPOOL_SHARED_PATH, dlerror());
        return 1;
    }
    LOAD(heap_default, "mp_heap_default");
    LOAD(heap_alloc, "mp_heap_alloc");
    LOAD(free, "mp_free");
    LOAD(usable_size, "mp_usable_size");
    LOAD(heap_create, "mp_heap_create");
    LOAD(heap_destroy, "mp_heap_destroy");
    mp_heap *h = mp.heap_create(NULL, NULL);
    if (!h) {
        fprintf(stderr, "mp_heap_create failed\n");
        return 1;
    }
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        if (pthread_create(&t[i], NULL, work, h) != 0)
            return 1;
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    work(h); /* the main thread too */
    mp.heap_destroy(h);
    if (dlclose(lib) != 0) {
        fprintf(stderr, "dlclose: %s\n", dlerror());
        return 1;
    }
    if (failures)
        fprintf(stderr, "%d failure(s)\n", failures);
    return failures != 0;
}
