/*
 * uptls.h - HTTPS to upstreams (upstream-scheme = "https"): the GnuTLS
 * client side.
 *
 * Per generation (struct gen), a uptls_ctx: the TLS settings of every
 * https backend and the GnuTLS credentials they need, built from the PEM
 * bytes the master read and the image carries (a worker opens no file):
 * one credential per distinct trust and client certificate, shared by the
 * backends that name them, and held by every connection made with it (a
 * pooled connection may outlive its generation).
 *
 * Per worker, a uptls_cache: the session data of the last connection per
 * upstream address and tag, so that the next connection resumes.  A tag
 * (uptls_tag) stands for everything a connection was made and verified
 * with: the name, the trust, the client certificate and whether the
 * certificate was verified.  Two connections with the same address and
 * tag may serve each other's requests; nothing else may (the pool keys
 * its idle connections by both).
 *
 * Per connection, a uptls_conn over a non-blocking socket: SNI (none for
 * an IP address), verification of the certificate against the trust and
 * the name (a DNS name, or an IP address against the certificate's IP
 * SANs), the handshake, records (tlsio.c), and an idle connection's
 * housekeeping: what arrives while it is pooled is read, and only records
 * that carry no application data (TLS 1.3 session tickets, a key update)
 * let it stay.  Every failure comes with one sentence saying what failed
 * and why (uptls_error).
 */
#ifndef PORTCULLIS_UPTLS_H
#define PORTCULLIS_UPTLS_H

#include <sys/socket.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "tlsio.h"

/* Sessions a worker keeps, one per upstream address and tag. */
#define UPTLS_CACHE_MAX	1024

struct uptls_ctx;
struct uptls_backend;
struct uptls_cache;
struct uptls_conn;

/*
 * Whether ca (PEM) gives a TLS client a trust store: every certificate in
 * it loads, and there is at least one.  0, or -1 with why in err.  The
 * config_opts.ca_check of every load.
 */
int	 uptls_ca_check(const struct config_blob *ca, char *err, size_t errsz);

/* The TLS of cfg's https backends.  NULL with why in err. */
struct uptls_ctx *uptls_ctx_new(const struct config *cfg, char *err,
	    size_t errsz);
void	 uptls_ctx_free(struct uptls_ctx *ctx);

/* be's (a backend of the config ctx was made from); NULL for "http". */
const struct uptls_backend *uptls_ctx_backend(const struct uptls_ctx *ctx,
	    const struct config_backend *be);

/*
 * A copy of b that outlives its generation (the prober keeps one per
 * checked upstream across reloads): it holds a reference to b's
 * credential and its own server name.  NULL if out of memory.
 */
struct uptls_backend *uptls_backend_copy(const struct uptls_backend *b);
void	 uptls_backend_free(struct uptls_backend *b);

struct uptls_cache *uptls_cache_new(void);
void	 uptls_cache_free(struct uptls_cache *cache);

/*
 * The tag of connections made with b to an upstream whose host is host
 * (the name verified unless upstream-server-name says another).  Never 0,
 * which stands for plain HTTP.
 */
uint64_t uptls_tag(const struct uptls_backend *b, const char *host);

/*
 * A client session on fd (connected to addr) made with b, for host, whose
 * tag is tag; it offers the session cache holds for (addr, tag) and keeps
 * there the ones the upstream issues (cache may be NULL: none).  NULL if
 * out of memory.
 */
struct uptls_conn *uptls_conn_new(const struct uptls_backend *b,
	    struct uptls_cache *cache, int fd, const struct sockaddr *addr,
	    socklen_t addrlen, const char *host, uint64_t tag);
/* close_notify (without waiting) if the handshake was done, and free.
   The socket stays open: it is the caller's. */
void	 uptls_conn_free(struct uptls_conn *c);

/* 1 when done, 0 to be called again when the socket is ready
   (uptls_want_write says for what), -1 failed (uptls_error). */
int	 uptls_handshake(struct uptls_conn *c);
/* >0 bytes, 0 at the end of the stream, TLS_AGAIN, -1 (uptls_error). */
ssize_t	 uptls_read(struct uptls_conn *c, void *buf, size_t len);
/* >0 bytes taken, TLS_AGAIN (offer the same first bytes again), -1. */
ssize_t	 uptls_write(struct uptls_conn *c, const void *buf, size_t len);
/* The event loop saw the socket readable (tlsio_readable). */
void	 uptls_readable(struct uptls_conn *c);
/* Bytes wait inside: decrypted, or read ahead. */
bool	 uptls_pending(const struct uptls_conn *c);
bool	 uptls_want_write(const struct uptls_conn *c);
/* Send close_notify, without waiting (a tunnel's half-close). */
void	 uptls_bye(struct uptls_conn *c);
/* Whether the handshake resumed a session. */
bool	 uptls_resumed(const struct uptls_conn *c);
/* Why the last call failed: one sentence naming the server name. */
const char *uptls_error(const struct uptls_conn *c);

/*
 * An idle (pooled) connection: read what came, if anything.  0: it holds
 * nothing (records without application data, such as session tickets,
 * were taken in); 1: part of a record came, the rest is awaited (only
 * when !taking: a connection about to be used must hold nothing); -1:
 * application data, an alert, the end of the stream or an error, and it
 * must be closed.
 */
int	 uptls_idle(struct uptls_conn *c, bool taking);

#endif /* PORTCULLIS_UPTLS_H */
