/*
 * tls.h - GnuTLS: certificate checks, credentials and sessions.
 *
 * GnuTLS stays inside tls.c (its records: tlsio.c, which the upstream
 * side, uptls.c, shares).  A tls_ctx belongs to one configuration
 * generation: the certificates and keys of every listener and site
 * (private keys only as gnutls_privkey_t), the priorities, and the
 * session-ticket key the master generated, so that a session resumes on
 * whichever worker takes the next connection.  A tls_conn is one server
 * connection over a non-blocking socket.
 *
 * Certificates are chosen by SNI: a site's own, else the ACME certificate
 * of the name (acme mode), else the listener's (none in acme mode: the
 * handshake fails with unrecognized_name); a ClientHello offering only
 * acme-tls/1 gets the TLS-ALPN-01 challenge certificate of a pending
 * name (RFC 8737), made in tls_ctx_new().  Every certificate has an id (a
 * hash of its chain), equal across generations for the same bytes, so
 * that a request's host can be checked against the certificate its
 * connection was actually given (421 otherwise).  Each
 * certificate encrypts its session tickets under a key of its own,
 * derived from the master's: a session resumes only where the ClientHello
 * selects the certificate it was made with (doc/architecture.md).
 *
 * Client certificates (issue 18): a ClientHello whose SNI names a site
 * with client-auth gets a CertificateRequest, and the certificate is
 * verified against that site's client-ca-file alone (chain, dates,
 * purpose); "required" ends the handshake without a good one.  The
 * connection then holds the site's auth id (a hash of its name, mode and
 * CA bytes, equal across generations for the same three) and what was
 * verified, which admission asks for (421 without) and the upstream gets
 * (X-Client-*).  Such a site's tickets are under a key of its own: a
 * session resumes only for the same site, and its certificate is
 * verified again.
 */
#ifndef PORTCULLIS_TLS_H
#define PORTCULLIS_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <sys/types.h>

#include "config.h"
#include "headers.h"
#include "tlsio.h"

struct proxyhdr_tls;

struct route_table;
struct tls_ctx;
struct tls_conn;

/*
 * The ALPN protocol of TLS-ALPN-01 (RFC 8737): offered by a listener whose
 * acme-challenge is tls-alpn-01, and chosen only for a client that offers
 * neither h2 nor http/1.1.  Such a connection gets the challenge
 * certificate of its SNI and is closed after the handshake.
 */
#define TLS_ALPN_ACME	"acme-tls/1"

/* TLS_AGAIN (tls_conn_read/write: nothing to do until the socket is
   ready again) is tlsio.h's. */

/*
 * Check that cert (a PEM chain) and key (a PEM private key) load and that
 * the key belongs to the first certificate.  Returns 0, or -1 with a reason
 * in err.  The config_opts.keypair_check of every load that reads keys.
 */
int	 tls_keypair_check(const struct config_blob *cert,
	    const struct config_blob *key, char *err, size_t errsz);

/*
 * The not-after of the first certificate of a PEM chain, in seconds since
 * the epoch; 0 if it does not parse.  For the master's status.
 */
int64_t	 tls_cert_not_after(const struct config_blob *cert);

/*
 * Credentials of a generation; rt is its routing table (kept, not owned).
 * ticket_key is the master's session-ticket keys (ticketkeys.h): its
 * current key (64 bytes, as gnutls_session_ticket_key_generate() makes
 * it), then, with ticket_len 128, the previous one, under which tickets
 * made before the last rotation still resume (other sizes are refused).
 */
struct tls_ctx *tls_ctx_new(const struct config *cfg,
	    const struct route_table *rt, const unsigned char *ticket_key,
	    size_t ticket_len, char *err, size_t errsz);
void	 tls_ctx_free(struct tls_ctx *ctx);

/*
 * A newer generation took over: wipe ctx's ticket keys now rather than
 * when its last connection ends.  A handshake still to come on it (a
 * connection accepted just before) gets a random key of its own: no
 * ticket resumes, the one it makes never will, nothing fails.
 */
void	 tls_ctx_retire(struct tls_ctx *ctx);

/*
 * GnuTLS's key name of the tickets it makes under key in period t, and
 * the period of time now (GnuTLS 3.7's lib/stek.c, replicated: see
 * tls.c).  tls_stek_name() returns 0, or -1.  For the tests.
 */
#define TLS_STEK_KEY_SIZE	64
#define TLS_STEK_NAME_SIZE	16
int	 tls_stek_name(const unsigned char key[TLS_STEK_KEY_SIZE], uint64_t t,
	    unsigned char name[TLS_STEK_NAME_SIZE]);
uint64_t tls_stek_period(time_t now);

/*
 * The id of the certificate a handshake for host (normalised, hlen bytes)
 * gets on listener li, site being the site host routes to there (NULL:
 * none): the site's own, else the ACME certificate of that name, else the
 * listener's.  0 when there is none (acme mode): no connection has it.
 */
uint64_t tls_ctx_cert_id(const struct tls_ctx *ctx, size_t li,
	    const struct config_site *site, const char *host, size_t hlen);

/*
 * The auth id of site (routed on listener li) when it has client-auth,
 * else 0.  A request for such a site goes only to a connection whose
 * tls_conn_auth_id() is this.
 */
uint64_t tls_ctx_auth_id(const struct tls_ctx *ctx, size_t li,
	    const struct config_site *site);

/*
 * A GnuTLS certificate verification status (gnutls_certificate_status_t
 * bits, not 0) in a word: "unknown-issuer", "expired", "not-yet-valid",
 * "revoked", "issuer-not-ca", "not-for-client-auth" ... ("invalid" for
 * anything else).  What X-Client-Verify's FAILED: and the log line say.
 */
const char *tls_verify_reason(unsigned status);

/* A server connection on fd for listener li.  NULL if out of memory. */
struct tls_conn *tls_conn_new(struct tls_ctx *ctx, size_t li, int fd);
void	 tls_conn_free(struct tls_conn *c);

/* 1 when done, 0 to be called again when the socket is ready, -1 failed. */
int	 tls_conn_handshake(struct tls_conn *c);

/* >0 bytes, 0 at the end of the stream, TLS_AGAIN, or -1 on an error. */
ssize_t	 tls_conn_read(struct tls_conn *c, void *buf, size_t len);

/*
 * Write from buf: >0 bytes taken, TLS_AGAIN or -1.  After TLS_AGAIN the
 * same first bytes must be offered again (the buffer may have grown).
 */
ssize_t	 tls_conn_write(struct tls_conn *c, const void *buf, size_t len);

/*
 * The event loop saw the socket readable: the next read may call recv()
 * again (after a short one, reads answer TLS_AGAIN without a system call
 * until this is called).
 */
void	 tls_conn_readable(struct tls_conn *c);

/* Bytes are buffered inside the TLS layer (decrypted or read ahead). */
bool	 tls_conn_pending(struct tls_conn *c);
/* The last TLS_AGAIN (or handshake 0) waits for writability. */
bool	 tls_conn_want_write(struct tls_conn *c);
/* Send close_notify, without waiting. */
void	 tls_conn_bye(struct tls_conn *c);

uint64_t tls_conn_cert_id(const struct tls_conn *c);
/*
 * After the handshake: the auth id of the client-auth site it was made
 * for and verified (SUCCESS, or any outcome for an "optional" site), 0
 * if none; and what was verified (NULL with 0).
 */
uint64_t tls_conn_auth_id(const struct tls_conn *c);
const struct headers_client_cert *tls_conn_client_cert(
	    const struct tls_conn *c);
/*
 * Why a failed handshake refused the client's certificate for a site
 * that requires one ("no-certificate", "expired", "unknown-issuer" ...),
 * with the site's name in *site; NULL when that was not why.
 */
const char *tls_conn_auth_refusal(const struct tls_conn *c,
	    const char **site);
const char *tls_conn_error(const struct tls_conn *c);
/* The GnuTLS error a failed tls_conn_handshake() ended with; 0 before. */
int	 tls_conn_handshake_error(const struct tls_conn *c);
/* "TLS1.3" etc., for logs. */
const char *tls_conn_version(struct tls_conn *c);
/* The negotiated ALPN protocol ("http/1.1", "h2", TLS_ALPN_ACME) or "" if
   none. */
const char *tls_conn_alpn(struct tls_conn *c);

/*
 * What a PROXY header upstream says of c's session (proxyhdr.h), into t:
 * the ALPN protocol, the SNI as the client sent it (copied into sni, of
 * snisz bytes; none if it does not fit), the version as OpenSSL and
 * HAProxy name it ("TLSv1.3"), the cipher suite's IANA name (GnuTLS's
 * gnutls_ciphersuite_get: "TLS_AES_128_GCM_SHA256"; OpenSSL gives TLS 1.3
 * suites the same names, TLS 1.2 ones others), and whether a client
 * certificate came with it.  t's strings are valid while c and sni are.
 */
void	 tls_conn_proxy_tls(struct tls_conn *c, struct proxyhdr_tls *t,
	    char *sni, size_t snisz);

/*
 * Why a failed handshake had no certificate to give (ACME: none issued
 * yet for the name, or acme-tls/1 without a pending challenge for it), and
 * the normalised name asked for in *name, *len bytes (0: no SNI; any bytes,
 * to be escaped).  NULL when that was not why.
 */
const char *tls_conn_refusal(const struct tls_conn *c, const char **name,
	    size_t *len);

#endif /* PORTCULLIS_TLS_H */
