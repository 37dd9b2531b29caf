/*
 * For bench/startup-callgrind only: LD_PRELOADed, it makes
 * prctl(PR_SET_SECCOMP) succeed without installing the filter.  Under the
 * filter valgrind could not write the session's profile (an open() the
 * allow-list forbids, and the process is killed); with this shim
 * everything up to that one system call -- building the filter, the
 * rlimits -- is counted.  Never used outside the benchmark.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/prctl.h>

int
prctl(int option, ...)
{
	static int (*real)(int, ...);
	unsigned long a[4];
	va_list ap;
	int i;

	va_start(ap, option);
	for (i = 0; i < 4; i++)
		a[i] = va_arg(ap, unsigned long);
	va_end(ap);
	if (option == PR_SET_SECCOMP)
		return 0;
	if (real == NULL)
		*(void **)&real = dlsym(RTLD_NEXT, "prctl");
	return real(option, a[0], a[1], a[2], a[3]);
}
