/*
 * ptr.h - layer 6: what mp_free (ptr.c) does with a pointer in no live
 * chunk of mpool's.
 *
 * For the library such a pointer is misuse: the error handler gets it. A
 * process whose malloc is mpool's drop-in (src/malloc/) can see them
 * without any bug of its own: memory the dynamic linker handed out before
 * the drop-in took over, or that another allocator made. So the drop-in
 * defines mp__free_foreign, and mp_free gives such pointers (never NULL) to
 * it, with the caller's site, instead of to the error handler. The
 * declaration is weak: in a library without the drop-in it is NULL, and
 * nothing changes.
 */
#ifndef MP_PTR_H
#define MP_PTR_H

void mp__free_foreign(void *ptr, const void *site) __attribute__((weak));

#endif /* MP_PTR_H */
