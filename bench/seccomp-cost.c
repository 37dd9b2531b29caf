/*
 * What building the seccomp allow-list costs, counted by callgrind
 * (bench/seccomp-cost): imapgate's own BPF builder (src/seccomp.c), or
 * the same list through libseccomp (its library loaded at start-up, its
 * rule compiler run, the program exported as imapgate would load it).
 * Neither installs the filter: valgrind could not write its profile.
 *   cc -DWITH=0  nothing (the floor)
 *   cc -DWITH=1  seccomp_build() from src/seccomp.c
 *   cc -DWITH=2  libseccomp: seccomp_init, rules, seccomp_export_bpf
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#if WITH == 1
#include "seccomp.h"
#elif WITH == 2
#include <seccomp.h>

static const char *const any[] = {
	"read", "write", "readv", "writev", "close", "poll", "ppoll",
	"recvmsg", "sendmsg", "splice", "pipe2", "pipe", "shutdown", "fcntl",
	"fstat", "getsockopt", "getsockname", "getpeername", "clock_gettime",
	"clock_nanosleep", "nanosleep", "gettimeofday", "getpid", "gettid",
	"getuid", "geteuid", "getgid", "getegid", "exit", "exit_group",
	"wait4", "brk", "munmap", "mremap", "madvise", "getrandom", "futex",
	"sched_yield", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn",
	"sigaltstack", "restart_syscall",
};
#endif

int
main(void)
{
#if WITH == 1
	char err[128];

	if (seccomp_build(err, sizeof(err)) < 0)
		return 1;
#elif WITH == 2
	scmp_filter_ctx f = seccomp_init(SCMP_ACT_KILL_PROCESS);
	pid_t me = getpid();
	size_t i;
	int null;

	if (f == NULL)
		return 1;
	for (i = 0; i < sizeof(any) / sizeof(any[0]); i++)
		seccomp_rule_add(f, SCMP_ACT_ALLOW,
		    seccomp_syscall_resolve_name(any[i]), 0);
	seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(recvfrom), 1,
	    SCMP_A4(SCMP_CMP_EQ, 0));
	seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(sendto), 1,
	    SCMP_A4(SCMP_CMP_EQ, 0));
	seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(newfstatat), 1,
	    SCMP_A3(SCMP_CMP_MASKED_EQ, AT_EMPTY_PATH, AT_EMPTY_PATH));
	seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
	    SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
	    SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 2,
	    SCMP_A0(SCMP_CMP_EQ, 0), SCMP_A2(SCMP_CMP_EQ, 0));
	seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(kill), 1,
	    SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)me));
	seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
	    SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)me));
	/* What seccomp_load() would hand the kernel. */
	if ((null = open("/dev/null", O_WRONLY)) < 0 ||
	    seccomp_export_bpf(f, null) < 0)
		return 1;
	seccomp_release(f);
#endif
	return 0;
}
