/*
 * The pre-auth IMAP tokenizer.  Pure: no I/O, no allocation, no state
 * outside the structures the caller passes in.  It never writes to the
 * input; arguments are (offset, length) pairs into it.
 *
 * imap_parse() looks at one command from its first byte and says how far it
 * got; the session calls it again from the start when more bytes arrive
 * (the command buffer is small, so re-scanning is cheaper than carrying
 * state).  Commands that must be consumed without being buffered -- a
 * rejected command with literals, or an ID at the RFC 2971 limits, which
 * is larger than the buffer -- go through the two resumable stream
 * scanners below instead.
 */
#ifndef IMAPGATE_IMAP_PARSE_H
#define IMAPGATE_IMAP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "bounds.h"

enum imap_status {
	IMAP_MORE,	/* incomplete: read more bytes */
	IMAP_LITERAL,	/* a {n} literal is announced; its data is not here */
	IMAP_DONE,	/* one whole command, through its line end */
	IMAP_BAD,	/* syntax error; see error */
};

enum imap_arg_type { ARG_ATOM, ARG_QUOTED, ARG_LITERAL };

struct imap_arg {
	size_t	off, len;	/* raw bytes; quoted still escaped */
	enum imap_arg_type type;
};

struct imap_cmd {
	size_t	tag_len;	/* the tag starts at offset 0 */
	int	tag_ok;		/* tag complete and valid */
	size_t	name_off, name_len;	/* name_len 0 until the name is complete */
	int	nargs;
	struct imap_arg arg[IMAP_ARGS_MAX];
	size_t	end;		/* IMAP_DONE: bytes through the line end */
	/* The last literal header seen: its size, sync or not, and the
	 * offset just past the header's line end. */
	uint64_t lit_size;
	int	lit_sync;
	size_t	lit_hdr_end;
	/* Where skipping must start if the command is rejected now, after
	 * any status: the end of the last whole argument (0 before the
	 * first).  Everything before it was parsed, literals included, so
	 * the skipper never reads a literal's data as commands. */
	size_t	resume;
	const char *error;	/* IMAP_BAD: text for the BAD answer */
};

/* Scan one command at buf[0..len). */
enum imap_status imap_parse(const unsigned char *buf, size_t len,
    struct imap_cmd *cmd);

/* Copy argument a into dst (NUL-terminated), undoing quoted escapes.
 * Returns the length, or -1 if it does not fit or contains NUL. */
int imap_arg_copy(const unsigned char *buf, const struct imap_arg *a,
    char *dst, size_t dstsize);

/* Case-insensitive compare of a command name to an upper-case word. */
int imap_name_is(const unsigned char *buf, const struct imap_cmd *cmd,
    const char *word);

int imap_tag_char(int c);

/*
 * Skipping a rejected command, streamed: feed bytes as they come; the
 * scanner follows quoted strings and literals so that a literal's bytes
 * are never read as commands.
 */
enum skip_status {
	SKIP_MORE,	/* all bytes consumed, command not over */
	SKIP_END,	/* command ended at a line end */
	SKIP_SYNC,	/* ended at a {n} the client will not send after BAD */
	SKIP_HUGE,	/* a literal count beyond any sane size: give up */
};

struct imap_skip {
	uint64_t lit_left;	/* literal bytes still to discard */
	uint64_t num;		/* digits of a literal count being read */
	int	state;
	int	sync;
};

/* Literal counts above this are not skipped: the connection is closed. */
#define LITERAL_SKIP_MAX	UINT32_MAX

void imap_skip_init(struct imap_skip *s);
/* Start skipping in the middle of a command, n literal bytes first. */
void imap_skip_literal(struct imap_skip *s, uint64_t n);
/* Consume from p[0..len); *used says how many bytes were taken. */
enum skip_status imap_skip(struct imap_skip *s, const unsigned char *p,
    size_t len, size_t *used);

/*
 * ID arguments, streamed (RFC 2971): NIL or a list of at most
 * ID_PAIRS_MAX field/value pairs of quoted strings, literals or NIL.
 * Only counts are kept; the values themselves are not needed.
 */
enum id_status {
	ID_MORE,	/* all bytes consumed */
	ID_LITERAL,	/* a {n} header was consumed: send a continuation */
	ID_DONE,	/* the ID command ended at its line end */
	ID_BAD,		/* over a limit or malformed; skip the rest */
};

struct imap_id {
	uint64_t lit_left;
	uint64_t num;
	size_t	strlen;		/* length of the current string */
	int	nstrings;	/* strings seen inside the list */
	int	state;
	int	sync;
	/* After ID_BAD: the command ended at a {n} header (answer now), or
	 * lit_left bytes of a {n+} literal must be skipped first. */
	int	ended_sync;
	const char *error;
};

void imap_id_init(struct imap_id *s);
enum id_status imap_id(struct imap_id *s, const unsigned char *p, size_t len,
    size_t *used);

#endif
