/* consumer_malloc.c - linked with the installed static drop-in
 * (mpool::malloc); prints "ok <version>" when malloc and calloc come from
 * the program itself and the C library's own allocations (strdup) are
 * mpool's (tests/install/run.sh). */
#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <mpool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int from_program(const char *name)
{
    Dl_info mine, it;
    void *f = dlsym(RTLD_DEFAULT, name);
    return f && dladdr(f, &it) && dladdr((void *)from_program, &mine) && strcmp(it.dli_fname, mine.dli_fname) == 0;
}

int main(void)
{
    if (!from_program("malloc") || !from_program("calloc") || !from_program("posix_memalign"))
        return 1;
    char *s = strdup("from the C library");
    if (!s || mp_usable_size(s) < 19)
        return 2;
    free(s);
    printf("ok %s\n", mp_version());
    return 0;
}
