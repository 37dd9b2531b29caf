/*
 * log_escape(): what client bytes look like in a log line.
 */
#include <string.h>

#include "log.h"
#include "unit.h"

static void
log_escape_bytes(void)
{
	char out[256];

	CHECK(log_escape(out, sizeof(out), "alice", 5) == out);
	CHECK_STR(out, "alice");
	CHECK_STR(log_escape(out, sizeof(out), S("a\r\nb\0c")),
	    "a\\x0d\\x0ab\\x00c");
	CHECK_STR(log_escape(out, sizeof(out), S("x\\y\"z")),
	    "x\\x5cy\\x22z");
	CHECK_STR(log_escape(out, sizeof(out), S("\x80\xff\x7f\x1f\t")),
	    "\\x80\\xff\\x7f\\x1f\\x09");
	CHECK_STR(log_escape(out, sizeof(out), S("\xc3\xa9")), "\\xc3\\xa9");
	/* Printable ASCII passes, '%' included: the result is always an
	 * argument of "%s", never a format. */
	CHECK_STR(log_escape(out, sizeof(out), S("%n%s %x ~!")), "%n%s %x ~!");
	CHECK_STR(log_escape(out, sizeof(out), "", 0), "");
	/* len, not the NUL, says where the input ends. */
	CHECK_STR(log_escape(out, sizeof(out), "abc", 2), "ab");
}

/* out is a prefix of full that does not end inside an escape. */
static int
clean_prefix(const char *out, const char *full)
{
	size_t n = strlen(out), i;

	if (strncmp(out, full, n) != 0)
		return 0;
	for (i = n > 3 ? n - 3 : 0; i < n; i++)
		if (out[i] == '\\')
			return 0;
	return 1;
}

static void
log_escape_truncates(void)
{
	static const char in[] = "ab\r\ncd\\ef\x80gh\"ijklmnopqrstuvwxyz";
	char full[256], out[64];
	size_t size;
	int ok = 1;

	log_escape(full, sizeof(full), S(in));
	CHECK_STR(full, "ab\\x0d\\x0acd\\x5cef\\x80gh\\x22ijklmnopqrstuvwxyz");
	for (size = 1; size < sizeof(out); size++) {
		memset(out, '#', sizeof(out));
		log_escape(out, size, S(in));
		ok &= memchr(out, '\0', size) != NULL;
		ok &= out[size] == '#';
		ok &= clean_prefix(out, full);
	}
	CHECK(ok);
	/* Enough room: nothing lost. */
	CHECK_STR(log_escape(out, strlen(full) + 5, S(in)), full);
	/* No room at all: nothing written. */
	out[0] = '#';
	log_escape(out, 0, S(in));
	CHECK_EQ(out[0], '#');
	/* Near the end a whole escape is dropped, never half of one. */
	CHECK(strlen(log_escape(out, 8, S("\r\r\r"))) % 4 == 0);
}

void
suite_log(void)
{
	RUN(log_escape_bytes);
	RUN(log_escape_truncates);
}
