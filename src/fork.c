/*
 * fork.c - layer 5: the pthread_atfork handler (see fork.h for the order).
 *
 * The kinds' leaf locks sit in a small table. A registration and a fork
 * never overlap: both hold hooks_lock, which the handler takes first and
 * releases last.
 */
#include "fork.h"
#include "chunk.h"
#include "meta.h"
#include "sync.h"
#include "tcache.h"
#include "tree.h"

#define MAX_HOOKS 8

typedef struct hook {
    void (*lock)(void);
    void (*unlock)(void);
    void (*child)(void);
} hook;

static pthread_mutex_t hooks_lock = PTHREAD_MUTEX_INITIALIZER;
static hook hooks[MAX_HOOKS];
static size_t nhooks;

bool mp__fork_add(void (*lock)(void), void (*unlock)(void), void (*child)(void))
{
    bool ok = true;
    mp__lock(&hooks_lock);
    size_t i = 0;
    while (i < nhooks && hooks[i].lock != lock)
        i++;
    if (i == nhooks) {
        if (nhooks < MAX_HOOKS)
            hooks[nhooks++] = (hook){ lock, unlock, child };
        else
            ok = false;
    }
    mp__unlock(&hooks_lock);
    return ok;
}

static void prepare(void)
{
    mp__lock(&hooks_lock);
    mp__tcache_fork_lock();
    mp__tree_fork_lock();
    for (size_t i = 0; i < nhooks; i++)
        hooks[i].lock();
    mp__chunk_fork_lock();
    mp__meta_fork_lock();
}

static void release(void)
{
    mp__meta_fork_unlock();
    mp__chunk_fork_unlock();
    for (size_t i = nhooks; i-- > 0;)
        hooks[i].unlock();
    mp__tree_fork_unlock();
    mp__tcache_fork_unlock();
    mp__unlock(&hooks_lock);
}

/* The child has one thread: waiters counted in the parent would make it
 * refuse to destroy their pools for good. Every lock is still held. */
static void child(void)
{
    mp__tree_fork_child();
    for (size_t i = 0; i < nhooks; i++)
        if (hooks[i].child)
            hooks[i].child();
    release();
}

static void install(void)
{
    if (pthread_atfork(prepare, release, child) != 0)
        abort();
}

void mp__fork_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, install);
}
