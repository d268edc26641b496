/* The pool tree under arenas: destroy and reset run children (newest
 * first, depth first), then the arena's cleanups (newest first), then free
 * memory. Every event is written to a log and the log is compared with the
 * expected order: three levels of arenas with object pools among them,
 * reset versus destroy, moving children (and refusing cycles), removed
 * cleanups, and cleanups that allocate or push more cleanups. */
#include "check.h"

#include <mpool.h>

#include <errno.h>

static char log_buf[4096];

static void log_event(const char *what)
{
    if (log_buf[0])
        strcat(log_buf, " ");
    strcat(log_buf, what);
}

static void clear_log(void) { log_buf[0] = '\0'; }

static void cleanup_logger(void *arg) { log_event(arg); }

/* The object pool's dtor runs when its memory goes back (destroy). */
static void dtor_logger(void *obj, void *arg)
{
    (void)obj;
    log_event(arg);
}

static mp_arena *arena(mp_arena *parent, const char *name)
{
    mp_arena *a = mp_arena_create(parent, &(mp_arena_opts){ .name = name });
    REQUIRE(a != NULL);
    REQUIRE(mp_alloc(a, 100) != NULL); /* each holds some memory */
    return a;
}

static void cleanups(mp_arena *a, const char *c1, const char *c2)
{
    REQUIRE(mp_cleanup_push(a, cleanup_logger, (void *)c1) == 0);
    REQUIRE(mp_cleanup_push(a, cleanup_logger, (void *)c2) == 0);
}

static mp_objpool *objpool(mp_arena *parent, const char *dtor_event)
{
    mp_objpool *p = mp_objpool_create(parent, &(mp_objpool_opts){
        .name = "objs", .obj_size = 32, .initial = 1, .dtor = dtor_logger, .arg = (void *)dtor_event });
    REQUIRE(p != NULL);
    return p;
}

/*   R
 *   +- A          (oldest)
 *   |  +- A1
 *   |  +- PA      objpool
 *   |  +- A2
 *   |     +- A2x
 *   +- P          objpool
 *   +- B          (newest)
 *      +- B1
 */
static mp_arena *build(void)
{
    mp_arena *r = arena(NULL, "R");
    cleanups(r, "R.c1", "R.c2");
    mp_arena *a = arena(r, "A");
    cleanups(a, "A.c1", "A.c2");
    mp_arena *a1 = arena(a, "A1");
    cleanups(a1, "A1.c1", "A1.c2");
    objpool(a, "PA.dtor");
    mp_arena *a2 = arena(a, "A2");
    cleanups(a2, "A2.c1", "A2.c2");
    mp_arena *a2x = arena(a2, "A2x");
    cleanups(a2x, "A2x.c1", "A2x.c2");
    objpool(r, "P.dtor");
    mp_arena *b = arena(r, "B");
    cleanups(b, "B.c1", "B.c2");
    mp_arena *b1 = arena(b, "B1");
    cleanups(b1, "B1.c1", "B1.c2");
    return r;
}

static const char *const full_order =
    "B1.c2 B1.c1 B.c2 B.c1 "                                                /* B, newest child of R */
    "P.dtor "                                                               /* then the object pool */
    "A2x.c2 A2x.c1 A2.c2 A2.c1 PA.dtor A1.c2 A1.c1 A.c2 A.c1 "              /* then A, depth first */
    "R.c2 R.c1";                                                            /* R's own cleanups last */

static void test_destroy_order(void)
{
    mp_arena *r = build();
    clear_log();
    mp_arena_destroy(r);
    CHECK_STR_EQ(log_buf, full_order);
}

static void test_reset_order(void)
{
    mp_arena *r = build();
    clear_log();
    mp_arena_reset(r);
    CHECK_STR_EQ(log_buf, full_order); /* the same order; R survives */
    mp_stats s;
    REQUIRE(mp_arena_stats(r, &s) == 0);
    CHECK_EQ(s.objects_in_use, 0); /* no children left, nothing in use */
    CHECK(mp_alloc(r, 10) != NULL);
    mp_arena *c = arena(r, "C"); /* new children after the reset */
    cleanups(c, "C.c1", "C.c2");
    clear_log();
    mp_arena_reset(r); /* R's cleanups ran already: only C's */
    CHECK_STR_EQ(log_buf, "C.c2 C.c1");
    clear_log();
    mp_arena_destroy(r);
    CHECK_STR_EQ(log_buf, "");
}

static void test_move(void)
{
    mp_arena *r = arena(NULL, "R");
    mp_arena *a = arena(r, "A"), *b = arena(r, "B");
    mp_arena *a1 = arena(a, "A1"), *a2 = arena(a, "A2");
    mp_arena *a1x = arena(a1, "A1x");
    cleanups(a, "A.c1", "A.c2");
    cleanups(a1, "A1.c1", "A1.c2");
    cleanups(a2, "A2.c1", "A2.c2");
    cleanups(a1x, "A1x.c1", "A1x.c2");
    cleanups(b, "B.c1", "B.c2");

    /* Cycles are refused, and nothing changes. */
    CHECK_EQ(mp_arena_move(a, a), EINVAL);
    CHECK_EQ(mp_arena_move(a, a1), EINVAL);
    CHECK_EQ(mp_arena_move(a, a1x), EINVAL);
    CHECK_EQ(mp_arena_move(r, a2), EINVAL);

    /* A1 (with A1x) moves under B, newest child of B. */
    mp_objpool *p = objpool(a, "P.dtor");
    CHECK_EQ(mp_arena_move(a1, b), 0);
    CHECK_EQ(mp_objpool_move(p, b), 0);
    clear_log();
    mp_arena_destroy(a);
    CHECK_STR_EQ(log_buf, "A2.c2 A2.c1 A.c2 A.c1");
    clear_log();
    mp_arena_reset(b); /* children newest first: P (moved last), then A1 */
    CHECK_STR_EQ(log_buf, "P.dtor A1x.c2 A1x.c1 A1.c2 A1.c1 B.c2 B.c1");

    /* To the root and back. */
    mp_arena *c = arena(b, "C");
    cleanups(c, "C.c1", "C.c2");
    CHECK_EQ(mp_arena_move(c, NULL), 0);
    clear_log();
    mp_arena_destroy(r); /* B goes, C (now a root) stays */
    CHECK_STR_EQ(log_buf, "");
    CHECK(mp_alloc(c, 10) != NULL);
    clear_log();
    mp_arena_destroy(c);
    CHECK_STR_EQ(log_buf, "C.c2 C.c1");
}

static void late(void *arg);

static void test_cleanup_remove(void)
{
    mp_arena *r = arena(NULL, "R");
    static const char *names[] = { "c0", "c1", "c2", "c3" };
    for (int i = 0; i < 4; i++)
        REQUIRE(mp_cleanup_push(r, cleanup_logger, (void *)names[i]) == 0);
    REQUIRE(mp_cleanup_push(r, cleanup_logger, (void *)names[1]) == 0); /* c1 twice */
    CHECK_EQ(mp_cleanup_remove(r, cleanup_logger, (void *)names[1]), 0);  /* the newer c1 */
    CHECK_EQ(mp_cleanup_remove(r, cleanup_logger, (void *)names[3]), 0);
    CHECK_EQ(mp_cleanup_remove(r, cleanup_logger, (void *)names[3]), ENOENT);
    CHECK_EQ(mp_cleanup_remove(r, cleanup_logger, (void *)"other"), ENOENT);
    CHECK_EQ(mp_cleanup_remove(r, late, (void *)names[0]), ENOENT); /* same arg, another fn */
    clear_log();
    mp_arena_destroy(r);
    CHECK_STR_EQ(log_buf, "c2 c1 c0");
}

/* A cleanup may use the arena: allocate, push another cleanup (it runs in
 * the same reset), and create a child (destroyed in the same reset). */
static mp_arena *busy_arena;

static void late(void *arg) { log_event(arg); }

/* The kid's cleanup runs when the busy arena destroys the kid, after the
 * busy arena's own cleanups ran: what it pushes there must run too. */
static void child_cleanup(void *arg)
{
    log_event(arg);
    REQUIRE(mp_cleanup_push(busy_arena, late, (void *)"after-kid") == 0);
}

static void busy_cleanup(void *arg)
{
    char *s = mp_printf(busy_arena, "busy-%s", (const char *)arg);
    REQUIRE(s != NULL);
    log_event(s);
    REQUIRE(mp_cleanup_push(busy_arena, late, (void *)"late") == 0);
    mp_arena *kid = mp_arena_create(busy_arena, &(mp_arena_opts){ .name = "kid" });
    REQUIRE(kid != NULL);
    REQUIRE(mp_cleanup_push(kid, child_cleanup, (void *)"kid.c") == 0);
}

static void test_cleanup_uses_arena(void)
{
    busy_arena = arena(NULL, "busy");
    REQUIRE(mp_cleanup_push(busy_arena, busy_cleanup, (void *)"x") == 0);
    clear_log();
    mp_arena_reset(busy_arena);
    CHECK_STR_EQ(log_buf, "busy-x late kid.c after-kid");
    mp_stats s;
    REQUIRE(mp_arena_stats(busy_arena, &s) == 0);
    CHECK_EQ(s.objects_in_use, 0); /* the child went too */
    clear_log();
    mp_arena_reset(busy_arena); /* nothing was left over for this one */
    CHECK_STR_EQ(log_buf, "");
    /* The same at destroy, where a cleanup left over would never run. */
    REQUIRE(mp_cleanup_push(busy_arena, busy_cleanup, (void *)"y") == 0);
    clear_log();
    mp_arena_destroy(busy_arena);
    CHECK_STR_EQ(log_buf, "busy-y late kid.c after-kid");
}

/* Destroying an arena first takes it out of its parent: one of its
 * cleanups may then destroy that former parent, and the memory freed after
 * the cleanup is uncharged from no freed arena; the grandparent's limit
 * gets every byte back. */
static mp_arena *doomed;

static void destroy_doomed(void *arg)
{
    log_event(arg);
    mp_arena_destroy(doomed);
}

static void test_cleanup_destroys_former_parent(void)
{
    enum { LIMIT = 1 << 20, BIG = 600 * 1024 };
    mp_arena *gp = mp_arena_create(NULL, &(mp_arena_opts){ .name = "gp", .limit = LIMIT });
    REQUIRE(gp != NULL);
    doomed = arena(gp, "P");
    mp_arena *c = arena(doomed, "C");
    REQUIRE(mp_alloc(c, BIG) != NULL);
    CHECK(mp_alloc(gp, BIG) == NULL); /* C's bytes count against gp's limit */
    REQUIRE(mp_cleanup_push(c, destroy_doomed, (void *)"C.c") == 0);
    cleanups(doomed, "P.c1", "P.c2");
    clear_log();
    mp_arena_destroy(c);
    CHECK_STR_EQ(log_buf, "C.c P.c2 P.c1");
    mp_stats s;
    REQUIRE(mp_arena_stats(gp, &s) == 0);
    CHECK_EQ(s.objects_in_use, 0); /* P went with everything it had */
    CHECK(mp_alloc(gp, BIG) != NULL);
    mp_arena_destroy(gp);
}

/* Object pools under arenas: destroying or resetting the arena destroys
 * them (the dtor runs for every object made, out or not). */
static void test_objpool_children(void)
{
    mp_arena *r = arena(NULL, "R");
    mp_objpool *p = objpool(r, "P.dtor");
    void *o = mp_objpool_get(p);
    REQUIRE(o != NULL);
    memset(o, 1, 32);
    mp_objpool_put(p, o);
    mp_objpool *q = mp_objpool_create(r, &(mp_objpool_opts){ .name = "q", .obj_size = 64, .initial = 3,
                                                             .dtor = dtor_logger, .arg = (void *)"Q.dtor" });
    REQUIRE(q != NULL);
    clear_log();
    mp_arena_reset(r);
    /* q (newest) first: its 3 objects; then p: every object it made (a get
     * makes a magazine's worth), so at least one. */
    const char *qpart = "Q.dtor Q.dtor Q.dtor P.dtor";
    CHECK(strncmp(log_buf, qpart, strlen(qpart)) == 0);
    for (const char *t = log_buf + strlen(qpart); *t; t += strlen(" P.dtor"))
        if (strncmp(t, " P.dtor", 7) != 0) {
            CHECK(!"only P.dtor after Q's");
            break;
        }
    /* New children after the reset, destroyed with the arena. */
    objpool(r, "P2.dtor");
    clear_log();
    mp_arena_destroy(r);
    CHECK_STR_EQ(log_buf, "P2.dtor");
}

int main(void)
{
    test_destroy_order();
    test_reset_order();
    test_move();
    test_cleanup_remove();
    test_cleanup_uses_arena();
    test_cleanup_destroys_former_parent();
    test_objpool_children();
    return check_done();
}
