/*
 * uptls.c - HTTPS to upstreams, the GnuTLS client side (see uptls.h).
 */
#include "autoconf.h"

#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "signcli.h"
#include "tlsio.h"
#include "uptls.h"
#include "util.h"

#define UPTLS_CONN_MAGIC 0x55544c53u	/* "UTLS" */
/* The longest client certificate chain. */
#define UPTLS_CHAIN_MAX	16
/* How often a non-fatal GnuTLS error is retried at once. */
#define NONFATAL_RETRIES 8

/*
 * TLS 1.3 and 1.2, with GnuTLS's NORMAL choices otherwise: an upstream
 * is often older software on a private network, and the proxy is its
 * client, so it takes what the upstream offers among what is sound.
 */
#define UPTLS_PRIORITY	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

/* A trust store and client certificate, shared and reference counted. */
struct uptls_cred {
	unsigned		 refs;
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t	 prio;
	uint32_t		 ca, cert, key;	/* file indexes: which one */
	uint64_t		 id;		/* of the bytes: which, across
						   generations */
};

/* One https backend's settings (uptls_ctx_backend finds it). */
struct uptls_backend {
	const struct config_backend *be;	/* NULL in a copy */
	struct uptls_cred	*cred;
	const char		*server_name;	/* NULL: the host */
	bool			 verify;
	char			*own;		/* a copy's server_name */
};

struct uptls_ctx {
	struct uptls_cred	**creds;
	size_t			 ncreds;
	struct uptls_backend	*bes;		/* sorted by be */
	size_t			 nbes;
};

struct uptls_session {
	struct sockaddr_storage	 addr;
	socklen_t		 addrlen;
	uint64_t		 tag;
	gnutls_datum_t		 data;		/* GnuTLS's: gnutls_free() */
	uint64_t		 used;		/* stamp: the oldest goes */
};

struct uptls_cache {
	struct uptls_session	*e;
	size_t			 n;
	uint64_t		 clock;
};

struct uptls_conn {
	uint32_t		 magic;
	gnutls_session_t	 s;
	struct tlsio		 io;
	struct uptls_cred	*cred;		/* a reference */
	struct uptls_cache	*cache;
	struct sockaddr_storage	 addr;
	socklen_t		 addrlen;
	uint64_t		 tag;
	bool			 done;		/* handshake complete */
	char			 name[CONFIG_HOST_MAX + 1];
	char			 error[512];
};

/* FNV-1a over more bytes. */
static uint64_t
fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

#define FNV_INIT	0xcbf29ce484222325ULL

static void
datum_of(gnutls_datum_t *d, const struct config_blob *b)
{
	d->data = b->data;
	d->size = (unsigned)b->len;
}

int
uptls_ca_check(const struct config_blob *ca, char *err, size_t errsz)
{
	gnutls_certificate_credentials_t cred;
	gnutls_datum_t d;
	int n;

	if ((n = gnutls_certificate_allocate_credentials(&cred)) < 0) {
		snprintf(err, errsz, "%s", gnutls_strerror(n));
		return -1;
	}
	datum_of(&d, ca);
	/* What a worker does with it (cred_new): the check is the use. */
	n = gnutls_certificate_set_x509_trust_mem(cred, &d,
	    GNUTLS_X509_FMT_PEM);
	gnutls_certificate_free_credentials(cred);
	if (n < 0) {
		snprintf(err, errsz, "%s", gnutls_strerror(n));
		return -1;
	}
	if (n == 0) {
		snprintf(err, errsz, "no certificate in it");
		return -1;
	}
	return 0;
}

static void
cred_unref(struct uptls_cred *c)
{
	if (c == NULL || --c->refs > 0)
		return;
	if (c->cred != NULL)
		gnutls_certificate_free_credentials(c->cred);
	if (c->prio != NULL)
		gnutls_priority_deinit(c->prio);
	free(c);
}

/*
 * A client certificate whose key is the signer's (a worker's image has
 * none): the chain, and a key that asks the signer.  The credential
 * owns both once set.
 */
static int
signer_cert(gnutls_certificate_credentials_t cred, const gnutls_datum_t *pem)
{
	gnutls_pcert_st pcert[UPTLS_CHAIN_MAX];
	unsigned n = UPTLS_CHAIN_MAX, i;
	gnutls_privkey_t key;
	int ret;

	if ((ret = gnutls_pcert_list_import_x509_raw(pcert, &n, pem,
	    GNUTLS_X509_FMT_PEM, 0)) < 0)
		return ret;
	if (n == 0)
		return GNUTLS_E_NO_CERTIFICATE_FOUND;
	/* Whether the key fits the certificate was checked by the master
	   (config.c); here it would cost a signature at every load. */
	gnutls_certificate_set_flags(cred,
	    GNUTLS_CERTIFICATE_SKIP_KEY_CERT_MATCH);
	key = NULL;
	if ((ret = signcli_key(pcert[0].pubkey, &key)) < 0 ||
	    (ret = gnutls_certificate_set_key(cred, NULL, 0, pcert, (int)n,
	    key)) < 0) {
		if (key != NULL)
			gnutls_privkey_deinit(key);
		for (i = 0; i < n; i++)
			gnutls_pcert_deinit(&pcert[i]);
		return ret;
	}
	return 0;
}

/* The credential of be, made from cfg's files. */
static struct uptls_cred *
cred_new(const struct config *cfg, const struct config_backend *be,
    char *err, size_t errsz)
{
	const struct config_file *f = cfg->files;
	struct uptls_cred *c;
	gnutls_datum_t d, k;
	const char *where;
	int ret;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	c->refs = 1;
	c->ca = be->ca;
	c->cert = be->client_cert;
	c->key = be->client_key;
	c->id = fnv(FNV_INIT, f[be->ca].data.data, f[be->ca].data.len);
	if ((ret = gnutls_priority_init(&c->prio, UPTLS_PRIORITY,
	    &where)) < 0 ||
	    (ret = gnutls_certificate_allocate_credentials(&c->cred)) < 0)
		goto fail;
	datum_of(&d, &f[be->ca].data);
	if ((ret = gnutls_certificate_set_x509_trust_mem(c->cred, &d,
	    GNUTLS_X509_FMT_PEM)) <= 0) {
		snprintf(err, errsz, "upstream trust store: %s", ret == 0 ?
		    "no certificate in it" : gnutls_strerror(ret));
		cred_unref(c);
		return NULL;
	}
	if (be->client_cert != CONFIG_NO_FILE) {
		c->id = fnv(c->id, "\0", 1);
		c->id = fnv(c->id, f[be->client_cert].data.data,
		    f[be->client_cert].data.len);
		datum_of(&d, &f[be->client_cert].data);
		datum_of(&k, &f[be->client_key].data);
		if (k.size == 0)
			ret = signer_cert(c->cred, &d);
		else
			ret = gnutls_certificate_set_x509_key_mem2(c->cred, &d,
			    &k, GNUTLS_X509_FMT_PEM, NULL, 0);
		if (ret < 0)
			goto fail;
	}
	return c;
fail:
	snprintf(err, errsz, "upstream TLS credentials: %s",
	    gnutls_strerror(ret));
	cred_unref(c);
	return NULL;
}

/* Add be (https) to ctx, with the credential of its files. */
static int
ctx_add(struct uptls_ctx *ctx, const struct config *cfg,
    const struct config_backend *be, char *err, size_t errsz)
{
	struct uptls_backend *b, *nb;
	struct uptls_cred **nc, *c = NULL;
	size_t i;

	if (be->scheme != CONFIG_SCHEME_HTTPS)
		return 0;
	if (be->ca >= cfg->nfiles || (be->client_cert != CONFIG_NO_FILE &&
	    (be->client_cert >= cfg->nfiles ||
	    be->client_key >= cfg->nfiles))) {
		snprintf(err, errsz, "upstream TLS: no such file");
		return -1;
	}
	for (i = 0; i < ctx->ncreds && c == NULL; i++)
		if (ctx->creds[i]->ca == be->ca &&
		    ctx->creds[i]->cert == be->client_cert &&
		    ctx->creds[i]->key == be->client_key)
			c = ctx->creds[i];
	if (c == NULL) {
		if ((nc = reallocarray(ctx->creds, ctx->ncreds + 1,
		    sizeof(*nc))) == NULL) {
			snprintf(err, errsz, "out of memory");
			return -1;
		}
		ctx->creds = nc;
		if ((c = cred_new(cfg, be, err, errsz)) == NULL)
			return -1;
		ctx->creds[ctx->ncreds++] = c;
	}
	if ((nb = reallocarray(ctx->bes, ctx->nbes + 1, sizeof(*nb))) ==
	    NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	ctx->bes = nb;
	b = &ctx->bes[ctx->nbes++];
	b->be = be;
	b->cred = c;
	b->server_name = be->server_name;
	b->verify = be->verify;
	return 0;
}

static int
be_cmp(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)((const struct uptls_backend *)a)->be;
	uintptr_t y = (uintptr_t)((const struct uptls_backend *)b)->be;

	return x < y ? -1 : x > y;
}

struct uptls_ctx *
uptls_ctx_new(const struct config *cfg, char *err, size_t errsz)
{
	const struct config_site *site;
	struct uptls_ctx *ctx;
	size_t i, j, k;

	if ((ctx = calloc(1, sizeof(*ctx))) == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	for (i = 0; i < cfg->nlisteners; i++) {
		for (j = 0; j < cfg->listeners[i].nsites; j++) {
			site = &cfg->listeners[i].sites[j];
			if (ctx_add(ctx, cfg, &site->be, err, errsz) == -1)
				goto fail;
			for (k = 0; k < site->npaths; k++)
				if (ctx_add(ctx, cfg, &site->paths[k].be, err,
				    errsz) == -1)
					goto fail;
		}
	}
	if (ctx->nbes > 1)
		qsort(ctx->bes, ctx->nbes, sizeof(*ctx->bes), be_cmp);
	return ctx;
fail:
	uptls_ctx_free(ctx);
	return NULL;
}

void
uptls_ctx_free(struct uptls_ctx *ctx)
{
	size_t i;

	if (ctx == NULL)
		return;
	for (i = 0; i < ctx->ncreds; i++)
		cred_unref(ctx->creds[i]);
	free(ctx->creds);
	free(ctx->bes);
	free(ctx);
}

const struct uptls_backend *
uptls_ctx_backend(const struct uptls_ctx *ctx, const struct config_backend *be)
{
	struct uptls_backend key;

	if (be->scheme != CONFIG_SCHEME_HTTPS || ctx == NULL)
		return NULL;
	key.be = be;
	return bsearch(&key, ctx->bes, ctx->nbes, sizeof(*ctx->bes), be_cmp);
}

struct uptls_backend *
uptls_backend_copy(const struct uptls_backend *b)
{
	struct uptls_backend *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	if (b->server_name != NULL &&
	    (c->own = strdup(b->server_name)) == NULL) {
		free(c);
		return NULL;
	}
	c->server_name = c->own;
	c->verify = b->verify;
	c->cred = b->cred;
	c->cred->refs++;
	return c;
}

void
uptls_backend_free(struct uptls_backend *b)
{
	if (b == NULL)
		return;
	cred_unref(b->cred);
	free(b->own);
	free(b);
}

/*
 * The name a connection for host verifies, *len bytes of it: the host as
 * written but for a trailing dot (upstream-server-name has none).
 */
static const char *
name_of(const struct uptls_backend *b, const char *host, size_t *len)
{
	const char *name = b->server_name != NULL ? b->server_name : host;

	*len = strlen(name);
	if (*len > 1 && name[*len - 1] == '.')
		(*len)--;
	return name;
}

uint64_t
uptls_tag(const struct uptls_backend *b, const char *host)
{
	size_t nlen;
	const char *name = name_of(b, host, &nlen);
	uint64_t h = FNV_INIT;
	unsigned char v = b->verify ? 1 : 0;

	h = fnv(h, &b->cred->id, sizeof(b->cred->id));
	h = fnv(h, &v, 1);
	h = fnv(h, name, nlen);
	return h == 0 ? 1 : h;
}

/* ---- the session cache ------------------------------------------------ */

struct uptls_cache *
uptls_cache_new(void)
{
	return calloc(1, sizeof(struct uptls_cache));
}

void
uptls_cache_free(struct uptls_cache *cache)
{
	size_t i;

	if (cache == NULL)
		return;
	for (i = 0; i < cache->n; i++)
		gnutls_free(cache->e[i].data.data);
	free(cache->e);
	free(cache);
}

static struct uptls_session *
cache_find(struct uptls_cache *cache, const struct sockaddr_storage *addr,
    socklen_t len, uint64_t tag)
{
	size_t i;

	for (i = 0; i < cache->n; i++)
		if (cache->e[i].tag == tag && cache->e[i].addrlen == len &&
		    memcmp(&cache->e[i].addr, addr, len) == 0)
			return &cache->e[i];
	return NULL;
}

/* Keep c's session data for the next connection to its address. */
static void
cache_store(struct uptls_conn *c)
{
	struct uptls_cache *cache = c->cache;
	struct uptls_session *e;
	gnutls_datum_t d;
	size_t i;

	if (cache == NULL || gnutls_session_get_data2(c->s, &d) < 0)
		return;
	if (cache->e == NULL && (cache->e = calloc(UPTLS_CACHE_MAX,
	    sizeof(*cache->e))) == NULL) {
		gnutls_free(d.data);
		return;
	}
	if ((e = cache_find(cache, &c->addr, c->addrlen, c->tag)) != NULL)
		gnutls_free(e->data.data);
	else if (cache->n < UPTLS_CACHE_MAX)
		e = &cache->e[cache->n++];
	else {
		/* Full: the one used longest ago goes. */
		for (e = &cache->e[0], i = 1; i < cache->n; i++)
			if (cache->e[i].used < e->used)
				e = &cache->e[i];
		gnutls_free(e->data.data);
	}
	memcpy(&e->addr, &c->addr, c->addrlen);
	e->addrlen = c->addrlen;
	e->tag = c->tag;
	e->data = d;
	e->used = ++cache->clock;
}

/*
 * A TLS 1.3 NewSessionTicket was taken in (after the handshake, on a read
 * or while pooled): its session is the one to offer next time.  Only
 * then: asked before a ticket came, gnutls_session_get_data2() waits for
 * one (poll on the socket).
 */
static int
ticket_hook(gnutls_session_t s, unsigned htype, unsigned when UNUSED,
    unsigned incoming, const gnutls_datum_t *msg UNUSED)
{
	struct uptls_conn *c = gnutls_session_get_ptr(s);

	if (c != NULL && c->magic == UPTLS_CONN_MAGIC && incoming &&
	    htype == GNUTLS_HANDSHAKE_NEW_SESSION_TICKET &&
	    (gnutls_session_get_flags(s) & GNUTLS_SFLAGS_SESSION_TICKET))
		cache_store(c);
	return 0;
}

/* ---- connections ------------------------------------------------------ */

static bool
is_ip(const char *name)
{
	struct in6_addr a6;
	struct in_addr a4;

	return inet_pton(AF_INET, name, &a4) == 1 ||
	    inet_pton(AF_INET6, name, &a6) == 1;
}

struct uptls_conn *
uptls_conn_new(const struct uptls_backend *b, struct uptls_cache *cache,
    int fd, const struct sockaddr *addr, socklen_t addrlen, const char *host,
    uint64_t tag)
{
	static const gnutls_datum_t alpn = { (unsigned char *)"http/1.1", 8 };
	struct uptls_session *e;
	struct uptls_conn *c;
	size_t nlen;
	const char *name = name_of(b, host, &nlen);

	if (addrlen > sizeof(c->addr) || nlen >= sizeof(c->name) ||
	    (c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->magic = UPTLS_CONN_MAGIC;
	memcpy(&c->addr, addr, addrlen);
	c->addrlen = addrlen;
	c->tag = tag;
	c->cache = cache;
	memcpy(c->name, name, nlen);
	c->name[nlen] = '\0';
	if (gnutls_init(&c->s, GNUTLS_CLIENT | GNUTLS_NONBLOCK |
	    GNUTLS_NO_SIGNAL) < 0) {
		free(c);
		return NULL;
	}
	c->cred = b->cred;
	c->cred->refs++;
	gnutls_session_set_ptr(c->s, c);
	tlsio_init(&c->io, c->s, fd, false, true);
	if (gnutls_priority_set(c->s, c->cred->prio) < 0 ||
	    gnutls_credentials_set(c->s, GNUTLS_CRD_CERTIFICATE,
	    c->cred->cred) < 0 ||
	    gnutls_alpn_set_protocols(c->s, &alpn, 1, 0) < 0 ||
	    /* RFC 6066: no IP address in SNI. */
	    (!is_ip(c->name) && gnutls_server_name_set(c->s, GNUTLS_NAME_DNS,
	    c->name, nlen) < 0)) {
		uptls_conn_free(c);
		return NULL;
	}
	/* The chain against the trust, and the name (an IP address against
	   the IP SANs): the handshake fails otherwise. */
	if (b->verify)
		gnutls_session_set_verify_cert(c->s, c->name, 0);
	gnutls_handshake_set_hook_function(c->s,
	    GNUTLS_HANDSHAKE_NEW_SESSION_TICKET, GNUTLS_HOOK_POST,
	    ticket_hook);
	if (cache != NULL && (e = cache_find(cache, &c->addr, addrlen,
	    tag)) != NULL) {
		e->used = ++cache->clock;
		(void)gnutls_session_set_data(c->s, e->data.data,
		    e->data.size);
	}
	return c;
}

void
uptls_conn_free(struct uptls_conn *c)
{
	if (c == NULL)
		return;
	if (c->done)
		tlsio_bye(&c->io);
	gnutls_deinit(c->s);
	tlsio_release(&c->io);
	cred_unref(c->cred);
	c->magic = 0;
	free(c);
}

/* What a GnuTLS error was: the system's word for a transport error. */
static const char *
why(const struct uptls_conn *c, int ret)
{
	if ((ret == GNUTLS_E_PULL_ERROR || ret == GNUTLS_E_PUSH_ERROR) &&
	    c->io.sys_errno != 0)
		return strerror(c->io.sys_errno);
	return gnutls_strerror(ret);
}

/* How GnuTLS's account of a certificate that failed starts. */
#define NOT_TRUSTED	"The certificate is NOT trusted. "

/* Why a handshake failed, in c->error. */
static void
handshake_error(struct uptls_conn *c, int ret)
{
	gnutls_datum_t out;
	unsigned status;

	if (ret == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
		status = gnutls_session_get_verify_cert_status(c->s);
		if (gnutls_certificate_verification_status_print(status,
		    GNUTLS_CRT_X509, &out, 0) == 0) {
			const char *why = (const char *)out.data;
			size_t n = out.size;

			/* GnuTLS ends each of its sentences with a space,
			   and the first one says what the line says. */
			while (n > 0 && why[n - 1] == ' ')
				n--;
			if (n > sizeof(NOT_TRUSTED) - 1 && memcmp(why,
			    NOT_TRUSTED, sizeof(NOT_TRUSTED) - 1) == 0) {
				why += sizeof(NOT_TRUSTED) - 1;
				n -= sizeof(NOT_TRUSTED) - 1;
			}
			snprintf(c->error, sizeof(c->error), "TLS: the "
			    "certificate for \"%s\" failed verification: %.*s",
			    c->name, (int)n, why);
			gnutls_free(out.data);
			return;
		}
	}
	if (ret == GNUTLS_E_FATAL_ALERT_RECEIVED)
		snprintf(c->error, sizeof(c->error), "TLS handshake for "
		    "\"%s\" failed: the upstream sent the alert %s", c->name,
		    gnutls_alert_get_name(gnutls_alert_get(c->s)));
	else
		snprintf(c->error, sizeof(c->error), "TLS handshake for "
		    "\"%s\" failed: %s", c->name, why(c, ret));
}

int
uptls_handshake(struct uptls_conn *c)
{
	int ret, tries;

	c->io.sys_errno = 0;
	for (tries = 0; tries < NONFATAL_RETRIES; tries++) {
		ret = gnutls_handshake(c->s);
		tlsio_ra_release(&c->io);
		if (ret == GNUTLS_E_SUCCESS) {
			c->done = true;
			/* TLS 1.2 has its session now; 1.3 sends tickets
			   later (ticket_hook). */
			if (gnutls_protocol_get_version(c->s) !=
			    GNUTLS_TLS1_3)
				cache_store(c);
			return 1;
		}
		if (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED)
			return 0;
		if (gnutls_error_is_fatal(ret))
			break;
	}
	handshake_error(c, ret);
	return -1;
}

/* After a read or write failed: why, with the name. */
static void
io_error(struct uptls_conn *c)
{
	const char *e = c->io.error != NULL ? c->io.error : "error";

	if (c->io.sys_errno != 0)
		e = strerror(c->io.sys_errno);
	snprintf(c->error, sizeof(c->error), "TLS with \"%s\": %s", c->name,
	    e);
}

ssize_t
uptls_read(struct uptls_conn *c, void *buf, size_t len)
{
	ssize_t n;

	c->io.sys_errno = 0;
	if ((n = tlsio_read(&c->io, buf, len)) == -1)
		io_error(c);
	return n;
}

ssize_t
uptls_write(struct uptls_conn *c, const void *buf, size_t len)
{
	ssize_t n;

	c->io.sys_errno = 0;
	if ((n = tlsio_write(&c->io, buf, len)) == -1)
		io_error(c);
	return n;
}

void
uptls_readable(struct uptls_conn *c)
{
	tlsio_readable(&c->io);
}

bool
uptls_pending(const struct uptls_conn *c)
{
	return tlsio_pending(&c->io);
}

bool
uptls_want_write(const struct uptls_conn *c)
{
	return tlsio_want_write(&c->io);
}

void
uptls_bye(struct uptls_conn *c)
{
	tlsio_bye(&c->io);
}

bool
uptls_resumed(const struct uptls_conn *c)
{
	return gnutls_session_is_resumed(c->s) != 0;
}

const char *
uptls_error(const struct uptls_conn *c)
{
	return c->error[0] != '\0' ? c->error : "TLS error";
}

int
uptls_idle(struct uptls_conn *c, bool taking)
{
	char byte;
	ssize_t n;

	/* Asked of the socket itself: what a poll said proves nothing. */
	tlsio_readable(&c->io);
	n = tlsio_read(&c->io, &byte, 1);
	if (n != TLS_AGAIN)
		return -1;	/* application data, the end, an error */
	if (tlsio_pending(&c->io))
		return -1;
	if (tlsio_partial(&c->io))
		return taking ? -1 : 1;
	return 0;
}
