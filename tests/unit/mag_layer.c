/*
 * mag_layer.c - the magazine layer on its own (mag.h): detached caches fail
 * both fast paths, loading and swapping keep top and end right, the guard
 * ends a magazine, exchanges with the depot move whole magazines, and the
 * depot's bound frees surplus empty magazines and names the surplus full
 * ones.
 */
#include "check.h"
#include "mag.h"

enum { CAP = 8 };

/* The fast paths as an owner would write them. */
static void *pop(mp__cache *c)
{
    void **top = c->top;
    void *o = top[-1];
    if (o)
        c->top = top - 1;
    return o;
}

static int push(mp__cache *c, void *o)
{
    if (c->top >= c->end)
        return 0;
    *c->top++ = o;
    return 1;
}

static void test_detached(void)
{
    for (int i = 0; i < MP_CACHE_NONE_COUNT; i++) {
        mp__cache *c = &mp__cache_none[i];
        CHECK(c->top == c->end);
        CHECK(c->top[-1] == NULL);
        CHECK_EQ(c->verified, 1);
    }
    mp__cache c;
    mp__cache_reset(&c);
    int x;
    CHECK(pop(&c) == NULL);
    CHECK_EQ(push(&c, &x), 0);
    CHECK_EQ(mp__cache_loaded(&c), 0);
    CHECK_EQ(mp__cache_prev(&c), 0);
}

static void test_load_swap(void)
{
    static int objs[3 * CAP];
    mp__cache c;
    mp__cache_reset(&c);
    mp__mag *a = mp__mag_new(CAP), *b = mp__mag_new(CAP);
    REQUIRE(a && b);
    mp__cache_attach(&c, &c, CAP, a, b);
    CHECK(c.owner == &c);
    CHECK(pop(&c) == NULL); /* empty: the guard */
    for (int i = 0; i < CAP; i++)
        CHECK_EQ(push(&c, &objs[i]), 1);
    CHECK_EQ(push(&c, &objs[CAP]), 0); /* full */
    CHECK_EQ(mp__cache_loaded(&c), CAP);
    mp__cache_swap(&c); /* the full one becomes prev */
    CHECK_EQ(mp__cache_loaded(&c), 0);
    CHECK_EQ(mp__cache_prev(&c), CAP);
    CHECK_EQ(push(&c, &objs[CAP]), 1);
    mp__cache_swap(&c);
    CHECK_EQ(mp__cache_loaded(&c), CAP);
    CHECK_EQ(mp__cache_prev(&c), 1);
    CHECK_PTR_EQ(pop(&c), &objs[CAP - 1]); /* LIFO */

    mp__mag *l, *p;
    mp__cache_detach(&c, &l, &p);
    CHECK(c.top == c.end && c.owner == NULL);
    CHECK_EQ(l->n, CAP - 1);
    CHECK_EQ(p->n, 1);
    mp__mag_free(l);
    mp__mag_free(p);
}

static void test_exchange(void)
{
    static int objs[4 * CAP];
    mp__depot d;
    mp__depot_init(&d, CAP);
    mp__cache c;
    mp__cache_reset(&c);
    mp__cache_attach(&c, &d, CAP, mp__mag_new(CAP), mp__mag_new(CAP));
    for (int i = 0; i < 2 * CAP; i++) {
        if (!push(&c, &objs[i])) {
            mp__cache_swap(&c);
            CHECK_EQ(push(&c, &objs[i]), 1);
        }
    }
    /* loaded and prev are full: rotate gives back prev, marked as ours */
    mp__mag *spare = mp__mag_new(CAP);
    REQUIRE(spare != NULL);
    mp__mag *full = mp__cache_rotate(&c, spare);
    CHECK_EQ(full->n, CAP);
    CHECK_PTR_EQ(full->filler, &c);
    CHECK_EQ(mp__cache_loaded(&c), 0);
    CHECK_EQ(mp__cache_prev(&c), CAP);
    mp__depot_push_full(&d, full);
    CHECK_EQ(d.nfull, 1);
    CHECK_EQ(d.objs, CAP);

    /* empty the cache, then refill from the depot */
    int got = 0;
    for (;;) {
        if (pop(&c)) {
            got++;
            continue;
        }
        if (!mp__cache_prev(&c))
            break;
        mp__cache_swap(&c);
    }
    CHECK_EQ(got, CAP); /* prev's objects */
    mp__mag *m = mp__depot_pop_full(&d);
    REQUIRE(m != NULL);
    CHECK_EQ(d.objs, 0);
    mp__cache_refill(&c, &d, m);
    CHECK_EQ(mp__cache_loaded(&c), CAP);
    CHECK_EQ(d.nempty, 1); /* the old prev */

    /* the bound: empties past max_empty are freed, fulls past max_full named */
    for (int i = 0; i < 5; i++)
        mp__depot_push_empty(&d, mp__mag_new(CAP));
    for (int i = 0; i < 3; i++) {
        mp__mag *f = mp__mag_new(CAP);
        f->n = 1;
        mp__depot_push_full(&d, f);
    }
    CHECK_EQ(mp__depot_surplus(&d, 1, 2), 2);
    CHECK_EQ(d.nempty, 2);
    CHECK_EQ(d.nfull, 3);
    CHECK_EQ(mp__depot_bytes(&d), 5 * mp__mag_bytes(CAP));
    CHECK_EQ(mp__depot_surplus(&d, 3, 0), 0);
    CHECK_EQ(d.nempty, 0);

    mp__mag *l, *p;
    mp__cache_detach(&c, &l, &p);
    mp__mag_free(l);
    mp__mag_free(p);
    mp__depot_free_all(&d);
    CHECK_EQ(d.nfull + d.nempty, 0);
}

int main(void)
{
    test_detached();
    test_load_swap();
    test_exchange();
    return check_done();
}
