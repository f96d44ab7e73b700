/*
 * tls_test.c - certificate choice (tls.c) by real handshakes: a tls_ctx
 * made from a configuration with ACME certificates and challenges, and an
 * in-process GnuTLS client over a socketpair.  A site's own certificate,
 * the ACME certificate of the name, no certificate yet (an alert), the
 * TLS-ALPN-01 challenge certificate for acme-tls/1 (RFC 8737), ALPN as
 * negotiated, session tickets per certificate, and the ids the 421 check
 * compares; client certificates (issue 18): required and optional sites,
 * good, expired, another CA's, one not for client authentication, none,
 * what the connection records, and tickets bound to the site.  Every
 * certificate is made here, with GnuTLS.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "config.h"
#include "testconf.h"
#include "route.h"
#include "tls.h"

#define ACME_ID_OID	"1.3.6.1.5.5.7.1.31"	/* id-pe-acmeIdentifier */

struct pem {
	char	cert[4096];
	char	key[1024];
};

/* Sign crt (its key pk) by issuer's key, and export both as PEM; both
   are freed. */
static void
sign_export(gnutls_x509_crt_t crt, gnutls_x509_privkey_t pk,
    gnutls_x509_crt_t issuer, gnutls_x509_privkey_t ikey, struct pem *out)
{
	size_t len;

	assert_int_equal(gnutls_x509_crt_set_key(crt, pk), 0);
	assert_int_equal(gnutls_x509_crt_sign2(crt, issuer, ikey,
	    GNUTLS_DIG_SHA256, 0), 0);
	len = sizeof(out->cert);
	assert_int_equal(gnutls_x509_crt_export(crt, GNUTLS_X509_FMT_PEM,
	    out->cert, &len), 0);
	out->cert[len] = '\0';
	len = sizeof(out->key);
	assert_int_equal(gnutls_x509_privkey_export_pkcs8(pk,
	    GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN, out->key, &len), 0);
	out->key[len] = '\0';
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(pk);
}

/* A self-signed P-256 certificate for name. */
static void
make_cert(const char *name, struct pem *out)
{
	static unsigned char serial = 1;
	gnutls_x509_privkey_t pk;
	gnutls_x509_crt_t crt;
	time_t now = time(NULL);

	assert_int_equal(gnutls_x509_privkey_init(&pk), 0);
	assert_int_equal(gnutls_x509_crt_init(&crt), 0);
	assert_int_equal(gnutls_x509_privkey_generate(pk, GNUTLS_PK_ECDSA,
	    GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0), 0);
	assert_int_equal(gnutls_x509_crt_set_version(crt, 3), 0);
	serial++;
	assert_int_equal(gnutls_x509_crt_set_serial(crt, &serial, 1), 0);
	assert_int_equal(gnutls_x509_crt_set_activation_time(crt, now - 60), 0);
	assert_int_equal(gnutls_x509_crt_set_expiration_time(crt,
	    now + 86400), 0);
	assert_int_equal(gnutls_x509_crt_set_dn_by_oid(crt,
	    GNUTLS_OID_X520_COMMON_NAME, 0, name, (unsigned)strlen(name)), 0);
	assert_int_equal(gnutls_x509_crt_set_subject_alt_name(crt,
	    GNUTLS_SAN_DNSNAME, name, (unsigned)strlen(name),
	    GNUTLS_FSAN_SET), 0);
	sign_export(crt, pk, crt, pk, out);
}

/* A CA of the client-certificate tests: its certificate and key. */
struct ca {
	gnutls_x509_crt_t	 crt;
	gnutls_x509_privkey_t	 key;
	char			 pem[4096];
};

static gnutls_x509_privkey_t
new_key(void)
{
	gnutls_x509_privkey_t pk;

	assert_int_equal(gnutls_x509_privkey_init(&pk), 0);
	assert_int_equal(gnutls_x509_privkey_generate(pk, GNUTLS_PK_ECDSA,
	    GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0), 0);
	return pk;
}

static void
make_ca(const char *cn, struct ca *ca)
{
	static unsigned char serial = 100;
	time_t now = time(NULL);
	size_t len = sizeof(ca->pem);

	ca->key = new_key();
	assert_int_equal(gnutls_x509_crt_init(&ca->crt), 0);
	assert_int_equal(gnutls_x509_crt_set_version(ca->crt, 3), 0);
	serial++;
	assert_int_equal(gnutls_x509_crt_set_serial(ca->crt, &serial, 1), 0);
	assert_int_equal(gnutls_x509_crt_set_activation_time(ca->crt,
	    now - 86400), 0);
	assert_int_equal(gnutls_x509_crt_set_expiration_time(ca->crt,
	    now + 86400), 0);
	assert_int_equal(gnutls_x509_crt_set_dn_by_oid(ca->crt,
	    GNUTLS_OID_X520_COMMON_NAME, 0, cn, (unsigned)strlen(cn)), 0);
	assert_int_equal(gnutls_x509_crt_set_basic_constraints(ca->crt, 1,
	    -1), 0);
	assert_int_equal(gnutls_x509_crt_set_key_usage(ca->crt,
	    GNUTLS_KEY_KEY_CERT_SIGN), 0);
	assert_int_equal(gnutls_x509_crt_set_key(ca->crt, ca->key), 0);
	assert_int_equal(gnutls_x509_crt_sign2(ca->crt, ca->crt, ca->key,
	    GNUTLS_DIG_SHA256, 0), 0);
	assert_int_equal(gnutls_x509_crt_export(ca->crt, GNUTLS_X509_FMT_PEM,
	    ca->pem, &len), 0);
	ca->pem[len] = '\0';
}

/*
 * A client certificate by ca for cn (any bytes, len of them), valid from
 * days_from to days_to from now, for TLS client authentication (else for
 * servers only); serial as given.
 */
static void
make_client(const struct ca *ca, const char *cn, size_t cnlen,
    int days_from, int days_to, bool client, unsigned char serial,
    struct pem *out)
{
	gnutls_x509_privkey_t pk = new_key();
	gnutls_x509_crt_t crt;
	time_t now = time(NULL);

	assert_int_equal(gnutls_x509_crt_init(&crt), 0);
	assert_int_equal(gnutls_x509_crt_set_version(crt, 3), 0);
	assert_int_equal(gnutls_x509_crt_set_serial(crt, &serial, 1), 0);
	assert_int_equal(gnutls_x509_crt_set_activation_time(crt,
	    now + days_from * 86400), 0);
	assert_int_equal(gnutls_x509_crt_set_expiration_time(crt,
	    now + days_to * 86400), 0);
	assert_int_equal(gnutls_x509_crt_set_dn_by_oid(crt,
	    GNUTLS_OID_X520_COMMON_NAME, 0, cn, (unsigned)cnlen), 0);
	assert_int_equal(gnutls_x509_crt_set_key_usage(crt,
	    GNUTLS_KEY_DIGITAL_SIGNATURE), 0);
	assert_int_equal(gnutls_x509_crt_set_key_purpose_oid(crt, client ?
	    GNUTLS_KP_TLS_WWW_CLIENT : GNUTLS_KP_TLS_WWW_SERVER, 0), 0);
	sign_export(crt, pk, ca->crt, ca->key, out);
}

static char dir[] = "/tmp/tls_test.XXXXXX";
static char l_crt[64], l_key[64], b_crt[64], b_key[64];
static char m_crt[64], m_key[64], ca1_pem[64], ca2_pem[64];
/* The CAs of client certificates; listener 2's own certificate. */
static struct ca ca1, ca2;
static struct pem pm;
/* Client credentials: none, then a certificate each (good, expired,
   another CA's, one for servers only, one whose CN has bytes a header
   cannot carry). */
enum { CL_NONE, CL_GOOD, CL_EXPIRED, CL_STRANGER, CL_SERVER, CL_ODD,
    CL_LONG, CL_N };
static gnutls_certificate_credentials_t creds[CL_N];
/* Listener 1's and b.test's own; the ACME ones of a.test, b.test and
   x.test. */
static struct pem pl, pb, acme_a, acme_b, acme_x;
static struct config_acme_cert acme_certs[3];
static struct config_challenge challenges[2];
static struct config *cfg;
static struct route_table *rt;
static struct tls_ctx *ctx;
static gnutls_certificate_credentials_t client_cred;

/*
 * Listener 0: acme mode, tls-alpn-01; sites a.test, b.test (a certificate
 * of its own, which wins over its ACME one), c.test (none yet: its
 * challenge is pending) and *.w.test; an ACME certificate for x.test too.
 * Listener 1: manual (its own certificate), site a.test.
 */
static const char conf_fmt[] =
    "user = \"nobody\"\n"
    "listener {\n"
    "  bind = \"127.0.0.1\"\n"
    "  https-port = 8443\n"
    "  tls { mode = \"acme\" acme-challenge = \"tls-alpn-01\" }\n"
    "  site \"a.test\" { upstream = \"127.0.0.1:1\" }\n"
    "  site \"b.test\" { upstream = \"127.0.0.1:2\"\n"
    "    cert = \"%s\" key = \"%s\" }\n"
    "  site \"c.test\" { upstream = \"127.0.0.1:3\" }\n"
    "  site \"*.w.test\" { upstream = \"127.0.0.1:4\" }\n"
    "}\n"
    "listener {\n"
    "  bind = \"127.0.0.2\"\n"
    "  tls { cert = \"%s\" key = \"%s\" }\n"
    "  site \"a.test\" { upstream = \"127.0.0.1:5\" }\n"
    "}\n"
    "listener {\n"
    "  bind = \"127.0.0.3\"\n"
    "  tls { cert = \"%s\" key = \"%s\" }\n"
    "  site \"req.test\" { upstream = \"127.0.0.1:6\"\n"
    "    client-ca-file = \"%s\" client-auth = \"required\" }\n"
    "  site \"opt.test\" { upstream = \"127.0.0.1:7\"\n"
    "    client-ca-file = \"%s\" client-auth = \"optional\" }\n"
    "  site \"other.test\" { upstream = \"127.0.0.1:8\"\n"
    "    client-ca-file = \"%s\" client-auth = \"required\" }\n"
    "  site \"*.wc.test\" { upstream = \"127.0.0.1:9\"\n"
    "    client-ca-file = \"%s\" client-auth = \"required\" }\n"
    "  site \"plain.test\" { upstream = \"127.0.0.1:10\" }\n"
    "}\n";

/* Listener 2: client certificates. */
#define LC	2

static int
put(char *path, size_t sz, const char *name, const char *text)
{
	FILE *f;

	snprintf(path, sz, "%s/%s", dir, name);
	if ((f = fopen(path, "w")) == NULL)
		return -1;
	fputs(text, f);
	return fclose(f);
}

static struct config_blob
blob(const char *s)
{
	return (struct config_blob){ (unsigned char *)(uintptr_t)s,
	    strlen(s) };
}

static int
setup(void **state)
{
	struct config_opts opts = { .keypair_check = tls_keypair_check };
	struct config_listener *l;
	unsigned char ticket[64];
	char conf[8192], err[256];
	static const char odd_cn[] = "bob\r\nX-Evil: 1\x01\xc3\xa9";
	static char long_cn[1400];
	struct pem client[CL_N];
	int i;
	int n;

	(void)state;
	make_cert("listener.test", &pl);
	make_cert("b.test", &pb);
	make_cert("a.test", &acme_a);
	make_cert("b.test", &acme_b);
	make_cert("x.test", &acme_x);
	if (mkdtemp(dir) == NULL ||
	    put(l_crt, sizeof(l_crt), "l.crt", pl.cert) == -1 ||
	    put(l_key, sizeof(l_key), "l.key", pl.key) == -1 ||
	    put(b_crt, sizeof(b_crt), "b.crt", pb.cert) == -1 ||
	    put(b_key, sizeof(b_key), "b.key", pb.key) == -1)
		return -1;
	make_cert("listener2.test", &pm);
	make_ca("Client CA One", &ca1);
	make_ca("Client CA Two", &ca2);
	make_client(&ca1, "alice", 5, -1, 10, true, 0x2a, &client[CL_GOOD]);
	make_client(&ca1, "old", 3, -20, -10, true, 0x2b,
	    &client[CL_EXPIRED]);
	make_client(&ca2, "mallory", 7, -1, 10, true, 0x2c,
	    &client[CL_STRANGER]);
	make_client(&ca1, "srv", 3, -1, 10, false, 0x2d, &client[CL_SERVER]);
	make_client(&ca1, odd_cn, sizeof(odd_cn) - 1, -1, 10, true, 0x2e,
	    &client[CL_ODD]);
	/* 1,400 control bytes: 4,200 once escaped, more than a field
	   of ours holds. */
	memset(long_cn, 0x01, sizeof(long_cn));
	make_client(&ca1, long_cn, sizeof(long_cn), -1, 10, true, 0x2f,
	    &client[CL_LONG]);
	for (i = 0; i < CL_N; i++) {
		if (gnutls_certificate_allocate_credentials(&creds[i]) < 0)
			return -1;
		if (i != CL_NONE && gnutls_certificate_set_x509_key_mem(
		    creds[i], &(gnutls_datum_t){ (unsigned char *)
		    client[i].cert, (unsigned)strlen(client[i].cert) },
		    &(gnutls_datum_t){ (unsigned char *)client[i].key,
		    (unsigned)strlen(client[i].key) }, GNUTLS_X509_FMT_PEM) < 0)
			return -1;
	}
	if (put(m_crt, sizeof(m_crt), "m.crt", pm.cert) == -1 ||
	    put(m_key, sizeof(m_key), "m.key", pm.key) == -1 ||
	    put(ca1_pem, sizeof(ca1_pem), "ca1.pem", ca1.pem) == -1 ||
	    put(ca2_pem, sizeof(ca2_pem), "ca2.pem", ca2.pem) == -1)
		return -1;
	n = snprintf(conf, sizeof(conf), conf_fmt, b_crt, b_key, l_crt, l_key,
	    m_crt, m_key, ca1_pem, ca1_pem, ca2_pem, ca1_pem);
	if ((cfg = testconf_parse(conf, (size_t)n, &opts)) == NULL)
		return -1;
	/* What the master adds to an acme listener: the certificates issued
	   so far, the pending challenges. */
	l = &cfg->listeners[0];
	assert_int_equal(l->tls_mode, CONFIG_TLS_ACME);
	assert_int_equal(l->tls.cert.len, 0);
	acme_certs[0] = (struct config_acme_cert){ "x.test",
	    blob(acme_x.cert), blob(acme_x.key) };
	acme_certs[1] = (struct config_acme_cert){ "a.test",
	    blob(acme_a.cert), blob(acme_a.key) };
	acme_certs[2] = (struct config_acme_cert){ "b.test",
	    blob(acme_b.cert), blob(acme_b.key) };
	l->acme_certs = acme_certs;
	l->nacme_certs = 3;
	challenges[0] = (struct config_challenge){ CONFIG_ACME_TLS_ALPN_01,
	    "c.test", NULL, NULL, { 0 } };
	memset(challenges[0].digest, 0xc5, sizeof(challenges[0].digest));
	challenges[0].digest[0] = 0x01;
	/* An http-01 one is not this listener's kind: no certificate. */
	challenges[1] = (struct config_challenge){ CONFIG_ACME_HTTP_01,
	    "a.test", "tok", "tok.thumb", { 0 } };
	l->challenges = challenges;
	l->nchallenges = 2;

	memset(ticket, 7, sizeof(ticket));
	if ((rt = route_build(cfg)) == NULL ||
	    (ctx = tls_ctx_new(cfg, rt, ticket, sizeof(ticket), err,
	    sizeof(err))) == NULL) {
		fprintf(stderr, "tls_ctx_new: %s\n", err);
		return -1;
	}
	if (gnutls_certificate_allocate_credentials(&client_cred) < 0)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	int i;

	(void)state;
	gnutls_certificate_free_credentials(client_cred);
	for (i = 0; i < CL_N; i++)
		gnutls_certificate_free_credentials(creds[i]);
	gnutls_x509_crt_deinit(ca1.crt);
	gnutls_x509_privkey_deinit(ca1.key);
	gnutls_x509_crt_deinit(ca2.crt);
	gnutls_x509_privkey_deinit(ca2.key);
	tls_ctx_free(ctx);
	route_free(rt);
	/* The test's, not the configuration's. */
	cfg->listeners[0].acme_certs = NULL;
	cfg->listeners[0].nacme_certs = 0;
	cfg->listeners[0].challenges = NULL;
	cfg->listeners[0].nchallenges = 0;
	config_free(cfg);
	unlink(l_crt);
	unlink(l_key);
	unlink(b_crt);
	unlink(b_key);
	unlink(m_crt);
	unlink(m_key);
	unlink(ca1_pem);
	unlink(ca2_pem);
	rmdir(dir);
	return 0;
}

/* What one handshake gave the client, and what the server said. */
struct hs {
	int		 client_rc;	/* 0 or the GnuTLS error */
	int		 alert;		/* received, when client_rc says so */
	int		 server_rc;	/* tls_conn_handshake: 1 or -1 */
	uint64_t	 cert_id;	/* the server's tls_conn_cert_id */
	const char	*server_alpn;
	const char	*refusal;
	char		 refused_name[CONFIG_HOST_MAX + 1];
	unsigned char	 der[4096];	/* the leaf the client got */
	size_t		 der_len;
	char		 alpn[32];	/* as the client sees it */
	bool		 resumed;
	gnutls_datum_t	 session;	/* to resume with (gnutls_free) */
	/* Client certificates: the server's tls_conn_auth_id, what it
	   verified (verify "" without), why it refused one, and the alert
	   a TLS 1.3 client reads after its own handshake was done. */
	uint64_t	 auth_id;
	struct headers_client_cert cc;
	const char	*auth_refusal;
	char		 auth_site[CONFIG_HOST_MAX + 1];
	int		 late_alert;
};

/* What the client sends for a certificate, and its TLS versions (NULL:
   GnuTLS's default). */
static gnutls_certificate_credentials_t hs_cred;
static const char *hs_prio;

/*
 * A handshake on listener li: sni (NULL: none), the client's ALPN list
 * (NULL-terminated; NULL: none), resuming resume if given.
 */
static void
handshake(size_t li, const char *sni, const char *const *alpn,
    const gnutls_datum_t *resume, struct hs *r)
{
	gnutls_datum_t protos[4];
	gnutls_session_t cs;
	struct tls_conn *sc;
	const gnutls_datum_t *peers;
	gnutls_datum_t p;
	char buf[64];
	unsigned n = 0, np;
	bool sdone = false, cdone = false;
	int sv[2], i, ret, sfd;
	const char *name;
	size_t len;

	memset(r, 0, sizeof(*r));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
	sfd = sv[0];
	assert_non_null(sc = tls_conn_new(ctx, li, sfd));
	assert_int_equal(gnutls_init(&cs, GNUTLS_CLIENT | GNUTLS_NONBLOCK), 0);
	if (hs_prio != NULL)
		assert_int_equal(gnutls_priority_set_direct(cs, hs_prio, NULL),
		    0);
	else
		assert_int_equal(gnutls_set_default_priority(cs), 0);
	assert_int_equal(gnutls_credentials_set(cs, GNUTLS_CRD_CERTIFICATE,
	    hs_cred != NULL ? hs_cred : client_cred), 0);
	if (sni != NULL)
		assert_int_equal(gnutls_server_name_set(cs, GNUTLS_NAME_DNS,
		    sni, strlen(sni)), 0);
	for (n = 0; alpn != NULL && alpn[n] != NULL; n++)
		protos[n] = (gnutls_datum_t){ (unsigned char *)(uintptr_t)
		    alpn[n], (unsigned)strlen(alpn[n]) };
	if (n > 0)
		assert_int_equal(gnutls_alpn_set_protocols(cs, protos, n, 0),
		    0);
	if (resume != NULL)
		assert_int_equal(gnutls_session_set_data(cs, resume->data,
		    resume->size), 0);
	gnutls_transport_set_int(cs, sv[1]);

	r->client_rc = 1;
	for (i = 0; i < 1000 && (!sdone || !cdone); i++) {
		if (!sdone) {
			tls_conn_readable(sc);
			if ((ret = tls_conn_handshake(sc)) != 0) {
				r->server_rc = ret;
				sdone = true;
				if (ret == -1) {
					/* Its alert is out; then EOF. */
					r->refusal = tls_conn_refusal(sc,
					    &name, &len);
					memcpy(r->refused_name, name, len);
					r->refused_name[len] = '\0';
					r->auth_refusal =
					    tls_conn_auth_refusal(sc, &name);
					snprintf(r->auth_site,
					    sizeof(r->auth_site), "%s", name);
					close(sfd);
					sfd = -1;
				}
			}
		}
		if (!cdone) {
			ret = gnutls_handshake(cs);
			if (ret == 0 || gnutls_error_is_fatal(ret)) {
				r->client_rc = ret;
				cdone = true;
			}
		}
	}
	assert_true(sdone && cdone);
	if (r->client_rc == GNUTLS_E_FATAL_ALERT_RECEIVED ||
	    r->client_rc == GNUTLS_E_WARNING_ALERT_RECEIVED)
		r->alert = (int)gnutls_alert_get(cs);
	if (r->client_rc == 0) {
		peers = gnutls_certificate_get_peers(cs, &np);
		if (peers != NULL && np > 0) {
			assert_true(peers[0].size <= sizeof(r->der));
			memcpy(r->der, peers[0].data, peers[0].size);
			r->der_len = peers[0].size;
		}
		if (gnutls_alpn_get_selected_protocol(cs, &p) == 0) {
			assert_true(p.size < sizeof(r->alpn));
			memcpy(r->alpn, p.data, p.size);
		}
		r->resumed = gnutls_session_is_resumed(cs) != 0;
		/* TLS 1.3 tickets come after the handshake, and so does
		   a server's alert about the client's certificate. */
		ret = (int)gnutls_record_recv(cs, buf, sizeof(buf));
		if (ret == GNUTLS_E_FATAL_ALERT_RECEIVED)
			r->late_alert = (int)gnutls_alert_get(cs);
		(void)gnutls_session_get_data2(cs, &r->session);
	}
	if (r->server_rc == 1) {
		r->cert_id = tls_conn_cert_id(sc);
		r->server_alpn = tls_conn_alpn(sc);
		assert_null(tls_conn_refusal(sc, &name, &len));
		assert_null(tls_conn_auth_refusal(sc, &name));
		r->auth_id = tls_conn_auth_id(sc);
		if (tls_conn_client_cert(sc) != NULL)
			r->cc = *tls_conn_client_cert(sc);
		else
			assert_int_equal(r->auth_id, 0);
	}
	gnutls_deinit(cs);
	tls_conn_free(sc);
	if (sfd != -1)
		close(sfd);
	close(sv[1]);
}

/* The DER of a PEM certificate equals what the client got. */
static void
assert_served(const struct hs *r, const struct pem *expect)
{
	gnutls_datum_t pem = { (unsigned char *)(uintptr_t)expect->cert,
	    (unsigned)strlen(expect->cert) }, der;

	assert_int_equal(r->client_rc, 0);
	assert_int_equal(r->server_rc, 1);
	assert_int_equal(gnutls_pem_base64_decode2("CERTIFICATE", &pem, &der),
	    0);
	assert_int_equal(der.size, r->der_len);
	assert_memory_equal(der.data, r->der, der.size);
	gnutls_free(der.data);
}

/* What tls_ctx_cert_id says for host on listener li (routed there). */
static uint64_t
id_for(size_t li, const char *host)
{
	return tls_ctx_cert_id(ctx, li, route_lookup(rt, li, host,
	    strlen(host)), host, strlen(host));
}

static const char *const h2_h1[] = { "h2", "http/1.1", NULL };
static const char *const h1_only[] = { "http/1.1", NULL };
static const char *const acme_only[] = { TLS_ALPN_ACME, NULL };
static const char *const acme_and_h2[] = { TLS_ALPN_ACME, "h2", NULL };
static const char *const acme_and_h1[] = { TLS_ALPN_ACME, "http/1.1", NULL };

static void
test_acme_cert_of_the_name(void **state)
{
	struct hs r;

	(void)state;
	handshake(0, "a.test", h2_h1, NULL, &r);
	assert_served(&r, &acme_a);
	assert_string_equal(r.alpn, "h2");
	assert_string_equal(r.server_alpn, "h2");
	assert_true(r.cert_id != 0);
	assert_true(r.cert_id == id_for(0, "a.test"));
	gnutls_free(r.session.data);
	/* The SNI as normalisation has it: case and a trailing dot. */
	handshake(0, "A.Test.", h1_only, NULL, &r);
	assert_served(&r, &acme_a);
	assert_string_equal(r.alpn, "http/1.1");
	gnutls_free(r.session.data);
	/* A name that is no site still gets its certificate. */
	handshake(0, "x.test", NULL, NULL, &r);
	assert_served(&r, &acme_x);
	assert_string_equal(r.server_alpn, "");
	assert_true(r.cert_id == id_for(0, "x.test"));
	assert_true(r.cert_id != id_for(0, "a.test"));
	gnutls_free(r.session.data);
}

static void
test_site_cert_wins(void **state)
{
	struct hs r;

	(void)state;
	handshake(0, "b.test", h2_h1, NULL, &r);
	assert_served(&r, &pb);		/* not acme_b */
	assert_true(r.cert_id == id_for(0, "b.test"));
	assert_true(r.cert_id != id_for(0, "a.test"));
	gnutls_free(r.session.data);
}

static void
test_no_cert_yet_is_an_alert(void **state)
{
	static const char *const names[] = { "c.test", "q.w.test",
	    "nowhere.test", NULL };
	struct hs r;
	size_t i;

	(void)state;
	for (i = 0; i < 3; i++) {
		handshake(0, names[i], h2_h1, NULL, &r);
		assert_int_equal(r.server_rc, -1);
		assert_int_equal(r.client_rc, GNUTLS_E_FATAL_ALERT_RECEIVED);
		assert_int_equal(r.alert, GNUTLS_A_UNRECOGNIZED_NAME);
		assert_string_equal(r.refusal, "no certificate yet");
		assert_string_equal(r.refused_name, names[i]);
		/* No connection has the id of no certificate. */
		assert_true(id_for(0, names[i]) == 0);
	}
	/* No SNI at all. */
	handshake(0, NULL, h2_h1, NULL, &r);
	assert_int_equal(r.alert, GNUTLS_A_UNRECOGNIZED_NAME);
	assert_string_equal(r.refusal, "no certificate yet");
	assert_string_equal(r.refused_name, "");
	/* The other names are served meanwhile. */
	handshake(0, "a.test", h2_h1, NULL, &r);
	assert_served(&r, &acme_a);
	gnutls_free(r.session.data);
}

static void
test_tls_alpn_01_challenge(void **state)
{
	gnutls_x509_crt_t crt;
	gnutls_datum_t der, ext = { NULL, 0 };
	unsigned critical = 0;
	char san[64];
	size_t len = sizeof(san);
	struct hs r;

	(void)state;
	handshake(0, "c.test", acme_only, NULL, &r);
	assert_int_equal(r.client_rc, 0);
	assert_int_equal(r.server_rc, 1);
	assert_string_equal(r.alpn, TLS_ALPN_ACME);
	assert_string_equal(r.server_alpn, TLS_ALPN_ACME);
	der = (gnutls_datum_t){ r.der, (unsigned)r.der_len };
	assert_int_equal(gnutls_x509_crt_init(&crt), 0);
	assert_int_equal(gnutls_x509_crt_import(crt, &der, GNUTLS_X509_FMT_DER),
	    0);
	assert_int_equal(gnutls_x509_crt_get_subject_alt_name(crt, 0, san,
	    &len, &critical), GNUTLS_SAN_DNSNAME);
	assert_string_equal(san, "c.test");
	/* id-pe-acmeIdentifier, critical, the DER OCTET STRING of the
	   digest (RFC 8737 3). */
	assert_int_equal(gnutls_x509_crt_get_extension_by_oid2(crt,
	    ACME_ID_OID, 0, &ext, &critical), 0);
	assert_int_equal(critical, 1);
	assert_int_equal(ext.size, 34);
	assert_int_equal(ext.data[0], 0x04);
	assert_int_equal(ext.data[1], 32);
	assert_memory_equal(ext.data + 2, challenges[0].digest, 32);
	gnutls_free(ext.data);
	gnutls_x509_crt_deinit(crt);
	/* Not any certificate a request could be routed by. */
	assert_true(r.cert_id != 0 && r.cert_id != id_for(0, "c.test"));
	gnutls_free(r.session.data);
}

static void
test_acme_tls_1_without_a_challenge_fails(void **state)
{
	static const char *const names[] = { "a.test", "b.test",
	    "nowhere.test" };
	struct hs r;
	size_t i;

	(void)state;
	/* a.test has a certificate and an http-01 challenge: neither is a
	   tls-alpn-01 one. */
	for (i = 0; i < 3; i++) {
		handshake(0, names[i], acme_only, NULL, &r);
		assert_int_equal(r.server_rc, -1);
		assert_int_equal(r.client_rc, GNUTLS_E_FATAL_ALERT_RECEIVED);
		assert_int_equal(r.alert, GNUTLS_A_UNRECOGNIZED_NAME);
		assert_string_equal(r.refusal,
		    "acme-tls/1 without a pending tls-alpn-01 challenge");
		assert_string_equal(r.refused_name, names[i]);
	}
	handshake(0, NULL, acme_only, NULL, &r);
	assert_int_equal(r.alert, GNUTLS_A_UNRECOGNIZED_NAME);
}

static void
test_normal_clients_never_get_acme_tls_1(void **state)
{
	const char *const *lists[] = { h2_h1, h1_only, acme_and_h2,
	    acme_and_h1, NULL };
	struct hs r;
	size_t i;

	(void)state;
	for (i = 0; lists[i] != NULL; i++) {
		/* Even for the name whose challenge is pending: no
		   certificate for c.test yet, so the alert. */
		handshake(0, "c.test", lists[i], NULL, &r);
		assert_int_equal(r.alert, GNUTLS_A_UNRECOGNIZED_NAME);
		assert_string_equal(r.refusal, "no certificate yet");
		handshake(0, "a.test", lists[i], NULL, &r);
		assert_served(&r, &acme_a);
		assert_true(strcmp(r.alpn, "h2") == 0 ||
		    strcmp(r.alpn, "http/1.1") == 0);
		assert_string_equal(r.server_alpn, r.alpn);
		gnutls_free(r.session.data);
	}
	/* A manual listener does not offer acme-tls/1 at all. */
	handshake(1, "a.test", acme_and_h1, NULL, &r);
	assert_served(&r, &pl);
	assert_string_equal(r.alpn, "http/1.1");
	gnutls_free(r.session.data);
	handshake(1, "a.test", acme_only, NULL, &r);
	assert_true(r.client_rc != 0 || strcmp(r.alpn, "") == 0);
	assert_true(r.server_rc == -1 || strcmp(r.server_alpn, "") == 0);
	assert_null(r.refusal);
	gnutls_free(r.session.data);
}

static void
test_tickets_per_certificate(void **state)
{
	struct hs r, first;

	(void)state;
	handshake(0, "a.test", h2_h1, NULL, &first);
	assert_served(&first, &acme_a);
	assert_true(first.session.size > 0);
	/* The same name resumes ... */
	handshake(0, "a.test", h2_h1, &first.session, &r);
	assert_int_equal(r.client_rc, 0);
	assert_true(r.resumed);
	assert_true(r.cert_id == first.cert_id);
	gnutls_free(r.session.data);
	/* ... a name with another ACME certificate does not. */
	handshake(0, "x.test", h2_h1, &first.session, &r);
	assert_served(&r, &acme_x);
	assert_false(r.resumed);
	gnutls_free(r.session.data);
	gnutls_free(first.session.data);
}

/* A handshake on listener 2 with client credential which. */
static void
hs_client(const char *sni, int which, const gnutls_datum_t *resume,
    struct hs *r)
{
	hs_cred = creds[which];
	handshake(LC, sni, h2_h1, resume, r);
	hs_cred = NULL;
}

/* The auth id of a site of listener 2 (0: none asks). */
static uint64_t
auth_for(const char *host)
{
	return tls_ctx_auth_id(ctx, LC, route_lookup(rt, LC, host,
	    strlen(host)));
}

static void
test_client_cert_required(void **state)
{
	struct hs r;

	(void)state;
	assert_true(auth_for("req.test") != 0);
	assert_true(auth_for("req.test") != auth_for("opt.test"));
	assert_true(auth_for("req.test") != auth_for("other.test"));
	assert_true(auth_for("plain.test") == 0);
	hs_client("req.test", CL_GOOD, NULL, &r);
	assert_int_equal(r.client_rc, 0);
	assert_int_equal(r.server_rc, 1);
	assert_true(r.auth_id == auth_for("req.test"));
	assert_string_equal(r.cc.verify, "SUCCESS");
	assert_string_equal(r.cc.subject, "CN=alice");
	assert_string_equal(r.cc.issuer, "CN=Client CA One");
	assert_string_equal(r.cc.serial, "2A");
	assert_int_equal(strlen(r.cc.fingerprint), 64);
	assert_int_equal(strspn(r.cc.fingerprint, "0123456789abcdef"), 64);
	gnutls_free(r.session.data);
	/* The wildcard site asks as routing finds it. */
	hs_client("x.wc.test", CL_GOOD, NULL, &r);
	assert_int_equal(r.server_rc, 1);
	assert_true(r.auth_id == auth_for("y.wc.test"));
	gnutls_free(r.session.data);
}

/* A refused certificate: the handshake fails with alert and says why. */
static void
assert_refused(const char *sni, int which, const char *why, int alert)
{
	struct hs r;

	hs_client(sni, which, NULL, &r);
	assert_int_equal(r.server_rc, -1);
	assert_non_null(r.auth_refusal);
	assert_string_equal(r.auth_refusal, why);
	assert_string_equal(r.auth_site, sni[0] == 'x' ? "*.wc.test" : sni);
	/* TLS 1.3: the client was done when the server read its
	   certificate; it reads the alert next. */
	assert_int_equal(r.client_rc == 0 ? r.late_alert : r.alert, alert);
	gnutls_free(r.session.data);
}

static void
test_client_cert_required_refusals(void **state)
{
	(void)state;
	assert_refused("req.test", CL_NONE, "no-certificate",
	    GNUTLS_A_CERTIFICATE_REQUIRED);
	assert_refused("req.test", CL_EXPIRED, "expired",
	    GNUTLS_A_CERTIFICATE_EXPIRED);
	assert_refused("req.test", CL_STRANGER, "unknown-issuer",
	    GNUTLS_A_UNKNOWN_CA);
	assert_refused("req.test", CL_SERVER, "not-for-client-auth",
	    GNUTLS_A_UNSUPPORTED_CERTIFICATE);
	assert_refused("x.wc.test", CL_NONE, "no-certificate",
	    GNUTLS_A_CERTIFICATE_REQUIRED);
	/* The trust is the site's own: CA one's client is a stranger to
	   other.test, which trusts CA two. */
	assert_refused("other.test", CL_GOOD, "unknown-issuer",
	    GNUTLS_A_UNKNOWN_CA);
	/* TLS 1.2 says it before the client is done. */
	hs_prio = "NORMAL:-VERS-ALL:+VERS-TLS1.2";
	assert_refused("req.test", CL_NONE, "no-certificate",
	    GNUTLS_A_HANDSHAKE_FAILURE);
	assert_refused("req.test", CL_EXPIRED, "expired",
	    GNUTLS_A_CERTIFICATE_EXPIRED);
	hs_prio = NULL;
}

static void
test_client_cert_optional(void **state)
{
	static const struct {
		int		 which;
		const char	*verify;
	} cases[] = {
		{ CL_NONE, "NONE" },
		{ CL_GOOD, "SUCCESS" },
		{ CL_EXPIRED, "FAILED:expired" },
		{ CL_STRANGER, "FAILED:unknown-issuer" },
		{ CL_SERVER, "FAILED:not-for-client-auth" },
	};
	struct hs r;
	size_t i;

	(void)state;
	for (i = 0; i < nitems(cases); i++) {
		hs_client("opt.test", cases[i].which, NULL, &r);
		assert_int_equal(r.client_rc, 0);
		assert_int_equal(r.server_rc, 1);
		assert_int_equal(r.late_alert, 0);
		assert_true(r.auth_id == auth_for("opt.test"));
		assert_string_equal(r.cc.verify, cases[i].verify);
		/* Facts only of a verified certificate. */
		if (cases[i].which != CL_GOOD)
			assert_string_equal(r.cc.subject, "");
		gnutls_free(r.session.data);
	}
	/* A CN with CR LF, a control byte and UTF-8: all escaped. */
	hs_client("opt.test", CL_ODD, NULL, &r);
	assert_string_equal(r.cc.verify, "SUCCESS");
	assert_string_equal(r.cc.subject,
	    "CN=bob\\0D\\0AX-Evil: 1\\01\\C3\\A9");
	gnutls_free(r.session.data);
	/* A DN too long for its field is refused, never cut. */
	hs_client("opt.test", CL_LONG, NULL, &r);
	assert_int_equal(r.server_rc, 1);
	assert_string_equal(r.cc.verify, "FAILED:dn-too-long");
	assert_string_equal(r.cc.subject, "");
	gnutls_free(r.session.data);
	assert_refused("req.test", CL_LONG, "dn-too-long",
	    GNUTLS_A_BAD_CERTIFICATE);
}

static void
test_client_cert_other_sites(void **state)
{
	struct hs r;

	(void)state;
	/* A site without client-auth asks for none: no facts, no id. */
	hs_client("plain.test", CL_GOOD, NULL, &r);
	assert_int_equal(r.server_rc, 1);
	assert_true(r.auth_id == 0);
	assert_string_equal(r.cc.verify, "");
	gnutls_free(r.session.data);
	/* No SNI: the listener's certificate, no site, no client-auth. */
	hs_client(NULL, CL_GOOD, NULL, &r);
	assert_int_equal(r.server_rc, 1);
	assert_true(r.auth_id == 0);
	/* The same certificate as req.test's: only the auth id tells. */
	assert_true(r.cert_id == id_for(LC, "req.test"));
	gnutls_free(r.session.data);
}

static void
test_client_cert_tickets_per_site(void **state)
{
	struct hs r, first, plain;
	int v;

	(void)state;
	/* TLS 1.2 too: a resumed session there carries the certificate. */
	for (v = 0; v < 2; v++) {
		hs_prio = v == 0 ? "NORMAL:-VERS-ALL:+VERS-TLS1.2" : NULL;
		hs_client("req.test", CL_GOOD, NULL, &first);
		assert_int_equal(first.server_rc, 1);
		hs_client("req.test", CL_NONE, &first.session, &r);
		assert_int_equal(r.server_rc, 1);
		assert_true(r.resumed);
		assert_string_equal(r.cc.verify, "SUCCESS");
		gnutls_free(r.session.data);
		gnutls_free(first.session.data);
	}
	hs_prio = NULL;
	hs_client("req.test", CL_GOOD, NULL, &first);
	assert_int_equal(first.server_rc, 1);
	assert_true(first.session.size > 0);
	/* The same site resumes, and its certificate is verified again. */
	hs_client("req.test", CL_NONE, &first.session, &r);
	assert_int_equal(r.server_rc, 1);
	assert_true(r.resumed);
	assert_true(r.auth_id == auth_for("req.test"));
	assert_string_equal(r.cc.verify, "SUCCESS");
	assert_string_equal(r.cc.subject, "CN=alice");
	gnutls_free(r.session.data);
	/* Another site under the same certificate does not resume: not
	   one with client-auth of its own ... */
	hs_client("opt.test", CL_NONE, &first.session, &r);
	assert_int_equal(r.server_rc, 1);
	assert_false(r.resumed);
	assert_string_equal(r.cc.verify, "NONE");
	gnutls_free(r.session.data);
	/* ... nor one without: no id comes with it. */
	hs_client("plain.test", CL_NONE, &first.session, &r);
	assert_int_equal(r.server_rc, 1);
	assert_false(r.resumed);
	assert_true(r.auth_id == 0);
	gnutls_free(r.session.data);
	/* And a session of a site without client-auth does not resume on
	   one with it: the certificate is asked for. */
	hs_client("plain.test", CL_NONE, NULL, &plain);
	assert_true(plain.session.size > 0);
	hs_client("req.test", CL_NONE, &plain.session, &r);
	assert_int_equal(r.server_rc, -1);
	assert_string_equal(r.auth_refusal, "no-certificate");
	gnutls_free(r.session.data);
	gnutls_free(plain.session.data);
	gnutls_free(first.session.data);
}

static void
test_verify_reason(void **state)
{
	(void)state;
	assert_string_equal(tls_verify_reason(GNUTLS_CERT_INVALID |
	    GNUTLS_CERT_EXPIRED), "expired");
	assert_string_equal(tls_verify_reason(GNUTLS_CERT_INVALID |
	    GNUTLS_CERT_SIGNER_NOT_FOUND | GNUTLS_CERT_EXPIRED),
	    "unknown-issuer");
	assert_string_equal(tls_verify_reason(GNUTLS_CERT_INVALID |
	    GNUTLS_CERT_NOT_ACTIVATED), "not-yet-valid");
	assert_string_equal(tls_verify_reason(GNUTLS_CERT_INVALID |
	    GNUTLS_CERT_PURPOSE_MISMATCH), "not-for-client-auth");
	assert_string_equal(tls_verify_reason(GNUTLS_CERT_INVALID |
	    GNUTLS_CERT_REVOKED), "revoked");
	assert_string_equal(tls_verify_reason(GNUTLS_CERT_INVALID), "invalid");
}

/* ---- session-ticket key rotation (issue 19) ---- */

/* A ctx of the same configuration with master keys keys (64 or 128
   bytes: current, then previous). */
static struct tls_ctx *
ctx_with(const unsigned char *keys, size_t len)
{
	struct tls_ctx *c;
	char err[256];

	if ((c = tls_ctx_new(cfg, rt, keys, len, err, sizeof(err))) == NULL)
		fail_msg("tls_ctx_new: %s", err);
	return c;
}

/* Whether session resumes for a.test on ctx c (a.test's certificate
   served either way). */
static bool
resumes_on(struct tls_ctx *c, const gnutls_datum_t *session)
{
	struct tls_ctx *saved = ctx;
	struct hs r;

	ctx = c;
	handshake(0, "a.test", h2_h1, session, &r);
	ctx = saved;
	assert_int_equal(r.client_rc, 0);
	assert_int_equal(r.server_rc, 1);
	assert_served(&r, &acme_a);
	gnutls_free(r.session.data);
	return r.resumed;
}

/*
 * A ticket made under K0 resumes on a ctx whose keys are K1 (current) and
 * K0 (previous), for TLS 1.2 and 1.3, and not on one of K2 and K1; one
 * made on K1 and K0 resumes on K2 and K1.  This is what tls_stek_name()
 * (a copy of GnuTLS's key-name derivation) is for: were it wrong, the
 * ticket of the previous key would not resume.
 */
static void
test_previous_ticket_key(void **state)
{
	unsigned char k[3][64], ring[128];
	struct tls_ctx *saved = ctx, *c0, *c10, *c21;
	struct hs first, later;
	int v;

	(void)state;
	for (v = 0; v < 3; v++)
		memset(k[v], 0x30 + v, sizeof(k[v]));
	c0 = ctx_with(k[0], 64);
	memcpy(ring, k[1], 64);
	memcpy(ring + 64, k[0], 64);
	c10 = ctx_with(ring, 128);
	memcpy(ring, k[2], 64);
	memcpy(ring + 64, k[1], 64);
	c21 = ctx_with(ring, 128);
	for (v = 0; v < 2; v++) {
		hs_prio = v == 0 ? "NORMAL:-VERS-ALL:+VERS-TLS1.2" : NULL;
		ctx = c0;
		handshake(0, "a.test", h2_h1, NULL, &first);
		assert_int_equal(first.client_rc, 0);
		assert_true(first.session.size > 0);
		assert_true(resumes_on(c10, &first.session));
		ctx = c10;
		handshake(0, "a.test", h2_h1, NULL, &later);
		assert_false(later.resumed);
		/* Two rotations old: no; made after the first: yes. */
		assert_false(resumes_on(c21, &first.session));
		assert_true(resumes_on(c21, &later.session));
		gnutls_free(first.session.data);
		gnutls_free(later.session.data);
	}
	hs_prio = NULL;
	ctx = saved;
	tls_ctx_free(c0);
	tls_ctx_free(c10);
	tls_ctx_free(c21);
}

/*
 * A retired ctx (a newer generation took over) has no ticket key left: a
 * handshake on it still succeeds, resumes nothing, and the ticket it
 * makes resumes nowhere, not even where its keys still live.
 */
static void
test_retired_ctx(void **state)
{
	unsigned char k0[64];
	struct tls_ctx *saved = ctx, *live, *old;
	struct hs first, r;

	(void)state;
	memset(k0, 0x41, sizeof(k0));
	live = ctx_with(k0, 64);
	old = ctx_with(k0, 64);
	ctx = old;
	handshake(0, "a.test", h2_h1, NULL, &first);
	assert_int_equal(first.client_rc, 0);
	tls_ctx_retire(old);
	handshake(0, "a.test", h2_h1, &first.session, &r);
	assert_int_equal(r.client_rc, 0);
	assert_int_equal(r.server_rc, 1);
	assert_false(r.resumed);
	assert_served(&r, &acme_a);
	ctx = saved;
	assert_true(resumes_on(live, &first.session));	/* the control */
	assert_false(resumes_on(live, &r.session));
	gnutls_free(r.session.data);
	gnutls_free(first.session.data);
	tls_ctx_free(live);
	tls_ctx_free(old);
}

/* The ticket a client got (its NewSessionTicket message). */
static unsigned char got_ticket[16];
static int got_tickets;

static int
ticket_hook(gnutls_session_t s, unsigned htype, unsigned when,
    unsigned incoming, const gnutls_datum_t *msg)
{
	size_t off = 4, n;

	(void)when;
	if (!incoming || htype != GNUTLS_HANDSHAKE_NEW_SESSION_TICKET)
		return 0;
	/* TLS 1.3: lifetime, age_add, nonce<1>, ticket<2>; TLS 1.2:
	   lifetime, ticket<2>. */
	if (gnutls_protocol_get_version(s) == GNUTLS_TLS1_3) {
		if (msg->size < 9)
			return 0;
		off = 8 + 1 + msg->data[8];
	}
	if (msg->size < off + 2)
		return 0;
	n = (size_t)msg->data[off] << 8 | msg->data[off + 1];
	if (n < sizeof(got_ticket) || msg->size < off + 2 + n)
		return 0;
	memcpy(got_ticket, msg->data + off + 2, sizeof(got_ticket));
	got_tickets++;
	return 0;
}

/*
 * tls_stek_name() against GnuTLS itself: a plain GnuTLS server given a
 * key makes tickets whose first 16 bytes are the name tls_stek_name()
 * computes for that key now (TLS 1.2 and 1.3).  Fails if a GnuTLS
 * derives its ticket keys otherwise (lib/stek.c).
 */
static void
test_stek_name_is_gnutls(void **state)
{
	static const char *const prios[] = {
		"NORMAL:-VERS-ALL:+VERS-TLS1.2", "NORMAL:-VERS-ALL:+VERS-TLS1.3"
	};
	gnutls_certificate_credentials_t scred;
	gnutls_session_t ss, cs;
	unsigned char key[64], name[16];
	gnutls_datum_t k = { key, sizeof(key) }, c, kd;
	uint64_t t;
	int sv[2], i, v, sret, cret;
	char buf[16];

	(void)state;
	for (i = 0; i < 64; i++)
		key[i] = (unsigned char)(i * 37 + 1);
	c = (gnutls_datum_t){ (unsigned char *)pl.cert,
	    (unsigned)strlen(pl.cert) };
	kd = (gnutls_datum_t){ (unsigned char *)pl.key,
	    (unsigned)strlen(pl.key) };
	assert_int_equal(gnutls_certificate_allocate_credentials(&scred), 0);
	assert_int_equal(gnutls_certificate_set_x509_key_mem(scred, &c, &kd,
	    GNUTLS_X509_FMT_PEM), 0);
	for (v = 0; v < 2; v++) {
		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
		assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
		assert_int_equal(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
		assert_int_equal(gnutls_init(&ss, GNUTLS_SERVER |
		    GNUTLS_NONBLOCK), 0);
		assert_int_equal(gnutls_init(&cs, GNUTLS_CLIENT |
		    GNUTLS_NONBLOCK), 0);
		assert_int_equal(gnutls_priority_set_direct(ss, prios[v],
		    NULL), 0);
		assert_int_equal(gnutls_priority_set_direct(cs, prios[v],
		    NULL), 0);
		assert_int_equal(gnutls_credentials_set(ss,
		    GNUTLS_CRD_CERTIFICATE, scred), 0);
		assert_int_equal(gnutls_credentials_set(cs,
		    GNUTLS_CRD_CERTIFICATE, client_cred), 0);
		assert_int_equal(gnutls_session_ticket_enable_server(ss, &k),
		    0);
		gnutls_handshake_set_hook_function(cs,
		    GNUTLS_HANDSHAKE_NEW_SESSION_TICKET, GNUTLS_HOOK_PRE,
		    ticket_hook);
		gnutls_transport_set_int(ss, sv[0]);
		gnutls_transport_set_int(cs, sv[1]);
		got_tickets = 0;
		sret = cret = GNUTLS_E_AGAIN;
		for (i = 0; i < 1000 && (sret != 0 || cret != 0); i++) {
			if (sret != 0)
				sret = gnutls_handshake(ss);
			if (cret != 0)
				cret = gnutls_handshake(cs);
			assert_false(sret < 0 && gnutls_error_is_fatal(sret));
			assert_false(cret < 0 && gnutls_error_is_fatal(cret));
		}
		assert_int_equal(sret, 0);
		assert_int_equal(cret, 0);
		/* TLS 1.3's tickets come after the handshake. */
		(void)gnutls_record_recv(cs, buf, sizeof(buf));
		assert_true(got_tickets > 0);
		t = tls_stek_period(time(NULL));
		assert_int_equal(tls_stek_name(key, t, name), 0);
		assert_memory_equal(got_ticket, name, sizeof(name));
		gnutls_deinit(ss);
		gnutls_deinit(cs);
		close(sv[0]);
		close(sv[1]);
	}
	gnutls_certificate_free_credentials(scred);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_previous_ticket_key),
		cmocka_unit_test(test_stek_name_is_gnutls),
		cmocka_unit_test(test_retired_ctx),
		cmocka_unit_test(test_acme_cert_of_the_name),
		cmocka_unit_test(test_site_cert_wins),
		cmocka_unit_test(test_no_cert_yet_is_an_alert),
		cmocka_unit_test(test_tls_alpn_01_challenge),
		cmocka_unit_test(test_acme_tls_1_without_a_challenge_fails),
		cmocka_unit_test(test_normal_clients_never_get_acme_tls_1),
		cmocka_unit_test(test_tickets_per_certificate),
		cmocka_unit_test(test_client_cert_required),
		cmocka_unit_test(test_client_cert_required_refusals),
		cmocka_unit_test(test_client_cert_optional),
		cmocka_unit_test(test_client_cert_other_sites),
		cmocka_unit_test(test_client_cert_tickets_per_site),
		cmocka_unit_test(test_verify_reason),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
