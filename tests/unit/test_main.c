/*
 * The unit-test runner: the framework's state, main(), the suites.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

static const char *current;	/* the running case */
static int case_failed;		/* checks failed in it */
static int checks, checks_failed, cases_passed, cases_failed;
static char *const *filters;
static int nfilters;

void
unit_pass(void)
{
	checks++;
}

void
unit_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	checks++;
	checks_failed++;
	case_failed++;
	printf("%s:%d: %s: ", file, line, current ? current : "?");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

const char *
unit_show(const void *p, size_t len)
{
	static char buf[2][512];
	static int which;
	const unsigned char *s = p;
	char *out = buf[which ^= 1];
	size_t i, n = 0;

	for (i = 0; i < len && n + 8 < sizeof(buf[0]); i++) {
		if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\')
			out[n++] = (char)s[i];
		else
			n += (size_t)snprintf(out + n, sizeof(buf[0]) - n,
			    "\\x%02x", s[i]);
	}
	if (i < len)
		n += (size_t)snprintf(out + n, sizeof(buf[0]) - n, "...");
	out[n] = '\0';
	return out;
}

static int
selected(const char *name)
{
	int i;

	if (nfilters == 0)
		return 1;
	for (i = 0; i < nfilters; i++)
		if (strstr(name, filters[i]) != NULL)
			return 1;
	return 0;
}

void
unit_run(const char *name, void (*fn)(void))
{
	if (!selected(name))
		return;
	current = name;
	case_failed = 0;
	fn();
	if (case_failed) {
		cases_failed++;
		printf("FAIL %s\n", name);
	} else
		cases_passed++;
	current = NULL;
	fflush(stdout);
}

int
main(int argc, char *argv[])
{
	filters = argv + 1;
	nfilters = argc - 1;
	suite_parse();
	suite_skip();
	suite_id();
	suite_sasl();
	suite_capability();
	suite_config();
	suite_secrets();
	suite_passwd();
	suite_log();
	suite_proxy();
	suite_penalty();
	suite_cram();
	suite_tls();
	suite_msg();
	printf("%d checks, %d failed\n", checks, checks_failed);
	/* The last line counts test cases. */
	printf("%d passed, %d failed\n", cases_passed, cases_failed);
	/* Before LeakSanitizer's report, which exits without flushing. */
	fflush(stdout);
	return cases_failed ? 1 : 0;
}
