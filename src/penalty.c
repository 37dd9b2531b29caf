/*
 * The per-address failure penalty table: a header and PENALTY_SLOTS
 * fixed records in one file, locked whole with fcntl around each
 * read-modify-write.  Everything read from the file is checked, so a
 * file someone scribbled on costs at most the penalties it held.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bounds.h"
#include "log.h"
#include "penalty.h"

#define PENALTY_MAGIC	"IGPEN1\0\0"
#define PENALTY_VERSION	1
#define PENALTY_KEY	16	/* an IPv6 address, or IPv4 v4-mapped */
#define PENALTY_OPEN	(O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY)

struct pen_header {
	char		magic[8];
	uint32_t	version;
	uint32_t	slots;
};

struct pen_slot {
	unsigned char	key[PENALTY_KEY];	/* IPv6 masked to /64 */
	uint32_t	failures;		/* 0: the slot is free */
	uint32_t	reserved;
	double		delay;			/* s, the last failure's */
	int64_t		stamp;			/* time() of the last one */
};

struct pen_table {
	struct pen_header	h;
	struct pen_slot		slot[PENALTY_SLOTS];
};

_Static_assert(sizeof(struct pen_header) == 16, "penalty header layout");
_Static_assert(sizeof(struct pen_slot) == 40, "penalty slot layout");
_Static_assert(sizeof(struct pen_table) == 16 + 40 * PENALTY_SLOTS,
    "penalty table layout");

/* One table at a time: the monitor is single-threaded. */
static struct pen_table table;

/* The key for an address: IPv4 as ::ffff:a.b.c.d, IPv6 cut to its /64
 * (one customer's network), v4-mapped IPv6 kept whole.  A link-local
 * client's address carries its scope ("fe80::1%eth0"): the key is the
 * address without it, or such a client would never be penalized (issue
 * 9).  -1 for anything else ("unix", "unknown"). */
static int
pen_key(const char *ip, unsigned char key[PENALTY_KEY])
{
	char plain[INET6_ADDRSTRLEN];
	const char *scope;
	struct in6_addr a6;
	struct in_addr a4;

	memset(key, 0, PENALTY_KEY);
	if (ip == NULL)
		return -1;
	if ((scope = strchr(ip, '%')) != NULL) {
		if ((size_t)(scope - ip) >= sizeof(plain))
			return -1;
		memcpy(plain, ip, (size_t)(scope - ip));
		plain[scope - ip] = '\0';
		ip = plain;
	}
	if (inet_pton(AF_INET, ip, &a4) == 1) {
		key[10] = key[11] = 0xff;
		memcpy(key + 12, &a4, 4);
		return 0;
	}
	if (inet_pton(AF_INET6, ip, &a6) != 1)
		return -1;
	memcpy(key, &a6, PENALTY_KEY);
	if (!IN6_IS_ADDR_V4MAPPED(&a6))
		memset(key + 8, 0, 8);
	return 0;
}

/* Create the file's directory (one level, e.g. /run/imapgate, which a
 * reboot empties); private, as the file is. */
static int
make_parent(const char *path)
{
	char dir[PATH_MAX], *slash;
	size_t len = strlen(path);

	if (len >= sizeof(dir))
		return -1;
	memcpy(dir, path, len + 1);
	if ((slash = strrchr(dir, '/')) == NULL || slash == dir)
		return -1;
	*slash = '\0';
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

/* Lock within PENALTY_LOCK_MS: a process stuck holding the lock must not
 * stall every failing login on the machine; without the table a failure
 * still waits failure_delay. */
static int
lock_bounded(int fd, struct flock *fl)
{
	int waited = 0;

	while (fcntl(fd, F_SETLK, fl) < 0) {
		if ((errno != EACCES && errno != EAGAIN) ||
		    waited >= PENALTY_LOCK_MS)
			return -1;
		(void)poll(NULL, 0, PENALTY_LOCK_STEP_MS);
		waited += PENALTY_LOCK_STEP_MS;
	}
	return 0;
}

/* Open the table file and lock it whole for writing.  O_NOFOLLOW and
 * the regular-file check: a link or a device planted at the path must
 * not make us write elsewhere. */
static int
pen_open(const char *path)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	struct stat st;
	int fd;

	if (path == NULL || path[0] == '\0')
		return -1;
	fd = open(path, PENALTY_OPEN, 0600);
	if (fd < 0 && errno == ENOENT && make_parent(path) == 0)
		fd = open(path, PENALTY_OPEN, 0600);
	if (fd < 0) {
		log_warn("penalty file %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		log_warn("penalty file %s: not a regular file", path);
		close(fd);
		return -1;
	}
	if (lock_bounded(fd, &fl) < 0) {
		log_warn("penalty file %s: lock: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* Read the table.  A file of the wrong size or with a foreign header
 * starts over empty: 1, so that it is written back whole; else 0. */
static int
pen_load(int fd, const char *path)
{
	struct stat st = { 0 };

	if (fstat(fd, &st) == 0 && st.st_size == (off_t)sizeof(table) &&
	    pread(fd, &table, sizeof(table), 0) == (ssize_t)sizeof(table) &&
	    memcmp(table.h.magic, PENALTY_MAGIC, sizeof(table.h.magic)) == 0 &&
	    table.h.version == PENALTY_VERSION &&
	    table.h.slots == PENALTY_SLOTS)
		return 0;
	if (st.st_size != 0)
		log_warn("penalty file %s: corrupt, starting a new table",
		    path);
	memset(&table, 0, sizeof(table));
	memcpy(table.h.magic, PENALTY_MAGIC, sizeof(table.h.magic));
	table.h.version = PENALTY_VERSION;
	table.h.slots = PENALTY_SLOTS;
	return 1;
}

/* Write the table back whole (PENALTY_SLOTS * 40 bytes, on a tmpfs). */
static void
pen_store(int fd, const char *path, int fresh)
{
	ssize_t n = 0;

	if ((fresh && ftruncate(fd, (off_t)sizeof(table)) < 0) ||
	    (n = pwrite(fd, &table, sizeof(table), 0)) !=
	    (ssize_t)sizeof(table))
		log_warn("penalty file %s: write: %s", path,
		    n <= 0 ? strerror(errno) : "short write");
}

/* In use, and stamped within PENALTY_EXPIRE of now either way: a stamp
 * from the far future (a clock stepped back, a forged file) must not
 * pin a slot for ever. */
static int
slot_live(const struct pen_slot *s, time_t now)
{
	return s->failures != 0 && s->stamp >= (int64_t)now - PENALTY_EXPIRE &&
	    s->stamp <= (int64_t)now + PENALTY_EXPIRE;
}

/* The live slot for key; else a free or expired one; else the least
 * recently updated (all are live then).  A slot not key's is reset. */
static struct pen_slot *
pen_slot_for(const unsigned char *key, time_t now)
{
	struct pen_slot *s;
	int i, free_i = -1, old_i = 0;

	for (i = 0; i < PENALTY_SLOTS; i++) {
		s = &table.slot[i];
		if (!slot_live(s, now)) {
			if (free_i < 0)
				free_i = i;
		} else if (memcmp(s->key, key, PENALTY_KEY) == 0)
			return s;
		else if (s->stamp < table.slot[old_i].stamp)
			old_i = i;
	}
	s = &table.slot[free_i >= 0 ? free_i : old_i];
	memset(s, 0, sizeof(*s));
	memcpy(s->key, key, PENALTY_KEY);
	return s;
}

/* Double the last delay, within [base, max]; a delay the file cannot
 * have come from us (NaN, negative) counts as none. */
static double
next_delay(const struct pen_slot *s, double base, double max)
{
	double d = base;

	if (s->failures != 0 && isfinite(s->delay) && s->delay >= 0)
		d = 2 * s->delay;
	if (d < base)
		d = base;
	if (d > max)
		d = max;
	return d;
}

double
penalty_fail(const char *path, const char *ip, double base, double max)
{
	unsigned char key[PENALTY_KEY];
	struct pen_slot *s;
	time_t now = time(NULL);
	double delay;
	int fd, fresh;

	if (pen_key(ip, key) < 0 || (fd = pen_open(path)) < 0)
		return base;
	fresh = pen_load(fd, path);
	s = pen_slot_for(key, now);
	delay = next_delay(s, base, max);
	if (s->failures < UINT32_MAX)
		s->failures++;
	s->delay = delay;
	s->stamp = now;
	pen_store(fd, path, fresh);
	close(fd);
	return delay;
}

/* Slots penalty_clear() reads at a time, on its stack. */
#define PEN_CLEAR_CHUNK	64

/*
 * The common case of a login, on a well-formed file: read it a chunk at a
 * time into the stack and zero (pwrite) only the slots that hold key.
 * Reading all 40 KiB into the static table instead faulted in 11 fresh
 * pages in every monitor that saw a login (issue 14).  -1: the file is
 * not a table penalty_clear() can use as it is (the caller loads it).
 */
static int
pen_clear_in_place(int fd, const char *path, const unsigned char *key)
{
	static const struct pen_slot zero;
	struct pen_slot buf[PEN_CLEAR_CHUNK];
	struct pen_header h;
	struct stat st;
	size_t i, j, n;
	off_t off;

	if (fstat(fd, &st) < 0 || st.st_size != (off_t)sizeof(table) ||
	    pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
	    memcmp(h.magic, PENALTY_MAGIC, sizeof(h.magic)) != 0 ||
	    h.version != PENALTY_VERSION || h.slots != PENALTY_SLOTS)
		return -1;
	for (i = 0; i < PENALTY_SLOTS; i += n) {
		n = PENALTY_SLOTS - i < PEN_CLEAR_CHUNK ? PENALTY_SLOTS - i :
		    PEN_CLEAR_CHUNK;
		off = (off_t)(sizeof(h) + i * sizeof(buf[0]));
		if (pread(fd, buf, n * sizeof(buf[0]), off) !=
		    (ssize_t)(n * sizeof(buf[0])))
			return -1;
		/* Every copy: a forged file may hold the key twice. */
		for (j = 0; j < n; j++)
			if (buf[j].failures != 0 &&
			    memcmp(buf[j].key, key, PENALTY_KEY) == 0 &&
			    pwrite(fd, &zero, sizeof(zero), off +
			    (off_t)(j * sizeof(zero))) != (ssize_t)sizeof(zero))
				log_warn("penalty file %s: write: %s", path,
				    strerror(errno));
	}
	return 0;
}

void
penalty_clear(const char *path, const char *ip)
{
	unsigned char key[PENALTY_KEY];
	int fd, fresh, i, found = 0;

	if (pen_key(ip, key) < 0 || (fd = pen_open(path)) < 0)
		return;
	if (pen_clear_in_place(fd, path, key) == 0) {
		close(fd);
		return;
	}
	fresh = pen_load(fd, path);
	/* Every copy: a forged file may hold the key twice. */
	for (i = 0; i < PENALTY_SLOTS; i++)
		if (table.slot[i].failures != 0 &&
		    memcmp(table.slot[i].key, key, PENALTY_KEY) == 0) {
			memset(&table.slot[i], 0, sizeof(table.slot[i]));
			found = 1;
		}
	if (found || fresh)
		pen_store(fd, path, fresh);
	close(fd);
}
