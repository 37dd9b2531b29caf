/*
 * The per-address failure penalty, shared by every imapgate process
 * through a small fixed-size table in a file (auth.penalty_file), locked
 * with fcntl.  Updated by the monitor only.
 */
#ifndef IMAPGATE_PENALTY_H
#define IMAPGATE_PENALTY_H

/*
 * A login from ip failed: double that address's delay (the first failure
 * gets base), up to max, and return the seconds this failure must wait.
 * IPv6 addresses count per /64.  A missing, short or corrupt file is
 * recreated; if the file cannot be used at all, base is returned.
 */
double penalty_fail(const char *path, const char *ip, double base, double max);

/* A login from ip succeeded: forget its penalty. */
void penalty_clear(const char *path, const char *ip);

#endif
