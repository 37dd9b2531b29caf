/*
 * The floor for a program started per connection: a static relay with no
 * authentication and no privilege separation.  Run by a super-server in
 * inetd mode (the client on descriptors 0 and 1), it connects to
 * 127.0.0.1:PORT and moves bytes both ways until either side closes.
 * bench/connect-vs-nginx builds it with cc -O2 -static.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct pollfd p[2];
	static char buf[16384];
	int b, i;
	ssize_t n;

	if (argc != 2)
		return 2;
	sa.sin_port = htons((unsigned short)atoi(argv[1]));
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
