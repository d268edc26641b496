/*
 * track.c - layer 0 (services): whether a memory tool watches this process
 * (the hooks themselves are inline in track.h).
 */
#include "track.h"

int mp__track_state = -1;

/* Memcheck, not any Valgrind tool: under callgrind the pools must keep
 * their fast paths, or instruction counts would measure the slow ones.
 * Valgrind preloads one library per tool, so memcheck's shows in
 * LD_PRELOAD; MPOOL_TRACK=1 forces tracking on under any tool. */
static bool valgrind_on(void)
{
#if MP_TRACK_VG
    if (!RUNNING_ON_VALGRIND)
        return false;
    const char *force = getenv("MPOOL_TRACK");
    if (force && force[0] == '1')
        return true;
    const char *preload = getenv("LD_PRELOAD");
    return preload && strstr(preload, "vgpreload_memcheck") != NULL;
#else
    return false;
#endif
}

/* Threads may race to decide; they all store the same answer, since the
 * environment and the linked runtimes do not change. */
bool mp__track_decide(void)
{
    int s = mp__track_asan() || valgrind_on();
    __atomic_store_n(&mp__track_state, s, __ATOMIC_RELAXED);
    return s != 0;
}
