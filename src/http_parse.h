/*
 * The auth_http response, parsed: pure, fixed buffers, for auth_http.c
 * and the fuzzer.
 */
#ifndef IMAPGATE_HTTP_PARSE_H
#define IMAPGATE_HTTP_PARSE_H

#include <stddef.h>

#include "bounds.h"

/* What the response said; "" where it said nothing. */
struct http_answer {
	char	status[AUTH_TEXT_MAX + 1];
	char	wait[16];
	char	server[HOST_MAX + 1];
	char	port[PORT_MAX];
	char	user[USER_MAX + 1];
	char	pass[PASS_MAX + 1];
};

/*
 * resp[0..len) is the whole answer (resp[len] == '\0'; modified).  Fills a
 * from its headers.  0, or -1 unless it is a complete, well-formed HTTP
 * response head with an Auth-Status.
 */
int http_parse_head(char *resp, size_t len, struct http_answer *a);

#endif
