/*
 * Parsing nginx auth_http responses: only the header lines matter; the
 * status line and the body are ignored, as nginx does.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http_parse.h"

/* Header names are letters, digits and '-'; values printable. */
static int
header_ok(const char *name, size_t nlen, const char *value)
{
	const unsigned char *v;

	if (nlen == 0 || strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijkl"
	    "mnopqrstuvwxyz0123456789-") != nlen)
		return 0;
	for (v = (const unsigned char *)value; *v != '\0'; v++)
		if ((*v < 0x20 && *v != '\t') || *v == 0x7f)
			return 0;
	return 1;
}

static void
take(struct http_answer *a, const char *name, size_t nlen, const char *value)
{
	static const struct {
		const char	*name;
		size_t		 off, size;
	} fields[] = {
#define F(n, m) { n, offsetof(struct http_answer, m), \
	    sizeof(((struct http_answer *)0)->m) }
		F("Auth-Status", status),
		F("Auth-Wait", wait),
		F("Auth-Server", server),
		F("Auth-Port", port),
		F("Auth-User", user),
		F("Auth-Pass", pass),
#undef F
	};
	size_t i;

	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (strlen(fields[i].name) == nlen &&
		    strncasecmp(fields[i].name, name, nlen) == 0)
			snprintf((char *)a + fields[i].off, fields[i].size, "%s",
			    value);
}

/* The head of one response, parsed in place. */
static int
parse_head(char *resp, struct http_answer *a)
{
	char *line, *next, *colon, *value;
	int ended = 0;

	memset(a, 0, sizeof(*a));
	if (strncmp(resp, "HTTP/", 5) != 0 || strchr(resp, '\n') == NULL)
		return -1;
	line = strchr(resp, '\n') + 1;	/* the status line says nothing */
	for (; *line != '\0'; line = next) {
		if ((next = strchr(line, '\n')) == NULL)
			return -1;	/* cut off inside a header */
		*next++ = '\0';
		if (next - line >= 2 && next[-2] == '\r')
			next[-2] = '\0';
		if (*line == '\0') {
			ended = 1;
			break;
		}
		if ((colon = strchr(line, ':')) == NULL)
			return -1;
		value = colon + 1;
		value += strspn(value, " \t");
		*colon = '\0';
		if (!header_ok(line, strlen(line), value))
			return -1;
		take(a, line, strlen(line), value);
	}
	/* Without the blank line the server stopped half-way: nginx calls
	 * that an error too. */
	return ended ? 0 : -1;
}

int
http_parse_head(char *resp, size_t len, struct http_answer *a)
{
	if (memchr(resp, '\0', len) != NULL || parse_head(resp, a) < 0 ||
	    a->status[0] == '\0')
		return -1;
	return 0;
}
