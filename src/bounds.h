/*
 * Every limit and timeout imapgate enforces, in one place.
 * A number that appears in a .c file and bounds something belongs here.
 */
#ifndef IMAPGATE_BOUNDS_H
#define IMAPGATE_BOUNDS_H

#define IMAPGATE_VERSION	"0.1"

/* imap_client_buffer: RFC 2683 asks for lines of at least 8000 octets. */
#define CLIENT_BUFFER_DEFAULT	8192
#define CLIENT_BUFFER_MIN	1024
#define CLIENT_BUFFER_MAX	65536

/* Tags as nginx restricts them: [A-Za-z0-9._-], at most this many. */
#define TAG_MAX			32
/* Longest command name we ever need to look at (AUTHENTICATE). */
#define CMDNAME_MAX		16
/* Arguments of one pre-auth command (LOGIN has two, AUTHENTICATE two). */
#define IMAP_ARGS_MAX		8

/* RFC 4616 asks for at least 255 octets per field; give a little more. */
#define USER_MAX		256
#define PASS_MAX		4096	/* an OAuth bearer token is one too */
/* A SASL response line: base64 of authzid NUL authcid NUL passwd. */
#define SASL_LINE_MAX		(4 * ((USER_MAX * 2 + PASS_MAX + 2 + 2) / 3) + 4)

/* RFC 7888 LITERAL-: non-synchronizing literals up to this size. */
#define LITERAL_MINUS_MAX	4096

/* RFC 2971 ID limits. */
#define ID_PAIRS_MAX		30
#define ID_FIELD_MAX		30
#define ID_VALUE_MAX		1024

/* Config defaults (nginx names where nginx has them). */
#define TIMEOUT_DEFAULT		60	/* s, pre-auth idle */
#define TIMEOUT_TOTAL_FACTOR	3	/* whole pre-auth phase <= 3 * timeout */
#define MAX_ERRORS_DEFAULT	5
#define FAILURE_DELAY_DEFAULT	2.0	/* s */
#define MAX_ATTEMPTS_DEFAULT	3
#define GREETING_MAX		256
#define CAPABILITY_MAX		1024	/* the whole capability string */
#define CAPA_TOKENS_MAX		64

/* passwd-file: the line buffer; a line of PASSWD_LINE_MAX - 2 bytes or
 * more (without its newline) is skipped and logged. */
#define PASSWD_LINE_MAX		4096
#define PASSWD_FIELDS		8

/* Exec handoff: environment entries we build, and their total size. */
#define EXEC_ARGS_MAX		32
#define EXEC_ENV_MAX		24
#define EXEC_ENV_BYTES		(4 * CLIENT_BUFFER_MAX + 4096)

/* One reply line we build: the greeting is the longest. */
#define REPLY_MAX		(CAPABILITY_MAX + GREETING_MAX + 2 * TAG_MAX + 128)

/* The monitor's own alarm: this long past the session's deadlines. */
#define MONITOR_SLACK		10	/* s */

/* Connect mode. */
#define CONNECT_MAX		16	/* backend.connect entries */
#define HOST_MAX		255	/* a host name, or a unix socket path */
#define UNIX_PATH_MAX		107	/* sizeof(sun_path) - 1 on Linux */
#define PORT_MAX		8	/* "65535" and NUL, with room */
#define CONNECT_TIMEOUT_DEFAULT	5.0	/* s, per address */
#define BACKEND_LOGIN_TIMEOUT	30	/* s, greeting to tagged login reply */
#define BACKEND_BUFFER		16384	/* backend lines before login ends */
#define PROXY_TIMEOUT_DEFAULT	86400	/* s idle after login (nginx's) */
#define RELAY_BUFFER		65536	/* each direction, when not spliced */
#define RELAY_PIPE		(1024 * 1024)	/* each direction, spliced */
#define CIDR_MAX		32	/* set_real_ip_from entries */
#define PROXY_HEADER_TIMEOUT	5	/* s to receive a PROXY header */
#define PROXY_PEEK_PAUSE_MS	5	/* between peeks at a partial header */
#define PROXY_V1_MAX		107	/* PROXY v1 line, CRLF included */
#define PROXY_V2_MAX		536	/* v2 header we accept, TLVs included */
#define SESSION_ID_MAX		32

/* Listener mode (-L). */
#define LISTEN_BACKLOG		511
/* Listener mode's limits (max_connections etc.): each connection is two
 * processes (monitor and session, or mail server or relay after login). */
#define MAX_CONNECTIONS_DEFAULT	10000	/* an IDLE client holds one for hours */
#define MAX_CONNECTIONS_MAX	100000	/* the listener's table, ~3 MB */
#define MAX_PREAUTH_DEFAULT	256	/* not logged in yet, all sources */
#define MAX_PREAUTH_PER_SOURCE_DEFAULT 10	/* ... from one IPv4 address or /64 */
#define LISTEN_RESPAWN_MS	1000	/* the least a spare lives: no fork loop */
#define LISTEN_REAP_MS		200	/* reap exited children this often */
#define LISTEN_SPARES		2	/* connection processes waiting ahead */
#define LISTEN_STOP_MS		1000	/* SIGTERM: the most to wait for spares */

/* Auth services. */
#define CHECKPW_ARGS_MAX	16	/* auth.checkpassword argv */
#define CHECKPW_TIMEOUT		10	/* s for a checkpassword program */
#define AUTH_HTTP_TIMEOUT_DEFAULT 60	/* s, nginx's auth_http_timeout */
#define AUTH_HTTP_HEADERS_MAX	16	/* auth_http_header lines */
#define AUTH_HTTP_HEADER_MAX	256	/* one of them */
#define AUTH_HTTP_URI_MAX	512
#define AUTH_HTTP_RESPONSE_MAX	4096	/* the auth server's whole answer */
#define AUTH_HTTP_REQUEST_MAX	(3 * (USER_MAX + PASS_MAX) + 2048 + \
				 AUTH_HTTP_HEADERS_MAX * (AUTH_HTTP_HEADER_MAX + 2) + \
				 3 * (2 * TLS_DN_MAX + TLS_SERIAL_MAX + 41) + \
				 2 * TLS_NAME_MAX + 256)
#define AUTH_TEXT_MAX		256	/* Auth-Status text passed to the client */
#define AUTH_WAIT_MAX		3600	/* s, the most Auth-Wait we honour */
#define SERVER_NAME_MAX		255
#define CHALLENGE_MAX		(SERVER_NAME_MAX + 48)	/* <random.time@name> */
#define MAX_PENALTY_DEFAULT	15.0	/* s, auth.max_penalty */
#define PENALTY_FILE_DEFAULT	"/run/imapgate/penalty"

/* A log line, after escaping client bytes. */
#define LOG_LINE_MAX		1024
#define ADDR_MAX		64

/* The penalty table file (src/penalty.c): a fixed number of address
 * slots; an address without a failure for PENALTY_EXPIRE is forgotten. */
#define PENALTY_SLOTS		1024
#define PENALTY_EXPIRE		900	/* s */

/* The most the monitor waits for the penalty table's lock. */
#define PENALTY_LOCK_MS		2000
#define PENALTY_LOCK_STEP_MS	5

/* The configuration file, read whole into a buffer of our own so that
 * its text can be wiped (src/config.c). */
#define CONFIG_FILE_MAX		(256 * 1024)

/* The sandbox (src/sandbox.c, src/seccomp.c). */
#define SECCOMP_PROG_MAX	256	/* BPF instructions of the allow-list */
/* Descriptors the session and the relay may have: 0-2, the client, the
 * monitor socket, a backend or mail-server socket, the syslog socket,
 * two splice pipes -- and room for a descriptor passed in a message. */
#define SANDBOX_NOFILE		16

/* TLS (src/tls.c). */
#define SSL_CERTS_MAX		8	/* ssl_certificate pairs (SNI) */
#define SSL_HANDSHAKE_TIMEOUT_DEFAULT 10	/* s, ssl_handshake_timeout */
#define SSL_PRIORITY_DEFAULT	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
#define TICKET_KEY_FILE_MIN	32	/* bytes of ssl_session_ticket_key */
#define TICKET_KEY_FILE_MAX	4096
#define TLS_DN_MAX		512	/* a certificate subject or issuer */
#define TLS_SERIAL_MAX		64	/* hex of a serial number (20 bytes) */
#define TLS_NAME_MAX		64	/* "TLS1.3", a cipher suite's name */
#define TLS_FINGERPRINT_LEN	20	/* SHA-1 of a client certificate */
#define TLS_BYE_MS		1000	/* the most a close_notify may take */
#define TLS_CHAIN_CERTS		4	/* client certificates passed on ... */
#define TLS_CHAIN_BYTES		16384	/* ... and their DER bytes in all */
#define SSL_CHAIN_MAX		8	/* certificates in one ssl_certificate */
#define TLS_SIGNS_MAX		2	/* signatures the monitor makes per connection */
#define TLS_SIGN_DATA_MAX	2048	/* what a handshake signs */
#define TLS_SIG_MAX		1024	/* a signature (RSA 8192: 1024 bytes) */
#define TLS_HASHED_MAX		83	/* a DigestInfo of SHA-512, signed as a hash */
#define LISTEN_MAX		16	/* listen groups */
/* Listening sockets systemd may pass at once (Accept=no, a ListenStream=
 * each): one listener process per socket, under one supervisor. */
#define LISTEN_SOCKETS_MAX	16
/* Privsep messages carry at most one descriptor; room to receive (and
 * close) this many that a peer attached all the same. */
#define MSG_FDS_ROOM		16

#endif
