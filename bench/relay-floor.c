/*
 * The floors of the process-per-connection models: a static relay with no
 * authentication and no privilege separation.
 *
 *   relay-floor PORT
 *	run by a super-server in inetd mode (the client on descriptors 0
 *	and 1): connects to 127.0.0.1:PORT and moves bytes both ways until
 *	either side closes.  One exec per connection: the floor under
 *	imapgate per connection.
 *   relay-floor -l LPORT PORT
 *	listens on 127.0.0.1:LPORT itself and forks one child per
 *	connection, which relays as above and exits: one fork and one exit
 *	per connection, no exec.  The floor under any design that keeps a
 *	process per connection and no more (imapgate -L forks two).
 *
 * bench/connect-vs-nginx builds it with cc -O2 -static.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int
relay(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct pollfd p[2];
	static char buf[16384];
	int b, i;
	ssize_t n;

	sa.sin_port = htons((unsigned short)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	b = socket(AF_INET, SOCK_STREAM, 0);
	if (b < 0 || connect(b, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return 1;
	p[0] = (struct pollfd){ .fd = 0, .events = POLLIN };
	p[1] = (struct pollfd){ .fd = b, .events = POLLIN };
	for (;;) {
		if (poll(p, 2, -1) < 0)
			return 1;
		for (i = 0; i < 2; i++) {
			if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			n = read(p[i].fd, buf, sizeof(buf));
			if (n <= 0 || write(i ? 1 : b, buf, (size_t)n) != n)
				return 0;
		}
	}
}

/* Reaped at once, by wait: a child's CPU counts in this process's. */
static void
reap(int sig)
{
	(void)sig;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

static int
listen_and_fork(int lport, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct sigaction act;
	int l, c, one = 1;

	sa.sin_port = htons((unsigned short)lport);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one,
	    sizeof(one)) < 0 || bind(l, (struct sockaddr *)&sa,
	    sizeof(sa)) < 0 || listen(l, 128) < 0)
		return 1;
	memset(&act, 0, sizeof(act));
	act.sa_handler = reap;
	act.sa_flags = SA_RESTART;
	sigaction(SIGCHLD, &act, NULL);
	for (;;) {
		if ((c = accept(l, NULL, NULL)) < 0)
			continue;
		if (fork() == 0) {
			close(l);
			dup2(c, 0);
			dup2(c, 1);
			close(c);
			_exit(relay(port));
		}
		close(c);
	}
}

int
main(int argc, char **argv)
{
	if (argc == 2)
		return relay(atoi(argv[1]));
	if (argc == 4 && strcmp(argv[1], "-l") == 0)
		return listen_and_fork(atoi(argv[2]), atoi(argv[3]));
	return 2;
}
