/*
 * libFuzzer target for the parsers that see client bytes before login.
 * Every input goes through all of them; a broken invariant abort()s.
 *
 *  - imap_parse(), command after pipelined command, on each whole and on
 *    its prefixes (the session re-parses from the start as bytes arrive,
 *    so no prefix may be answered otherwise than the whole), each in a
 *    buffer of exactly its size so that ASan sees any read past the end;
 *  - imap_skip() against imap_parse(): a command that parses must be
 *    skipped to its end, or to its first {n} header;
 *  - the session's framing, modelled on both: however the bytes arrive
 *    and wherever a command is rejected, no command starts inside a
 *    literal's data (no tag from inside a literal is ever answered);
 *  - imap_skip() and imap_id() fed whole, byte by byte and in chunks of
 *    random sizes: the scanners are resumable, so the split must not
 *    change where they stop or what they report;
 *  - b64_decode() against a plain validity check, and round trips;
 *  - sasl_plain() and sasl_login_field() against a reference split.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "imap_parse.h"
#include "bounds.h"
#include "http_parse.h"
#include "proxy.h"
#include "sasl.h"

/* Not assert(): it must hold with NDEBUG too. */
#define must(e)	do { if (!(e)) abort(); } while (0)

/* Prefixes tried per command: all of them up to this length, then a
 * sample, so that long inputs stay fast. */
#define PREFIX_ALL	512
#define PREFIX_STRIDE	61

static uint64_t rng;

static size_t
rnd(size_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (size_t)(rng % n);
}

static void *
dup_exact(const uint8_t *p, size_t len)
{
	void *b = malloc(len > 0 ? len : 1);

	must(b != NULL);
	if (len > 0)
		memcpy(b, p, len);
	return b;
}

/* ---- imap_parse ---- */

static enum imap_status
parse(const uint8_t *p, size_t len, struct imap_cmd *c)
{
	unsigned char *b = dup_exact(p, len);
	enum imap_status st = imap_parse(b, len, c);

	free(b);
	return st;
}

static int
astring_char(int c)
{
	return c > 0x20 && c != 0x7f && strchr("(){%*\"\\", c) == NULL;
}

/* Is the literal whose data starts at off a {n} (not {n+})? */
static int
literal_is_sync(const uint8_t *p, size_t off)
{
	size_t i = off - 1;		/* the header's LF */

	if (i > 0 && p[i - 1] == '\r')
		i--;
	must(i >= 2 && p[i - 1] == '}');
	return p[i - 2] != '+';
}

static void
check_arg(const uint8_t *p, const struct imap_cmd *c, int k)
{
	const struct imap_arg *a = &c->arg[k];
	char *out;
	size_t i;
	int n;

	must(a->off + a->len <= c->end && a->off > c->name_off);
	switch (a->type) {
	case ARG_ATOM:
		must(a->len > 0);
		for (i = 0; i < a->len; i++)
			must(astring_char(p[a->off + i]));
		break;
	case ARG_QUOTED:
		must(p[a->off - 1] == '"' && p[a->off + a->len] == '"');
		break;
	case ARG_LITERAL:
		must(p[a->off - 1] == '\n');
		break;
	}
	/* The copy: exactly enough room works, one byte less does not. */
	out = malloc(a->len + 1);
	must(out != NULL);
	n = imap_arg_copy(p, a, out, a->len + 1);
	if (a->type == ARG_LITERAL && memchr(p + a->off, '\0', a->len)) {
		must(n == -1);
	} else {
		must(n >= 0 && (size_t)n <= a->len && out[n] == '\0');
		must(memchr(out, '\0', (size_t)n) == NULL);
		must(a->type != ARG_QUOTED || strchr(out, '\r') == NULL);
		if (a->type != ARG_QUOTED)
			must(memcmp(out, p + a->off, a->len) == 0);
		if (n > 0)
			must(imap_arg_copy(p, a, out, (size_t)n) == -1);
	}
	free(out);
}

/* What any answer about p[0..len) must satisfy on its own. */
static void
check_cmd(const uint8_t *p, size_t len, enum imap_status st,
    const struct imap_cmd *c)
{
	size_t i;
	int k;

	switch (st) {
	case IMAP_DONE:
		must(c->end >= 1 && c->end <= len && p[c->end - 1] == '\n');
		must(c->tag_ok && c->tag_len >= 1 && c->tag_len <= TAG_MAX);
		for (i = 0; i < c->tag_len; i++)
			must(imap_tag_char(p[i]));
		must(p[c->tag_len] == ' ' && c->name_off == c->tag_len + 1);
		must(c->name_len >= 1 && c->name_len <= CMDNAME_MAX);
		must(c->nargs >= 0 && c->nargs <= IMAP_ARGS_MAX);
		must(c->error == NULL);
		for (k = 0; k < c->nargs; k++)
			check_arg(p, c, k);
		break;
	case IMAP_LITERAL:
		must(c->lit_sync == 1 && c->lit_size <= LITERAL_SKIP_MAX);
		must(c->lit_hdr_end <= len && p[c->lit_hdr_end - 1] == '\n');
		must(len - c->lit_hdr_end < c->lit_size ||
		    len == c->lit_hdr_end);
		break;
	case IMAP_BAD:
		must(c->error != NULL);
		if (c->lit_size == UINT64_MAX)
			must(c->lit_hdr_end <= len);
		break;
	case IMAP_MORE:
		must(c->name_len <= CMDNAME_MAX + 1);
		break;
	default:
		abort();
	}
}

/* The answer for a k-byte prefix against the whole's (see header). */
static void
check_prefix(const uint8_t *p, size_t k, enum imap_status whole,
    const struct imap_cmd *w, int *seen_bad)
{
	struct imap_cmd c;
	enum imap_status st = parse(p, k, &c);
	int i;

	check_cmd(p, k, st, &c);
	if (whole == IMAP_DONE && k >= w->end) {
		must(st == IMAP_DONE && c.end == w->end && c.nargs == w->nargs);
		for (i = 0; i < w->nargs; i++)
			must(c.arg[i].off == w->arg[i].off &&
			    c.arg[i].len == w->arg[i].len &&
			    c.arg[i].type == w->arg[i].type);
		return;
	}
	if (st == IMAP_BAD) {
		/* Once bad, bad from then on, and for the same reason. */
		must(whole == IMAP_BAD && strcmp(c.error, w->error) == 0);
		*seen_bad = 1;
		return;
	}
	must(!*seen_bad && (st == IMAP_MORE || st == IMAP_LITERAL));
	/* A long name is reported as soon as it is known to be too long. */
	if (w->name_len > CMDNAME_MAX && c.name_len > 0)
		must(c.name_len == w->name_len);
}

/* A command that parses is skipped to its end, or to its first {n}
 * header: the skipper must frame it as the parser does. */
static void
check_skip_agrees(const uint8_t *p, const struct imap_cmd *w)
{
	struct imap_skip s;
	enum skip_status st;
	size_t used, sync_at = 0;
	int k;

	for (k = 0; k < w->nargs && sync_at == 0; k++)
		if (w->arg[k].type == ARG_LITERAL &&
		    literal_is_sync(p, w->arg[k].off))
			sync_at = w->arg[k].off;
	imap_skip_init(&s);
	st = imap_skip(&s, p, w->end, &used);
	if (sync_at != 0)
		must(st == SKIP_SYNC && used == sync_at);
	else
		must(st == SKIP_END && used == w->end);
}

static void
fuzz_parse(const uint8_t *p, size_t len)
{
	struct imap_cmd w;
	enum imap_status whole;
	size_t k, lim;
	int seen_bad;

	/* Command after command, as the session consumes them. */
	for (;;) {
		whole = parse(p, len, &w);
		check_cmd(p, len, whole, &w);
		lim = whole == IMAP_DONE ? w.end : len;
		seen_bad = 0;
		for (k = 0; k < len; k++) {
			if (k >= PREFIX_ALL && k + 4 < lim &&
			    k % PREFIX_STRIDE != 0)
				continue;
			check_prefix(p, k, whole, &w, &seen_bad);
			if (whole == IMAP_DONE && k > w.end + 4)
				break;
		}
		if (whole != IMAP_DONE)
			return;
		check_skip_agrees(p, &w);
		p += w.end;
		len -= w.end;
	}
}

/* ---- the session's framing: no literal's data is ever a command ---- */

/*
 * A model of the session's command loop (src/session.c) over the pure
 * parser and skipper.  Bytes arrive in chunks; a parse that stops at a
 * {n} header not yet answered gets "+"; a command is rejected wherever
 * the session may reject one -- the parse says BAD, or at random where
 * the session's own checks could (an unknown name as soon as the name is
 * known, a {n} or {n+} too large) -- and skipping then starts at
 * cmd->resume.  Every byte the parser took as a literal's data, and every
 * byte of a literal answered "+", is data: no command may start inside
 * one, so no tagged reply can carry a tag that appears only inside a
 * literal (issue 9).
 */
struct model {
	const uint8_t	*p;
	size_t		 len, avail, chunk;
	unsigned char	*lit;		/* 1: a byte of some literal's data */
};

static void
mark_literal(struct model *m, size_t lo, uint64_t n)
{
	size_t hi = n > m->len - lo ? m->len : lo + (size_t)n;

	if (hi > lo)
		memset(m->lit + lo, 1, hi - lo);
}

/* More bytes arrive (chunk 0: all at once); 0 when there are no more. */
static int
arrive(struct model *m)
{
	if (m->avail == m->len)
		return 0;
	m->avail += m->chunk == 0 ? m->len - m->avail :
	    1 + rnd(m->len - m->avail);
	return 1;
}

/* Parse the command at pos until it is done or rejected; 0: the input
 * ended first (or the session would close). */
static int
model_command(struct model *m, size_t pos, struct imap_cmd *c, int *reject)
{
	enum imap_status st;
	size_t acked = 0;
	int k, named = 0;

	for (;;) {
		st = parse(m->p + pos, m->avail - pos, c);
		for (k = 0; k < c->nargs; k++)
			if (c->arg[k].type == ARG_LITERAL)
				mark_literal(m, pos + c->arg[k].off,
				    c->arg[k].len);
		must(c->resume <= m->avail - pos);
		for (k = 0; k < c->nargs; k++)
			must(c->arg[k].off + c->arg[k].len <= c->resume);
		*reject = st == IMAP_BAD;
		if (c->name_len > 0 && !named) {
			named = 1;
			*reject |= rnd(8) == 0;		/* unknown command */
		}
		if (st == IMAP_MORE && c->lit_hdr_end > 0 && !c->lit_sync)
			*reject |= rnd(4) == 0;		/* {n+} too large */
		if (!*reject && st == IMAP_LITERAL && c->lit_hdr_end > acked) {
			if (rnd(4) == 0)
				*reject = 1;		/* {n} too large */
			else {
				mark_literal(m, pos + c->lit_hdr_end,
				    c->lit_size);
				acked = c->lit_hdr_end;
			}
		}
		if (st == IMAP_BAD && c->lit_size == UINT64_MAX &&
		    !c->lit_sync)
			return 0;	/* BAD, then BYE: nothing more is read */
		if (*reject || st == IMAP_DONE)
			return 1;
		if (!arrive(m))
			return 0;
	}
}

static void
fuzz_session(const uint8_t *p, size_t len, size_t chunk)
{
	struct model m = { p, len, 0, chunk, calloc(len + 1, 1) };
	struct imap_cmd c;
	struct imap_skip s;
	enum skip_status st;
	unsigned char *b;
	size_t pos = 0, used;
	int reject;

	must(m.lit != NULL);
	(void)arrive(&m);
	while (pos < len) {
		/* A command starts here: a tagged reply would carry its tag. */
		must(!m.lit[pos]);
		if (!model_command(&m, pos, &c, &reject))
			break;
		if (!reject) {
			pos += c.end;
			continue;
		}
		pos += c.resume;
		imap_skip_init(&s);
		for (;;) {
			b = dup_exact(p + pos, m.avail - pos);
			st = imap_skip(&s, b, m.avail - pos, &used);
			free(b);
			pos += used;
			if (st != SKIP_MORE || !arrive(&m))
				break;
		}
		if (st == SKIP_MORE || st == SKIP_HUGE)
			break;
	}
	free(m.lit);
}

/* ---- imap_skip ---- */

struct skip_out {
	enum skip_status st;
	size_t	 used;
	uint64_t lit_left;
};

/* chunk 0: all at once; SIZE_MAX: random sizes. */
static void
skip_feed(const uint8_t *p, size_t len, uint64_t lit, size_t chunk,
    struct skip_out *o)
{
	struct imap_skip s;
	size_t off = 0, n, used;
	unsigned char *b;

	imap_skip_literal(&s, lit);
	o->st = SKIP_MORE;
	while (off < len) {
		n = chunk == 0 ? len - off :
		    chunk == SIZE_MAX ? 1 + rnd(len - off) :
		    chunk < len - off ? chunk : len - off;
		b = dup_exact(p + off, n);
		o->st = imap_skip(&s, b, n, &used);
		free(b);
		must(used <= n);
		off += used;
		if (o->st != SKIP_MORE)
			break;
		must(used == n);
	}
	o->used = off;
	o->lit_left = s.lit_left;
	switch (o->st) {
	case SKIP_END:
	case SKIP_SYNC:
	case SKIP_HUGE:
		must(off >= 1 && p[off - 1] == '\n');
		break;
	case SKIP_MORE:
		must(off == len);
		break;
	}
}

static void
fuzz_skip(const uint8_t *p, size_t len, uint64_t lit)
{
	static const size_t chunks[] = { 1, 2, 3, 7, SIZE_MAX, SIZE_MAX };
	struct skip_out whole, o;
	size_t i;

	skip_feed(p, len, lit, 0, &whole);
	for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		skip_feed(p, len, lit, chunks[i], &o);
		must(o.st == whole.st && o.used == whole.used);
		if (o.st == SKIP_MORE)
			must(o.lit_left == whole.lit_left);
	}
}

/* ---- imap_id ---- */

struct id_out {
	size_t	*ev;		/* offset after each ID_LITERAL */
	size_t	 nev, max;
	enum id_status st;	/* the last status */
	size_t	 used;
	struct imap_id s;
};

static void
id_feed(const uint8_t *p, size_t len, size_t chunk, struct id_out *o)
{
	size_t off = 0, end = 0, used;
	unsigned char *b;

	imap_id_init(&o->s);
	o->nev = 0;
	o->st = ID_MORE;
	while (off < len) {
		if (off == end)
			end = chunk == 0 ? len :
			    chunk == SIZE_MAX ? off + 1 + rnd(len - off) :
			    chunk < len - off ? off + chunk : len;
		b = dup_exact(p + off, end - off);
		o->st = imap_id(&o->s, b, end - off, &used);
		free(b);
		must(used <= end - off);
		off += used;
		if (o->st == ID_MORE) {
			must(off == end);
			continue;
		}
		if (o->st != ID_LITERAL)
			break;
		/* Just past a {n} header: its LF. */
		must(off >= 1 && p[off - 1] == '\n' && o->s.sync);
		must(o->nev < o->max);
		o->ev[o->nev++] = off;
	}
	o->used = off;
	switch (o->st) {
	case ID_DONE:
		must(p[off - 1] == '\n' && o->s.error == NULL);
		must(o->s.nstrings % 2 == 0 &&
		    o->s.nstrings <= 2 * ID_PAIRS_MAX);
		break;
	case ID_BAD:
		must(o->s.error != NULL);
		must(!o->s.ended_sync || o->s.lit_left == 0);
		break;
	case ID_MORE:
	case ID_LITERAL:
		must(off == len);
		break;
	}
}

/* After ID_BAD the session skips the rest: that must be resumable too. */
static void
id_then_skip(const uint8_t *p, size_t len, const struct id_out *o)
{
	if (o->st != ID_BAD || o->s.ended_sync)
		return;
	fuzz_skip(p + o->used, len - o->used, o->s.lit_left);
}

static void
fuzz_id(const uint8_t *p, size_t len)
{
	static const size_t chunks[] = { 1, 2, 5, SIZE_MAX, SIZE_MAX };
	struct id_out whole, o;
	size_t i, max = len / 4 + 2;

	whole.ev = malloc(max * sizeof(size_t));
	o.ev = malloc(max * sizeof(size_t));
	must(whole.ev != NULL && o.ev != NULL);
	whole.max = o.max = max;
	id_feed(p, len, 0, &whole);
	for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		id_feed(p, len, chunks[i], &o);
		must(o.st == whole.st && o.used == whole.used);
		must(o.nev == whole.nev &&
		    memcmp(o.ev, whole.ev, o.nev * sizeof(size_t)) == 0);
		must(o.s.error == whole.s.error &&
		    o.s.ended_sync == whole.s.ended_sync &&
		    o.s.lit_left == whole.s.lit_left &&
		    o.s.nstrings == whole.s.nstrings);
	}
	id_then_skip(p, len, &whole);
	free(whole.ev);
	free(o.ev);
}

/* ---- base64 ---- */

static int
b64_char(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* RFC 4648 with padding: the decoded length, or -1. */
static long
b64_valid(const uint8_t *p, size_t len)
{
	size_t i, pad = 0;

	if (len % 4 != 0)
		return -1;
	if (len > 0 && p[len - 1] == '=')
		pad = len > 1 && p[len - 2] == '=' ? 2 : 1;
	for (i = 0; i < len - pad; i++)
		if (!b64_char(p[i]))
			return -1;
	return (long)(len / 4 * 3 - pad);
}

static void
fuzz_b64(const uint8_t *p, size_t len)
{
	size_t max = len / 4 * 3, elen = (len + 2) / 3 * 4 + 1;
	unsigned char *out = malloc(len + 3), *back;
	char *enc = malloc(elen), *text;
	long n, m, want = b64_valid(p, len);

	must(out != NULL && enc != NULL);
	/* Decoding the input as text. */
	text = dup_exact(p, len);
	n = b64_decode(text, len, out, max);
	must(n == want);
	if (n > 0)
		must(b64_decode(text, len, out, (size_t)n - 1) == -1);
	if (n >= 0) {
		/* Re-encoded: the same length, and it decodes the same. */
		back = malloc((size_t)n + 1);
		must(back != NULL);
		must(b64_encode(out, (size_t)n, enc, elen) == (long)len);
		must(b64_decode(enc, len, back, (size_t)n) == n);
		must(memcmp(back, out, (size_t)n) == 0);
		free(back);
	}
	free(text);
	/* Encoding the input as bytes, into exactly enough room. */
	must(b64_encode(p, len, enc, elen) == (long)(elen - 1));
	must(enc[elen - 1] == '\0');
	must(b64_encode(p, len, enc, elen - 1) == -1);
	m = b64_decode(enc, elen - 1, out, len + 3);
	must(m == (long)len && memcmp(out, p, len) == 0);
	free(out);
	free(enc);
}

/* ---- SASL PLAIN and LOGIN ---- */

static void
fuzz_sasl(const uint8_t *p, size_t len)
{
	char user[USER_MAX + 1], pass[PASS_MAX + 1];
	const uint8_t *z1, *z2;
	size_t zlen, clen, plen;
	enum sasl_result r, want;
	unsigned char *b = dup_exact(p, len);

	r = sasl_plain(b, len, user, sizeof(user), pass, sizeof(pass));
	/* The reference: split at the first two NULs. */
	want = SASL_MALFORMED;
	if ((z1 = memchr(p, '\0', len)) != NULL &&
	    (z2 = memchr(z1 + 1, '\0', len - (size_t)(z1 + 1 - p))) != NULL) {
		zlen = (size_t)(z1 - p);
		clen = (size_t)(z2 - z1 - 1);
		plen = len - (size_t)(z2 + 1 - p);
		if (clen > 0 && clen <= USER_MAX && plen <= PASS_MAX &&
		    memchr(z2 + 1, '\0', plen) == NULL) {
			want = zlen == 0 || (zlen == clen &&
			    memcmp(p, z1 + 1, clen) == 0) ? SASL_OK :
			    SASL_AUTHZ;
			if (r == want) {
				must(strlen(user) == clen &&
				    memcmp(user, z1 + 1, clen) == 0);
				must(strlen(pass) == plen &&
				    memcmp(pass, z2 + 1, plen) == 0);
			}
		}
	}
	must(r == want);
	r = sasl_login_field(b, len, user, sizeof(user));
	must(r == (len <= USER_MAX && memchr(p, '\0', len) == NULL ?
	    SASL_OK : SASL_MALFORMED));
	free(b);
}

/*
 * PROXY headers: a DONE must hold whatever follows the header, never
 * claim more than it was given, and give addresses that build back into a
 * header that parses to the same addresses.
 */
static void
fuzz_proxy(const uint8_t *data, size_t size)
{
	struct proxy_addr a, b;
	unsigned char out[PROXY_V2_MAX];
	enum proxy_status st;
	size_t used, used2, n, i;

	st = proxy_parse(data, size, &a, &used);
	if (st != PROXY_DONE)
		return;
	if (used == 0 || used > size)
		abort();
	for (i = 0; i < used; i++)
		if (proxy_parse(data, i, &b, &used2) == PROXY_DONE)
			abort();
	if (a.local)
		return;
	n = proxy_build_v2(&a, out, sizeof(out));
	if (n == 0 || proxy_parse(out, n, &b, &used2) != PROXY_DONE ||
	    used2 != n || strcmp(a.src_port, b.src_port) != 0 ||
	    strcmp(a.dst_port, b.dst_port) != 0)
		abort();
	n = proxy_build_v1(&a, out, sizeof(out));
	if (n == 0 || proxy_parse(out, n, &b, &used2) != PROXY_DONE ||
	    used2 != n || strcmp(a.src_ip, b.src_ip) != 0 ||
	    strcmp(a.dst_ip, b.dst_ip) != 0)
		abort();
}

/*
 * The OAuth and CRAM-MD5 decoders: whatever they accept yields strings
 * that fit, hold no NUL, and (tokens, digests) nothing that could break
 * an HTTP header line.
 */
static void
fuzz_sasl_more(const uint8_t *p, size_t len)
{
	char user[USER_MAX + 1], token[PASS_MAX + 1], hex[33];
	unsigned char *b = dup_exact(p, len);

	if (sasl_oauthbearer(b, len, user, sizeof(user), token,
	    sizeof(token)) == SASL_OK)
		must(token[0] != '\0' && strpbrk(token, "\r\n ") == NULL &&
		    strlen(user) <= USER_MAX);
	if (sasl_xoauth2(b, len, user, sizeof(user), token, sizeof(token)) ==
	    SASL_OK)
		must(token[0] != '\0' && strpbrk(token, "\r\n ") == NULL &&
		    strlen(user) <= USER_MAX);
	if (sasl_cram_md5(b, len, user, sizeof(user), hex, sizeof(hex)) ==
	    SASL_OK)
		must(strlen(hex) == 32 &&
		    strspn(hex, "0123456789abcdef") == 32 && user[0] != '\0');
	free(b);
}

/* No field of an accepted auth_http answer holds a control byte: none
 * can reach the client's line or the backend login unescaped. */
static int
printable(const char *v)
{
	for (; *v != '\0'; v++)
		if (((unsigned char)*v < 0x20 && *v != '\t') || *v == 0x7f)
			return 0;
	return 1;
}

static void
fuzz_http(const uint8_t *p, size_t len)
{
	static struct http_answer a;
	char *b;

	if (len > AUTH_HTTP_RESPONSE_MAX)
		return;
	b = malloc(len + 1);
	must(b != NULL);
	memcpy(b, p, len);
	b[len] = '\0';
	if (http_parse_head(b, len, &a) == 0)
		must(a.status[0] != '\0' && printable(a.status) &&
		    printable(a.wait) && printable(a.server) &&
		    printable(a.port) && printable(a.user) && printable(a.pass));
	free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_cmd c;
	size_t i, skip_id = 0;

	rng = 0x9e3779b97f4a7c15ull;
	for (i = 0; i < size; i++)
		rng = (rng ^ data[i]) * 0x100000001b3ull;
	if (rng == 0)
		rng = 1;

	fuzz_parse(data, size);
	fuzz_session(data, size, 0);
	fuzz_session(data, size, SIZE_MAX);
	fuzz_session(data, size, SIZE_MAX);
	fuzz_skip(data, size, 0);
	if (size > 0)
		fuzz_skip(data + 1, size - 1, data[0] % 16);
	/* ID arguments: after an ID command's name (as soon as the session
	 * sees one, whatever follows), else the whole input. */
	(void)parse(data, size, &c);
	if (c.name_len > 0 && imap_name_is(data, &c, "ID"))
		skip_id = c.name_off + c.name_len;
	fuzz_id(data + skip_id, size - skip_id);
	fuzz_b64(data, size);
	fuzz_sasl(data, size);
	fuzz_proxy(data, size);
	fuzz_sasl_more(data, size);
	fuzz_http(data, size);
	return 0;
}
