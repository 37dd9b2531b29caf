/*
 * The system-call allow-list of the session and the post-login relay
 * (issue 10 item 8): a classic BPF filter, built once before the first
 * fork and installed with prctl() at the end of sandbox_enter().  The
 * list itself is in src/seccomp.c, in one table.
 */
#ifndef IMAPGATE_SECCOMP_H
#define IMAPGATE_SECCOMP_H

#include <stddef.h>

/* Build the filter (before any fork; no system call).  0, or -1 with err
 * (an architecture this file does not know). */
int seccomp_build(char *err, size_t errsize);
/* Install it for this process: every system call not on the list kills
 * the process (SECCOMP_RET_KILL_PROCESS).  no_new_privs must be set.
 * 0, or -1 with err. */
int seccomp_install(char *err, size_t errsize);

#endif
