/*
 * checkpassword (DJB's interface, REFERENCE.md section 8): run the
 * program with "user\0password\0timestamp\0" on fd 3 and "/bin/true" as
 * the program it runs on success; the exit code is the verdict:
 * 0 yes, 1 no, 2 (misuse), 111 and anything else temporary failure.
 * Its stdin, stdout and stderr are never the client socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "clock.h"
#include "log.h"

/* The program DJB's checkpassword runs once the password is good. */
#define CHECKPW_NEXT	"/bin/true"
/* What the interface lets it read from fd 3. */
#define CHECKPW_INPUT_MAX	512

/* In the child: fd 3 the credentials, 0-2 harmless, exec. */
static void
run_child(const struct config *c, const struct auth_request *r, int rfd)
{
	static char *argv[CHECKPW_ARGS_MAX + 2];
	char *envp[6], e[4][ADDR_MAX + 16];
	int null, i, hi;

	/*
	 * Whatever fds were free when the pipe was made (in a -L spare the
	 * read end is often 3 itself, where dup2(3, 3) would keep its
	 * close-on-exec; with 0-2 closed it could be one of those): first
	 * move it above 3, out of the way, so that the dup2() to 3 below
	 * is always a real one, which clears close-on-exec.
	 */
	if ((hi = fcntl(rfd, F_DUPFD_CLOEXEC, 4)) < 0)
		_exit(111);
	if ((null = open("/dev/null", O_RDWR)) < 0 || dup2(null, 0) < 0 ||
	    dup2(null, 1) < 0 || (!log_uses_stderr() && dup2(null, 2) < 0) ||
	    dup2(hi, 3) < 0)
		_exit(111);
	closefrom(4);
	for (i = 0; i < c->checkpw_argc; i++)
		argv[i] = c->checkpw_argv[i];
	argv[i++] = (char *)CHECKPW_NEXT;
	argv[i] = NULL;
	snprintf(e[0], sizeof(e[0]), "TCPREMOTEIP=%s", r->conn->peer_ip);
	snprintf(e[1], sizeof(e[1]), "TCPREMOTEPORT=%s", r->conn->peer_port);
	snprintf(e[2], sizeof(e[2]), "TCPLOCALIP=%s", r->conn->local_ip);
	snprintf(e[3], sizeof(e[3]), "TCPLOCALPORT=%s", r->conn->local_port);
	envp[0] = (char *)"PATH=/usr/local/bin:/usr/bin:/bin";
	for (i = 0; i < 4; i++)
		envp[i + 1] = e[i];
	envp[5] = NULL;
	signal(SIGPIPE, SIG_DFL);
	signal(SIGALRM, SIG_DFL);
	execve(argv[0], argv, envp);
	_exit(111);
}

/* Wait for pid within CHECKPW_TIMEOUT; its exit status, or -1. */
static int
wait_child(pid_t pid)
{
	struct timespec deadline;
	int status;
	pid_t r;

	deadline_after(&deadline, NULL, CHECKPW_TIMEOUT);
	for (;;) {
		if ((r = waitpid(pid, &status, WNOHANG)) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		if (r < 0 && errno != EINTR)
			return -1;
		if (ms_left(&deadline) <= 0) {
			kill(pid, SIGKILL);
			while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
				;
			return -2;
		}
		(void)poll(NULL, 0, 5);
	}
}

enum auth_result
auth_checkpw(const struct config *c, const struct auth_request *r,
    const char **why)
{
	char input[CHECKPW_INPUT_MAX];
	size_t ul = strlen(r->user), pl = strlen(r->pass), n;
	int p[2], status;
	pid_t pid;

	n = (size_t)snprintf(input, sizeof(input), "%s%c%s%c%ld%c", r->user,
	    '\0', r->pass, '\0', (long)time(NULL), '\0');
	if (ul + pl + 3 + 20 > sizeof(input)) {
		explicit_bzero(input, sizeof(input));
		*why = "credentials too long for checkpassword";
		return AUTH_NO;
	}
	if (pipe2(p, O_CLOEXEC) < 0 || (pid = fork()) < 0) {
		*why = "cannot start checkpassword";
		return AUTH_TEMPFAIL;
	}
	if (pid == 0)
		run_child(c, r, p[0]);
	close(p[0]);
	/* 512 bytes fit in any pipe: this write does not block. */
	if (write(p[1], input, n) != (ssize_t)n)
		log_warn("checkpassword: short write");
	close(p[1]);
	explicit_bzero(input, sizeof(input));
	status = wait_child(pid);
	if (status == 0) {
		*why = "ok";
		return AUTH_OK;
	}
	if (status == 1) {
		*why = "checkpassword said no";
		return AUTH_NO;
	}
	*why = status == -2 ? "checkpassword timed out" :
	    "checkpassword failed (temporary)";
	return AUTH_TEMPFAIL;
}
