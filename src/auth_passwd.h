/*
 * Dovecot passwd-file authentication, in the monitor only:
 *   user:{SCHEME}password:uid:gid:gecos:home:shell:extra
 */
#ifndef IMAPGATE_AUTH_PASSWD_H
#define IMAPGATE_AUTH_PASSWD_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

#include "bounds.h"
#include "config.h"
#include "msg.h"

struct auth_user {
	char	name[USER_MAX + 1];
	uid_t	uid;
	gid_t	gid;
	int	has_ids;		/* uid and gid fields were given */
	char	home[PATH_MAX];
	/* Extra fields "host=H port=P": this user's backend. */
	struct backend_addr route;
	int	has_route;
};

/* Split a line (modified in place) into PASSWD_FIELDS fields; missing
 * trailing fields are "".  Returns the number of fields present. */
int passwd_split(char *line, char *field[PASSWD_FIELDS]);

/* Does pass match the stored "{SCHEME}hash" (or a raw crypt hash)?
 * 1 yes, 0 no (a passphrase the hash function refuses too), -1 unknown
 * scheme or a hash crypt cannot use. */
int passwd_verify(const char *stored, const char *pass);

/* Look user up in path and check pass.  Scans the whole file and hashes
 * even for an unknown user, so both cost the same.  why: for the log.
 * With salt (a CRAM-MD5 challenge), pass is the client's hex digest and
 * only {PLAIN} entries can match.  A NULL pass (EXTERNAL: a verified
 * certificate proved the user) looks the user up only. */
enum auth_result passwd_check(const char *path, const char *user,
    const char *pass, const char *salt, struct auth_user *out,
    const char **why);

#endif
