/*
 * The auth dispatcher.  Sources other than the passwd-file say nothing of
 * uid, gid and home; exec mode then takes them from the system account
 * of the same name.
 */
#include <pwd.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"

/* Exec mode after checkpassword or auth_http: the system account.
 * Without one, has_ids stays 0 and exec_refusal() refuses the login as
 * it refuses a passwd_file entry without ids: like a wrong password. */
static void
system_account(const char *name, struct auth_user *u)
{
	struct passwd *pw;

	if ((pw = getpwnam(name)) == NULL)
		return;
	snprintf(u->name, sizeof(u->name), "%s", name);
	snprintf(u->home, sizeof(u->home), "%s", pw->pw_dir);
	u->uid = pw->pw_uid;
	u->gid = pw->pw_gid;
	u->has_ids = 1;
}

enum auth_result
auth_check(const struct config *c, const struct auth_request *r,
    struct auth_reply *out, const char **why)
{
	enum auth_result res;

	memset(out, 0, sizeof(*out));
	out->wait = -1;
	snprintf(out->user.name, sizeof(out->user.name), "%s", r->user);
	/* EXTERNAL: the certificate is the proof; the file says who. */
	if (c->passwd_file != NULL)
		return passwd_check(c->passwd_file, r->user,
		    r->mech == MECH_EXTERNAL ? NULL : r->pass, r->salt,
		    &out->user, why);
	if (c->checkpw_argc > 0)
		res = auth_checkpw(c, r, why);
	else if (c->auth_http != NULL)
		res = auth_http(c, r, out, why);
	else {
		/* Pass-through: the backend's verdict is the check. */
		*why = "ok";
		return AUTH_OK;
	}
	if (res == AUTH_OK && c->exec_argc > 0)
		system_account(out->login_user[0] ? out->login_user :
		    r->user, &out->user);
	return res;
}
