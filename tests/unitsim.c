/*
 * unitsim: run a command under the process restrictions a systemd unit
 * asks for, where no systemd runs as PID 1 to apply them (the test
 * machine).  tests/test_units.py reads the shipped unit, turns each
 * setting into an option here (the mount and network namespaces it sets
 * up with unshare(1) around this), and runs imapgate under it.
 *
 *   -s NAME,...   SystemCallFilter=: only these system calls; any other
 *                 kills the process (SIGSYS), as systemd does by default
 *   -a N,...      RestrictAddressFamilies=: socket() of another family
 *                 fails with EAFNOSUPPORT
 *   -c N,...      CapabilityBoundingSet=: capabilities kept (numbers)
 *   -u OCTAL      UMask=
 *   -w            MemoryDenyWriteExecute=yes
 *   -r            RestrictNamespaces=yes
 *   -n            NoNewPrivileges=yes
 *
 * The argument filters follow systemd's src/shared/seccomp-util.c in
 * effect (not in code): the same calls refused with the same errors.
 */
#include <errno.h>
#include <linux/sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define FAMILIES_MAX	64	/* AF_MAX is 46 in Linux 6.x */
#define CAPS_MAX	64

static void
die(const char *what, int err)
{
	fprintf(stderr, "unitsim: %s: %s\n", what, strerror(err));
	exit(127);
}

/* Comma-separated numbers into set[], true for each one named. */
static void
numbers(char *list, int *set, int max)
{
	char *t;

	for (t = strtok(list, ","); t != NULL; t = strtok(NULL, ",")) {
		long n = strtol(t, NULL, 10);

		if (n < 0 || n >= max)
			die("number out of range", EINVAL);
		set[n] = 1;
	}
}

static void
rule(scmp_filter_ctx f, uint32_t action, const char *name, unsigned n,
    const struct scmp_arg_cmp *cmp)
{
	int nr = seccomp_syscall_resolve_name(name), r;

	if (nr == __NR_SCMP_ERROR)
		return;		/* not on this architecture */
	if ((r = seccomp_rule_add_array(f, action, nr, n, cmp)) < 0)
		die(name, -r);
}

/* Everything but the system call list: default allow, refuse by argument. */
static void
argument_filter(const int *family, int families, int mdwe, int nons)
{
	static const unsigned long ns[] = { CLONE_NEWNS, CLONE_NEWUTS,
	    CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
	    CLONE_NEWCGROUP };
	scmp_filter_ctx f = seccomp_init(SCMP_ACT_ALLOW);
	struct scmp_arg_cmp c[1];
	unsigned i;
	int r;

	if (f == NULL)
		die("seccomp_init", ENOMEM);
	if (families) {
		for (i = 0; i < FAMILIES_MAX; i++)
			if (!family[i]) {
				c[0] = SCMP_A0(SCMP_CMP_EQ, i);
				rule(f, SCMP_ACT_ERRNO(EAFNOSUPPORT), "socket",
				    1, c);
			}
		c[0] = SCMP_A0(SCMP_CMP_GE, FAMILIES_MAX);
		rule(f, SCMP_ACT_ERRNO(EAFNOSUPPORT), "socket", 1, c);
	}
	if (mdwe) {
		c[0] = SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC | PROT_WRITE,
		    PROT_EXEC | PROT_WRITE);
		rule(f, SCMP_ACT_ERRNO(EPERM), "mmap", 1, c);
		c[0] = SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC);
		rule(f, SCMP_ACT_ERRNO(EPERM), "mprotect", 1, c);
		rule(f, SCMP_ACT_ERRNO(EPERM), "pkey_mprotect", 1, c);
		c[0] = SCMP_A2(SCMP_CMP_MASKED_EQ, SHM_EXEC, SHM_EXEC);
		rule(f, SCMP_ACT_ERRNO(EPERM), "shmat", 1, c);
	}
	if (nons) {
		for (i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
			c[0] = SCMP_A0(SCMP_CMP_MASKED_EQ, ns[i], ns[i]);
			rule(f, SCMP_ACT_ERRNO(EPERM), "unshare", 1, c);
			rule(f, SCMP_ACT_ERRNO(EPERM), "clone", 1, c);
		}
		rule(f, SCMP_ACT_ERRNO(EPERM), "setns", 0, NULL);
		/* Its flags are behind a pointer: glibc falls back to clone. */
		rule(f, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NULL);
	}
	if ((r = seccomp_load(f)) < 0)
		die("seccomp_load (arguments)", -r);
	seccomp_release(f);
}

static void
syscall_filter(char *list)
{
	scmp_filter_ctx f = seccomp_init(SCMP_ACT_KILL_PROCESS);
	char *t;
	int r;

	if (f == NULL)
		die("seccomp_init", ENOMEM);
	for (t = strtok(list, ","); t != NULL; t = strtok(NULL, ","))
		rule(f, SCMP_ACT_ALLOW, t, 0, NULL);
	if ((r = seccomp_load(f)) < 0)
		die("seccomp_load (system calls)", -r);
	seccomp_release(f);
}

int
main(int argc, char *argv[])
{
	int family[FAMILIES_MAX] = { 0 }, cap[CAPS_MAX] = { 0 };
	int families = 0, caps = 0, mdwe = 0, nons = 0, nnp = 0, opt, i;
	char *calls = NULL;

	while ((opt = getopt(argc, argv, "+s:a:c:u:wrn")) != -1) {
		switch (opt) {
		case 's':
			calls = optarg;
			break;
		case 'a':
			numbers(optarg, family, FAMILIES_MAX);
			families = 1;
			break;
		case 'c':
			numbers(optarg, cap, CAPS_MAX);
			caps = 1;
			break;
		case 'u':
			umask((mode_t)strtol(optarg, NULL, 8));
			break;
		case 'w':
			mdwe = 1;
			break;
		case 'r':
			nons = 1;
			break;
		case 'n':
			nnp = 1;
			break;
		default:
			return 127;
		}
	}
	if (optind >= argc)
		die("no command", EINVAL);
	if (caps)
		for (i = 0; i < CAPS_MAX; i++)
			if (!cap[i] && prctl(PR_CAPBSET_DROP, i, 0, 0, 0) < 0 &&
			    errno != EINVAL)
				die("PR_CAPBSET_DROP", errno);
	if (nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		die("PR_SET_NO_NEW_PRIVS", errno);
	argument_filter(family, families, mdwe, nons);
	if (calls != NULL)
		syscall_filter(calls);
	execvp(argv[optind], argv + optind);
	die(argv[optind], errno);
}
