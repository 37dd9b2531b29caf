/*
 * The seccomp allow-list (issue 10 item 8).  A session taken over -- or
 * the relay after login -- may use the descriptors it holds and nothing
 * else: no socket(), connect(), open(), execve(), ptrace(), no signal to
 * another process, no new limits.  Any other system call kills the
 * process on the spot (SECCOMP_RET_KILL_PROCESS): there is no handler an
 * attacker could replace, and no second try.  The kernel logs the
 * system call's number (audit type SECCOMP, "syscall=N"); the monitor
 * logs the SIGSYS when it reaps the session.
 *
 * A plain BPF program, built here once before the first fork and
 * installed with two prctl() calls: libseccomp would add a library to
 * link and its rule compiler to every connection's start-up (measured in
 * bench/README.md).
 *
 * Who needs what (x86-64 names):
 *   the session's own code: read write close poll ppoll recvmsg sendmsg
 *     recvfrom/sendto (no address: syslog, GnuTLS) splice pipe2 (relay)
 *     shutdown fcntl (flags, pipe size) fstat getsockopt getsockname
 *     getpeername
 *     clock_gettime clock_nanosleep nanosleep getpid exit exit_group
 *     wait4 (the TLS relay's monitor reaps the mail server)
 *   malloc, GnuTLS, ASan/UBSan: brk mmap munmap mremap madvise mprotect
 *     (never PROT_EXEC) getrandom futex sched_yield rt_sigaction
 *     rt_sigprocmask rt_sigreturn sigaltstack gettid prlimit64 (read
 *     only, own process) getuid geteuid getgid getegid
 *   abort() and raise(): kill and tgkill, of this process only.
 * Everything else -- socket connect bind listen accept open openat
 * creat execve execveat ptrace process_vm_* fork vfork clone kill(other)
 * setrlimit setuid, fcntl(F_SETOWN, F_SETSIG)... -- ends the process.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bounds.h"
#include "seccomp.h"

#if defined(__x86_64__) && !defined(__ILP32__)
#define SECCOMP_ARCH	AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SECCOMP_ARCH	AUDIT_ARCH_AARCH64
#elif defined(__i386__)
#define SECCOMP_ARCH	AUDIT_ARCH_I386
#elif defined(__riscv) && __riscv_xlen == 64
#define SECCOMP_ARCH	AUDIT_ARCH_RISCV64
#elif defined(__powerpc64__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SECCOMP_ARCH	AUDIT_ARCH_PPC64LE
#elif defined(__s390x__)
#define SECCOMP_ARCH	AUDIT_ARCH_S390X
#endif

/* The 32-bit halves of a 64-bit argument in struct seccomp_data. */
#define ARG(i)		offsetof(struct seccomp_data, args[(i)])
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define LO(i)		ARG(i)
#define HI(i)		(ARG(i) + 4)
#else
#define LO(i)		(ARG(i) + 4)
#define HI(i)		ARG(i)
#endif

/* How a call on the list is checked. */
enum rule {
	ANY,		/* any arguments */
	SELF0,		/* argument 0 is this process's pid (kill, tgkill) */
	NOEXEC2,	/* argument 2 has no PROT_EXEC (mmap, mprotect) */
	NULL4,		/* argument 4 is NULL: no address (sendto, recvfrom) */
	GETLIMIT,	/* prlimit64(0, r, NULL, old): read its own limits */
	EMPTYPATH3,	/* argument 3 has AT_EMPTY_PATH: fstat (newfstatat) */
	FCNTL1,		/* fcntl: flags and pipe sizes only, not F_SETOWN or
			 * F_SETSIG, which would have the kernel signal
			 * another process */
};

/* The fcntl() commands FCNTL1 lets through. */
static const unsigned fcntl_ok[] = { F_GETFD, F_SETFD, F_GETFL, F_SETFL,
    F_GETPIPE_SZ, F_SETPIPE_SZ };
#define NFCNTL_OK	(sizeof(fcntl_ok) / sizeof(fcntl_ok[0]))

static const struct {
	long	  nr;
	enum rule rule;
} allow[] = {
	/* In x86-64's number order, so that building the search tree
	 * sorts nothing there; other architectures' are sorted. */
	{ SYS_read, ANY },			/* 0 */
	{ SYS_write, ANY },
	{ SYS_close, ANY },			/* 3 */
	{ SYS_fstat, ANY },
#ifdef SYS_poll
	{ SYS_poll, ANY },
#endif
	{ SYS_mmap, NOEXEC2 },			/* 9 */
	{ SYS_mprotect, NOEXEC2 },
	{ SYS_munmap, ANY },
	{ SYS_brk, ANY },
	{ SYS_rt_sigaction, ANY },
	{ SYS_rt_sigprocmask, ANY },
	{ SYS_rt_sigreturn, ANY },
	{ SYS_readv, ANY },			/* 19 */
	{ SYS_writev, ANY },
#ifdef SYS_pipe
	{ SYS_pipe, ANY },
#endif
	{ SYS_sched_yield, ANY },
	{ SYS_mremap, ANY },
	{ SYS_madvise, ANY },
	{ SYS_nanosleep, ANY },			/* 35 */
	{ SYS_getpid, ANY },
	{ SYS_sendto, NULL4 },			/* 44 */
	{ SYS_recvfrom, NULL4 },
	{ SYS_sendmsg, ANY },
	{ SYS_recvmsg, ANY },
	{ SYS_shutdown, ANY },
	{ SYS_getsockname, ANY },
	{ SYS_getpeername, ANY },
	{ SYS_getsockopt, ANY },		/* 55 */
	{ SYS_exit, ANY },
	{ SYS_wait4, ANY },
	{ SYS_kill, SELF0 },
	{ SYS_fcntl, FCNTL1 },
	{ SYS_gettimeofday, ANY },		/* 96 */
	{ SYS_getuid, ANY },
	{ SYS_getgid, ANY },
	{ SYS_geteuid, ANY },
	{ SYS_getegid, ANY },
	{ SYS_sigaltstack, ANY },		/* 131 */
	{ SYS_gettid, ANY },
	{ SYS_futex, ANY },			/* 202 */
	{ SYS_restart_syscall, ANY },
	{ SYS_clock_gettime, ANY },		/* 228 */
	{ SYS_clock_nanosleep, ANY },
	{ SYS_exit_group, ANY },
	{ SYS_tgkill, SELF0 },
#ifdef SYS_newfstatat
	{ SYS_newfstatat, EMPTYPATH3 },		/* 262 */
#endif
	{ SYS_ppoll, ANY },
	{ SYS_splice, ANY },
	{ SYS_pipe2, ANY },			/* 293 */
	{ SYS_prlimit64, GETLIMIT },
	{ SYS_getrandom, ANY },			/* 318 */
};

#define STMT(c, k)		((struct sock_filter)BPF_STMT((c), (k)))
#define JUMP(c, k, t, f)	((struct sock_filter)BPF_JUMP((c), (k), (t), (f)))
#define LOAD(off)	STMT(BPF_LD | BPF_W | BPF_ABS, (off))
#define RET(v)		STMT(BPF_RET | BPF_K, (v))
#define ALLOW		RET(SECCOMP_RET_ALLOW)
#define KILL		RET(SECCOMP_RET_KILL_PROCESS)

static struct sock_filter prog[SECCOMP_PROG_MAX];
static unsigned short len;
static int self_at[4], nself;	/* where this process's pid goes */

static void
emit(struct sock_filter f)
{
	if (len < SECCOMP_PROG_MAX)
		prog[len] = f;
	len++;
}

/* The check of one rule: every path ends in ALLOW or KILL. */
static void
emit_rule(enum rule r)
{
	size_t i;

	switch (r) {
	case ANY:
		emit(ALLOW);
		break;
	case SELF0:
		emit(LOAD(LO(0)));
		if (nself < (int)(sizeof(self_at) / sizeof(self_at[0])))
			self_at[nself++] = len;
		emit(JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1));
		emit(ALLOW);
		emit(KILL);
		break;
	case NOEXEC2:
		emit(LOAD(LO(2)));
		emit(JUMP(BPF_JMP | BPF_JSET | BPF_K, PROT_EXEC, 0, 1));
		emit(KILL);
		emit(ALLOW);
		break;
	case NULL4:
		emit(LOAD(LO(4)));
		emit(JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 3));
		emit(LOAD(HI(4)));
		emit(JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1));
		emit(ALLOW);
		emit(KILL);
		break;
	case GETLIMIT:
		emit(LOAD(LO(2)));
		emit(JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 5));
		emit(LOAD(HI(2)));
		emit(JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 3));
		emit(LOAD(LO(0)));
		emit(JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1));
		emit(ALLOW);
		emit(KILL);
		break;
	case FCNTL1:
		emit(LOAD(LO(1)));
		for (i = 0; i < NFCNTL_OK; i++)
			emit(JUMP(BPF_JMP | BPF_JEQ | BPF_K, fcntl_ok[i],
			    (unsigned char)(NFCNTL_OK - i), 0));
		emit(KILL);
		emit(ALLOW);
		break;
	case EMPTYPATH3:
		emit(LOAD(LO(3)));
		emit(JUMP(BPF_JMP | BPF_JSET | BPF_K, AT_EMPTY_PATH, 0, 1));
		emit(ALLOW);
		emit(KILL);
		break;
	}
}

/* The instructions emit_rule(r) emits. */
static unsigned
rule_len(enum rule r)
{
	static const unsigned n[] = { [ANY] = 1, [SELF0] = 4, [NOEXEC2] = 4,
	    [NULL4] = 6, [GETLIMIT] = 8, [EMPTYPATH3] = 4,
	    [FCNTL1] = 3 + NFCNTL_OK };

	return n[r];
}

/* The allow-list sorted by number, for the search tree. */
static struct { unsigned nr; enum rule rule; } sorted[sizeof(allow) /
    sizeof(allow[0])];

/* Instructions of a leaf: each entry's test and rule, then KILL. */
static unsigned
leaf_len(int lo, int hi)
{
	unsigned n = 1;
	int i;

	for (i = lo; i < hi; i++)
		n += 1 + rule_len(sorted[i].rule);
	return n;
}

#define LEAF_MAX	4	/* entries tested one by one */

static unsigned
tree_len(int lo, int hi)
{
	int mid = (lo + hi) / 2;

	if (hi - lo <= LEAF_MAX)
		return leaf_len(lo, hi);
	return 1 + tree_len(lo, mid) + tree_len(mid, hi);
}

/*
 * A binary search over the sorted numbers (the accumulator holds nr),
 * so that a call costs a few comparisons, not a walk down the list --
 * and so does the kernel's check, at install, of which numbers the
 * filter always allows (its per-number cache).
 */
static void
emit_tree(int lo, int hi)
{
	int i, mid = (lo + hi) / 2;

	if (hi - lo <= LEAF_MAX) {
		for (i = lo; i < hi; i++) {
			emit(JUMP(BPF_JMP | BPF_JEQ | BPF_K, sorted[i].nr, 0,
			    (unsigned char)rule_len(sorted[i].rule)));
			/* Every rule ends in a return: the next test is
			 * reached only by the jump over it, nr still
			 * loaded. */
			emit_rule(sorted[i].rule);
		}
		emit(KILL);
		return;
	}
	/* nr >= sorted[mid]: jump over the lower half (a jump is at most
	 * 255 instructions: longer spoils the program, see below). */
	if (tree_len(lo, mid) > 255)
		len = SECCOMP_PROG_MAX + 1;
	emit(JUMP(BPF_JMP | BPF_JGE | BPF_K, sorted[mid].nr,
	    (unsigned char)tree_len(lo, mid), 0));
	emit_tree(lo, mid);
	emit_tree(mid, hi);
}

int
seccomp_build(char *err, size_t errsize)
{
#ifndef SECCOMP_ARCH
	snprintf(err, errsize, "seccomp: no system-call list for this "
	    "architecture");
	return -1;
#else
	int i, j, n = (int)(sizeof(allow) / sizeof(allow[0]));

	len = 0;
	nself = 0;
	/* Insertion sort: some fifty entries, once per process. */
	for (i = 0; i < n; i++) {
		for (j = i; j > 0 && sorted[j - 1].nr > (unsigned)allow[i].nr;
		    j--)
			sorted[j] = sorted[j - 1];
		sorted[j].nr = (unsigned)allow[i].nr;
		sorted[j].rule = allow[i].rule;
	}
	/* Another architecture's numbers mean other calls: refused. */
	emit(LOAD(offsetof(struct seccomp_data, arch)));
	emit(JUMP(BPF_JMP | BPF_JEQ | BPF_K, SECCOMP_ARCH, 1, 0));
	emit(KILL);
	emit(LOAD(offsetof(struct seccomp_data, nr)));
#if defined(__x86_64__)
	/* The x32 ABI's numbers, on an x86-64 kernel: refused. */
	emit(JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1));
	emit(KILL);
#endif
	emit_tree(0, n);
	if (len > SECCOMP_PROG_MAX) {
		snprintf(err, errsize, "seccomp: filter longer than %d "
		    "instructions, or a jump too long", SECCOMP_PROG_MAX);
		return -1;
	}
	return 0;
#endif
}

int
seccomp_install(char *err, size_t errsize)
{
	struct sock_fprog fp = { len, prog };
	pid_t me = getpid();
	int i;

	if (len == 0 || len > SECCOMP_PROG_MAX) {
		snprintf(err, errsize, "seccomp: no filter built");
		return -1;
	}
	for (i = 0; i < nself; i++)
		prog[self_at[i]].k = (unsigned)me;
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fp, 0, 0) < 0) {
		snprintf(err, errsize, "seccomp: %s", strerror(errno));
		return -1;
	}
	return 0;
}
