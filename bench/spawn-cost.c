/*
 * What creating a process costs on this machine: fork+_exit+waitpid, and
 * fork+execve(/bin/true)+waitpid.  The floor under any per-connection
 * server.  Build and run: cc -O2 -o /tmp/spawn-cost bench/spawn-cost.c &&
 * /tmp/spawn-cost
 */
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double
ms_since(const struct timespec *a)
{
	struct timespec b;

	clock_gettime(CLOCK_MONOTONIC, &b);
	return (double)(b.tv_sec - a->tv_sec) * 1e3 +
	    (double)(b.tv_nsec - a->tv_nsec) / 1e6;
}

int
main(void)
{
	struct timespec t;
	pid_t p;
	int i;

	clock_gettime(CLOCK_MONOTONIC, &t);
	for (i = 0; i < 1000; i++)
		if ((p = fork()) == 0)
			_exit(0);
		else
			waitpid(p, NULL, 0);
	printf("fork+_exit+waitpid: %.3f ms\n", ms_since(&t) / 1000);
	clock_gettime(CLOCK_MONOTONIC, &t);
	for (i = 0; i < 300; i++)
		if ((p = fork()) == 0) {
			execl("/bin/true", "true", (char *)NULL);
			_exit(1);
		} else
			waitpid(p, NULL, 0);
	printf("fork+execve(/bin/true)+waitpid: %.3f ms\n", ms_since(&t) / 300);
	return 0;
}
