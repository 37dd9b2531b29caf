/*
 * Deadlines on the monotonic clock, the one way every wait in imapgate is
 * bounded.
 */
#ifndef IMAPGATE_CLOCK_H
#define IMAPGATE_CLOCK_H

#include <time.h>

/* *t = from + s seconds (from == NULL: now). */
void deadline_after(struct timespec *t, const struct timespec *from,
    double s);
/* Milliseconds until *t; 0 or less once it has passed. */
long ms_left(const struct timespec *t);
/* Seconds since *t. */
double seconds_since(const struct timespec *t);

#endif
