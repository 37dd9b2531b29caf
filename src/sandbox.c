/*
 * Sandbox for the session.  The order is fixed: resources are already
 * open; chroot; setgroups/setresgid/setresuid; verify; narrow.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bounds.h"
#include "sandbox.h"
#include "seccomp.h"

int
sandbox_prepare(const struct config *c, struct sandbox *sb, char *err,
    size_t errsize)
{
	struct passwd *pw;
	struct stat st;

	memset(sb, 0, sizeof(*sb));
	/* Once, for every session this process will fork. */
	if (seccomp_build(err, errsize) < 0)
		return -1;
	if (geteuid() != 0)
		return 0;
	sb->root = 1;
	if ((pw = getpwnam(c->privsep_user)) == NULL) {
		snprintf(err, errsize, "privsep.user \"%s\" does not exist",
		    c->privsep_user);
		return -1;
	}
	if (pw->pw_uid == 0) {
		snprintf(err, errsize, "privsep.user \"%s\" is root",
		    c->privsep_user);
		return -1;
	}
	sb->uid = pw->pw_uid;
	sb->gid = pw->pw_gid;
	/* Like sshd: a chroot the service user could write to is no jail. */
	if (stat(c->privsep_chroot, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, errsize, "privsep.chroot %s: not a directory",
		    c->privsep_chroot);
		return -1;
	}
	if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		snprintf(err, errsize, "privsep.chroot %s: must be owned by "
		    "root and not writable by others", c->privsep_chroot);
		return -1;
	}
	return 0;
}

static void
limit(int resource, rlim_t value)
{
	struct rlimit rl = { value, value };

	(void)setrlimit(resource, &rl);
}

int
sandbox_enter(const struct config *c, const struct sandbox *sb, char *err,
    size_t errsize)
{
	uid_t r, e, s;

	if (sb->root) {
		if (chroot(c->privsep_chroot) < 0 || chdir("/") < 0) {
			snprintf(err, errsize, "chroot %s: %s",
			    c->privsep_chroot, strerror(errno));
			return -1;
		}
		if (setgroups(1, &sb->gid) < 0 ||
		    setresgid(sb->gid, sb->gid, sb->gid) < 0 ||
		    setresuid(sb->uid, sb->uid, sb->uid) < 0) {
			snprintf(err, errsize, "dropping to %s: %s",
			    c->privsep_user, strerror(errno));
			return -1;
		}
		if (getresuid(&r, &e, &s) < 0 || r != sb->uid ||
		    e != sb->uid || s != sb->uid || setuid(0) == 0) {
			snprintf(err, errsize, "privileges not dropped");
			return -1;
		}
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		snprintf(err, errsize, "no_new_privs: %s", strerror(errno));
		return -1;
	}
	/* The session forks nothing and dumps no core.  (No RLIMIT_FSIZE:
	 * fd 2 may be a log file, and SIGXFSZ would kill the session.) */
	limit(RLIMIT_NPROC, 0);
	limit(RLIMIT_CORE, 0);
	/* Hard limits too: no way back up (the filter forbids setrlimit). */
	limit(RLIMIT_NOFILE, SANDBOX_NOFILE);
	/* Last: from here on, the allow-list in src/seccomp.c. */
	return seccomp_install(err, errsize);
}
