/*
 * dlopen_lib.c - the library dlopen_main.c loads, unloads and loads again.
 * It allocates and frees on both sides of the boundary: blocks it makes
 * are freed by the program and blocks the program makes are freed here; a
 * constructor allocates at load and a destructor frees at dlclose; and its
 * thread-local data is big enough that the dynamic linker allocates each
 * thread's copy with malloc (dynamic TLS) and frees it when the thread ends.
 */
#define _GNU_SOURCE 1
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dlopen_lib.h"

/* Made by the constructor, freed by the destructor. */
static char **table;
static size_t table_len;
/* Blocks the program gave the library to keep; freed at unload. */
static void *kept[64];
static size_t nkept;

/* Per thread: aligned, and larger than the static TLS surplus glibc keeps
 * for libraries loaded later. */
static _Thread_local struct {
    _Alignas(64) unsigned char bytes[16384];
    unsigned long uses;
} tls;

__attribute__((constructor)) static void lib_load(void)
{
    table_len = 256;
    table = malloc(table_len * sizeof *table);
    if (table == NULL)
        abort();
    for (size_t i = 0; i < table_len; i++) {
        table[i] = malloc(16 + i);
        if (table[i] == NULL)
            abort();
        memset(table[i], (int)(i & 0xff), 16 + i);
    }
}

__attribute__((destructor)) static void lib_unload(void)
{
    for (size_t i = 0; i < table_len; i++)
        free(table[i]);
    free(table);
    for (size_t i = 0; i < nkept; i++)
        free(kept[i]);
    nkept = 0;
}

char *lib_upper(const char *s)
{
    size_t n = strlen(s);
    char *r = malloc(n + 1);
    if (r == NULL)
        return NULL;
    for (size_t i = 0; i <= n; i++)
        r[i] = (char)(s[i] >= 'a' && s[i] <= 'z' ? s[i] - 'a' + 'A' : s[i]);
    return r;
}

void lib_free(void *p) { free(p); }

void *lib_grow(void *p, size_t size) { return realloc(p, size); }

lib_node *lib_list(int n)
{
    lib_node *head = NULL;
    for (int i = n - 1; i >= 0; i--) {
        lib_node *e = malloc(sizeof *e + (size_t)(i % 50));
        if (e == NULL)
            abort();
        e->value = i;
        e->next = head;
        head = e;
    }
    return head;
}

long lib_consume(lib_node *head)
{
    long sum = 0;
    while (head != NULL) {
        lib_node *next = head->next;
        sum += head->value;
        free(head);
        head = next;
    }
    return sum;
}

int lib_keep(void *p)
{
    if (nkept == sizeof kept / sizeof kept[0])
        return -1;
    kept[nkept++] = p;
    return 0;
}

long lib_table_sum(void)
{
    long sum = 0;
    for (size_t i = 0; i < table_len; i++)
        sum += (unsigned char)table[i][15 + i];
    return sum;
}

unsigned long lib_tls_touch(unsigned seed)
{
    if (((uintptr_t)tls.bytes & 63) != 0)
        return 0; /* the caller checks for a non-zero result */
    for (size_t i = 0; i < sizeof tls.bytes; i += 512)
        tls.bytes[i] = (unsigned char)(seed + i);
    unsigned long sum = 0;
    for (size_t i = 0; i < sizeof tls.bytes; i += 512)
        sum += tls.bytes[i];
    tls.uses++;
    return sum + 1;
}
