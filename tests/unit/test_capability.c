/*
 * capability_build() and capability_token_ok().
 */
#include <string.h>

#include "capability.h"
#include "bounds.h"
#include "unit.h"

static char *const defaults[] = { "IMAP4", "IMAP4rev1", "UIDPLUS" };

#define BASE	"IMAP4 IMAP4rev1 UIDPLUS ID SASL-IR LITERAL-"

static void
policy(struct capa_policy *p, unsigned methods, enum starttls_mode st,
    int tls)
{
	p->tokens = defaults;
	p->ntokens = 3;
	p->auth_methods = methods;
	p->starttls = st;
	p->tls_active = tls;
	p->external = 0;
}

/* Build and compare, return value included. */
static void
capa_check(const char *f, int l, const struct capa_policy *p,
    const char *want)
{
	char out[CAPABILITY_MAX + 1];

	memset(out, 'x', sizeof(out));
	CHECK_EQ_AT(f, l, capability_build(p, out, sizeof(out)),
	    (long long)strlen(want));
	CHECK_STR_AT(f, l, out, want);
}

#define CAPA(p, want)	capa_check(__FILE__, __LINE__, p, want)

static void
capa_defaults(void)
{
	struct capa_policy p;

	policy(&p, AUTHM_PLAIN, STARTTLS_OFF, 0);
	CAPA(&p, BASE " AUTH=PLAIN");
	policy(&p, AUTHM_PLAIN | AUTHM_LOGIN, STARTTLS_OFF, 0);
	CAPA(&p, BASE " AUTH=PLAIN AUTH=LOGIN");
	policy(&p, AUTHM_LOGIN, STARTTLS_OFF, 0);
	CAPA(&p, BASE " AUTH=LOGIN");
	policy(&p, 0, STARTTLS_OFF, 0);
	CAPA(&p, BASE);
	policy(&p, AUTHM_PLAIN, STARTTLS_OFF, 1);
	CAPA(&p, BASE " AUTH=PLAIN");
}

static void
capa_operator_tokens(void)
{
	static char *const plus[] = { "IMAP4rev1", "LITERAL+", "IDLE" };
	static char *const minus[] = { "IMAP4rev1", "literal-" };
	static char *const id[] = { "IMAP4rev1", "id", "SASL-IR" };
	static char *const none[] = { NULL };
	struct capa_policy p;

	policy(&p, AUTHM_PLAIN, STARTTLS_OFF, 0);
	p.tokens = plus;
	p.ntokens = 3;
	CAPA(&p, "IMAP4rev1 LITERAL+ IDLE ID SASL-IR AUTH=PLAIN");
	p.tokens = minus;
	p.ntokens = 2;
	CAPA(&p, "IMAP4rev1 literal- ID SASL-IR AUTH=PLAIN");
	p.tokens = id;
	p.ntokens = 3;
	CAPA(&p, "IMAP4rev1 id SASL-IR LITERAL- AUTH=PLAIN");
	p.tokens = none;
	p.ntokens = 0;
	CAPA(&p, "ID SASL-IR LITERAL- AUTH=PLAIN");
}

static void
capa_starttls(void)
{
	struct capa_policy p;

	policy(&p, AUTHM_PLAIN, STARTTLS_ON, 0);
	CAPA(&p, BASE " AUTH=PLAIN STARTTLS");
	policy(&p, AUTHM_PLAIN | AUTHM_LOGIN, STARTTLS_ONLY, 0);
	CAPA(&p, BASE " STARTTLS LOGINDISABLED");
	/* After STARTTLS (or on 993): AUTH= back, STARTTLS gone. */
	policy(&p, AUTHM_PLAIN | AUTHM_LOGIN, STARTTLS_ONLY, 1);
	CAPA(&p, BASE " AUTH=PLAIN AUTH=LOGIN");
	policy(&p, AUTHM_PLAIN, STARTTLS_ON, 1);
	CAPA(&p, BASE " AUTH=PLAIN");
	/* EXTERNAL: listed, over TLS, with a verified certificate only. */
	policy(&p, AUTHM_PLAIN | AUTHM_EXTERNAL, STARTTLS_ON, 1);
	CAPA(&p, BASE " AUTH=PLAIN");
	p.external = 1;
	CAPA(&p, BASE " AUTH=PLAIN AUTH=EXTERNAL");
	policy(&p, AUTHM_PLAIN | AUTHM_EXTERNAL, STARTTLS_ON, 0);
	p.external = 1;
	CAPA(&p, BASE " AUTH=PLAIN STARTTLS");
	policy(&p, AUTHM_PLAIN, STARTTLS_ON, 1);
	p.external = 1;
	CAPA(&p, BASE " AUTH=PLAIN");
}

static void
capa_overflow(void)
{
	static char *many[CAPA_TOKENS_MAX];
	static char tok[40] = "X-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
	struct capa_policy p;
	char out[CAPABILITY_MAX + 1];
	size_t len = strlen(BASE " AUTH=PLAIN");
	int i;

	policy(&p, AUTHM_PLAIN, STARTTLS_OFF, 0);
	CHECK_EQ(capability_build(&p, out, len + 1), (long long)len);
	CHECK_STR(out, BASE " AUTH=PLAIN");
	CHECK_EQ(capability_build(&p, out, len), -1);
	CHECK_EQ(capability_build(&p, out, 1), -1);
	CHECK_EQ(capability_build(&p, out, 0), -1);
	/* What the configuration could ask for at most: 63 long tokens. */
	for (i = 0; i < CAPA_TOKENS_MAX; i++)
		many[i] = tok;
	p.tokens = many;
	p.ntokens = CAPA_TOKENS_MAX - 1;
	CHECK_EQ(capability_build(&p, out, sizeof(out)), -1);
	p.ntokens = 20;
	CHECK_EQ(capability_build(&p, out, sizeof(out)),
	    (long long)(20 * (strlen(tok) + 1) + strlen("ID SASL-IR LITERAL- "
	    "AUTH=PLAIN")));
}

static void
capa_token_ok(void)
{
	static const char *const good[] = {
		"IMAP4rev1", "AUTH=PLAIN", "X-GM-EXT-1", "LITERAL+", "A[B",
		"}", "QUOTA=RES-STORAGE", "~",
	};
	static const char *const bad[] = {
		"", "A B", "A(", "A)", "A{", "A%", "A*", "A\"", "A\\", "A]",
		"A\x7f", "A\x80", "\xc3\xa9", "A\t", "A\r\n", " ",
	};
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		CHECK_EQ(capability_token_ok(good[i]), 1);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_EQ(capability_token_ok(bad[i]), 0);
}

void
suite_capability(void)
{
	RUN(capa_defaults);
	RUN(capa_operator_tokens);
	RUN(capa_starttls);
	RUN(capa_overflow);
	RUN(capa_token_ok);
}
