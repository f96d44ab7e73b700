/*
 * tls.c - GnuTLS: certificate checks, credentials and sessions (see tls.h).
 */
#include "autoconf.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>
#include <gnutls/abstract.h>

#include "acmecrypto.h"
#include "headers.h"
#include "proxyhdr.h"
#include "route.h"
#include "ticketname.h"
#include "signcli.h"
#include "tls.h"
#include "tlsio.h"
#include "util.h"

#define TLS_CTX_MAGIC	0x544c5358u	/* "TLSX" */
#define TLS_CONN_MAGIC	0x544c5343u	/* "TLSC" */
#define MAX_CHAIN	16
/* A session-ticket key as GnuTLS takes it (name, cipher and MAC keys):
   the size gnutls_session_ticket_key_generate() makes, and SHA-512's. */
#define TICKET_KEY_SIZE	64
/* The master's keys a ctx has: the current one and the previous one. */
#define TICKET_KEYS	2
/*
 * A session's expire time, set on every session: GnuTLS's default (6 h),
 * which is also what its ticket-key periods are made of (tls_stek_name).
 */
#define SESSION_EXPIRE	21600
/* How often a non-fatal GnuTLS handshake error is retried at once. */
#define NONFATAL_RETRIES 8

/*
 * TLS 1.3 (its AEAD suites) and TLS 1.2 with ECDHE and an AEAD cipher
 * only: no CBC, no static RSA, no finite-field DH, no compression, no
 * SHA-1 signatures (TLS 1.2 names ECDSA signatures without a curve,
 * TLS 1.3 with one: both are listed).  The server's order wins, and it
 * puts AES-128-GCM first, as Mozilla's server guidelines do: 128-bit
 * keys are ample, AES-128 has 10 rounds to AES-256's 14, and its TLS 1.3
 * suite hashes with SHA-256 (SHA-NI on current x86) where AES-256's uses
 * SHA-384; the key schedule's SHA-384 was 9% of a handshake's CPU.
 * Renegotiation stays at
 * GnuTLS's default (safe renegotiation offered, not demanded: TLS 1.3
 * hellos need not carry it); a client's attempt to renegotiate ends the
 * connection (tls_conn_read).
 */
#define TLS_PRIORITY							\
	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:"			\
	"-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305:"	\
	"-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:"		\
	"-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:"	\
	"-SIGN-ALL:+SIGN-ECDSA-SECP256R1-SHA256:"			\
	"+SIGN-ECDSA-SHA256:+SIGN-ECDSA-SHA384:+SIGN-ECDSA-SHA512:"	\
	"+SIGN-ECDSA-SECP384R1-SHA384:+SIGN-ECDSA-SECP521R1-SHA512:"	\
	"+SIGN-EDDSA-ED25519:+SIGN-RSA-PSS-RSAE-SHA256:"		\
	"+SIGN-RSA-PSS-RSAE-SHA384:+SIGN-RSA-PSS-RSAE-SHA512:"		\
	"+SIGN-RSA-PSS-SHA256:+SIGN-RSA-PSS-SHA384:+SIGN-RSA-PSS-SHA512:" \
	"+SIGN-RSA-SHA256:+SIGN-RSA-SHA384:+SIGN-RSA-SHA512:"		\
	"-COMP-ALL:+COMP-NULL:%SERVER_PRECEDENCE"

struct tls_cert {
	gnutls_pcert_st		 pcert[MAX_CHAIN];
	unsigned		 npcert;
	gnutls_privkey_t	 key;
	uint64_t		 id;
	/* Its own, under the master's current key [0] and previous [1]. */
	unsigned char		 ticket[TICKET_KEYS][TICKET_KEY_SIZE];
};

/* A name and the index of its certificate; sorted by name. */
struct tls_name {
	const char		*name;		/* the generation's config */
	size_t			 len;
	size_t			 cert;
};

/*
 * A site's client-auth (issue 18): its mode, its trust (the certificates
 * of its client-ca-file, shared by the sites that name the same file:
 * same bytes, same trust) and its id, a hash of the site's name, the mode
 * and the CA bytes, equal in every generation for the same three.  A
 * connection whose handshake was for the site holds that id; admission
 * gives the site's requests only to such a connection.
 */
struct tls_auth {
	enum config_client_auth	 mode;		/* NONE: the site asks none */
	gnutls_x509_trust_list_t tl;		/* the ctx's, by file */
	uint64_t		 id;
	const char		*host;		/* the site's, for log lines */
};

/*
 * A listener's certificates, in one array: [0] the listener's own (none in
 * acme mode: no chain), then the sites' own, the ACME certificates (one
 * per name) and the TLS-ALPN-01 challenge certificates (one per pending
 * name).
 */
struct tls_listener {
	struct tls_cert		*certs;
	size_t			 ncerts;
	size_t			 ncap;		/* allocated */
	const struct config_site *sites;	/* the listener's, for indexing */
	size_t			*site_cert;	/* per site: index in certs */
	struct tls_auth		*auth;		/* per site */
	size_t			 nsites;
	struct tls_name		*acme;		/* issued certificates */
	size_t			 nacme;
	struct tls_name		*chall;		/* tls-alpn-01 challenges */
	size_t			 nchall;
	bool			 alpn01;	/* answers acme-tls/1 */
};

struct tls_ctx {
	uint32_t		 magic;
	gnutls_certificate_credentials_t cred;
	gnutls_priority_t	 prio;
	const struct route_table *rt;
	struct tls_listener	*l;
	size_t			 nl;
	bool			 h2;	/* ALPN offers h2 */
	unsigned		 nkeys;	/* the master's: 1, or 2 with the
					   previous one */
	bool			 retired;	/* keys wiped (tls_ctx_retire) */
	/* The trust of client-ca-files, by index in the config's files
	   (NULL: no site names it). */
	gnutls_x509_trust_list_t *trust;
	size_t			 ntrust;
};

struct tls_conn {
	uint32_t		 magic;
	struct tls_ctx		*ctx;
	size_t			 li;
	gnutls_session_t	 s;
	size_t			 cert;		/* index in the listener's */
	bool			 hello_seen;
	/* The ClientHello was refused for want of a certificate (ACME):
	   why, and for which name ("" without SNI). */
	const char		*refused;
	char			 refused_name[CONFIG_HOST_MAX + 1];
	size_t			 refused_len;
	uint64_t		 cert_id;
	/* The site with client-auth its ClientHello named, or NULL; once
	   verified (verify_client), what it found (its id, the facts). */
	const struct tls_auth	*auth;
	bool			 auth_done;
	uint64_t		 auth_id;	/* 0: verified for no site */
	struct headers_client_cert *cc;	/* NULL without auth */
	const char		*auth_refused;	/* why the handshake failed */
	gnutls_alert_description_t auth_alert;	/* 0: GnuTLS's choice */
	/* The key names of the tickets the ClientHello offers (hello_hook,
	   for client_hello). */
	unsigned char		 names[TICKETNAME_MAX][TICKETNAME_LEN];
	size_t			 nnames;
	int			 fd;
	struct tlsio		 io;		/* its records over fd */
	int			 hs_error;	/* the handshake's GnuTLS error */
};

int
tls_keypair_check(const struct config_blob *cert, const struct config_blob *key,
    char *err, size_t errsz)
{
	gnutls_certificate_credentials_t cred = NULL;
	gnutls_x509_crt_t *list;
	gnutls_datum_t c, k;
	unsigned i, n;
	int ret;

	c.data = cert->data;
	c.size = (unsigned)cert->len;
	k.data = key->data;
	k.size = (unsigned)key->len;
	/*
	 * The chain is parsed on its own first: GnuTLS 3.7.9's
	 * gnutls_certificate_set_x509_key_mem2() leaks a certificate it
	 * began on when the PEM is malformed (9.7 KiB a failed reload).
	 */
	if ((ret = gnutls_x509_crt_list_import2(&list, &n, &c,
	    GNUTLS_X509_FMT_PEM, 0)) < 0) {
		snprintf(err, errsz, "%s", gnutls_strerror(ret));
		return -1;
	}
	for (i = 0; i < n; i++)
		gnutls_x509_crt_deinit(list[i]);
	gnutls_free(list);
	if ((ret = gnutls_certificate_allocate_credentials(&cred)) < 0) {
		snprintf(err, errsz, "%s", gnutls_strerror(ret));
		return -1;
	}
	/* Loads the whole chain and checks that the key matches its leaf. */
	ret = gnutls_certificate_set_x509_key_mem2(cred, &c, &k,
	    GNUTLS_X509_FMT_PEM, NULL, 0);
	gnutls_certificate_free_credentials(cred);
	if (ret < 0) {
		if (ret == GNUTLS_E_CERTIFICATE_KEY_MISMATCH)
			snprintf(err, errsz, "private key does not match the "
			    "certificate");
		else
			snprintf(err, errsz, "%s", gnutls_strerror(ret));
		return -1;
	}
	return 0;
}

/* FNV-1a: identifies a chain by its bytes, the same in every generation. */
static uint64_t
chain_id(const struct config_blob *b)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < b->len; i++) {
		h ^= b->data[i];
		h *= 0x100000001b3ULL;
	}
	return h == 0 ? 1 : h;
}

/*
 * A certificate's session-ticket keys: HMAC-SHA-512 of its chain under
 * each of the master's keys (master: mlen bytes, TICKET_KEY_SIZE a key,
 * the current one first).  A ticket is made under the key of the
 * certificate its session was given, and no other certificate has that
 * key: it resumes only where the ClientHello's name selects the same
 * chain (in this generation or a later one, on any worker), never under
 * a certificate the client has not seen.
 */
static int
cert_ticket_key(struct tls_cert *c, const struct config_blob *chain,
    const unsigned char *master, size_t mlen)
{
	static const char label[] = "portcullis session-ticket key 1";
	gnutls_hmac_hd_t h;
	size_t k;

	if (gnutls_hmac_get_len(GNUTLS_MAC_SHA512) != TICKET_KEY_SIZE)
		return -1;
	for (k = 0; k < mlen / TICKET_KEY_SIZE; k++) {
		if (gnutls_hmac_init(&h, GNUTLS_MAC_SHA512, master + k *
		    TICKET_KEY_SIZE, TICKET_KEY_SIZE) < 0)
			return -1;
		if (gnutls_hmac(h, label, sizeof(label)) < 0 ||
		    gnutls_hmac(h, chain->data, chain->len) < 0) {
			gnutls_hmac_deinit(h, NULL);
			return -1;
		}
		gnutls_hmac_deinit(h, c->ticket[k]);
	}
	return 0;
}

static void
cert_free(struct tls_cert *c)
{
	unsigned i;

	for (i = 0; i < c->npcert; i++)
		gnutls_pcert_deinit(&c->pcert[i]);
	c->npcert = 0;
	if (c->key != NULL)
		gnutls_privkey_deinit(c->key);
	c->key = NULL;
	gnutls_memset(c->ticket, 0, sizeof(c->ticket));
}

static int
cert_load(struct tls_cert *c, const struct config_blob *chain,
    const struct config_blob *key, const unsigned char *master, size_t mlen,
    char *err, size_t errsz)
{
	gnutls_datum_t pem;
	int ret;

	c->npcert = MAX_CHAIN;
	pem.data = chain->data;
	pem.size = (unsigned)chain->len;
	ret = gnutls_pcert_list_import_x509_raw(c->pcert, &c->npcert, &pem,
	    GNUTLS_X509_FMT_PEM, 0);
	if (ret < 0) {
		c->npcert = 0;
		goto fail;
	}
	pem.data = key->data;
	pem.size = (unsigned)key->len;
	/* No key (a worker's image never has one): the signer's. */
	if (key->len == 0) {
		if ((ret = signcli_key(c->pcert[0].pubkey, &c->key)) < 0)
			goto fail;
	} else if ((ret = gnutls_privkey_init(&c->key)) < 0 ||
	    (ret = gnutls_privkey_import_x509_raw(c->key, &pem,
	    GNUTLS_X509_FMT_PEM, NULL, 0)) < 0)
		goto fail;
	c->id = chain_id(chain);
	if (cert_ticket_key(c, chain, master, mlen) == -1) {
		snprintf(err, errsz, "certificate: no session-ticket key");
		cert_free(c);
		return -1;
	}
	return 0;
fail:
	snprintf(err, errsz, "certificate: %s", gnutls_strerror(ret));
	cert_free(c);
	return -1;
}

/* Bytes, then length: any bytes (an SNI may hold a NUL). */
static int
key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, MINIMUM(alen, blen));

	if (c != 0)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static int
name_cmp(const void *a, const void *b)
{
	const struct tls_name *x = a, *y = b;

	return key_cmp(x->name, x->len, y->name, y->len);
}

/* The entry of name (normalised, len bytes) in a sorted list. */
static const struct tls_name *
name_find(const struct tls_name *list, size_t n, const char *name,
    size_t len)
{
	size_t lo = 0, hi = n, mid;
	int c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = key_cmp(name, len, list[mid].name, list[mid].len);
		if (c == 0)
			return &list[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/*
 * The TLS-ALPN-01 certificate (RFC 8737) of a pending challenge: made
 * here, with a key of its own, for as long as the generation lives.
 */
static int
challenge_load(struct tls_cert *c, const struct config_challenge *ch,
    const unsigned char *master, size_t mlen, char *err, size_t errsz)
{
	struct config_blob chain = { NULL, 0 }, key = { NULL, 0 };
	char *cp = NULL, *kp = NULL;
	char why[128];
	int rc;

	if (acme_alpn_cert(ch->name, ch->digest, &cp, &chain.len, &kp,
	    &key.len, why, sizeof(why)) == -1) {
		snprintf(err, errsz, "tls-alpn-01 certificate for %s: %s",
		    ch->name, why);
		return -1;
	}
	chain.data = (unsigned char *)cp;
	key.data = (unsigned char *)kp;
	rc = cert_load(c, &chain, &key, master, mlen, err, errsz);
	free(cp);
	gnutls_memset(kp, 0, key.len);
	free(kp);
	return rc;
}

static int
listener_load(struct tls_listener *tl, const struct config_listener *cl,
    const unsigned char *master, size_t mlen, char *err, size_t errsz)
{
	static const struct config_blob none = { NULL, 0 };
	const struct config_challenge *ch;
	size_t i;

	tl->sites = cl->sites;
	tl->nsites = cl->nsites;
	tl->alpn01 = cl->tls_mode == CONFIG_TLS_ACME &&
	    cl->acme.challenge == CONFIG_ACME_TLS_ALPN_01;
	tl->ncap = 1 + cl->nsites + cl->nacme_certs + cl->nchallenges;
	tl->certs = calloc(tl->ncap, sizeof(*tl->certs));
	tl->site_cert = calloc(cl->nsites + 1, sizeof(*tl->site_cert));
	tl->acme = calloc(cl->nacme_certs + 1, sizeof(*tl->acme));
	tl->chall = calloc(cl->nchallenges + 1, sizeof(*tl->chall));
	if (tl->certs == NULL || tl->site_cert == NULL || tl->acme == NULL ||
	    tl->chall == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	/* The listener's own: none in acme mode, where a name without a
	   certificate of its own is refused (client_hello); its ticket key
	   is still one nobody else has. */
	if (cl->tls.cert.len > 0) {
		if (cert_load(&tl->certs[0], &cl->tls.cert, &cl->tls.key,
		    master, mlen, err, errsz) == -1)
			return -1;
	} else if (cert_ticket_key(&tl->certs[0], &none, master, mlen) ==
	    -1) {
		snprintf(err, errsz, "no session-ticket key");
		return -1;
	}
	tl->ncerts = 1;
	for (i = 0; i < cl->nsites; i++) {
		if (cl->sites[i].tls.cert.len == 0)
			continue;
		if (cert_load(&tl->certs[tl->ncerts], &cl->sites[i].tls.cert,
		    &cl->sites[i].tls.key, master, mlen, err, errsz) == -1)
			return -1;
		tl->site_cert[i] = tl->ncerts++;
	}
	for (i = 0; i < cl->nacme_certs; i++) {
		if (cert_load(&tl->certs[tl->ncerts], &cl->acme_certs[i].cert,
		    &cl->acme_certs[i].key, master, mlen, err, errsz) == -1)
			return -1;
		tl->acme[tl->nacme++] = (struct tls_name){
		    cl->acme_certs[i].name, strlen(cl->acme_certs[i].name),
		    tl->ncerts++ };
	}
	qsort(tl->acme, tl->nacme, sizeof(*tl->acme), name_cmp);
	for (i = 0; tl->alpn01 && i < cl->nchallenges; i++) {
		ch = &cl->challenges[i];
		if (ch->type != CONFIG_ACME_TLS_ALPN_01)
			continue;
		if (challenge_load(&tl->certs[tl->ncerts], ch, master, mlen,
		    err, errsz) == -1)
			return -1;
		tl->chall[tl->nchall++] = (struct tls_name){ ch->name,
		    strlen(ch->name), tl->ncerts++ };
	}
	qsort(tl->chall, tl->nchall, sizeof(*tl->chall), name_cmp);
	return 0;
}

/*
 * The certificate a normalised name (NULL: no SNI) gets on listener li,
 * site being what it routes to there (or NULL): the site's own, else the
 * ACME certificate of that very name, else the listener's (index 0, which
 * has no chain in acme mode).
 */
static size_t
name_cert(const struct tls_listener *tl, const struct config_site *site,
    const char *name, size_t len)
{
	const struct tls_name *a;

	if (site != NULL && site >= tl->sites &&
	    site < tl->sites + tl->nsites &&
	    tl->site_cert[site - tl->sites] != 0)
		return tl->site_cert[site - tl->sites];
	if (name != NULL &&
	    (a = name_find(tl->acme, tl->nacme, name, len)) != NULL)
		return a->cert;
	return 0;
}

/* The client-auth of site (NULL: none, or the site asks none). */
static const struct tls_auth *
site_auth(const struct tls_listener *tl, const struct config_site *site)
{
	const struct tls_auth *a;

	if (site == NULL || site < tl->sites || site >= tl->sites + tl->nsites)
		return NULL;
	a = &tl->auth[site - tl->sites];
	return a->mode == CONFIG_CLIENT_AUTH_NONE ? NULL : a;
}

/* Whether the ClientHello's ALPN made us pick acme-tls/1. */
static bool
alpn_is_acme(gnutls_session_t s)
{
	gnutls_datum_t p;

	return gnutls_alpn_get_selected_protocol(s, &p) == 0 &&
	    p.size == sizeof(TLS_ALPN_ACME) - 1 &&
	    memcmp(p.data, TLS_ALPN_ACME, p.size) == 0;
}

/*
 * The certificate index the ClientHello asks for on listener li: by SNI,
 * or for acme-tls/1 the challenge certificate of the name.  -1 when there
 * is none to give (acme mode: no certificate for the name yet, or no
 * pending challenge), with c->refused saying why.
 */
static int
session_cert(struct tls_conn *c, size_t *idx, const struct tls_auth **auth)
{
	const struct tls_listener *tl = &c->ctx->l[c->li];
	const struct tls_name *ch;
	char name[CONFIG_HOST_MAX + 2];
	char norm[CONFIG_HOST_MAX + 1];
	const struct config_site *site = NULL;
	size_t len = sizeof(name) - 1;
	unsigned type;
	int n = -1;

	*auth = NULL;
	if (gnutls_server_name_get(c->s, name, &len, &type, 0) == 0 &&
	    type == GNUTLS_NAME_DNS)
		n = route_normalize_host(name, len, norm, sizeof(norm));
	if (n <= 0)
		n = 0;
	memcpy(c->refused_name, norm, (size_t)n);
	c->refused_len = (size_t)n;
	if (tl->alpn01 && alpn_is_acme(c->s)) {
		if (n > 0 && (ch = name_find(tl->chall, tl->nchall, norm,
		    (size_t)n)) != NULL) {
			*idx = ch->cert;
			return 0;
		}
		c->refused = "acme-tls/1 without a pending tls-alpn-01 "
		    "challenge";
		return -1;
	}
	if (n > 0)
		site = route_lookup(c->ctx->rt, c->li, norm, (size_t)n);
	*idx = name_cert(tl, site, n > 0 ? norm : NULL, (size_t)n);
	*auth = site_auth(tl, site);
	if (tl->certs[*idx].npcert == 0) {
		c->refused = "no certificate yet";
		return -1;
	}
	return 0;
}

/*
 * Client certificates (issue 18).  A ClientHello whose SNI names a site
 * with client-auth (exactly or by its wildcard, as routing does) gets a
 * CertificateRequest (REQUIRE or REQUEST), and the certificate the client
 * sends is verified against that site's own trust (its client-ca-file, a
 * gnutls_x509_trust_list of the ctx's, never the credential's, which all
 * sites share): the chain, its dates, and its purpose (extended key usage
 * TLS client authentication if it names any; key usage digitalSignature
 * if it has one).  The session's tickets are encrypted under a key of the
 * site's own (HMAC of the certificate's key and the site's auth id), so
 * that a session resumes only where the ClientHello names the same site
 * with the same mode and CA bytes; the certificate GnuTLS restores with
 * it is verified again after such a handshake (it may have expired
 * since).
 */

const char *
tls_verify_reason(unsigned status)
{
	static const struct {
		unsigned	 bit;
		const char	*why;
	} reasons[] = {
		{ GNUTLS_CERT_SIGNER_NOT_FOUND, "unknown-issuer" },
		{ GNUTLS_CERT_REVOKED, "revoked" },
		{ GNUTLS_CERT_EXPIRED, "expired" },
		{ GNUTLS_CERT_NOT_ACTIVATED, "not-yet-valid" },
		{ GNUTLS_CERT_SIGNER_NOT_CA, "issuer-not-ca" },
		{ GNUTLS_CERT_PURPOSE_MISMATCH, "not-for-client-auth" },
		{ GNUTLS_CERT_INSECURE_ALGORITHM, "insecure-algorithm" },
		{ GNUTLS_CERT_SIGNATURE_FAILURE, "bad-signature" },
		{ GNUTLS_CERT_SIGNER_CONSTRAINTS_FAILURE,
		    "issuer-constraints" },
	};
	size_t i;

	for (i = 0; i < nitems(reasons); i++)
		if (status & reasons[i].bit)
			return reasons[i].why;
	return "invalid";
}

/* The TLS alert of a verification's reason. */
static gnutls_alert_description_t
reason_alert(const char *why)
{
	if (strcmp(why, "expired") == 0 || strcmp(why, "not-yet-valid") == 0)
		return GNUTLS_A_CERTIFICATE_EXPIRED;
	if (strcmp(why, "unknown-issuer") == 0)
		return GNUTLS_A_UNKNOWN_CA;
	if (strcmp(why, "revoked") == 0)
		return GNUTLS_A_CERTIFICATE_REVOKED;
	if (strcmp(why, "not-for-client-auth") == 0 ||
	    strcmp(why, "key-usage") == 0)
		return GNUTLS_A_UNSUPPORTED_CERTIFICATE;
	return GNUTLS_A_BAD_CERTIFICATE;
}

/* No certificate where one is required: TLS 1.3 has an alert for it
   (RFC 8446 4.4.2.4), TLS 1.2 says handshake_failure (RFC 5246 7.4.6). */
static gnutls_alert_description_t
none_alert(gnutls_session_t s)
{
	return gnutls_protocol_get_version(s) == GNUTLS_TLS1_3 ?
	    GNUTLS_A_CERTIFICATE_REQUIRED : GNUTLS_A_HANDSHAKE_FAILURE;
}

static void
hex(const unsigned char *p, size_t n, char *out, bool upper)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 0xf];
	}
	out[2 * n] = '\0';
}

/* A DN (dn3: the subject's or issuer's) escaped into out. */
static int
dn_fact(gnutls_x509_crt_t crt, bool issuer, char *out, size_t outsz)
{
	gnutls_datum_t d = { NULL, 0 };
	int ret;

	ret = issuer ? gnutls_x509_crt_get_issuer_dn3(crt, &d, 0) :
	    gnutls_x509_crt_get_dn3(crt, &d, 0);
	if (ret < 0)
		return -1;
	ret = headers_escape_value(d.data, d.size, out, outsz);
	gnutls_free(d.data);
	return ret < 0 ? -1 : 0;
}

/* The facts of a verified leaf; NULL, or why they cannot be told. */
static const char *
cert_facts(gnutls_x509_crt_t crt, struct headers_client_cert *cc)
{
	unsigned char buf[64], *p;
	size_t n;

	if (dn_fact(crt, false, cc->subject, sizeof(cc->subject)) == -1 ||
	    dn_fact(crt, true, cc->issuer, sizeof(cc->issuer)) == -1)
		return "dn-too-long";
	n = sizeof(buf);
	if (gnutls_x509_crt_get_serial(crt, buf, &n) < 0 || n == 0)
		return "bad-serial";
	/* The number, as OpenSSL and nginx print it: no leading zero
	   byte (DER adds one to keep a number positive). */
	for (p = buf; n > 1 && *p == 0; p++)
		n--;
	if (n > (sizeof(cc->serial) - 1) / 2)
		return "bad-serial";
	hex(p, n, cc->serial, true);
	n = sizeof(buf);
	if (gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, buf,
	    &n) < 0 || n != 32)
		return "invalid";
	hex(buf, n, cc->fingerprint, false);
	return NULL;
}

/* Why chain[0..n) is not a client certificate of trust tl, or NULL. */
static const char *
chain_verify(gnutls_x509_trust_list_t tl, gnutls_x509_crt_t *chain,
    unsigned n)
{
	gnutls_typed_vdata_st purpose = { GNUTLS_DT_KEY_PURPOSE_OID,
	    (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT, 0 };
	unsigned status = 0, ku = 0, crit;

	if (gnutls_x509_trust_list_verify_crt2(tl, chain, n, &purpose, 1, 0,
	    &status, NULL) < 0)
		return "invalid";
	if (status != 0)
		return tls_verify_reason(status);
	if (gnutls_x509_crt_get_key_usage(chain[0], &ku, &crit) >= 0 &&
	    !(ku & GNUTLS_KEY_DIGITAL_SIGNATURE))
		return "key-usage";
	return NULL;
}

/*
 * Verify the peer's certificate for c->auth, once, and keep what was
 * found.  -1 when the site requires one and this is not a good one
 * (c->auth_refused says why), else 0.
 */
static int
verify_client(struct tls_conn *c)
{
	struct headers_client_cert *cc = c->cc;
	gnutls_x509_crt_t chain[MAX_CHAIN];
	const gnutls_datum_t *peers;
	const char *why = NULL;
	unsigned i, n = 0, have = 0;

	if (c->auth_done)
		return c->auth_refused != NULL ? -1 : 0;
	c->auth_done = true;
	memset(cc, 0, sizeof(*cc));
	peers = gnutls_certificate_get_peers(c->s, &n);
	if (peers == NULL || n == 0)
		why = "no-certificate";
	else if (n > MAX_CHAIN)
		why = "chain-too-long";
	for (i = 0; why == NULL && i < n; i++) {
		if (gnutls_x509_crt_init(&chain[i]) < 0) {
			why = "invalid";
			break;
		}
		have++;
		if (gnutls_x509_crt_import(chain[i], &peers[i],
		    GNUTLS_X509_FMT_DER) < 0)
			why = "invalid";
	}
	if (why == NULL)
		why = chain_verify(c->auth->tl, chain, n);
	if (why == NULL)
		why = cert_facts(chain[0], cc);
	for (i = 0; i < have; i++)
		gnutls_x509_crt_deinit(chain[i]);
	if (why == NULL) {
		memcpy(cc->verify, "SUCCESS", sizeof("SUCCESS"));
		c->auth_id = c->auth->id;
		return 0;
	}
	memset(cc, 0, sizeof(*cc));
	if (strcmp(why, "no-certificate") == 0)
		memcpy(cc->verify, "NONE", sizeof("NONE"));
	else
		snprintf(cc->verify, sizeof(cc->verify), "FAILED:%s", why);
	if (c->auth->mode == CONFIG_CLIENT_AUTH_REQUIRED) {
		c->auth_refused = why;
		c->auth_alert = strcmp(why, "no-certificate") == 0 ?
		    none_alert(c->s) : reason_alert(why);
		return -1;
	}
	c->auth_id = c->auth->id;
	return 0;
}

/* GnuTLS calls it with the client's Certificate: a bad one for a site
   that requires one ends the handshake (with auth_alert). */
static int
verify_cb(gnutls_session_t s)
{
	struct tls_conn *c = gnutls_session_get_ptr(s);

	if (c == NULL || c->magic != TLS_CONN_MAGIC || c->auth == NULL)
		return -1;
	return verify_client(c);
}

/*
 * The session-ticket key of a session with certificate idx and auth (NULL:
 * none) under the master's key k: the certificate's own, or for a site
 * with client-auth the site's own, HMAC-SHA-512 of its auth id under the
 * certificate's.  0, or a GnuTLS error.
 */
static int
session_key(const struct tls_conn *c, size_t idx, const struct tls_auth *auth,
    unsigned k, unsigned char out[TICKET_KEY_SIZE])
{
	static const char label[] = "portcullis client-auth ticket key 1";
	const unsigned char *key = c->ctx->l[c->li].certs[idx].ticket[k];
	gnutls_hmac_hd_t h;

	if (auth == NULL) {
		memcpy(out, key, TICKET_KEY_SIZE);
		return 0;
	}
	if (gnutls_hmac_init(&h, GNUTLS_MAC_SHA512, key, TICKET_KEY_SIZE) < 0)
		return GNUTLS_E_INTERNAL_ERROR;
	if (gnutls_hmac(h, label, sizeof(label)) < 0 ||
	    gnutls_hmac(h, &auth->id, sizeof(auth->id)) < 0) {
		gnutls_hmac_deinit(h, NULL);
		return GNUTLS_E_INTERNAL_ERROR;
	}
	gnutls_hmac_deinit(h, out);
	return 0;
}

/*
 * The ClientHello named a site with client-auth: ask for a certificate
 * and verify it (verify_cb).  Its tickets are under the site's own key
 * (session_key).
 */
static int
auth_start(struct tls_conn *c, const struct tls_auth *auth)
{
	if (c->cc == NULL && (c->cc = calloc(1, sizeof(*c->cc))) == NULL)
		return GNUTLS_E_MEMORY_ERROR;
	c->auth = auth;
	gnutls_certificate_server_set_request(c->s,
	    auth->mode == CONFIG_CLIENT_AUTH_REQUIRED ? GNUTLS_CERT_REQUIRE :
	    GNUTLS_CERT_REQUEST);
	gnutls_session_set_verify_function(c->s, verify_cb);
	return 0;
}

/*
 * The name GnuTLS 3.7 gives a ticket it encrypts under the key we hand it
 * (lib/stek.c, GnuTLS's own internal, replicated here and nowhere else):
 * it encrypts under SHA3-512(T || key), T the 64-bit big-endian count of
 * periods of 3 times the session's expire time (SESSION_EXPIRE, set on
 * every session: 18 h) since the epoch, and a ticket's first 16 bytes are
 * the first 16 of that key.  It decrypts a ticket whose name is T's or
 * T-1's.  If GnuTLS changed this, no name would match the previous key
 * and a ticket made under it would no longer resume (a full handshake,
 * nothing worse); tests/unit/tls_test.c checks it against tickets of
 * real handshakes, and fails first.
 */
int
tls_stek_name(const unsigned char key[TLS_STEK_KEY_SIZE], uint64_t t,
    unsigned char name[TLS_STEK_NAME_SIZE])
{
	unsigned char in[8 + TLS_STEK_KEY_SIZE], out[64];
	int i, ret;

	for (i = 0; i < 8; i++)
		in[i] = (unsigned char)(t >> (56 - 8 * i));
	memcpy(in + 8, key, TLS_STEK_KEY_SIZE);
	ret = gnutls_hash_fast(GNUTLS_DIG_SHA3_512, in, sizeof(in), out);
	if (ret == 0)
		memcpy(name, out, TLS_STEK_NAME_SIZE);
	gnutls_memset(in, 0, sizeof(in));
	gnutls_memset(out, 0, sizeof(out));
	return ret < 0 ? -1 : 0;
}

uint64_t
tls_stek_period(time_t now)
{
	return now <= 0 ? 0 : (uint64_t)now / (3 * SESSION_EXPIRE);
}

/* Whether one of the ClientHello's ticket names is one GnuTLS decrypts
   under key now. */
static bool
names_match(const struct tls_conn *c, const unsigned char *key, uint64_t t)
{
	unsigned char name[TLS_STEK_NAME_SIZE];
	uint64_t back;
	size_t i;
	bool hit = false;

	for (back = 0; back < 2 && back < t && !hit; back++) {
		if (tls_stek_name(key, t - back, name) == -1)
			break;
		for (i = 0; i < c->nnames && !hit; i++)
			hit = memcmp(c->names[i], name, sizeof(name)) == 0;
	}
	return hit;
}

/*
 * Which of the master's keys the session's tickets are under: the
 * previous one (1) only when a ticket the ClientHello offers was made
 * under it and none under the current one; else the current one (0).
 * GnuTLS takes one key a session, decrypts only under it, and encrypts
 * the session's new tickets under it too: a session resumed with a
 * ticket of the previous key gets its TLS 1.3 tickets under that key
 * (they end with it, at the next rotation).  0, or a GnuTLS error.
 */
static int
ticket_key_choose(const struct tls_conn *c, size_t idx,
    const struct tls_auth *auth, unsigned *k)
{
	unsigned char key[TICKET_KEY_SIZE];
	uint64_t t = tls_stek_period(time(NULL));
	bool cur, prev;
	int ret;

	*k = 0;
	if (c->ctx->nkeys < 2 || c->nnames == 0)
		return 0;
	if ((ret = session_key(c, idx, auth, 0, key)) < 0)
		return ret;
	cur = names_match(c, key, t);
	if (!cur && (ret = session_key(c, idx, auth, 1, key)) == 0) {
		prev = names_match(c, key, t);
		*k = prev ? 1 : 0;
	}
	gnutls_memset(key, 0, sizeof(key));
	return ret < 0 ? ret : 0;
}

/* The ticket key of a session on a retired ctx: one nobody has. */
static int
retired_key(unsigned char key[TICKET_KEY_SIZE])
{
	return gnutls_rnd(GNUTLS_RND_KEY, key, TICKET_KEY_SIZE) < 0 ?
	    GNUTLS_E_RANDOM_FAILED : 0;
}

/*
 * GnuTLS calls it with each handshake message before it reads it: the
 * first ClientHello's ticket names are kept for client_hello (which
 * GnuTLS calls before it decrypts a ticket).  A ClientHello the parser
 * refuses has none here; GnuTLS refuses it on its own.
 */
static int
hello_hook(gnutls_session_t s, unsigned htype, unsigned when,
    unsigned incoming, const gnutls_datum_t *msg)
{
	struct tls_conn *c = gnutls_session_get_ptr(s);
	int n;

	if (c == NULL || c->magic != TLS_CONN_MAGIC || !incoming ||
	    when != GNUTLS_HOOK_PRE || htype != GNUTLS_HANDSHAKE_CLIENT_HELLO ||
	    c->hello_seen)
		return 0;
	n = ticketname_parse(msg->data, msg->size, c->names, TICKETNAME_MAX);
	c->nnames = n > 0 ? (size_t)n : 0;
	return 0;
}

/*
 * Called once the ClientHello's SNI and ALPN are read and before its
 * session ticket (TLS 1.2) or PSK (TLS 1.3) is: the connection's
 * certificate is chosen here, and that certificate's ticket key replaces
 * the listener's (tls_conn_new), so that only a ticket made under the same
 * certificate resumes; any other is ignored and the handshake is a full
 * one with this certificate.  A second ClientHello (after a
 * HelloRetryRequest) must select the certificate of the first: tickets may
 * have been tried under its key.  No certificate to give: the handshake
 * ends with unrecognized_name.  Of the certificate's two keys (the master
 * key's and the previous master key's), ticket_key_choose() says which.
 */
static int
client_hello(gnutls_session_t s)
{
	struct tls_conn *c = gnutls_session_get_ptr(s);
	const struct tls_auth *auth;
	unsigned char key[TICKET_KEY_SIZE];
	gnutls_datum_t d = { key, TICKET_KEY_SIZE };
	unsigned k;
	size_t idx;
	int ret;

	if (c == NULL || c->magic != TLS_CONN_MAGIC)
		return GNUTLS_E_INTERNAL_ERROR;
	if (session_cert(c, &idx, &auth) == -1)
		return GNUTLS_E_UNRECOGNIZED_NAME;
	if (c->hello_seen)
		return idx == c->cert && auth == c->auth ? 0 :
		    GNUTLS_E_RECEIVED_ILLEGAL_PARAMETER;
	c->hello_seen = true;
	if (auth != NULL && (ret = auth_start(c, auth)) < 0)
		return ret;
	if (c->ctx->retired)
		ret = retired_key(key);
	else {
		if ((ret = ticket_key_choose(c, idx, auth, &k)) < 0)
			return ret;
		if (auth == NULL && idx == c->cert && k == 0)
			return 0;
		ret = session_key(c, idx, auth, k, key);
	}
	/* GnuTLS keeps a copy: ours goes at once. */
	if (ret == 0)
		ret = gnutls_session_ticket_enable_server(s, &d);
	gnutls_memset(key, 0, sizeof(key));
	if (ret < 0)
		return ret;
	c->cert = idx;
	return 0;
}

static int
retrieve_cert(gnutls_session_t s, const gnutls_datum_t *req_ca UNUSED,
    int nreq UNUSED, const gnutls_pk_algorithm_t *pk UNUSED, int npk UNUSED,
    gnutls_pcert_st **pcert, unsigned int *npcert, gnutls_privkey_t *key)
{
	struct tls_conn *c = gnutls_session_get_ptr(s);
	struct tls_cert *cert;

	if (c == NULL || c->magic != TLS_CONN_MAGIC)
		return -1;
	cert = &c->ctx->l[c->li].certs[c->cert];
	if (cert->npcert == 0)
		return -1;
	/* Ours, not GnuTLS's: they live as long as the generation. */
	*pcert = cert->pcert;
	*npcert = cert->npcert;
	*key = cert->key;
	return 0;
}

/* The id of a site's client-auth: FNV-1a of its name, mode and CA bytes. */
static uint64_t
auth_id(const char *host, enum config_client_auth mode,
    const struct config_blob *ca)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	unsigned char m = (unsigned char)mode;
	size_t i, n = strlen(host) + 1;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)host[i];
		h *= 0x100000001b3ULL;
	}
	h ^= m;
	h *= 0x100000001b3ULL;
	for (i = 0; i < ca->len; i++) {
		h ^= ca->data[i];
		h *= 0x100000001b3ULL;
	}
	return h == 0 ? 1 : h;
}

/* The trust of file idx (PEM certificates), made once a ctx. */
static gnutls_x509_trust_list_t
trust_of(struct tls_ctx *ctx, const struct config *cfg, uint32_t idx,
    char *err, size_t errsz)
{
	gnutls_x509_trust_list_t tl;
	gnutls_datum_t d;
	int ret;

	if (ctx->trust[idx] != NULL)
		return ctx->trust[idx];
	if ((ret = gnutls_x509_trust_list_init(&tl, 0)) < 0) {
		snprintf(err, errsz, "client-ca-file: %s",
		    gnutls_strerror(ret));
		return NULL;
	}
	d.data = cfg->files[idx].data.data;
	d.size = (unsigned)cfg->files[idx].data.len;
	ret = gnutls_x509_trust_list_add_trust_mem(tl, &d, NULL,
	    GNUTLS_X509_FMT_PEM, 0, 0);
	if (ret <= 0) {
		snprintf(err, errsz, "client-ca-file: %s", ret < 0 ?
		    gnutls_strerror(ret) : "no certificate in it");
		gnutls_x509_trust_list_deinit(tl, 1);
		return NULL;
	}
	return ctx->trust[idx] = tl;
}

/* The client-auth of each site of listener cl (issue 18). */
static int
auth_load(struct tls_ctx *ctx, struct tls_listener *tl,
    const struct config *cfg, const struct config_listener *cl, char *err,
    size_t errsz)
{
	const struct config_site *site;
	size_t i;

	if ((tl->auth = calloc(cl->nsites + 1, sizeof(*tl->auth))) == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	for (i = 0; i < cl->nsites; i++) {
		site = &cl->sites[i];
		if (site->client_auth == CONFIG_CLIENT_AUTH_NONE)
			continue;
		if (!config_client_auth_ok(site, cfg->nfiles)) {
			snprintf(err, errsz, "site %s: client-auth without a "
			    "client-ca-file", site->host);
			return -1;
		}
		if ((tl->auth[i].tl = trust_of(ctx, cfg, site->client_ca, err,
		    errsz)) == NULL)
			return -1;
		tl->auth[i].mode = site->client_auth;
		tl->auth[i].host = site->host;
		tl->auth[i].id = auth_id(site->host, site->client_auth,
		    &cfg->files[site->client_ca].data);
	}
	return 0;
}

struct tls_ctx *
tls_ctx_new(const struct config *cfg, const struct route_table *rt,
    const unsigned char *ticket_key, size_t ticket_len, char *err,
    size_t errsz)
{
	struct tls_ctx *ctx;
	const char *where;
	size_t i;
	int ret;

	if (ticket_len != TICKET_KEY_SIZE &&
	    ticket_len != TICKET_KEYS * TICKET_KEY_SIZE) {
		snprintf(err, errsz, "session-ticket keys of %zu bytes, not "
		    "%d or %d", ticket_len, TICKET_KEY_SIZE,
		    TICKET_KEYS * TICKET_KEY_SIZE);
		return NULL;
	}
	if ((ctx = calloc(1, sizeof(*ctx))) == NULL ||
	    (ctx->l = calloc(cfg->nlisteners, sizeof(*ctx->l))) == NULL) {
		snprintf(err, errsz, "out of memory");
		goto fail;
	}
	ctx->magic = TLS_CTX_MAGIC;
	ctx->rt = rt;
	ctx->nl = cfg->nlisteners;
	ctx->h2 = cfg->http.h2;
	ctx->nkeys = (unsigned)(ticket_len / TICKET_KEY_SIZE);
	if ((ret = gnutls_priority_init(&ctx->prio, TLS_PRIORITY, &where)) < 0 ||
	    (ret = gnutls_certificate_allocate_credentials(&ctx->cred)) < 0) {
		snprintf(err, errsz, "%s", gnutls_strerror(ret));
		goto fail;
	}
	gnutls_certificate_set_retrieve_function2(ctx->cred, retrieve_cert);
	ctx->ntrust = cfg->nfiles;
	if ((ctx->trust = calloc(cfg->nfiles + 1, sizeof(*ctx->trust))) ==
	    NULL) {
		snprintf(err, errsz, "out of memory");
		goto fail;
	}
	for (i = 0; i < cfg->nlisteners; i++)
		if (listener_load(&ctx->l[i], &cfg->listeners[i], ticket_key,
		    ticket_len, err, errsz) == -1 ||
		    auth_load(ctx, &ctx->l[i], cfg, &cfg->listeners[i], err,
		    errsz) == -1)
			goto fail;
	return ctx;
fail:
	tls_ctx_free(ctx);
	return NULL;
}

void
tls_ctx_retire(struct tls_ctx *ctx)
{
	size_t i, j;

	for (i = 0; i < ctx->nl; i++)
		for (j = 0; j < ctx->l[i].ncap; j++)
			gnutls_memset(ctx->l[i].certs[j].ticket, 0,
			    sizeof(ctx->l[i].certs[j].ticket));
	ctx->retired = true;
}

void
tls_ctx_free(struct tls_ctx *ctx)
{
	size_t i, j;

	if (ctx == NULL)
		return;
	for (i = 0; ctx->l != NULL && i < ctx->nl; i++) {
		for (j = 0; ctx->l[i].certs != NULL && j < ctx->l[i].ncap; j++)
			cert_free(&ctx->l[i].certs[j]);
		free(ctx->l[i].certs);
		free(ctx->l[i].site_cert);
		free(ctx->l[i].acme);
		free(ctx->l[i].chall);
		free(ctx->l[i].auth);
	}
	free(ctx->l);
	for (i = 0; ctx->trust != NULL && i < ctx->ntrust; i++)
		if (ctx->trust[i] != NULL)
			gnutls_x509_trust_list_deinit(ctx->trust[i], 1);
	free(ctx->trust);
	if (ctx->cred != NULL)
		gnutls_certificate_free_credentials(ctx->cred);
	if (ctx->prio != NULL)
		gnutls_priority_deinit(ctx->prio);
	ctx->magic = 0;
	free(ctx);
}

uint64_t
tls_ctx_cert_id(const struct tls_ctx *ctx, size_t li,
    const struct config_site *site, const char *host, size_t hlen)
{
	const struct tls_listener *tl = &ctx->l[li];

	/* No chain: 0, which no certificate's id is (chain_id). */
	return tl->certs[name_cert(tl, site, host, hlen)].id;
}

uint64_t
tls_ctx_auth_id(const struct tls_ctx *ctx, size_t li,
    const struct config_site *site)
{
	const struct tls_auth *a = site_auth(&ctx->l[li], site);

	return a != NULL ? a->id : 0;
}

struct tls_conn *
tls_conn_new(struct tls_ctx *ctx, size_t li, int fd)
{
	/* h2 first: the server's order wins.  acme-tls/1 last, on a
	   listener that answers TLS-ALPN-01 only: chosen only when the
	   client offers neither of the others (the CA offers it alone). */
	static const gnutls_datum_t alpn[] = {
		{ (unsigned char *)"h2", 2 },
		{ (unsigned char *)"http/1.1", 8 },
		{ (unsigned char *)TLS_ALPN_ACME, sizeof(TLS_ALPN_ACME) - 1 },
	};
	struct tls_conn *c;
	unsigned char rkey[TICKET_KEY_SIZE];
	gnutls_datum_t ticket;
	unsigned first = ctx->h2 ? 0 : 1;
	unsigned n = ctx->l[li].alpn01 ? 3 : 2;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->magic = TLS_CONN_MAGIC;
	c->ctx = ctx;
	c->li = li;
	c->cert = 0;	/* the listener's, until the ClientHello says */
	ticket.data = ctx->l[li].certs[0].ticket[0];
	ticket.size = TICKET_KEY_SIZE;
	if (ctx->retired) {
		if (retired_key(rkey) < 0) {
			free(c);
			return NULL;
		}
		ticket.data = rkey;
	}
	if (gnutls_init(&c->s, GNUTLS_SERVER | GNUTLS_NONBLOCK |
	    GNUTLS_NO_SIGNAL) < 0) {
		gnutls_memset(rkey, 0, sizeof(rkey));
		free(c);
		return NULL;
	}
	if (gnutls_priority_set(c->s, ctx->prio) < 0 ||
	    gnutls_credentials_set(c->s, GNUTLS_CRD_CERTIFICATE, ctx->cred) < 0 ||
	    gnutls_session_ticket_enable_server(c->s, &ticket) < 0 ||
	    gnutls_alpn_set_protocols(c->s, alpn + first, n - first,
	    GNUTLS_ALPN_SERVER_PRECEDENCE) < 0) {
		gnutls_memset(rkey, 0, sizeof(rkey));
		tls_conn_free(c);
		return NULL;
	}
	gnutls_memset(rkey, 0, sizeof(rkey));
	gnutls_db_set_cache_expiration(c->s, SESSION_EXPIRE);
	gnutls_session_set_ptr(c->s, c);
	gnutls_handshake_set_hook_function(c->s, GNUTLS_HANDSHAKE_CLIENT_HELLO,
	    GNUTLS_HOOK_PRE, hello_hook);
	gnutls_handshake_set_post_client_hello_function(c->s, client_hello);
	c->fd = fd;
	tlsio_init(&c->io, c->s, fd, true, false);
	return c;
}

void
tls_conn_free(struct tls_conn *c)
{
	if (c == NULL)
		return;
	gnutls_deinit(c->s);
	tlsio_release(&c->io);
	free(c->cc);
	c->magic = 0;
	free(c);
}

/*
 * While corked, the kernel holds what GnuTLS writes; uncorking sends it
 * at once.  Not a TCP socket: nothing to do, and no harm done.
 */
static void
set_cork(int fd, int on)
{
#ifdef TCP_CORK
	(void)setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
#else
	(void)fd;
	(void)on;
#endif
}

/*
 * One step of the handshake leaves as one burst.  GnuTLS writes a TLS 1.3
 * server's ServerHello, its EncryptedExtensions to Finished and then the
 * session tickets in three writes; sent as they come, the tickets trail
 * the Finished by however long the worker is kept from running.  A client
 * that closes once its handshake is done (openssl s_client -sess_out
 * </dev/null, as testssl uses it) then leaves without a session.
 */
static int
handshake_step(struct tls_conn *c)
{
	int ret;

	set_cork(c->fd, 1);
	ret = gnutls_handshake(c->s);
	set_cork(c->fd, 0);
	return ret;
}

int
tls_conn_handshake(struct tls_conn *c)
{
	int ret, tries;

	for (tries = 0; tries < NONFATAL_RETRIES; tries++) {
		ret = handshake_step(c);
		tlsio_ra_release(&c->io);
		if (ret == GNUTLS_E_SUCCESS) {
			/* Also right for a resumed session, where no
			   certificate is sent: its ticket was made under
			   this certificate's key (client_hello). */
			c->cert_id = c->ctx->l[c->li].certs[c->cert].id;
			/* A resumed session's certificate, restored by
			   GnuTLS, is verified now (its ticket was the
			   site's: client_hello). */
			if (c->auth != NULL && verify_client(c) == -1) {
				ret = GNUTLS_E_CERTIFICATE_ERROR;
				break;
			}
			return 1;
		}
		if (ret == GNUTLS_E_AGAIN || ret == GNUTLS_E_INTERRUPTED)
			return 0;
		if (gnutls_error_is_fatal(ret))
			break;
	}
	tlsio_set_error(&c->io, ret);
	c->hs_error = ret;
	/* A site that requires a certificate, and none came. */
	if (c->auth != NULL && c->auth->mode == CONFIG_CLIENT_AUTH_REQUIRED &&
	    c->auth_refused == NULL && (ret == GNUTLS_E_CERTIFICATE_REQUIRED ||
	    ret == GNUTLS_E_NO_CERTIFICATE_FOUND)) {
		c->auth_refused = "no-certificate";
		c->auth_alert = none_alert(c->s);
		c->auth_done = true;
	}
	if (c->auth_refused != NULL && c->auth_alert != 0) {
		(void)gnutls_alert_send(c->s, GNUTLS_AL_FATAL, c->auth_alert);
		return -1;
	}
	/* Tell the client why (handshake_failure, protocol_version ...):
	   it then reports the alert, not a connection closed mid-handshake.
	   Best effort, never blocking (the socket is non-blocking); GnuTLS
	   sends nothing after the client's own alert, and an internal_error
	   after a transport error, which a reset socket just drops. */
	(void)gnutls_alert_send_appropriate(c->s, ret);
	return -1;
}

ssize_t
tls_conn_read(struct tls_conn *c, void *buf, size_t len)
{
	return tlsio_read(&c->io, buf, len);
}

ssize_t
tls_conn_write(struct tls_conn *c, const void *buf, size_t len)
{
	return tlsio_write(&c->io, buf, len);
}

void
tls_conn_readable(struct tls_conn *c)
{
	if (c != NULL)
		tlsio_readable(&c->io);
}

bool
tls_conn_pending(struct tls_conn *c)
{
	return tlsio_pending(&c->io);
}

bool
tls_conn_want_write(struct tls_conn *c)
{
	return tlsio_want_write(&c->io);
}

void
tls_conn_bye(struct tls_conn *c)
{
	tlsio_bye(&c->io);
}

uint64_t
tls_conn_cert_id(const struct tls_conn *c)
{
	return c->cert_id;
}

uint64_t
tls_conn_auth_id(const struct tls_conn *c)
{
	return c->auth_done ? c->auth_id : 0;
}

const struct headers_client_cert *
tls_conn_client_cert(const struct tls_conn *c)
{
	return c->auth_done && c->auth_id != 0 ? c->cc : NULL;
}

const char *
tls_conn_auth_refusal(const struct tls_conn *c, const char **site)
{
	*site = c->auth != NULL ? c->auth->host : "-";
	return c->auth_refused;
}

int
tls_conn_handshake_error(const struct tls_conn *c)
{
	return c->hs_error;
}

const char *
tls_conn_error(const struct tls_conn *c)
{
	return c->io.error != NULL ? c->io.error : "TLS error";
}

const char *
tls_conn_version(struct tls_conn *c)
{
	const char *v = gnutls_protocol_get_name(
	    gnutls_protocol_get_version(c->s));

	return v != NULL ? v : "-";
}

const char *
tls_conn_alpn(struct tls_conn *c)
{
	gnutls_datum_t p;

	if (gnutls_alpn_get_selected_protocol(c->s, &p) < 0)
		return "";
	if (p.size == 2 && memcmp(p.data, "h2", 2) == 0)
		return "h2";
	if (p.size == 8 && memcmp(p.data, "http/1.1", 8) == 0)
		return "http/1.1";
	if (p.size == sizeof(TLS_ALPN_ACME) - 1 &&
	    memcmp(p.data, TLS_ALPN_ACME, p.size) == 0)
		return TLS_ALPN_ACME;
	return "";
}

void
tls_conn_proxy_tls(struct tls_conn *c, struct proxyhdr_tls *t, char *sni,
    size_t snisz)
{
	const char *alpn = tls_conn_alpn(c);
	const struct headers_client_cert *cc;
	size_t len = snisz > 0 ? snisz - 1 : 0;
	unsigned type, ncerts = 0;

	memset(t, 0, sizeof(*t));
	t->alpn = alpn[0] != '\0' ? alpn : NULL;
	if (len > 0 && gnutls_server_name_get(c->s, sni, &len, &type, 0) ==
	    0 && type == GNUTLS_NAME_DNS && len < snisz) {
		sni[len] = '\0';
		t->sni = sni;
		t->sni_len = strnlen(sni, len);
	}
	switch (gnutls_protocol_get_version(c->s)) {
	case GNUTLS_TLS1_3:
		t->version = "TLSv1.3";
		break;
	case GNUTLS_TLS1_2:
		t->version = "TLSv1.2";
		break;
	default:
		t->version = NULL;
	}
#if GNUTLS_VERSION_NUMBER >= 0x030704
	t->cipher = gnutls_ciphersuite_get(c->s);
#else
	t->cipher = gnutls_cipher_suite_get_name(gnutls_kx_get(c->s),
	    gnutls_cipher_get(c->s), gnutls_mac_get(c->s));
#endif
	/* A client certificate comes only when a site asks for one. */
	if (gnutls_certificate_get_peers(c->s, &ncerts) != NULL &&
	    ncerts > 0) {
		t->cert_sess = true;
		t->cert_conn = !gnutls_session_is_resumed(c->s);
	}
	/* Verified: by the client-certificate check of a client-auth site
	   (its verdict, SUCCESS, in the facts it kept). */
	cc = tls_conn_client_cert(c);
	t->verified = cc != NULL && strcmp(cc->verify, "SUCCESS") == 0;
}

int64_t
tls_cert_not_after(const struct config_blob *cert)
{
	gnutls_x509_crt_t crt;
	gnutls_datum_t d;
	time_t t;

	if (cert->data == NULL || gnutls_x509_crt_init(&crt) < 0)
		return 0;
	d.data = cert->data;
	d.size = (unsigned)cert->len;
	if (gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM) < 0) {
		gnutls_x509_crt_deinit(crt);
		return 0;
	}
	t = gnutls_x509_crt_get_expiration_time(crt);
	gnutls_x509_crt_deinit(crt);
	return t == (time_t)-1 ? 0 : (int64_t)t;
}

const char *
tls_conn_refusal(const struct tls_conn *c, const char **name, size_t *len)
{
	*name = c->refused_name;
	*len = c->refused_len;
	return c->refused;
}
