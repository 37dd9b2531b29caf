/*
 * The one auth interface of the monitor: whichever source is configured
 * (passwd-file, checkpassword, nginx's auth_http, or none: the backend
 * decides), one call, a tri-state answer and the facts for the handoff.
 */
#ifndef IMAPGATE_AUTH_H
#define IMAPGATE_AUTH_H

#include "auth_passwd.h"
#include "config.h"
#include "conn.h"
#include "msg.h"

struct auth_request {
	const char	*user;
	const char	*pass;		/* password, CRAM digest or token */
	uint32_t	 mech;		/* enum auth_mech */
	const char	*salt;		/* the CRAM-MD5 challenge, or NULL */
	int		 attempt;	/* 1, 2, ... on this connection */
	const struct conn *conn;
	const struct tls_facts *tls;	/* tls->active: over TLS */
};

struct auth_reply {
	struct auth_user user;		/* uid/gid/home, a route */
	char	login_user[USER_MAX + 1];	/* for the backend, if set */
	char	login_pass[PASS_MAX + 1];
	char	text[AUTH_TEXT_MAX + 1];	/* NO text to pass on, or "" */
	int	wait;			/* Auth-Wait: s before the NO; -1 none */
};

/* AUTH_OK, AUTH_NO or AUTH_TEMPFAIL; why says what for the log. */
enum auth_result auth_check(const struct config *c,
    const struct auth_request *r, struct auth_reply *out, const char **why);

/* checkpassword and auth_http, behind auth_check(). */
enum auth_result auth_checkpw(const struct config *c,
    const struct auth_request *r, const char **why);
enum auth_result auth_http(const struct config *c,
    const struct auth_request *r, struct auth_reply *out, const char **why);

#endif
