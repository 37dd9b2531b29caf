/*
 * Exec handoff (REFERENCE.md section 4).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend_exec.h"
#include "log.h"
#include "sasl.h"

#define BYE_UNAVAILABLE	"* BYE [UNAVAILABLE] Mail server unavailable\r\n"

const char *
exec_refusal(const struct auth_user *u)
{
	if (!u->has_ids)
		return "no valid uid:gid for the account (passwd_file entry "
		    "without them, or no system account)";
	if (u->uid == 0)
		return "refusing to run the mail server as root";
	if (geteuid() != 0 && u->uid != geteuid())
		return "not running as root: cannot switch to the user's uid";
	return NULL;
}

struct env {
	char	*v[EXEC_ENV_MAX + 1];
	size_t	 n, used;
	char	 bytes[EXEC_ENV_BYTES];
};

static void
env_add(struct env *e, const char *name, const char *value)
{
	size_t len = strlen(name) + strlen(value) + 2;

	if (e->n == EXEC_ENV_MAX || e->used + len > sizeof(e->bytes))
		log_fatal("exec environment too large");
	e->v[e->n++] = e->bytes + e->used;
	snprintf(e->bytes + e->used, len, "%s=%s", name, value);
	e->used += len;
	e->v[e->n] = NULL;
}

/*
 * Dovecot's CLIENT_INPUT: base64 of '0' (no untagged CAPABILITY needed),
 * the tag, NUL, and the client bytes that followed the login command.
 */
static void
env_client_input(struct env *e, const char *tag, const unsigned char *input,
    size_t inlen)
{
	static unsigned char raw[1 + TAG_MAX + 1 + CLIENT_BUFFER_MAX];
	static char b64[4 * (sizeof(raw) / 3 + 1) + 1];
	size_t taglen = strlen(tag), n = 0;

	raw[n++] = '0';
	memcpy(raw + n, tag, taglen + 1);
	n += taglen + 1;
	memcpy(raw + n, input, inlen);
	n += inlen;
	if (b64_encode(raw, n, b64, sizeof(b64)) < 0)
		log_fatal("CLIENT_INPUT too large");
	env_add(e, "CLIENT_INPUT", b64);
	explicit_bzero(raw, sizeof(raw));
}

static void
build_env(struct env *e, const struct conn *conn, const struct auth_user *u,
    const char *tag, const unsigned char *input, size_t inlen)
{
	e->n = e->used = 0;
	env_add(e, "PATH", "/usr/local/bin:/usr/bin:/bin");
	env_add(e, "USER", u->name);
	env_add(e, "LOGNAME", u->name);
	env_add(e, "HOME", u->home[0] ? u->home : "/");
	env_add(e, "AUTHENTICATED", u->name);		/* Courier */
	env_add(e, "IMAPLOGINTAG", tag);		/* Courier, Dovecot */
	env_add(e, "IP", conn->peer_ip);		/* Dovecot */
	env_add(e, "LOCAL_IP", conn->local_ip);
	env_add(e, "TCPREMOTEIP", conn->peer_ip);	/* Courier: required */
	env_add(e, "TCPREMOTEPORT", conn->peer_port);
	env_add(e, "TCPLOCALIP", conn->local_ip);
	env_add(e, "TCPLOCALPORT", conn->local_port);
	env_client_input(e, tag, input, inlen);
	/* Without this Dovecot's re-exec through doveconf drops the above
	 * and it greets with PREAUTH instead of answering the tag. */
	env_add(e, "DOVECOT_PRESERVE_ENVS",
	    "IMAPLOGINTAG CLIENT_INPUT IP LOCAL_IP");
}

/* The client on fd 0 and 1, fd 2 never the socket, nothing else open. */
static void
arrange_fds(const struct conn *conn)
{
	struct stat e, c;
	int null;

	if (conn->in != 0 && dup2(conn->in, 0) < 0)
		log_fatal("dup2: %s", strerror(errno));
	if (conn->out != 1 && dup2(conn->in == conn->out ? 0 : conn->out,
	    1) < 0)
		log_fatal("dup2: %s", strerror(errno));
	if (fstat(2, &e) < 0 || (fstat(0, &c) == 0 && e.st_dev == c.st_dev &&
	    e.st_ino == c.st_ino)) {
		if ((null = open("/dev/null", O_WRONLY)) < 0)
			log_fatal("/dev/null: %s", strerror(errno));
		if (null != 2) {
			dup2(null, 2);
			close(null);
		}
	}
	closefrom(3);
}

static void
become(const struct auth_user *u)
{
	struct passwd *pw;

	if (geteuid() == 0) {
		/* Supplementary groups only for a real system account of the
		 * same name and uid; a virtual user gets its gid alone. */
		pw = getpwnam(u->name);
		if (pw != NULL && pw->pw_uid == u->uid) {
			if (initgroups(u->name, u->gid) < 0)
				log_fatal("initgroups: %s", strerror(errno));
		} else if (setgroups(1, &u->gid) < 0)
			log_fatal("setgroups: %s", strerror(errno));
		if (setresgid(u->gid, u->gid, u->gid) < 0 ||
		    setresuid(u->uid, u->uid, u->uid) < 0)
			log_fatal("switching to uid %lu: %s",
			    (unsigned long)u->uid, strerror(errno));
	}
	if (geteuid() != u->uid || getuid() != u->uid)
		log_fatal("not running as uid %lu", (unsigned long)u->uid);
	if (u->home[0] == '\0' || chdir(u->home) < 0) {
		log_warn("cannot chdir to home \"%s\" of uid %lu",
		    u->home, (unsigned long)u->uid);
		if (chdir("/") < 0)
			log_fatal("chdir /: %s", strerror(errno));
	}
}

void
exec_handoff(const struct config *c, const struct conn *conn,
    const struct auth_user *u, const char *tag, const unsigned char *input,
    size_t inlen)
{
	static struct env e;
	int err;

	arrange_fds(conn);
	become(u);
	build_env(&e, conn, u, tag, input, inlen);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGALRM, SIG_DFL);
	alarm(0);
	execve(c->exec_argv[0], c->exec_argv, e.v);
	err = errno;
	(void)!write(1, BYE_UNAVAILABLE, sizeof(BYE_UNAVAILABLE) - 1);
	log_fatal("exec %s: %s", c->exec_argv[0], strerror(err));
}
