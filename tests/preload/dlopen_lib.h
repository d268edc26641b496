/* dlopen_lib.h - what dlopen_lib.c offers dlopen_main.c (through dlsym). */
#ifndef MP_TEST_DLOPEN_LIB_H
#define MP_TEST_DLOPEN_LIB_H

#include <stddef.h>

typedef struct lib_node {
    struct lib_node *next;
    long value;
} lib_node;

char *lib_upper(const char *s);              /* a new block, for the caller to free */
void lib_free(void *p);                      /* frees a block the caller made */
void *lib_grow(void *p, size_t size);        /* reallocs a block the caller made */
lib_node *lib_list(int n);                   /* n nodes, values 0..n-1, for the caller to free */
long lib_consume(lib_node *head);            /* frees the caller's list; the sum of its values */
int lib_keep(void *p);                       /* keeps a caller's block, freed when unloaded */
long lib_table_sum(void);                    /* reads what the constructor allocated */
unsigned long lib_tls_touch(unsigned seed);  /* uses this thread's TLS; 0 if misaligned */

#endif
