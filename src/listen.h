/*
 * listen.h - the listening sockets.
 *
 * The master binds every socket the configuration asks for; each worker
 * inherits them as descriptors LISTEN_FD_BASE, LISTEN_FD_BASE + 1, ... in
 * the order listen_plan() gives, which both sides compute from the same
 * configuration (listeners never change on reload).
 */
#ifndef PORTCULLIS_LISTEN_H
#define PORTCULLIS_LISTEN_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

/*
 * Descriptors of a worker: control channel (master -> worker), config
 * part, state part, report pipe (worker -> master; see control.h), its
 * channel to the signer (signer.h; the prober has one too).
 */
#define WORKER_FD_CONTROL	3
#define WORKER_FD_CONFIG	4
#define WORKER_FD_STATE		5
#define WORKER_FD_REPORT	6
#define WORKER_FD_SIGNER	7
#define LISTEN_FD_BASE		8

#define LISTEN_MAX	(2 * CONFIG_MAX_LISTENERS + 1)

enum listen_kind {
	LISTEN_HTTPS,		/* TLS, the proxy */
	LISTEN_HTTP,		/* plain HTTP, redirects to https */
	LISTEN_HEALTH,		/* plain HTTP on 127.0.0.1, GET /health */
};
#define LISTEN_KINDS	(LISTEN_HEALTH + 1)

struct listen_sock {
	enum listen_kind kind;
	size_t		 listener;	/* index in cfg->listeners (not health) */
	uint16_t	 port;
	int		 fd;
};

/* The sockets cfg asks for, in descriptor order.  Returns how many. */
size_t	 listen_plan(const struct config *cfg, struct listen_sock *out);

/*
 * Master: bind and listen on every socket of the plan.  Returns 0, or -1
 * after logging which address failed (every socket is closed then).
 */
int	 listen_bind_all(const struct config *cfg, struct listen_sock *out,
	    size_t *n);

/* "127.0.0.1:443" or "[::1]:443" for messages. */
void	 listen_describe(const struct config *cfg, const struct listen_sock *l,
	    char *buf, size_t bufsz);

#endif /* PORTCULLIS_LISTEN_H */
