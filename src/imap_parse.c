/*
 * Pre-auth IMAP tokenizer (RFC 9051 / 3501 command syntax, RFC 7888
 * literals, RFC 2971 ID).  See imap_parse.h for the contract.
 */
#include <string.h>

#include "imap_parse.h"

/* Tag characters as nginx restricts them: a defence against cross-protocol
 * reflection (ALPACA), where an HTTP request line would make a tag. */
int
imap_tag_char(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

/* ASTRING-CHAR, plus 8-bit bytes so UTF-8 user names pass as atoms. */
static int
astring_char(int c)
{
	if (c <= 0x20 || c == 0x7f)
		return 0;
	return strchr("(){%*\"\\", c) == NULL;
}

static int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static enum imap_status
bad(struct imap_cmd *cmd, const char *why)
{
	cmd->error = why;
	return IMAP_BAD;
}

/*
 * Line end at buf[i]: CRLF or a bare LF.  Returns the length of the line
 * end (1 or 2), 0 if buf[i] is not one, -1 if more bytes are needed.
 */
static int
line_end(const unsigned char *buf, size_t len, size_t i)
{
	if (buf[i] == '\n')
		return 1;
	if (buf[i] != '\r')
		return 0;
	if (i + 1 == len)
		return -1;
	return buf[i + 1] == '\n' ? 2 : 0;
}

/* A quoted string starting at buf[*i] == '"'. */
static enum imap_status
scan_quoted(const unsigned char *buf, size_t len, size_t *i,
    struct imap_cmd *cmd)
{
	size_t p = *i + 1;

	for (; p < len; p++) {
		unsigned char c = buf[p];

		if (c == '"') {
			*i = p + 1;
			return IMAP_DONE;
		}
		if (c == '\\') {
			if (++p == len)
				return IMAP_MORE;
			if (buf[p] != '"' && buf[p] != '\\')
				return bad(cmd, "Invalid escape in quoted string");
		} else if (c == '\r' || c == '\n' || c == '\0')
			return bad(cmd, "Invalid quoted string");
	}
	return IMAP_MORE;
}

/* A literal header "{n}" or "{n+}" and its data, starting at buf[*i]. */
static enum imap_status
scan_literal(const unsigned char *buf, size_t len, size_t *i,
    struct imap_cmd *cmd, struct imap_arg *a)
{
	size_t p = *i + 1, digits = 0;
	uint64_t n = 0;
	int sync = 1, le;

	/* Saturate past LITERAL_SKIP_MAX rather than count digits: leading
	 * zeros are allowed (number = 1*DIGIT) and add nothing. */
	for (; p < len && is_digit(buf[p]); p++, digits++)
		if (n <= LITERAL_SKIP_MAX)
			n = n * 10 + (uint64_t)(buf[p] - '0');
	if (p == len)
		return IMAP_MORE;
	if (digits == 0)
		return bad(cmd, "Invalid literal");
	if (buf[p] == '+') {
		sync = 0;
		if (++p == len)
			return IMAP_MORE;
	}
	if (buf[p] != '}')
		return bad(cmd, "Invalid literal");
	if (++p == len)
		return IMAP_MORE;
	if ((le = line_end(buf, len, p)) < 0)
		return IMAP_MORE;
	if (le == 0)
		return bad(cmd, "Literal not at end of line");
	cmd->lit_size = n > LITERAL_SKIP_MAX ? UINT64_MAX : n;
	cmd->lit_sync = sync;
	cmd->lit_hdr_end = p + (size_t)le;
	if (cmd->lit_size == UINT64_MAX)
		return bad(cmd, "Literal too large");
	/* A {n} client waits for "+" before it sends anything more, even
	 * for {0}: nothing past the header means the continuation is due. */
	if (len - cmd->lit_hdr_end < n || (sync && len == cmd->lit_hdr_end))
		return sync ? IMAP_LITERAL : IMAP_MORE;
	a->type = ARG_LITERAL;
	a->off = cmd->lit_hdr_end;
	a->len = (size_t)n;
	*i = a->off + a->len;
	return IMAP_DONE;
}

/* One argument at buf[*i]. */
static enum imap_status
scan_arg(const unsigned char *buf, size_t len, size_t *i, struct imap_cmd *cmd)
{
	struct imap_arg *a;
	enum imap_status st;
	size_t start = *i;

	if (cmd->nargs == IMAP_ARGS_MAX)
		return bad(cmd, "Too many arguments");
	a = &cmd->arg[cmd->nargs];
	if (buf[start] == '"') {
		if ((st = scan_quoted(buf, len, i, cmd)) != IMAP_DONE)
			return st;
		a->type = ARG_QUOTED;
		a->off = start + 1;
		a->len = *i - start - 2;
	} else if (buf[start] == '{') {
		if ((st = scan_literal(buf, len, i, cmd, a)) != IMAP_DONE)
			return st;
	} else {
		while (*i < len && astring_char(buf[*i]))
			(*i)++;
		if (*i == len)
			return IMAP_MORE;
		if (*i == start)
			return bad(cmd, "Invalid characters in arguments");
		a->type = ARG_ATOM;
		a->off = start;
		a->len = *i - start;
	}
	cmd->nargs++;
	return IMAP_DONE;
}

/* Tag and command name; returns IMAP_DONE when both are complete. */
static enum imap_status
scan_head(const unsigned char *buf, size_t len, size_t *i, struct imap_cmd *cmd)
{
	size_t p = 0, start;

	while (p < len && p <= TAG_MAX && imap_tag_char(buf[p]))
		p++;
	if (p > TAG_MAX)
		return bad(cmd, "Invalid tag");
	if (p == len)
		return IMAP_MORE;
	cmd->tag_len = p;
	/* A lone CR may be the start of an empty line or not: wait, so the
	 * answer does not depend on how the bytes were split. */
	if (p == 0 && line_end(buf, len, p) < 0)
		return IMAP_MORE;
	if (p == 0 || buf[p] != ' ')
		return bad(cmd, p == 0 && line_end(buf, len, p) > 0 ?
		    "Empty command line" : "Invalid tag");
	cmd->tag_ok = 1;
	start = ++p;
	while (p < len && astring_char(buf[p]) && p - start <= CMDNAME_MAX)
		p++;
	if (p - start > CMDNAME_MAX) {
		/* No command is this long: name it so it is rejected now. */
		cmd->name_off = start;
		cmd->name_len = p - start;
		return IMAP_MORE;
	}
	if (p == len)
		return IMAP_MORE;
	if (p == start)
		return bad(cmd, "Missing command");
	cmd->name_off = start;
	cmd->name_len = p - start;
	*i = p;
	return IMAP_DONE;
}

enum imap_status
imap_parse(const unsigned char *buf, size_t len, struct imap_cmd *cmd)
{
	enum imap_status st;
	size_t i = 0;
	int le;

	memset(cmd, 0, sizeof(*cmd));
	if ((st = scan_head(buf, len, &i, cmd)) != IMAP_DONE)
		return st;
	for (;;) {
		/* Here: after the name or an argument. */
		if (i == len)
			return IMAP_MORE;
		if (buf[i] == ' ') {
			if (++i == len)
				return IMAP_MORE;
			/* Tolerate one trailing space before the line end. */
			if ((le = line_end(buf, len, i)) < 0)
				return IMAP_MORE;
			if (le == 0) {
				if ((st = scan_arg(buf, len, &i, cmd)) !=
				    IMAP_DONE)
					return st;
				cmd->resume = i;
				continue;
			}
		}
		if ((le = line_end(buf, len, i)) < 0)
			return IMAP_MORE;
		if (le == 0)
			return bad(cmd, buf[i] == '\0' ? "NUL byte in command" :
			    "Invalid characters in arguments");
		cmd->end = i + (size_t)le;
		return IMAP_DONE;
	}
}

int
imap_arg_copy(const unsigned char *buf, const struct imap_arg *a, char *dst,
    size_t dstsize)
{
	size_t i, n = 0;

	if (dstsize == 0)
		return -1;
	for (i = 0; i < a->len; i++) {
		unsigned char c = buf[a->off + i];

		if (a->type == ARG_QUOTED && c == '\\')
			c = buf[a->off + ++i];
		if (c == '\0' || n + 1 >= dstsize)
			return -1;
		dst[n++] = (char)c;
	}
	dst[n] = '\0';
	return (int)n;
}

int
imap_name_is(const unsigned char *buf, const struct imap_cmd *cmd,
    const char *word)
{
	size_t i;

	if (cmd->name_len != strlen(word))
		return 0;
	for (i = 0; i < cmd->name_len; i++) {
		int c = buf[cmd->name_off + i];

		if (c >= 'a' && c <= 'z')
			c -= 'a' - 'A';
		if (c != word[i])
			return 0;
	}
	return 1;
}

/* ---- skipping a rejected command ---- */

enum {
	SK_LINE, SK_QUOTED, SK_QESC, SK_BRACE, SK_DIGITS, SK_PLUS, SK_CLOSE,
	SK_CLOSECR, SK_LITERAL, SK_CR
};

void
imap_skip_init(struct imap_skip *s)
{
	memset(s, 0, sizeof(*s));
	s->state = SK_LINE;
}

void
imap_skip_literal(struct imap_skip *s, uint64_t n)
{
	imap_skip_init(s);
	s->lit_left = n;
	s->state = n > 0 ? SK_LITERAL : SK_LINE;
}

/* A literal header ended; returns SKIP_MORE to go on discarding. */
static enum skip_status
skip_literal_start(struct imap_skip *s)
{
	if (s->sync)
		return SKIP_SYNC;
	if (s->num > LITERAL_SKIP_MAX)
		return SKIP_HUGE;
	imap_skip_literal(s, s->num);
	return SKIP_MORE;
}

enum skip_status
imap_skip(struct imap_skip *s, const unsigned char *p, size_t len,
    size_t *used)
{
	enum skip_status st;
	size_t i = 0;

	while (i < len) {
		unsigned char c = p[i];

		if (s->state == SK_LITERAL) {
			size_t n = len - i;

			if ((uint64_t)n > s->lit_left)
				n = (size_t)s->lit_left;
			i += n;
			if ((s->lit_left -= n) == 0)
				s->state = SK_LINE;
			continue;
		}
		i++;
		switch (s->state) {
		case SK_QESC:
			s->state = SK_QUOTED;
			if (c != '\n')
				continue;
			break;
		case SK_QUOTED:
			if (c == '\\')
				s->state = SK_QESC;
			else if (c == '"')
				s->state = SK_LINE;
			else if (c == '\r')
				s->state = SK_CR;
			if (c != '\n')
				continue;
			break;
		case SK_BRACE:
		case SK_DIGITS:
			if (is_digit(c)) {
				if (s->num <= LITERAL_SKIP_MAX)
					s->num = s->num * 10 + (c - '0');
				s->state = SK_DIGITS;
				continue;
			}
			/* "{}" and "{+}" are no literals, as in imap_parse():
			 * the line they end is the command's last. */
			if ((c == '+' || c == '}') && s->state == SK_DIGITS) {
				s->sync = c == '}';
				s->state = c == '+' ? SK_PLUS : SK_CLOSE;
				continue;
			}
			i--;	/* not a literal after all: rescan as text */
			s->state = SK_LINE;
			continue;
		case SK_PLUS:
			if (c == '}') {
				s->state = SK_CLOSE;
				continue;
			}
			i--;
			s->state = SK_LINE;
			continue;
		case SK_CLOSE:
		case SK_CLOSECR:
			if (c == '\r' && s->state == SK_CLOSE) {
				s->state = SK_CLOSECR;
				continue;
			}
			if (c == '\n') {
				if ((st = skip_literal_start(s)) != SKIP_MORE) {
					*used = i;
					return st;
				}
				continue;
			}
			i--;
			s->state = SK_LINE;
			continue;
		case SK_CR:
			if (c != '\n') {
				i--;
				s->state = SK_LINE;
				continue;
			}
			break;
		default:	/* SK_LINE */
			if (c == '"')
				s->state = SK_QUOTED;
			else if (c == '{') {
				s->state = SK_BRACE;
				s->num = 0;
			} else if (c == '\r')
				s->state = SK_CR;
			if (c != '\n')
				continue;
			break;
		}
		/* A line end that is not a literal header: command over. */
		*used = i;
		imap_skip_init(s);
		return SKIP_END;
	}
	*used = i;
	return SKIP_MORE;
}

/* ---- ID arguments, streamed ---- */

enum {
	ID_SP0, ID_ARG0, ID_NIL, ID_LIST_FIRST, ID_STR, ID_Q, ID_QESC,
	ID_QBAD, ID_QBADESC, ID_LBRACE, ID_LDIGITS, ID_LPLUS, ID_LCLOSE,
	ID_LCR, ID_LIT, ID_AFTER, ID_EOL, ID_EOLCR
};

void
imap_id_init(struct imap_id *s)
{
	memset(s, 0, sizeof(*s));
	s->state = ID_SP0;
}

static size_t
id_limit(const struct imap_id *s)
{
	return (s->nstrings % 2) == 0 ? ID_FIELD_MAX : ID_VALUE_MAX;
}

/* The BAD text for a string over its limit: a field name or a value. */
static const char *
id_too_long(const struct imap_id *s)
{
	return (s->nstrings % 2) == 0 ? "ID field name too long" :
	    "ID value too long";
}

static enum id_status
id_bad(struct imap_id *s, const char *why)
{
	s->error = why;
	return ID_BAD;
}

/*
 * An error inside a quoted string: report it at the string's end.  The
 * skipper that takes over after ID_BAD starts outside any string; from the
 * middle of one it would take the rest for command text, and then the
 * quoted text for what follows it ("{n+}" literals missed, lines ended).
 */
static enum id_status
id_drain(struct imap_id *s, const char *why)
{
	s->error = why;
	s->state = ID_QBAD;
	return ID_MORE;
}

/*
 * Is the byte that ID_BAD stopped at part of what was scanned -- a closing
 * quote, a literal header's line end?  Then the skipper must not see it:
 * it would open a quoted string, or end the command before {n+} data.
 */
static int
id_bad_eats(const struct imap_id *s, unsigned char c)
{
	if (c == '"')
		return s->state == ID_Q || s->state == ID_QBAD;
	return c == '\n' && (s->state == ID_LCLOSE || s->state == ID_LCR);
}

/* A string (quoted, literal or NIL) ended. */
static enum id_status
id_string_end(struct imap_id *s)
{
	if (++s->nstrings > 2 * ID_PAIRS_MAX)
		return id_bad(s, "Too many ID fields");
	s->state = ID_AFTER;
	return ID_MORE;
}

/* "NIL" matching, shared by the argument and the values: s->num counts
 * the letters seen so far. */
static enum id_status
id_nil(struct imap_id *s, unsigned char c)
{
	if ((c | 0x20) != "nil"[s->num])
		return id_bad(s, "Invalid ID arguments");
	if (++s->num < 3)
		return ID_MORE;
	if (s->nstrings < 0) {
		s->nstrings = 0;
		s->state = ID_EOL;
		return ID_MORE;
	}
	return id_string_end(s);
}

static enum id_status
id_literal_header(struct imap_id *s)
{
	enum id_status st;

	if (s->num > id_limit(s)) {
		/* After BAD the client still sends a {n+} literal's bytes,
		 * never a {n} literal's: the command ends here. */
		if (s->sync)
			s->ended_sync = 1;
		else
			s->lit_left = s->num;
		return id_bad(s, id_too_long(s));
	}
	s->lit_left = s->num;
	if (s->lit_left == 0) {
		if ((st = id_string_end(s)) == ID_BAD) {
			/* As above: a {0} command ends here, a {0+} goes on. */
			s->ended_sync = s->sync;
			return st;
		}
		return s->sync ? ID_LITERAL : ID_MORE;
	}
	s->state = ID_LIT;
	return s->sync ? ID_LITERAL : ID_MORE;
}

/* One byte of ID arguments. */
static enum id_status
id_byte(struct imap_id *s, unsigned char c)
{
	switch (s->state) {
	case ID_SP0:
		if (c != ' ')
			return id_bad(s, "Invalid ID arguments");
		s->state = ID_ARG0;
		return ID_MORE;
	case ID_ARG0:
		if (c == '(') {
			s->state = ID_LIST_FIRST;
			return ID_MORE;
		}
		s->nstrings = -1;	/* NIL as the whole argument */
		s->num = 0;
		s->state = ID_NIL;
		return id_nil(s, c);
	case ID_NIL:
		return id_nil(s, c);
	case ID_LIST_FIRST:
		if (c == ')') {
			s->state = ID_EOL;
			return ID_MORE;
		}
		/* FALLTHROUGH */
	case ID_STR:
		s->strlen = 0;
		s->num = 0;
		if (c == '"')
			s->state = ID_Q;
		else if (c == '{')
			s->state = ID_LBRACE;
		else if ((c | 0x20) == 'n' && s->nstrings % 2 == 1) {
			s->state = ID_NIL;
			return id_nil(s, c);
		} else
			return id_bad(s, "Invalid ID arguments");
		return ID_MORE;
	case ID_Q:
		if (c == '"')
			return id_string_end(s);
		if (c == '\\') {
			s->state = ID_QESC;
			return ID_MORE;
		}
		/* A line end ends the command, here and for the skipper. */
		if (c == '\r' || c == '\n')
			return id_bad(s, "Invalid quoted string");
		if (c == '\0')
			return id_drain(s, "Invalid quoted string");
		break;
	case ID_QESC:
		if (c == '\r' || c == '\n')
			return id_bad(s, "Invalid escape in quoted string");
		if (c != '"' && c != '\\')
			return id_drain(s, "Invalid escape in quoted string");
		s->state = ID_Q;
		break;
	case ID_QBAD:
		if (c == '\\')
			s->state = ID_QBADESC;
		else if (c == '"' || c == '\r' || c == '\n')
			return id_bad(s, s->error);
		return ID_MORE;
	case ID_QBADESC:
		if (c == '\r' || c == '\n')
			return id_bad(s, s->error);
		s->state = ID_QBAD;
		return ID_MORE;
	case ID_LBRACE:
	case ID_LDIGITS:
		if (is_digit(c)) {
			if (s->num <= LITERAL_SKIP_MAX)
				s->num = s->num * 10 + (c - '0');
			s->state = ID_LDIGITS;
			return ID_MORE;
		}
		/* A count needs a digit, as in imap_parse(). */
		if ((c == '+' || c == '}') && s->state == ID_LDIGITS) {
			s->sync = c == '}';
			s->state = c == '+' ? ID_LPLUS : ID_LCLOSE;
			return ID_MORE;
		}
		return id_bad(s, "Invalid literal");
	case ID_LPLUS:
		if (c != '}')
			return id_bad(s, "Invalid literal");
		s->state = ID_LCLOSE;
		return ID_MORE;
	case ID_LCLOSE:
		if (c == '\r') {
			s->state = ID_LCR;
			return ID_MORE;
		}
		/* FALLTHROUGH */
	case ID_LCR:
		if (c != '\n')
			return id_bad(s, "Invalid literal");
		return id_literal_header(s);
	case ID_AFTER:
		if (c == ' ') {
			s->state = ID_STR;
			return ID_MORE;
		}
		if (c == ')' && s->nstrings % 2 == 0) {
			s->state = ID_EOL;
			return ID_MORE;
		}
		return id_bad(s, "Invalid ID arguments");
	case ID_EOL:
		if (c == '\r') {
			s->state = ID_EOLCR;
			return ID_MORE;
		}
		/* FALLTHROUGH */
	case ID_EOLCR:
		if (c != '\n')
			return id_bad(s, "Invalid ID arguments");
		return ID_DONE;
	default:
		return id_bad(s, "Invalid ID arguments");
	}
	/* A character inside a quoted string. */
	if (++s->strlen > id_limit(s))
		return id_drain(s, id_too_long(s));
	return ID_MORE;
}

enum id_status
imap_id(struct imap_id *s, const unsigned char *p, size_t len, size_t *used)
{
	enum id_status st;
	size_t i = 0;

	while (i < len) {
		if (s->state == ID_LIT) {
			size_t n = len - i;

			if ((uint64_t)n > s->lit_left)
				n = (size_t)s->lit_left;
			i += n;
			if ((s->lit_left -= n) == 0 &&
			    id_string_end(s) == ID_BAD) {
				*used = i;
				return ID_BAD;
			}
			continue;
		}
		st = id_byte(s, p[i]);
		if (st == ID_BAD) {
			/* The offending byte is left for the skipper, unless
			 * it ended something the skipper must not see. */
			*used = id_bad_eats(s, p[i]) ? i + 1 : i;
			return st;
		}
		i++;
		if (st != ID_MORE) {
			*used = i;
			return st;
		}
	}
	*used = i;
	return ID_MORE;
}
