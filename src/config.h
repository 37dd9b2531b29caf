/*
 * The configuration: libconfig file -> one plain struct, validated, with
 * errors that name the file, the line and the key.
 */
#ifndef IMAPGATE_CONFIG_H
#define IMAPGATE_CONFIG_H

#include <stddef.h>

#include "capability.h"
#include "bounds.h"

struct config {
	const char *path;
	char	*capa_tokens[CAPA_TOKENS_MAX];	/* imap_capabilities */
	size_t	 ncapa;
	unsigned auth_methods;			/* imap_auth, AUTHM_* */
	size_t	 client_buffer;			/* imap_client_buffer */
	char	*greeting;
	int	 timeout;			/* s */
	int	 max_errors;
	char	*passwd_file;			/* auth.passwd_file */
	double	 failure_delay;			/* auth.failure_delay, s */
	int	 max_attempts;			/* auth.max_attempts */
	char	*exec_argv[EXEC_ARGS_MAX + 1];	/* backend.exec */
	int	 exec_argc;
	char	*privsep_user;
	char	*privsep_chroot;
};

#define CONFIG_ERR_MAX	512

/* Load and validate path into c.  On error returns -1 with a message
 * "FILE:LINE: KEY: what" in err. */
int config_load(struct config *c, const char *path, char *err, size_t errsize);

/* The capability policy this configuration gives, before/after TLS. */
void config_capa_policy(const struct config *c, int tls_active,
    struct capa_policy *p);

#endif
