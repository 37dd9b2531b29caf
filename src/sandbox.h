/*
 * Confinement of the session process: chroot to an empty directory,
 * drop to the service user, no new privileges, tight rlimits, and a
 * seccomp system-call allow-list (src/seccomp.c).
 */
#ifndef IMAPGATE_SANDBOX_H
#define IMAPGATE_SANDBOX_H

#include <stddef.h>
#include <sys/types.h>

#include "config.h"

struct sandbox {
	int	root;		/* started as root: chroot and drop */
	uid_t	uid;
	gid_t	gid;
};

/* Before fork, while /etc/passwd is reachable.  0, or -1 with err. */
int sandbox_prepare(const struct config *c, struct sandbox *sb, char *err,
    size_t errsize);
/* In the session, before the first byte is read from the client.
 * 0, or -1 with err. */
int sandbox_enter(const struct config *c, const struct sandbox *sb, char *err,
    size_t errsize);

#endif
