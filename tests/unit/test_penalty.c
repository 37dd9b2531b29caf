/*
 * The penalty table: doubling, keys, clearing, and a file that is
 * missing, corrupt, forged, stale, full or shared by many processes.
 * The tests read and forge the file through its documented layout.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bounds.h"
#include "penalty.h"
#include "unit.h"

/* The file layout src/penalty.c writes (native byte order). */
struct t_slot {
	unsigned char	key[16];
	uint32_t	failures;
	uint32_t	reserved;
	double		delay;
	int64_t		stamp;
};

#define T_HEADER	16
#define T_SLOT		40
#define T_SIZE		(T_HEADER + T_SLOT * PENALTY_SLOTS)
#define T_MAGIC		"IGPEN1\0\0"
#define BASE		2.0
#define MAX		15.0

_Static_assert(sizeof(struct t_slot) == T_SLOT, "test slot layout");

static char dir[64], path[128];
static unsigned char file[T_SIZE];

/* A fresh directory for each case, so that cases cannot meet. */
static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/igpen.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/penalty", dir);
}

static void
teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	(void)!system(cmd);
}

/* The key penalty.c files ip under. */
static void
key_of(const char *ip, unsigned char key[16])
{
	struct in_addr a4;

	memset(key, 0, 16);
	if (inet_pton(AF_INET, ip, &a4) == 1) {
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &a4, 4);
	} else if (inet_pton(AF_INET6, ip, key) != 1)
		abort();
}

/* The size of the file, or -1. */
static long
file_size(void)
{
	struct stat st;

	return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* Read the whole file into file[]; 0, or -1 if it is not T_SIZE long. */
static int
load(void)
{
	int fd, ok;

	if ((fd = open(path, O_RDONLY)) < 0)
		return -1;
	ok = read(fd, file, sizeof(file)) == (ssize_t)sizeof(file);
	close(fd);
	return ok ? 0 : -1;
}

static void
slot_get(int i, struct t_slot *s)
{
	memcpy(s, file + T_HEADER + (size_t)i * T_SLOT, sizeof(*s));
}

/* The slot index holding ip (with failures), or -1. */
static int
peek(const char *ip, struct t_slot *s)
{
	unsigned char key[16];
	int i;

	key_of(ip, key);
	if (load() < 0)
		return -1;
	for (i = 0; i < PENALTY_SLOTS; i++) {
		slot_get(i, s);
		if (s->failures != 0 && memcmp(s->key, key, 16) == 0)
			return i;
	}
	return -1;
}

/* Overwrite slot i in the file. */
static void
poke(int i, const struct t_slot *s)
{
	int fd;

	if ((fd = open(path, O_WRONLY)) < 0 ||
	    pwrite(fd, s, sizeof(*s), T_HEADER + (off_t)i * T_SLOT) !=
	    (ssize_t)sizeof(*s))
		abort();
	close(fd);
}

/* Replace the file with len bytes. */
static void
write_file(const void *p, size_t len)
{
	FILE *f;

	if ((f = fopen(path, "w")) == NULL ||
	    fwrite(p, 1, len, f) != len || fclose(f) != 0)
		abort();
}

static void
random_bytes(unsigned char *p, size_t len, unsigned seed)
{
	size_t i;

	srand(seed);
	for (i = 0; i < len; i++)
		p[i] = (unsigned char)rand();
}

static double
fail(const char *ip)
{
	return penalty_fail(path, ip, BASE, MAX);
}

static void
penalty_doubling(void)
{
	struct t_slot s;
	struct stat st;

	setup();
	CHECK(fail("192.0.2.1") == 2.0);
	CHECK(fail("192.0.2.1") == 4.0);
	CHECK(fail("192.0.2.1") == 8.0);
	CHECK(fail("192.0.2.1") == 15.0);
	CHECK(fail("192.0.2.1") == 15.0);
	CHECK_EQ(file_size(), T_SIZE);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	CHECK(load() == 0 && memcmp(file, T_MAGIC, 8) == 0);
	CHECK(peek("192.0.2.1", &s) >= 0);
	CHECK_EQ(s.failures, 5);
	CHECK(s.delay == 15.0);
	CHECK(llabs(s.stamp - (int64_t)time(NULL)) <= 2);
	/* Another base and max take effect at once. */
	CHECK(penalty_fail(path, "192.0.2.1", 1.0, 100.0) == 30.0);
	CHECK(penalty_fail(path, "192.0.2.9", 0.5, 100.0) == 0.5);
	teardown();
}

static void
penalty_independent(void)
{
	setup();
	CHECK(fail("192.0.2.1") == 2.0);
	CHECK(fail("192.0.2.1") == 4.0);
	CHECK(fail("192.0.2.2") == 2.0);
	CHECK(fail("192.0.2.1") == 8.0);
	CHECK(fail("198.51.100.1") == 2.0);
	CHECK(fail("192.0.2.2") == 4.0);
	teardown();
}

static void
penalty_ipv6(void)
{
	setup();
	/* One /64 is one address. */
	CHECK(fail("2001:db8:1:2::1") == 2.0);
	CHECK(fail("2001:db8:1:2:ffff:eeee:dddd:cccc") == 4.0);
	CHECK(fail("2001:DB8:1:2::") == 8.0);
	CHECK(fail("2001:db8:1:3::1") == 2.0);
	CHECK(fail("2001:db8:2:2::1") == 2.0);
	/* IPv4 and its v4-mapped form are one; v4-mapped addresses are
	 * not lumped into one /64. */
	CHECK(fail("192.0.2.1") == 2.0);
	CHECK(fail("::ffff:192.0.2.1") == 4.0);
	CHECK(fail("::ffff:192.0.2.2") == 2.0);
	teardown();
}

/* A link-local client ("fe80::1%eth0") is penalized like any other,
 * keyed without its scope (issue 9). */
static void
penalty_scoped(void)
{
	setup();
	CHECK(fail("fe80::1%eth0") == 2.0);
	CHECK(fail("fe80::1%eth0") == 4.0);
	CHECK(fail("fe80::1") == 8.0);
	/* One /64, whatever the interface. */
	CHECK(fail("fe80::2%eth1") == 15.0);
	penalty_clear(path, "fe80::1%lo");
	CHECK(fail("fe80::1%eth0") == 2.0);
	CHECK(fail("2001:db8::1%3") == 2.0);
	CHECK(fail("2001:db8::1") == 4.0);
	teardown();
}

static void
penalty_clear_resets(void)
{
	struct t_slot s;

	setup();
	/* Clearing an address never seen creates an empty table. */
	penalty_clear(path, "192.0.2.1");
	CHECK_EQ(file_size(), T_SIZE);
	CHECK(fail("192.0.2.1") == 2.0);
	CHECK(fail("192.0.2.1") == 4.0);
	CHECK(fail("192.0.2.2") == 2.0);
	penalty_clear(path, "192.0.2.1");
	CHECK_EQ(peek("192.0.2.1", &s), -1);
	CHECK(fail("192.0.2.1") == 2.0);
	/* The other address kept its count. */
	CHECK(fail("192.0.2.2") == 4.0);
	penalty_clear(path, "2001:db8::1");
	penalty_clear(path, "unix");
	CHECK(fail("192.0.2.2") == 8.0);
	/* A /64 clears whole. */
	CHECK(fail("2001:db8::1") == 2.0);
	penalty_clear(path, "2001:db8::2");
	CHECK(fail("2001:db8::3") == 2.0);
	teardown();
}

static void
penalty_unparseable(void)
{
	static const char *const bad[] = {
		"unix", "unknown", "", "192.0.2", "192.0.2.1.", " 192.0.2.1",
		"192.0.2.1:143", "[2001:db8::1]", "%eth0", "::g%eth0", "::g",
	};
	size_t i;

	setup();
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(fail(bad[i]) == 2.0);
		CHECK(fail(bad[i]) == 2.0);
		penalty_clear(path, bad[i]);
	}
	CHECK(fail(NULL) == 2.0);
	penalty_clear(path, NULL);
	/* No table was touched. */
	CHECK_EQ(file_size(), -1);
	teardown();
}

static void
penalty_bad_path(void)
{
	char other[160], deep[160];

	setup();
	CHECK(penalty_fail(NULL, "192.0.2.1", 2.0, 15.0) == 2.0);
	CHECK(penalty_fail("", "192.0.2.1", 2.0, 15.0) == 2.0);
	penalty_clear(NULL, "192.0.2.1");
	/* Only one directory level is created. */
	snprintf(deep, sizeof(deep), "%s/a/b/penalty", dir);
	CHECK(penalty_fail(deep, "192.0.2.1", 2.0, 15.0) == 2.0);
	CHECK(penalty_fail(deep, "192.0.2.1", 2.0, 15.0) == 2.0);
	/* A directory where the file should be. */
	CHECK(mkdir(path, 0700) == 0);
	CHECK(fail("192.0.2.1") == 2.0);
	CHECK(fail("192.0.2.1") == 2.0);
	CHECK(rmdir(path) == 0);
	/* A symbolic link is not followed, its target not created. */
	snprintf(other, sizeof(other), "%s/target", dir);
	CHECK(symlink(other, path) == 0);
	CHECK(fail("192.0.2.1") == 2.0);
	CHECK(fail("192.0.2.1") == 2.0);
	CHECK(access(other, F_OK) < 0);
	teardown();
}

static void
penalty_deleted(void)
{
	struct stat st;

	setup();
	CHECK(fail("192.0.2.1") == 2.0);
	CHECK(fail("192.0.2.1") == 4.0);
	CHECK(unlink(path) == 0);
	CHECK(fail("192.0.2.1") == 2.0);
	CHECK(fail("192.0.2.1") == 4.0);
	/* The directory too (/run is emptied at boot): made 0700. */
	CHECK(unlink(path) == 0);
	CHECK(rmdir(dir) == 0);
	CHECK(fail("192.0.2.1") == 2.0);
	CHECK(stat(dir, &st) == 0 && S_ISDIR(st.st_mode) &&
	    (st.st_mode & 0777) == 0700);
	CHECK_EQ(file_size(), T_SIZE);
	teardown();
}

/* After a corrupt file: a new table, written back whole. */
static void
check_recreated(const char *ip)
{
	CHECK(fail(ip) == 2.0);
	CHECK(fail(ip) == 4.0);
	CHECK_EQ(file_size(), T_SIZE);
	CHECK(load() == 0 && memcmp(file, T_MAGIC, 8) == 0);
}

static void
penalty_corrupt(void)
{
	static unsigned char junk[T_SIZE + 1];
	uint32_t v;

	setup();
	/* Random bytes of the right size. */
	random_bytes(junk, sizeof(junk), 1);
	write_file(junk, T_SIZE);
	check_recreated("192.0.2.1");
	/* A valid table one byte too long, or cut short. */
	CHECK(fail("192.0.2.1") == 8.0);
	CHECK(load() == 0);
	memcpy(junk, file, T_SIZE);
	write_file(junk, T_SIZE + 1);
	check_recreated("192.0.2.1");
	write_file(junk, T_SIZE / 2);
	check_recreated("192.0.2.1");
	write_file(junk, T_HEADER);
	check_recreated("192.0.2.1");
	write_file(junk, 3);
	check_recreated("192.0.2.1");
	/* An empty file (just created by someone): quietly a new table. */
	write_file(junk, 0);
	check_recreated("192.0.2.1");
	/* The right size with another version or slot count. */
	v = 2;
	memcpy(junk + 8, &v, 4);
	write_file(junk, T_SIZE);
	check_recreated("192.0.2.1");
	CHECK(load() == 0);
	memcpy(junk, file, T_SIZE);
	v = PENALTY_SLOTS + 1;
	memcpy(junk + 12, &v, 4);
	write_file(junk, T_SIZE);
	check_recreated("192.0.2.1");
	teardown();
}

/* A forged slot for ip in slot i; the rest of the file stays. */
static void
forge(int i, const char *ip, uint32_t failures, double delay, int64_t stamp)
{
	struct t_slot s;

	memset(&s, 0, sizeof(s));
	key_of(ip, s.key);
	s.failures = failures;
	s.delay = delay;
	s.stamp = stamp;
	poke(i, &s);
}

static void
penalty_forged(void)
{
	static unsigned char junk[T_SIZE];
	int64_t now = (int64_t)time(NULL);
	double d;
	int i, ok = 1;
	char ip[32];

	setup();
	/* A valid header over random records: every answer in range. */
	CHECK(fail("192.0.2.1") == 2.0);
	CHECK(load() == 0);
	random_bytes(junk, sizeof(junk), 2);
	memcpy(junk, file, T_HEADER);
	write_file(junk, T_SIZE);
	for (i = 0; i < 300; i++) {
		snprintf(ip, sizeof(ip), "10.0.%d.%d", i / 250, i % 250);
		d = fail(ip);
		ok &= d >= BASE && d <= MAX;
	}
	CHECK(ok);
	/* Each field of a record checked. */
	forge(0, "192.0.2.1", 5, NAN, now);
	CHECK(fail("192.0.2.1") == 2.0);
	forge(0, "192.0.2.1", 5, INFINITY, now);
	CHECK(fail("192.0.2.1") == 2.0);
	forge(0, "192.0.2.1", 5, -8.0, now);
	CHECK(fail("192.0.2.1") == 2.0);
	forge(0, "192.0.2.1", 5, 1e-300, now);
	CHECK(fail("192.0.2.1") == 2.0);
	forge(0, "192.0.2.1", 5, 1e308, now);
	CHECK(fail("192.0.2.1") == 15.0);
	forge(0, "192.0.2.1", UINT32_MAX, 4.0, now);
	CHECK(fail("192.0.2.1") == 8.0);
	forge(0, "192.0.2.1", 5, 4.0, INT64_MIN);
	CHECK(fail("192.0.2.1") == 2.0);
	forge(0, "192.0.2.1", 5, 4.0, INT64_MAX);
	CHECK(fail("192.0.2.1") == 2.0);
	/* The same key twice: clearing removes both. */
	forge(0, "192.0.2.7", 1, 2.0, now);
	forge(1, "192.0.2.7", 1, 2.0, now);
	penalty_clear(path, "192.0.2.7");
	CHECK(fail("192.0.2.7") == 2.0);
	teardown();
}

static void
penalty_stale(void)
{
	struct t_slot s;
	int64_t now = (int64_t)time(NULL);
	int i;

	setup();
	CHECK(fail("192.0.2.1") == 2.0);
	CHECK(fail("192.0.2.1") == 4.0);
	/* Still inside PENALTY_EXPIRE: the count goes on. */
	CHECK((i = peek("192.0.2.1", &s)) >= 0);
	s.stamp = now - PENALTY_EXPIRE + 60;
	poke(i, &s);
	CHECK(fail("192.0.2.1") == 8.0);
	/* Older: forgotten. */
	CHECK((i = peek("192.0.2.1", &s)) >= 0);
	s.stamp = now - PENALTY_EXPIRE - 1;
	poke(i, &s);
	CHECK(fail("192.0.2.1") == 2.0);
	/* From the far future (a clock stepped back): forgotten too. */
	CHECK((i = peek("192.0.2.1", &s)) >= 0);
	s.stamp = now + PENALTY_EXPIRE + 60;
	poke(i, &s);
	CHECK(fail("192.0.2.1") == 2.0);
	teardown();
}

static void
penalty_eviction(void)
{
	struct t_slot s;
	int64_t now = (int64_t)time(NULL);
	int i, i7, i9, ok = 1;
	char ip[32];

	setup();
	for (i = 0; i < PENALTY_SLOTS; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.1", i / 200, i % 200);
		ok &= fail(ip) == 2.0;
	}
	CHECK(ok);
	/* Full: every slot live. */
	CHECK(load() == 0);
	for (i = 0; i < PENALTY_SLOTS; i++) {
		slot_get(i, &s);
		ok &= s.failures == 1;
	}
	CHECK(ok);
	/* 10.0.7.1 is the least recently updated, 10.0.9.1 expired. */
	CHECK((i7 = peek("10.0.7.1", &s)) >= 0);
	s.stamp = now - 60;
	poke(i7, &s);
	CHECK((i9 = peek("10.0.9.1", &s)) >= 0);
	s.stamp = now - PENALTY_EXPIRE - 1;
	poke(i9, &s);
	/* A newcomer takes the expired slot first ... */
	CHECK(fail("192.0.2.1") == 2.0);
	CHECK_EQ(peek("192.0.2.1", &s), i9);
	CHECK_EQ(peek("10.0.7.1", &s), i7);
	/* ... then evicts the least recently updated. */
	CHECK(fail("192.0.2.2") == 2.0);
	CHECK_EQ(peek("192.0.2.2", &s), i7);
	CHECK_EQ(peek("10.0.7.1", &s), -1);
	/* The others kept their counts. */
	CHECK(fail("10.0.8.1") == 4.0);
	CHECK(fail("192.0.2.1") == 4.0);
	CHECK(fail("192.0.2.2") == 4.0);
	teardown();
}

/*
 * Eight processes, ten failures each, all released at once: not one
 * update may be lost to a race, so the count is exactly 80.
 */
static void
penalty_concurrent(void)
{
	struct t_slot s;
	pid_t pid[8];
	int go[2], i, k, status, ok = 1;
	char c;

	setup();
	CHECK(pipe(go) == 0);
	for (i = 0; i < 8; i++) {
		if ((pid[i] = fork()) == 0) {
			close(go[1]);
			(void)!read(go[0], &c, 1);
			for (k = 0; k < 10; k++)
				(void)penalty_fail(path, "192.0.2.1", 0.001,
				    1e9);
			_exit(0);
		}
		ok &= pid[i] > 0;
	}
	CHECK(ok);
	close(go[0]);
	close(go[1]);
	for (i = 0; i < 8; i++)
		ok &= pid[i] > 0 && waitpid(pid[i], &status, 0) == pid[i] &&
		    WIFEXITED(status) && WEXITSTATUS(status) == 0;
	CHECK(ok);
	CHECK(peek("192.0.2.1", &s) >= 0);
	CHECK_EQ(s.failures, 80);
	/* 0.001 doubled 79 times is past the maximum. */
	CHECK(s.delay == 1e9);
	CHECK_EQ(peek("192.0.2.2", &s), -1);
	teardown();
}

void
suite_penalty(void)
{
	RUN(penalty_doubling);
	RUN(penalty_independent);
	RUN(penalty_ipv6);
	RUN(penalty_scoped);
	RUN(penalty_clear_resets);
	RUN(penalty_unparseable);
	RUN(penalty_bad_path);
	RUN(penalty_deleted);
	RUN(penalty_corrupt);
	RUN(penalty_forged);
	RUN(penalty_stale);
	RUN(penalty_eviction);
	RUN(penalty_concurrent);
}
