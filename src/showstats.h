/*
 * showstats.h - layer 7 (reports): MPOOL_SHOW_STATS, the report printed at
 * exit (showstats.c).
 *
 * Nothing below calls this file: a program linked with the static library
 * gets it (and its constructor) through the undefined symbol
 * MP_SHOW_STATS_ANCHOR that mpool's CMake package and mpool-static.pc put
 * on the link line; the shared library holds it anyway.
 */
#ifndef MP_SHOWSTATS_H
#define MP_SHOWSTATS_H

#define MP_SHOW_STATS_ANCHOR "mp__show_stats_anchor"
extern const char mp__show_stats_anchor;
/* The malloc drop-in prints its own report at exit (to the standard error
 * the process started with, with its own figures): it claims the variable,
 * and this file's handler then prints nothing. Any time before exit. */
void mp__show_stats_claim(void);

#endif /* MP_SHOWSTATS_H */
