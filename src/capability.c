/*
 * CAPABILITY, computed in one place (REFERENCE.md section 2).
 */
#include <string.h>
#include <strings.h>

#include "capability.h"

struct capa_out {
	char	*p;
	size_t	 len, size;
	int	 overflow;
};

static void
add(struct capa_out *o, const char *tok)
{
	size_t n = strlen(tok) + (o->len > 0);

	if (o->len + n + 1 > o->size) {
		o->overflow = 1;
		return;
	}
	if (o->len > 0)
		o->p[o->len++] = ' ';
	memcpy(o->p + o->len, tok, strlen(tok) + 1);
	o->len += strlen(tok);
}

static int
listed(const struct capa_policy *p, const char *tok)
{
	size_t i;

	for (i = 0; i < p->ntokens; i++)
		if (strcasecmp(p->tokens[i], tok) == 0)
			return 1;
	return 0;
}

int
capability_build(const struct capa_policy *p, char *out, size_t outsize)
{
	struct capa_out o = { out, 0, outsize, 0 };
	int plaintext_ok;
	size_t i;

	if (outsize == 0)
		return -1;
	out[0] = '\0';
	for (i = 0; i < p->ntokens; i++)
		add(&o, p->tokens[i]);
	/*
	 * What imapgate itself implements before login.  LITERAL- and not
	 * LITERAL+: the command buffer is fixed, so a non-synchronizing
	 * literal must be small; an operator who lists either gets theirs.
	 */
	if (!listed(p, "ID"))
		add(&o, "ID");
	if (!listed(p, "SASL-IR"))
		add(&o, "SASL-IR");
	if (!listed(p, "LITERAL+") && !listed(p, "LITERAL-"))
		add(&o, "LITERAL-");
	plaintext_ok = p->tls_active || p->starttls != STARTTLS_ONLY;
	if (plaintext_ok && (p->auth_methods & AUTHM_PLAIN))
		add(&o, "AUTH=PLAIN");
	if (plaintext_ok && (p->auth_methods & AUTHM_LOGIN))
		add(&o, "AUTH=LOGIN");
	if (plaintext_ok && (p->auth_methods & AUTHM_CRAM_MD5))
		add(&o, "AUTH=CRAM-MD5");
	if (plaintext_ok && (p->auth_methods & AUTHM_OAUTHBEARER))
		add(&o, "AUTH=OAUTHBEARER");
	if (plaintext_ok && (p->auth_methods & AUTHM_XOAUTH2))
		add(&o, "AUTH=XOAUTH2");
	if (p->tls_active && p->external && (p->auth_methods & AUTHM_EXTERNAL))
		add(&o, "AUTH=EXTERNAL");
	if (!p->tls_active && p->starttls != STARTTLS_OFF)
		add(&o, "STARTTLS");
	if (!p->tls_active && p->starttls == STARTTLS_ONLY)
		add(&o, "LOGINDISABLED");
	return o.overflow ? -1 : (int)o.len;
}

int
capability_token_ok(const char *tok)
{
	const unsigned char *p = (const unsigned char *)tok;

	if (*p == '\0')
		return 0;
	for (; *p != '\0'; p++)
		if (*p <= 0x20 || *p >= 0x7f || strchr("(){%*\"\\]", *p))
			return 0;
	return 1;
}
