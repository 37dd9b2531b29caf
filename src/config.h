/*
 * The configuration: libconfig file -> one plain struct, validated, with
 * errors that name the file, the line and the key.
 */
#ifndef IMAPGATE_CONFIG_H
#define IMAPGATE_CONFIG_H

#include <stddef.h>

#include "bounds.h"
#include "capability.h"
#include "cidr.h"

/* One backend.connect entry: "host:port", "[v6]:port" or "unix:/path". */
struct backend_addr {
	char	host[HOST_MAX + 1];	/* the path for a unix socket */
	char	port[PORT_MAX];
	int	is_unix;
};

enum backend_login { BLOGIN_LOGIN, BLOGIN_PLAIN };
enum forward_client { FWD_ID, FWD_PROXY_V1, FWD_PROXY_V2, FWD_NONE };
/* backend.client_input: how bytes the client sent past the login reach an
 * exec'd mail server (the zero value is the default). */
enum client_input { CI_AUTO, CI_ENV, CI_RELAY };
enum ssl_verify { VERIFY_OFF, VERIFY_OPTIONAL, VERIFY_ON };

struct config {
	const char *path;
	int	 port;		/* the listen group applied, 0: none */
	int	 redacted;	/* secret values are placeholders (public) */
	char	*capa_tokens[CAPA_TOKENS_MAX];	/* imap_capabilities */
	size_t	 ncapa;
	unsigned auth_methods;			/* imap_auth, AUTHM_* */
	size_t	 client_buffer;			/* imap_client_buffer */
	char	*greeting;
	int	 timeout;			/* s */
	int	 max_errors;
	/* listener mode (-L): connection processes at once; those not
	 * logged in yet, in all and from one source */
	int	 max_connections, max_preauth, max_preauth_per_source;
	char	*passwd_file;			/* auth.passwd_file */
	char	*checkpw_argv[CHECKPW_ARGS_MAX + 2];	/* auth.checkpassword */
	int	 checkpw_argc;
	char	*auth_http;			/* auth.http */
	char	*auth_http_header[AUTH_HTTP_HEADERS_MAX + 1];
	int	 nauth_http_header;
	int	 auth_http_timeout;		/* s */
	double	 max_penalty;			/* auth.max_penalty, s */
	char	*penalty_file;			/* auth.penalty_file */
	char	*server_name;			/* CRAM-MD5 challenges */
	double	 failure_delay;			/* auth.failure_delay, s */
	int	 max_attempts;			/* auth.max_attempts */
	char	*exec_argv[EXEC_ARGS_MAX + 1];	/* backend.exec */
	int	 exec_argc;
	enum client_input client_input;		/* backend.client_input */
	char	*privsep_user;
	char	*privsep_chroot;
	/* connect mode */
	struct backend_addr connect[CONNECT_MAX];	/* backend.connect */
	int	 nconnect;
	double	 connect_timeout;		/* s */
	enum backend_login backend_login;	/* backend.login */
	char	*master_user, *master_password;
	enum forward_client forward_client;
	int	 proxy_timeout;			/* s */
	int	 proxy_pass_error_message;
	int	 proxy_protocol;
	struct cidr real_ip_from[CIDR_MAX];	/* set_real_ip_from */
	int	 nreal_ip_from;
	/* TLS */
	enum starttls_mode starttls;
	int	 ssl;				/* implicit TLS */
	char	*ssl_cert[SSL_CERTS_MAX + 1], *ssl_key[SSL_CERTS_MAX + 1];
	int	 nssl_cert, nssl_key;
	char	*ssl_priority;
	int	 ssl_priority_set, ssl_protocols_set;	/* one or the other */
	char	*ssl_ticket_key;		/* ssl_session_ticket_key */
	enum ssl_verify ssl_verify_client;
	int	 ssl_external_trust_session;	/* EXTERNAL believes the session */
	char	*ssl_client_ca;			/* ssl_client_certificate */
	int	 ssl_handshake_timeout;		/* s */
	int	 backend_ssl, backend_starttls;
	char	*backend_ca;			/* backend.ssl_trusted_certificate */
	char	*backend_ssl_name;
	/* listen groups: their ports (the one for this connection applied) */
	int	 listen_port[LISTEN_MAX];
	int	 nlisten;
};

/* Parse "host:port", "[v6]:port" or "unix:/path".  0 or -1. */
int backend_addr_parse(const char *s, struct backend_addr *a);

/* auth.http: where to connect, what to ask for, what Host: to say. */
struct auth_http_url {
	struct backend_addr addr;
	char	uri[AUTH_HTTP_URI_MAX + 1];
	char	host[HOST_MAX + PORT_MAX + 2];
};

/* "http://host[:port]/uri" or "unix:/path:/uri".  0 or -1. */
int auth_http_url_parse(const char *url, struct auth_http_url *t);

#define CONFIG_ERR_MAX	512

/* Load and validate path into c.  On error returns -1 with a message
 * "FILE:LINE: KEY: what" in err. */
int config_load(struct config *c, const char *path, char *err, size_t errsize);
/* The same, with the listen group for local port port (if there is one)
 * applied over the top level; port 0: none. */
int config_load_port(struct config *c, const char *path, int port, char *err,
    size_t errsize);

/*
 * For the process that forks sessions: the same, but every secret value
 * (backend.master_password, auth_http_header values) is replaced in the
 * file's text before libconfig sees it, so that no copy of a secret --
 * not in libconfig's freed buffers either -- is inherited by a session.
 * The monitor then calls config_load_secrets() after the fork.
 */
int config_load_public(struct config *c, const char *path, int port,
    char *err, size_t errsize);
/* In the monitor, after the session is forked: the real secret values
 * (for the same path and port) in place of the placeholders.  0 or -1. */
int config_load_secrets(struct config *c, char *err, size_t errsize);

/*
 * Listener mode: loads read the file's text from a snapshot rather than
 * from path, so that what a monitor reads (its secrets, after the fork)
 * is what the listener checked and loaded, whatever the file on disk
 * says now.  config_snapshot(): a sealed memfd holding the file, copied
 * by the kernel (the secrets never pass through the caller's memory), or
 * -1 with err.  config_snapshot_use(): loads read fd from now on (-1:
 * the file again); the one used before is returned, not closed.
 * config_snapshot_close(): close the one in use (a session, and a monitor
 * once it has its secrets: neither may keep a way to the file's text).
 */
int config_snapshot(const char *path, char *err, size_t errsize);
int config_snapshot_use(int fd);
void config_snapshot_close(void);

/* Free what config_load() allocated (a long-lived process never needs
 * to; tests do). */
void config_free(struct config *c);

/* The capability policy this configuration gives, before/after TLS
 * (p->external, for a verified client certificate, is the caller's). */
void config_capa_policy(const struct config *c, int tls_active,
    struct capa_policy *p);

#endif
