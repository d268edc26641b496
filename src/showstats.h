/*
 * showstats.h - layer 7 (reports): MPOOL_SHOW_STATS, the report printed at
 * exit (showstats.c).
 *
 * mp__show_stats_note() is called by the pool tree for every pool made
 * (mp__node_init): it marks that a pool exists, so that the exit report is
 * printed only by programs that used mpool, and it is what links
 * showstats.c (with its constructor) into a program built against the
 * static library. It is the tree's one reference to a layer above it; it
 * takes no lock and calls nothing.
 */
#ifndef MP_SHOWSTATS_H
#define MP_SHOWSTATS_H

void mp__show_stats_note(void);
/* The malloc drop-in prints its own report at exit (to the standard error
 * the process started with, with its own figures): it claims the variable,
 * and this file's handler then prints nothing. Any time before exit. */
void mp__show_stats_claim(void);

#endif /* MP_SHOWSTATS_H */
