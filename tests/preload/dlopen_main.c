/*
 * dlopen_main.c LIBRARY - memory crossing the boundary of a library loaded
 * with dlopen (dlopen_lib.c), twenty times over: load, use from this
 * thread and from four others, unload.
 *
 * Each round the program frees what the library allocated (a string, a
 * list) and the library frees or reallocates what the program allocated
 * (a buffer, a list, blocks it keeps until dlclose runs its destructor);
 * the dynamic linker allocates the library's thread-local data for each
 * thread that touches it and frees it when the thread ends. The output is
 * a few sums that do not depend on the allocator or on timing.
 */
#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlopen_lib.h"

#define ROUNDS 20
#define THREADS 4

static struct {
    char *(*upper)(const char *);
    void (*free)(void *);
    void *(*grow)(void *, size_t);
    lib_node *(*list)(int);
    long (*consume)(lib_node *);
    int (*keep)(void *);
    long (*table_sum)(void);
    unsigned long (*tls_touch)(unsigned);
} lib;

static int failures;

#define EXPECT(cond)                                                                  \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #cond);        \
            failures++;                                                               \
        }                                                                             \
    } while (0)

static void *sym(void *h, const char *name)
{
    void *p = dlsym(h, name);
    if (p == NULL) {
        fprintf(stderr, "dlsym %s: %s\n", name, dlerror());
        exit(1);
    }
    return p;
}

/* A thread's share of a round: TLS, and blocks passed both ways. Returns
 * its sum through arg. */
static void *worker(void *arg)
{
    unsigned long *out = arg, sum = 0;
    for (unsigned i = 0; i < 200; i++) {
        unsigned long t = lib.tls_touch(i);
        if (t == 0) {
            *out = 0; /* misaligned TLS: the main thread reports it */
            return NULL;
        }
        sum += t;
        char *s = malloc(32 + i);
        if (s == NULL)
            abort();
        snprintf(s, 32 + i, "block %u", i);
        char *u = lib.upper(s);
        if (u == NULL)
            abort();
        sum += (unsigned long)strlen(u) + (unsigned char)u[0];
        lib.free(s);
        free(u);
    }
    *out = sum;
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: dlopen_main LIBRARY\n");
        return 2;
    }
    long list_sums = 0, consume_sums = 0, table_sums = 0;
    unsigned long tls_sums = 0;
    for (int round = 0; round < ROUNDS; round++) {
        void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
        if (h == NULL) {
            fprintf(stderr, "dlopen %s: %s\n", argv[1], dlerror());
            return 1;
        }
        *(void **)&lib.upper = sym(h, "lib_upper");
        *(void **)&lib.free = sym(h, "lib_free");
        *(void **)&lib.grow = sym(h, "lib_grow");
        *(void **)&lib.list = sym(h, "lib_list");
        *(void **)&lib.consume = sym(h, "lib_consume");
        *(void **)&lib.keep = sym(h, "lib_keep");
        *(void **)&lib.table_sum = sym(h, "lib_table_sum");
        *(void **)&lib.tls_touch = sym(h, "lib_tls_touch");

        /* The library's block, freed here. */
        char *u = lib.upper("made in the library");
        EXPECT(u != NULL && strcmp(u, "MADE IN THE LIBRARY") == 0);
        free(u);

        /* Our block, grown and then freed by the library. */
        unsigned char *b = malloc(100);
        EXPECT(b != NULL);
        for (int i = 0; i < 100; i++)
            b[i] = (unsigned char)(i + round);
        b = lib.grow(b, 100000 + (size_t)round * 1000);
        EXPECT(b != NULL);
        int same = 1;
        for (int i = 0; i < 100; i++)
            same &= b[i] == (unsigned char)(i + round);
        EXPECT(same);
        lib.free(b);

        /* The library's list, freed node by node here; ours, freed there. */
        for (lib_node *e = lib.list(1000), *next; e != NULL; e = next) {
            next = e->next;
            list_sums += e->value;
            free(e);
        }
        lib_node *head = NULL;
        for (int i = 0; i < 1000; i++) {
            lib_node *e = malloc(sizeof *e + (size_t)(i % 70));
            EXPECT(e != NULL);
            e->value = i;
            e->next = head;
            head = e;
        }
        consume_sums += lib.consume(head);

        /* Blocks the library frees when it is unloaded. */
        for (int i = 0; i < 10; i++)
            EXPECT(lib.keep(strdup("kept until dlclose")) == 0);
        table_sums += lib.table_sum();

        /* Thread-local data, in this thread and in threads that end. */
        unsigned long mine = lib.tls_touch((unsigned)round);
        EXPECT(mine != 0);
        tls_sums += mine;
        pthread_t t[THREADS];
        unsigned long got[THREADS];
        for (int i = 0; i < THREADS; i++)
            EXPECT(pthread_create(&t[i], NULL, worker, &got[i]) == 0);
        for (int i = 0; i < THREADS; i++) {
            EXPECT(pthread_join(t[i], NULL) == 0);
            EXPECT(got[i] != 0);
            tls_sums += got[i];
        }
        EXPECT(dlclose(h) == 0);
    }
    printf("rounds: %d loads and unloads\n", ROUNDS);
    printf("lists made there, freed here: sum %ld\n", list_sums);
    printf("lists made here, freed there: sum %ld\n", consume_sums);
    printf("constructor's table: sum %ld\n", table_sums);
    printf("thread-local data and blocks both ways: sum %lu\n", tls_sums);
    if (failures != 0) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    return 0;
}
