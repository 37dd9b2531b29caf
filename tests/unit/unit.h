/*
 * A tiny unit-test framework: checks that count, print the failing
 * file:line and expression, and go on; test cases run by name.
 *
 * tests/unit/run [SUBSTRING...] runs the cases whose names contain one of
 * the substrings (all when none is given) and prints as its last line
 * "N passed, N failed", counting test cases (a case fails when any of its
 * checks does).  The exit status is 1 when a case failed.
 */
#ifndef IMAPGATE_UNIT_H
#define IMAPGATE_UNIT_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void	unit_fail(const char *file, int line, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
void	unit_pass(void);
void	unit_run(const char *name, void (*fn)(void));
/* Printable form of len bytes for a failure message (a static buffer:
 * at most two live at once). */
const char *unit_show(const void *p, size_t len);

#define RUN(fn)	unit_run(#fn, fn)

/* The _AT forms report the caller's position from inside a helper. */
#define CHECK_AT(f, l, e) do {						\
	if (e)								\
		unit_pass();						\
	else								\
		unit_fail((f), (l), "%s", #e);				\
} while (0)

#define CHECK_EQ_AT(f, l, a, b) do {					\
	long long a_ = (long long)(a), b_ = (long long)(b);		\
									\
	if (a_ == b_)							\
		unit_pass();						\
	else								\
		unit_fail((f), (l), "%s == %s: %lld != %lld", #a, #b,	\
		    a_, b_);						\
} while (0)

#define CHECK_UEQ_AT(f, l, a, b) do {					\
	unsigned long long a_ = (a), b_ = (b);				\
									\
	if (a_ == b_)							\
		unit_pass();						\
	else								\
		unit_fail((f), (l), "%s == %s: %llu != %llu", #a, #b,	\
		    a_, b_);						\
} while (0)

#define CHECK_STR_AT(f, l, a, b) do {					\
	const char *a_ = (a), *b_ = (b);				\
									\
	if (a_ != NULL && b_ != NULL && strcmp(a_, b_) == 0)		\
		unit_pass();						\
	else								\
		unit_fail((f), (l), "%s == %s: \"%s\" != \"%s\"",	\
		    #a, #b,						\
		    a_ ? unit_show(a_, strlen(a_)) : "(null)",		\
		    b_ ? unit_show(b_, strlen(b_)) : "(null)");		\
} while (0)

#define CHECK_MEM_AT(f, l, a, alen, b, blen) do {			\
	const void *a_ = (a), *b_ = (b);				\
	size_t al_ = (alen), bl_ = (blen);				\
									\
	if (al_ == bl_ && memcmp(a_, b_, al_) == 0)			\
		unit_pass();						\
	else								\
		unit_fail((f), (l), "%s == %s: \"%s\" != \"%s\"",	\
		    #a, #b,						\
		    unit_show(a_, al_), unit_show(b_, bl_));		\
} while (0)

#define CHECK(e)		CHECK_AT(__FILE__, __LINE__, e)
#define CHECK_EQ(a, b)		CHECK_EQ_AT(__FILE__, __LINE__, a, b)
#define CHECK_UEQ(a, b)		CHECK_UEQ_AT(__FILE__, __LINE__, a, b)
#define CHECK_STR(a, b)		CHECK_STR_AT(__FILE__, __LINE__, a, b)
#define CHECK_MEM(a, alen, b, blen) \
	CHECK_MEM_AT(__FILE__, __LINE__, a, alen, b, blen)

/* A string literal and its length without the terminating NUL, so that
 * literals with embedded NUL bytes keep their length. */
#define S(lit)	(lit), (sizeof(lit) - 1)

/* The suites, one per test_*.c file. */
void	suite_parse(void);
void	suite_skip(void);
void	suite_id(void);
void	suite_sasl(void);
void	suite_capability(void);
void	suite_config(void);
void	suite_secrets(void);
void	suite_passwd(void);
void	suite_log(void);
void	suite_proxy(void);
void	suite_penalty(void);
void	suite_cram(void);
void	suite_tls(void);
void	suite_msg(void);

/* text in a new file under /tmp, named in path (size bytes); path. */
static inline const char *
unit_tmpfile(char *path, size_t size, const char *text)
{
	int fd;

	snprintf(path, size, "/tmp/imapgate-unit-XXXXXX");
	if ((fd = mkstemp(path)) < 0 ||
	    write(fd, text, strlen(text)) != (ssize_t)strlen(text) ||
	    close(fd) < 0)
		abort();
	return path;
}

#endif
