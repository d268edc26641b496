/*
 * fork_hooks.c - the one atfork handler (fork.h): a kind's registered lock
 * is held across fork() and released in parent and child, its child hook
 * runs only in the child, a second registration of the same lock changes
 * nothing, and pools of every kind work in the child.
 */
#include "check.h"
#include "fork.h"

#include <mpool.h>

#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

static pthread_mutex_t leaf = PTHREAD_MUTEX_INITIALIZER;
static int locks, unlocks, child_runs;

static void leaf_lock(void)
{
    pthread_mutex_lock(&leaf);
    locks++;
}

static void leaf_unlock(void)
{
    unlocks++;
    pthread_mutex_unlock(&leaf);
}

static void leaf_child(void) { child_runs++; }

int main(void)
{
    mp__fork_init();
    CHECK(mp__fork_add(leaf_lock, leaf_unlock, leaf_child));
    CHECK(mp__fork_add(leaf_lock, leaf_unlock, leaf_child)); /* once only */

    mp_arena *a = mp_arena_create(NULL, &(mp_arena_opts){ .name = "a" });
    mp_objpool *p = mp_objpool_create(a, &(mp_objpool_opts){ .name = "p", .obj_size = 32 });
    REQUIRE(a && p);
    void *held = mp_objpool_get(p);
    REQUIRE(held != NULL);

    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        /* In the child: the hook ran once, as a child; the leaf lock is free. */
        int ok = locks == 1 && unlocks == 1 && child_runs == 1 && pthread_mutex_trylock(&leaf) == 0;
        pthread_mutex_unlock(&leaf);
        void *o = mp_objpool_get(p);
        ok = ok && o && mp_alloc(a, 100);
        mp_objpool_put(p, o);
        mp_objpool_put(p, held);
        mp_arena_destroy(a);
        _exit(ok ? 0 : 1);
    }
    int status;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_EQ(locks, 1);
    CHECK_EQ(unlocks, 1);
    CHECK_EQ(child_runs, 0);
    CHECK_EQ(pthread_mutex_trylock(&leaf), 0);
    pthread_mutex_unlock(&leaf);
    mp_objpool_put(p, held);
    mp_arena_destroy(a);
    return check_done();
}
