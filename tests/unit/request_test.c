/*
 * request_test.c - admission (request.c) without a socket: every answer
 * it can give, in its order, and what it fills in when it lets a request
 * through.  The configuration, routes, certificates and rate-limit table
 * are the real ones, made from a configuration text and two certificates.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "testconf.h"
#include "ratelimit.h"
#include "request.h"
#include "route.h"
#include "tls.h"
#include "util.h"
#include "gen.h"

/* Two self-signed P-256 certificates: a.test (*.a.test) and b.test. */
static const char a_cert[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBljCCATygAwIBAgIUD+FdLfebSb3pTNSow7DnHcpIZwIwCgYIKoZIzj0EAwIw\n"
    "ETEPMA0GA1UEAwwGYS50ZXN0MCAXDTI2MTIwMjIxMzczOFoYDzIxMjYxMTA4MjEz\n"
    "NzM4WjARMQ8wDQYDVQQDDAZhLnRlc3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC\n"
    "AAS9U8iMhOMzmsA2ysraOffMyhfc7Y591EJU8NIlyRb+1VosmFlJNcu60/BckxgF\n"
    "zAX8b8Y/eJBTlEjHU26AxCKLo3AwbjAdBgNVHQ4EFgQUfujtB81mAQaKRXSDCq7Y\n"
    "eHluuW8wHwYDVR0jBBgwFoAUfujtB81mAQaKRXSDCq7YeHluuW8wDwYDVR0TAQH/\n"
    "BAUwAwEB/zAbBgNVHREEFDASggZhLnRlc3SCCCouYS50ZXN0MAoGCCqGSM49BAMC\n"
    "A0gAMEUCIQDRCJ1oI5W0svIJGaUbw5jp5rtT2SpYGnBp2Iqa6kXdsQIgLTPZLlKH\n"
    "deh4Giw9PAN991t7vLKSKApKn6kSjwx4MAA=\n"
    "-----END CERTIFICATE-----\n"
    ;
static const char a_key[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQglbPnHcUBPufyjqsU\n"
    "fPUVh/BPCWIIUexnASHt9dOStmChRANCAAS9U8iMhOMzmsA2ysraOffMyhfc7Y59\n"
    "1EJU8NIlyRb+1VosmFlJNcu60/BckxgFzAX8b8Y/eJBTlEjHU26AxCKL\n"
    "-----END PRIVATE KEY-----\n"
    ;
static const char b_cert[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBlTCCATygAwIBAgIUUxSP30TkdolX8GRTO/9BS/o0odwwCgYIKoZIzj0EAwIw\n"
    "ETEPMA0GA1UEAwwGYi50ZXN0MCAXDTI2MTIwMjIxMzczOFoYDzIxMjYxMTA4MjEz\n"
    "NzM4WjARMQ8wDQYDVQQDDAZiLnRlc3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC\n"
    "AASz3/2pOZsE9paGt8VEcDLT9bjtjMc6AIAXuPnYdhAIEqKh6i4e04xXQGVXjRTP\n"
    "WjkAUjGMjiBO+drAjU05ziO/o3AwbjAdBgNVHQ4EFgQUexROkV8p3KP/+NAMdf2i\n"
    "x4BOjcswHwYDVR0jBBgwFoAUexROkV8p3KP/+NAMdf2ix4BOjcswDwYDVR0TAQH/\n"
    "BAUwAwEB/zAbBgNVHREEFDASggZiLnRlc3SCCCouYi50ZXN0MAoGCCqGSM49BAMC\n"
    "A0cAMEQCIC+TrYEddYl/SiWmhUPf4nL8VDQkZNgPHkEQpz+JyUOxAiBB7HOW731X\n"
    "devMLIyg+C3RDFni15wJdjFAxwinRWyEhw==\n"
    "-----END CERTIFICATE-----\n"
    ;
static const char b_key[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgr+4uUEgbWeB62UsO\n"
    "fu1qofdYvjQYEvmLruf5ocUaLy+hRANCAASz3/2pOZsE9paGt8VEcDLT9bjtjMc6\n"
    "AIAXuPnYdhAIEqKh6i4e04xXQGVXjRTPWjkAUjGMjiBO+drAjU05ziO/\n"
    "-----END PRIVATE KEY-----\n"
    ;

static char dir[] = "/tmp/request_test.XXXXXX";
static char a_crt[64], a_pem[64], b_crt[64], b_pem[64];

static struct config *cfg;
static struct gen gen;
static void *rl_mem;
static size_t rl_size;
static struct ratelimit *rl;
static struct sockaddr_in peer;

/*
 * Listener 0: HTTPS on 8443 (its certificate a.test), plain port too;
 * a.test, *.a.test and b.test (with a certificate of its own), a site
 * with a rate limit of its own, and two with upstream-proxy-protocol.
 * Listener 1: HTTPS on 443.
 */
static const char conf_fmt[] =
    "user = \"nobody\"\n"
    "body { limit-bytes = 1000 }\n"
    "rate-limit { requests-per-second = 0.001 burst = 1000 }\n"
    "listener {\n"
    "  bind = \"127.0.0.1\"\n"
    "  https-port = 8443\n"
    "  http-port = 8080\n"
    "  tls { cert = \"%s\" key = \"%s\" }\n"
    "  site \"a.test\" { upstream = \"127.0.0.1:1\" }\n"
    "  site \"*.a.test\" { upstream = \"127.0.0.1:2\" }\n"
    "  site \"b.test\" { upstream = \"127.0.0.1:3\"\n"
    "    cert = \"%s\" key = \"%s\" }\n"
    "  site \"slow.a.test\" { upstream = \"127.0.0.1:4\"\n"
    "    rate-limit { requests-per-second = 0.001 burst = 1 } }\n"
    "  site \"pp.a.test\" { upstream = \"127.0.0.1:6\"\n"
    "    upstream-proxy-protocol = \"v1\"\n"
    "    path \"/none/\" { upstream = \"127.0.0.1:7\"\n"
    "      upstream-proxy-protocol = \"none\" } }\n"
    "  site \"pp2.a.test\" { upstream = \"127.0.0.1:8\"\n"
    "    upstream-proxy-protocol = \"v2\" }\n"
    "}\n"
    "listener {\n"
    "  bind = \"127.0.0.2\"\n"
    "  trusted-proxies = { \"192.0.2.0/24\", \"10.0.0.0/8\" }\n"
    "  real-ip-header = \"X-Forwarded-For\"\n"
    "  tls { cert = \"%s\" key = \"%s\" }\n"
    "  site \"a.test\" { upstream = \"127.0.0.1:5\" }\n"
    "}\n";

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

static int
setup(void **state)
{
	struct config_opts opts = { .keypair_check = tls_keypair_check };
	unsigned char ticket[64];
	char conf[4096], err[256];
	int n;

	(void)state;
	if (mkdtemp(dir) == NULL ||
	    put(a_crt, sizeof(a_crt), "a.crt", a_cert) == -1 ||
	    put(a_pem, sizeof(a_pem), "a.key", a_key) == -1 ||
	    put(b_crt, sizeof(b_crt), "b.crt", b_cert) == -1 ||
	    put(b_pem, sizeof(b_pem), "b.key", b_key) == -1)
		return -1;
	n = snprintf(conf, sizeof(conf), conf_fmt, a_crt, a_pem, b_crt, b_pem,
	    a_crt, a_pem);
	if ((cfg = testconf_parse(conf, (size_t)n, &opts)) == NULL)
		return -1;
	memset(ticket, 7, sizeof(ticket));
	gen.refs = 1;
	gen.id = 1;
	gen.cfg = cfg;
	if ((gen.routes = route_build(cfg)) == NULL ||
	    (gen.tls = tls_ctx_new(cfg, gen.routes, ticket, sizeof(ticket),
	    err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	rl_size = ratelimit_table_bytes(RATELIMIT_TABLE_MIN);
	if ((rl_mem = calloc(1, rl_size)) == NULL ||
	    ratelimit_init(rl_mem, rl_size, RATELIMIT_TABLE_MIN) == -1 ||
	    (rl = ratelimit_attach(rl_mem, rl_size, NULL)) == NULL)
		return -1;
	peer.sin_family = AF_INET;
	peer.sin_addr.s_addr = htonl(0xc0000201);	/* 192.0.2.1 */
	return 0;
}

static int
teardown(void **state)
{
	char path[96];

	(void)state;
	ratelimit_detach(rl);
	free(rl_mem);
	tls_ctx_free(gen.tls);
	route_free(gen.routes);
	config_free(cfg);
	unlink(a_crt);
	unlink(a_pem);
	unlink(b_crt);
	unlink(b_pem);
	snprintf(path, sizeof(path), "%s", dir);
	rmdir(path);
	return 0;
}

/* A connection of listener li that got the certificate for sni. */
static struct request_conn
conn(size_t li, bool tls, const char *sni)
{
	const struct config_site *s = NULL;

	if (sni != NULL)
		s = route_lookup(gen.routes, li, sni, strlen(sni));
	return (struct request_conn){ .li = li, .tls = tls, .gen = &gen,
	    .cert_id = tls_ctx_cert_id(gen.tls, li, s, sni,
	    sni != NULL ? strlen(sni) : 0),
	    .peer = (struct sockaddr *)&peer, .client_ip = "192.0.2.1",
	    .rl = rl };
}

static struct http1_slice
sl(const char *s)
{
	return (struct http1_slice){ s, strlen(s) };
}

static struct proxy_request
get(const char *host, const char *path)
{
	struct proxy_request pr;

	memset(&pr, 0, sizeof(pr));
	pr.h.method_id = HTTP1_METHOD_GET;
	pr.h.method = sl("GET");
	pr.h.host = sl(host);
	pr.h.path = sl(path);
	pr.h.framing = HEADERS_FRAME_NONE;
	return pr;
}

/* Admit pr on c, routed by g; the backend's upstream port digit, or 0
   and *ans. */
static int
admit_by(const struct gen *g, const struct request_conn *c,
    struct proxy_request *pr, uint64_t body_seen,
    struct request_answer *ans)
{
	const struct config_site *s;
	int port;

	memset(ans, 0, sizeof(*ans));
	ans->status = -1;
	s = request_admit(c, g, pr, pr->h.path, body_seen, ans);
	if (s == NULL) {
		assert_true(ans->status >= 200);
		request_release(pr);
		return 0;
	}
	assert_int_equal(ans->status, -1);	/* untouched */
	assert_ptr_equal(pr->be, &s->be);	/* no path blocks here */
	port = pr->be->ups[0].name[strlen(pr->be->ups[0].name) - 1] - '0';
	request_release(pr);
	return port;
}

static int
admit(const struct request_conn *c, struct proxy_request *pr,
    uint64_t body_seen, struct request_answer *ans)
{
	return admit_by(&gen, c, pr, body_seen, ans);
}

static void
test_bad_host_is_400_and_closes(void **state)
{
	struct request_conn c = conn(0, true, "a.test");
	struct request_answer ans;
	struct proxy_request pr = get("", "/");
	char big[400];

	(void)state;
	assert_int_equal(admit(&c, &pr, 0, &ans), 0);
	assert_int_equal(ans.status, 400);
	assert_true(ans.close);
	assert_null(ans.name);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	pr = get(big, "/");
	assert_int_equal(admit(&c, &pr, 0, &ans), 0);
	assert_int_equal(ans.status, 400);
	/* The plain port too, before anything else. */
	c = conn(0, false, NULL);
	pr = get("", "/");
	assert_int_equal(admit(&c, &pr, 0, &ans), 0);
	assert_int_equal(ans.status, 400);
}

static void
test_plain_port_redirects_known_hosts(void **state)
{
	struct request_conn c = conn(0, false, NULL);
	struct request_answer ans;
	struct proxy_request pr = get("WWW.A.test.:8080", "/x?y=1");

	(void)state;
	assert_int_equal(admit(&c, &pr, 0, &ans), 0);
	assert_int_equal(ans.status, 301);
	assert_false(ans.close);
	assert_string_equal(ans.name, "Location");
	/* Normalised host, the listener's HTTPS port, the path as sent. */
	assert_string_equal(ans.value, "https://www.a.test:8443/x?y=1");
	/* OPTIONS * (and CONNECT's authority) name no path: the root. */
	pr = get("a.test", "*");
	assert_int_equal(admit(&c, &pr, 0, &ans), 0);
	assert_string_equal(ans.value, "https://a.test:8443/");
	pr = get("a.test", "");
	assert_int_equal(admit(&c, &pr, 0, &ans), 0);
	assert_string_equal(ans.value, "https://a.test:8443/");
	/* Never a Location to a host we do not serve. */
	pr = get("evil.example", "/");
	assert_int_equal(admit(&c, &pr, 0, &ans), 0);
	assert_int_equal(ans.status, 404);
	assert_null(ans.name);
}

static void
test_plain_port_443_and_long_paths(void **state)
{
	struct request_conn c = conn(1, false, NULL);
	struct request_answer ans;
	struct proxy_request pr = get("a.test", "/p");
	char path[1902];

	(void)state;
	assert_int_equal(admit(&c, &pr, 0, &ans), 0);
	assert_int_equal(ans.status, 301);
	assert_string_equal(ans.value, "https://a.test/p");
	memset(path, 'p', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	pr = get("a.test", path);		/* 1901 bytes */
	assert_int_equal(admit(&c, &pr, 0, &ans), 0);
	assert_int_equal(ans.status, 414);
	assert_true(ans.close);
	path[1900] = '\0';			/* 1900: still fits */
	pr = get("a.test", path);
	assert_int_equal(admit(&c, &pr, 0, &ans), 0);
	assert_int_equal(ans.status, 301);
}

static void
test_admitted_request_is_filled_in(void **state)
{
	struct request_conn c = conn(0, true, "a.test");
	struct request_answer ans;
	struct proxy_request pr = get("a.test", "/");

	(void)state;
	assert_int_equal(admit(&c, &pr, 0, &ans), 1);
	assert_string_equal(pr.h.client_ip, "192.0.2.1");
	assert_true(pr.h.tls);
	assert_int_equal(pr.h.port, 8443);
	/* The wildcard, under the same certificate. */
	pr = get("api.a.test:8443", "/");
	assert_int_equal(admit(&c, &pr, 0, &ans), 2);
	c = conn(1, true, "a.test");
	pr = get("a.test", "/");
	assert_int_equal(admit(&c, &pr, 0, &ans), 5);
	assert_int_equal(pr.h.port, 443);
}

static void
test_unknown_host_is_404_after_the_rate_limit(void **state)
{
	struct request_conn c = conn(0, true, "a.test");
	struct request_answer ans;
	struct proxy_request pr = get("nowhere.test", "/");

	struct sockaddr_in other = peer;
	int i;

	(void)state;
	assert_int_equal(admit(&c, &pr, 0, &ans), 0);
	assert_int_equal(ans.status, 404);
	assert_false(ans.close);
	assert_null(ans.name);
	/* A scan of names costs the global limit like any request. */
	other.sin_addr.s_addr = htonl(0xc0000209);
	c.peer = (struct sockaddr *)&other;
	for (i = 1; i < 1000; i++) {
		pr = get("nowhere.test", "/");
		assert_int_equal(admit(&c, &pr, 0, &ans), 0);
		assert_int_equal(ans.status, 404);
	}
	pr = get("nowhere.test", "/");
	assert_int_equal(admit(&c, &pr, 0, &ans), 0);
	assert_int_equal(ans.status, 404);		/* the 1000th */
	pr = get("nowhere.test", "/");
	assert_int_equal(admit(&c, &pr, 0, &ans), 0);
	assert_int_equal(ans.status, 429);
}

static void
test_rate_limit_is_429_with_retry_after(void **state)
{
	struct request_conn c = conn(0, true, "a.test");
	struct request_answer ans;
	struct proxy_request pr = get("slow.a.test", "/");

	(void)state;
	assert_int_equal(admit(&c, &pr, 0, &ans), 4);	/* the burst */
	pr = get("slow.a.test", "/");
	assert_int_equal(admit(&c, &pr, 0, &ans), 0);
	assert_int_equal(ans.status, 429);
	assert_false(ans.close);
	assert_string_equal(ans.name, "Retry-After");
	assert_true(atoi(ans.value) >= 1);
	/* Before 405: a limited CONNECT is still a 429. */
	pr = get("slow.a.test", "/");
	pr.h.method_id = HTTP1_METHOD_CONNECT;
	assert_int_equal(admit(&c, &pr, 0, &ans), 0);
	assert_int_equal(ans.status, 429);
	/* Without a table, nothing is limited. */
	c.rl = NULL;
	pr = get("slow.a.test", "/");
	assert_int_equal(admit(&c, &pr, 0, &ans), 4);
}

static void
test_other_certificate_is_421(void **state)
{
	struct request_conn c = conn(0, true, "a.test");
	struct request_answer ans;
	struct proxy_request pr = get("b.test", "/");

	(void)state;
	assert_int_equal(admit(&c, &pr, 0, &ans), 0);
	assert_int_equal(ans.status, 421);
	assert_false(ans.close);
	/* On a connection that got b.test's certificate: served. */
	c = conn(0, true, "b.test");
	pr = get("b.test", "/");
	assert_int_equal(admit(&c, &pr, 0, &ans), 3);
	/* ... and a.test is what is misdirected there. */
	pr = get("a.test", "/");
	assert_int_equal(admit(&c, &pr, 0, &ans), 0);
	assert_int_equal(ans.status, 421);
}

/* The routes and certificates of g->cfg: g is generation id. */
static void
make_gen(struct gen *g, uint64_t id)
{
	unsigned char ticket[64];
	char err[256];

	memset(ticket, 7, sizeof(ticket));
	g->refs = 1;
	g->id = id;
	assert_non_null(g->routes = route_build(g->cfg));
	assert_non_null(g->tls = tls_ctx_new(g->cfg, g->routes, ticket,
	    sizeof(ticket), err, sizeof(err)));
}

static void
drop_gen(struct gen *g)
{
	tls_ctx_free(g->tls);
	route_free(g->routes);
	config_free(g->cfg);
}

/*
 * client-auth (issue 18): a site's requests go only to a connection whose
 * handshake verified a certificate for that very site (its auth id, in
 * the request's generation); the others get 421: no SNI or another SNI
 * under the same certificate (auth id 0), another client-auth site's
 * connection (HTTP/2 reuse), a reload that changed the site's CA.  What
 * the handshake verified goes upstream only for such a site.
 */
static void
test_client_auth_421(void **state)
{
	static const char fmt[] =
	    "user = \"nobody\"\n"
	    "listener {\n"
	    "  bind = \"127.0.0.1\"\n"
	    "  https-port = 8443\n"
	    "  tls { cert = \"%s\" key = \"%s\" }\n"
	    "  site \"a.test\" { upstream = \"127.0.0.1:6\"\n"
	    "    client-ca-file = \"%s\" client-auth = \"required\" }\n"
	    "  site \"c.a.test\" { upstream = \"127.0.0.1:7\"\n"
	    "    client-ca-file = \"%s\" client-auth = \"optional\" }\n"
	    "  site \"d.a.test\" { upstream = \"127.0.0.1:8\" }\n"
	    "}\n";
	struct config_opts opts = { .keypair_check = tls_keypair_check };
	struct headers_client_cert cc = { .verify = "SUCCESS" };
	struct request_conn c, none;
	struct request_answer ans;
	struct proxy_request pr;
	char conf[2048];
	struct gen g, g2;
	int n;

	(void)state;
	n = snprintf(conf, sizeof(conf), fmt, a_crt, a_pem, a_crt, a_crt);
	assert_non_null(g.cfg = testconf_parse(conf, (size_t)n, &opts));
	make_gen(&g, 3);
	/* A connection that verified nothing (no SNI, or d.a.test's). */
	none = (struct request_conn){ .li = 0, .tls = true, .gen = &g,
	    .cert_id = tls_ctx_cert_id(g.tls, 0, NULL, NULL, 0),
	    .peer = (struct sockaddr *)&peer, .client_ip = "192.0.2.1" };
	pr = get("a.test", "/");
	assert_int_equal(admit_by(&g, &none, &pr, 0, &ans), 0);
	assert_int_equal(ans.status, 421);
	assert_false(ans.close);
	pr = get("c.a.test", "/");
	assert_int_equal(admit_by(&g, &none, &pr, 0, &ans), 0);
	assert_int_equal(ans.status, 421);
	pr = get("d.a.test", "/");
	assert_int_equal(admit_by(&g, &none, &pr, 0, &ans), 8);
	assert_null(pr.h.client_cert);
	/* The handshake for a.test verified its certificate. */
	c = none;
	c.auth_id = tls_ctx_auth_id(g.tls, 0, route_lookup(g.routes, 0,
	    "a.test", 6));
	c.client_cert = &cc;
	assert_true(c.auth_id != 0);
	pr = get("a.test", "/");
	assert_int_equal(admit_by(&g, &c, &pr, 0, &ans), 6);
	assert_ptr_equal(pr.h.client_cert, &cc);
	/* The same connection asked for another client-auth site under the
	   same certificate (HTTP/2 reuse): 421. */
	pr = get("c.a.test", "/");
	assert_int_equal(admit_by(&g, &c, &pr, 0, &ans), 0);
	assert_int_equal(ans.status, 421);
	/* A site without client-auth gets no X-Client-* of it. */
	pr = get("d.a.test", "/");
	assert_int_equal(admit_by(&g, &c, &pr, 0, &ans), 8);
	assert_null(pr.h.client_cert);
	/* A reload that gives a.test another CA: its connections made
	   before are misdirected, whichever generation they hold. */
	n = snprintf(conf, sizeof(conf), fmt, a_crt, a_pem, b_crt, a_crt);
	assert_non_null(g2.cfg = testconf_parse(conf, (size_t)n, &opts));
	make_gen(&g2, 4);
	pr = get("a.test", "/");
	assert_int_equal(admit_by(&g2, &c, &pr, 0, &ans), 0);
	assert_int_equal(ans.status, 421);
	/* ... while one whose site kept its CA goes on. */
	c.auth_id = tls_ctx_auth_id(g.tls, 0, route_lookup(g.routes, 0,
	    "c.a.test", 8));
	pr = get("c.a.test", "/");
	assert_int_equal(admit_by(&g2, &c, &pr, 0, &ans), 7);
	drop_gen(&g2);
	drop_gen(&g);
}

/*
 * After a reload in which b.test lost its own certificate (it is now
 * served under the listener's, a.test's): a connection made before still
 * answers by the certificates of its own generation, while the request is
 * routed by the new one.
 */
static void
test_421_asks_the_connections_generation(void **state)
{
	static const char fmt[] =
	    "user = \"nobody\"\n"
	    "listener {\n"
	    "  bind = \"127.0.0.1\"\n"
	    "  https-port = 8443\n"
	    "  tls { cert = \"%s\" key = \"%s\" }\n"
	    "  site \"a.test\" { upstream = \"127.0.0.1:6\" }\n"
	    "  site \"b.test\" { upstream = \"127.0.0.1:7\" }\n"
	    "}\n";
	struct config_opts opts = { .keypair_check = tls_keypair_check };
	struct request_conn c;
	struct request_answer ans;
	struct proxy_request pr;
	char conf[1024];
	struct gen g2;
	int n;

	(void)state;
	n = snprintf(conf, sizeof(conf), fmt, a_crt, a_pem);
	assert_non_null(g2.cfg = testconf_parse(conf, (size_t)n, &opts));
	make_gen(&g2, 2);
	/* Made before the reload, with a.test's certificate. */
	c = conn(0, true, "a.test");
	pr = get("b.test", "/");
	assert_int_equal(admit_by(&g2, &c, &pr, 0, &ans), 0);
	assert_int_equal(ans.status, 421);
	pr = get("a.test", "/");
	assert_int_equal(admit_by(&g2, &c, &pr, 0, &ans), 6);
	/* Made before, with b.test's own: b.test is still served there. */
	c = conn(0, true, "b.test");
	pr = get("b.test", "/");
	assert_int_equal(admit_by(&g2, &c, &pr, 0, &ans), 7);
	drop_gen(&g2);
}

/*
 * HTTP-01: listener 0 in acme mode with acme-challenge http-01 and two
 * pending challenges (one for a name that is no site), ACME certificates
 * for a.test and b.test; listener 1 a manual one given the same
 * challenges, listener 2 acme with tls-alpn-01.  (The master adds
 * certificates and challenges; here the test does.)
 */
static struct config_challenge http01_ch[] = {
	{ CONFIG_ACME_HTTP_01, "a.test", "tok-A_1", "tok-A_1.thumb", { 0 } },
	{ CONFIG_ACME_HTTP_01, "extra.test", "tok2", "tok2.thumb", { 0 } },
	{ CONFIG_ACME_TLS_ALPN_01, "b.test", NULL, NULL, { 1 } },
};
static struct config_acme_cert http01_certs[2];

static void
http01_gen(struct gen *g)
{
	static const char fmt[] =
	    "user = \"nobody\"\n"
	    "listener {\n"
	    "  bind = \"127.0.0.1\"\n"
	    "  https-port = 8443\n"
	    "  http-port = 8080\n"
	    "  tls { mode = \"acme\" acme-challenge = \"http-01\" }\n"
	    "  site \"a.test\" { upstream = \"127.0.0.1:1\" }\n"
	    "  site \"b.test\" { upstream = \"127.0.0.1:2\" }\n"
	    "}\n"
	    "listener {\n"
	    "  bind = \"127.0.0.2\"\n"
	    "  http-port = 80\n"
	    "  tls { cert = \"%s\" key = \"%s\" }\n"
	    "  site \"a.test\" { upstream = \"127.0.0.1:3\" }\n"
	    "}\n"
	    "listener {\n"
	    "  bind = \"127.0.0.3\"\n"
	    "  http-port = 80\n"
	    "  tls { mode = \"acme\" acme-challenge = \"tls-alpn-01\" }\n"
	    "  site \"a.test\" { upstream = \"127.0.0.1:4\" }\n"
	    "}\n";
	struct config_opts opts = { .keypair_check = tls_keypair_check };
	struct config_listener *l;
	char conf[2048];
	size_t i;
	int n;

	n = snprintf(conf, sizeof(conf), fmt, a_crt, a_pem);
	assert_non_null(g->cfg = testconf_parse(conf, (size_t)n, &opts));
	for (i = 0; i < 3; i++) {
		l = &g->cfg->listeners[i];
		l->challenges = http01_ch;
		l->nchallenges = sizeof(http01_ch) / sizeof(http01_ch[0]);
	}
	http01_certs[0] = (struct config_acme_cert){ "a.test",
	    { (unsigned char *)(uintptr_t)a_cert, strlen(a_cert) },
	    { (unsigned char *)(uintptr_t)a_key, strlen(a_key) } };
	http01_certs[1] = (struct config_acme_cert){ "b.test",
	    { (unsigned char *)(uintptr_t)b_cert, strlen(b_cert) },
	    { (unsigned char *)(uintptr_t)b_key, strlen(b_key) } };
	g->cfg->listeners[0].acme_certs = http01_certs;
	g->cfg->listeners[0].nacme_certs = 2;
	assert_int_equal(g->cfg->listeners[0].acme.challenge,
	    CONFIG_ACME_HTTP_01);
	assert_int_equal(g->cfg->listeners[2].acme.challenge,
	    CONFIG_ACME_TLS_ALPN_01);
	make_gen(g, 3);
}

static void
http01_free(struct gen *g)
{
	size_t i;

	for (i = 0; i < g->cfg->nlisteners; i++) {
		g->cfg->listeners[i].challenges = NULL;	/* the test's */
		g->cfg->listeners[i].nchallenges = 0;
		g->cfg->listeners[i].acme_certs = NULL;
		g->cfg->listeners[i].nacme_certs = 0;
	}
	drop_gen(g);
}

/* pr on the plain port of listener li of g: the status, and the body. */
static int
plain(struct gen *g, size_t li, struct proxy_request *pr,
    struct request_answer *ans)
{
	struct request_conn c = { .li = li, .tls = false, .gen = g,
	    .peer = (struct sockaddr *)&peer, .client_ip = "192.0.2.1",
	    .rl = rl };

	assert_int_equal(admit_by(g, &c, pr, 0, ans), 0);
	if (ans->body == NULL)
		assert_int_equal(ans->body_len, 0);
	return ans->status;
}

static void
test_http01_answers_a_pending_token(void **state)
{
	struct request_answer ans;
	struct proxy_request pr;
	struct gen g;

	(void)state;
	http01_gen(&g);
	pr = get("a.test", "/.well-known/acme-challenge/tok-A_1");
	assert_int_equal(plain(&g, 0, &pr, &ans), 200);
	assert_false(ans.close);
	assert_null(ans.name);
	assert_int_equal(ans.body_len, strlen("tok-A_1.thumb"));
	assert_memory_equal(ans.body, "tok-A_1.thumb", ans.body_len);
	/* The host as any request's: port, case and a trailing dot. */
	pr = get("A.Test.:8080", "/.well-known/acme-challenge/tok-A_1");
	assert_int_equal(plain(&g, 0, &pr, &ans), 200);
	/* A challenge's name is matched as it is, before any site. */
	pr = get("extra.test", "/.well-known/acme-challenge/tok2");
	assert_int_equal(plain(&g, 0, &pr, &ans), 200);
	assert_memory_equal(ans.body, "tok2.thumb", ans.body_len);
	/* HEAD: the same answer (h1conn.c sends no body for HEAD). */
	pr = get("a.test", "/.well-known/acme-challenge/tok-A_1");
	pr.h.method_id = HTTP1_METHOD_HEAD;
	pr.h.method = sl("HEAD");
	assert_int_equal(plain(&g, 0, &pr, &ans), 200);
	assert_int_equal(ans.body_len, strlen("tok-A_1.thumb"));
	http01_free(&g);
}

/* What is not a pending token for its very name goes on as on any plain
   port: the redirect for a host we serve, 404 for one we do not. */
static void
test_http01_other_tokens_as_before(void **state)
{
	static const char *const paths[] = {
		"/.well-known/acme-challenge/tok-A_2",	/* wrong token */
		"/.well-known/acme-challenge/tok-A_",	/* a prefix of it */
		"/.well-known/acme-challenge/tok-A_1x",
		"/.well-known/acme-challenge/tok-A_1?x=1",
		"/.well-known/acme-challenge/tok-A_1/",
		"/.well-known/acme-challenge/",
		"/.well-known/acme-challenge/tok2",	/* another name's */
	};
	struct request_answer ans;
	struct proxy_request pr;
	struct gen g;
	size_t i;

	(void)state;
	http01_gen(&g);
	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		pr = get("a.test", paths[i]);
		assert_int_equal(plain(&g, 0, &pr, &ans), 301);
		assert_null(ans.body);
		assert_string_equal(ans.name, "Location");
		assert_true(strncmp(ans.value, "https://a.test:8443/.well-known/"
		    "acme-challenge/", 47) == 0);
	}
	/* The right token for another host, served or not. */
	pr = get("b.test", "/.well-known/acme-challenge/tok-A_1");
	assert_int_equal(plain(&g, 0, &pr, &ans), 301);
	assert_null(ans.body);
	pr = get("evil.test", "/.well-known/acme-challenge/tok-A_1");
	assert_int_equal(plain(&g, 0, &pr, &ans), 404);
	assert_null(ans.body);
	/* A tls-alpn-01 challenge has no token. */
	pr = get("b.test", "/.well-known/acme-challenge/");
	assert_int_equal(plain(&g, 0, &pr, &ans), 301);
	assert_null(ans.body);
	/* Only GET and HEAD. */
	pr = get("a.test", "/.well-known/acme-challenge/tok-A_1");
	pr.h.method_id = HTTP1_METHOD_POST;
	pr.h.method = sl("POST");
	assert_int_equal(plain(&g, 0, &pr, &ans), 301);
	assert_null(ans.body);
	/* Still a bad host first. */
	pr = get("", "/.well-known/acme-challenge/tok-A_1");
	assert_int_equal(plain(&g, 0, &pr, &ans), 400);
	http01_free(&g);
}

static void
test_http01_leaves_the_rest_alone(void **state)
{
	struct request_answer ans;
	struct proxy_request pr;
	struct gen g;

	(void)state;
	http01_gen(&g);
	/* Other paths of the acme listener: the redirect, as ever. */
	pr = get("a.test", "/x");
	assert_int_equal(plain(&g, 0, &pr, &ans), 301);
	assert_string_equal(ans.value, "https://a.test:8443/x");
	assert_null(ans.body);
	pr = get("a.test", "/.well-known/acme-challengeX/tok-A_1");
	assert_int_equal(plain(&g, 0, &pr, &ans), 301);
	pr = get("a.test", "/.well-known/acme-challenge");
	assert_int_equal(plain(&g, 0, &pr, &ans), 301);
	pr = get("extra.test", "/x");
	assert_int_equal(plain(&g, 0, &pr, &ans), 404);
	/* A manual listener never answers a challenge, even one it has. */
	pr = get("a.test", "/.well-known/acme-challenge/tok-A_1");
	assert_int_equal(plain(&g, 1, &pr, &ans), 301);
	assert_string_equal(ans.value,
	    "https://a.test/.well-known/acme-challenge/tok-A_1");
	assert_null(ans.body);
	pr = get("a.test", "/.well-known/acme-challenge/nothing");
	assert_int_equal(plain(&g, 1, &pr, &ans), 301);
	/* Nor an acme one that validates by tls-alpn-01. */
	pr = get("a.test", "/.well-known/acme-challenge/tok-A_1");
	assert_int_equal(plain(&g, 2, &pr, &ans), 301);
	assert_null(ans.body);
	http01_free(&g);
}

/* On an acme listener the 421 check asks for the ACME certificate of the
   request's host. */
static void
test_acme_421_by_the_name(void **state)
{
	struct request_answer ans;
	struct proxy_request pr;
	struct request_conn c;
	struct gen g;

	(void)state;
	http01_gen(&g);
	c = (struct request_conn){ .li = 0, .tls = true, .gen = &g,
	    .cert_id = tls_ctx_cert_id(g.tls, 0, route_lookup(g.routes, 0,
	    "a.test", 6), "a.test", 6), .peer = (struct sockaddr *)&peer,
	    .client_ip = "192.0.2.1", .rl = NULL };
	assert_true(c.cert_id != 0);
	pr = get("a.test", "/");
	assert_int_equal(admit_by(&g, &c, &pr, 0, &ans), 1);
	/* b.test has an ACME certificate of its own: misdirected. */
	pr = get("b.test", "/");
	assert_int_equal(admit_by(&g, &c, &pr, 0, &ans), 0);
	assert_int_equal(ans.status, 421);
	/* And the other way round. */
	c.cert_id = tls_ctx_cert_id(g.tls, 0, route_lookup(g.routes, 0,
	    "b.test", 6), "b.test", 6);
	assert_int_equal(admit_by(&g, &c, &pr, 0, &ans), 2);
	pr = get("a.test", "/");
	assert_int_equal(admit_by(&g, &c, &pr, 0, &ans), 0);
	assert_int_equal(ans.status, 421);
	http01_free(&g);
}

static void
test_connect_is_405_with_allow(void **state)
{
	struct request_conn c = conn(0, true, "a.test");
	struct request_answer ans;
	struct proxy_request pr = get("a.test", "");

	(void)state;
	pr.h.method_id = HTTP1_METHOD_CONNECT;
	pr.h.method = sl("CONNECT");
	assert_int_equal(admit(&c, &pr, 0, &ans), 0);
	assert_int_equal(ans.status, 405);
	assert_false(ans.close);
	assert_string_equal(ans.name, "Allow");
	assert_string_equal(ans.value,
	    "GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH");
	/* After 421: another certificate's host is misdirected first. */
	pr.h.host = sl("b.test");
	assert_int_equal(admit(&c, &pr, 0, &ans), 0);
	assert_int_equal(ans.status, 421);
}

static void
test_body_over_the_limit_is_413(void **state)
{
	struct request_conn c = conn(0, true, "a.test");
	struct request_answer ans;
	struct proxy_request pr = get("a.test", "/");

	(void)state;
	pr.h.framing = HEADERS_FRAME_LENGTH;
	pr.h.content_length = 1000;
	assert_int_equal(admit(&c, &pr, 0, &ans), 1);	/* at the limit */
	pr = get("a.test", "/");
	pr.h.framing = HEADERS_FRAME_LENGTH;
	pr.h.content_length = 1001;
	assert_int_equal(admit(&c, &pr, 0, &ans), 0);
	assert_int_equal(ans.status, 413);
	assert_true(ans.close);
	/* Chunked: only what already came counts (HTTP/2 reads ahead). */
	pr = get("a.test", "/");
	pr.h.framing = HEADERS_FRAME_CHUNKED;
	assert_int_equal(admit(&c, &pr, 1000, &ans), 1);
	pr = get("a.test", "/");
	pr.h.framing = HEADERS_FRAME_CHUNKED;
	assert_int_equal(admit(&c, &pr, 1001, &ans), 0);
	assert_int_equal(ans.status, 413);
	/* A WebSocket's early bytes are the tunnel's, not a body. */
	pr = get("a.test", "/");
	pr.h.websocket = true;
	assert_int_equal(admit(&c, &pr, 5000, &ans), 1);
}

/*
 * Path blocks: a.test with /static/ and /api/ (no replace-path), the
 * longer /api/v2/ and /rw/ and /exact with one; r.a.test with /api/
 * rewritten to / and /static/.  The backends are 127.0.0.1:1 .. :9.
 */
static const char paths_fmt[] =
    "user = \"nobody\"\n"
    "listener {\n"
    "  bind = \"127.0.0.1\"\n"
    "  https-port = 8443\n"
    "  tls { cert = \"%s\" key = \"%s\" }\n"
    "  site \"a.test\" {\n"
    "    upstream = \"127.0.0.1:1\"\n"
    "    path \"/static/\" { upstream = \"127.0.0.1:2\" }\n"
    "    path \"/api/\" { upstream = \"127.0.0.1:3\" }\n"
    "    path \"/api/v2/\" { upstream = \"127.0.0.1:4\" "
    "replace-path = \"/v2/\" }\n"
    "    path \"/rw/\" { upstream = \"127.0.0.1:5\" replace-path = \"/\" }\n"
    "    path \"/exact\" { upstream = \"127.0.0.1:6\" "
    "replace-path = \"/e/\" }\n"
    "  }\n"
    "  site \"r.a.test\" {\n"
    "    upstream = \"127.0.0.1:7\"\n"
    "    path \"/api/\" { upstream = \"127.0.0.1:8\" replace-path = \"/\" }\n"
    "    path \"/static/\" { upstream = \"127.0.0.1:9\" }\n"
    "  }\n"
    "}\n";

/* Generation id of the configuration text conf (n bytes). */
static void
gen_of(struct gen *g, const char *conf, int n, uint64_t id)
{
	struct config_opts opts = { .keypair_check = tls_keypair_check };

	assert_true(n > 0);
	assert_non_null(g->cfg = testconf_parse(conf, (size_t)n, &opts));
	make_gen(g, id);
}

static void
paths_gen(struct gen *g)
{
	char conf[2048];

	gen_of(g, conf, snprintf(conf, sizeof(conf), paths_fmt, a_crt, a_pem),
	    4);
}

/*
 * GET target of host on g (no rate limit): the port digit of the backend
 * chosen and, in fwd, the target that goes upstream; or 0, and ans.
 */
static int
route_of(const struct gen *g, const char *host, const char *target,
    char *fwd, size_t fwdsz, struct request_answer *ans)
{
	struct request_conn c = { .li = 0, .tls = true, .gen = g,
	    .peer = (struct sockaddr *)&peer, .client_ip = "192.0.2.1",
	    .rl = NULL };
	struct proxy_request pr = get(host, target);
	const struct config_site *s;
	int port = 0;

	c.cert_id = tls_ctx_cert_id(g->tls, 0, route_lookup(g->routes, 0,
	    host, strlen(host)), host, strlen(host));
	memset(ans, 0, sizeof(*ans));
	ans->status = -1;
	fwd[0] = '\0';
	s = request_admit(&c, g, &pr, pr.h.path, 0, ans);
	if (s == NULL) {
		assert_true(ans->status >= 400);
		assert_null(pr.target);
	} else {
		assert_int_equal(ans->status, -1);
		assert_string_equal(pr.site, s->host);
		port = pr.be->ups[0].name[strlen(pr.be->ups[0].name) - 1] - '0';
		assert_true(pr.h.path.len < fwdsz);
		memcpy(fwd, pr.h.path.p, pr.h.path.len);
		fwd[pr.h.path.len] = '\0';
		/* Only a replaced target has storage of its own. */
		if (pr.target == NULL)
			assert_ptr_equal(pr.h.path.p, target);
		else
			assert_ptr_equal(pr.h.path.p, pr.target);
	}
	request_release(&pr);
	assert_null(pr.target);
	return port;
}

struct path_case {
	const char	*host;
	const char	*target;
	int		 port;		/* the backend's; 0: an answer */
	int		 status;	/* that answer */
	const char	*fwd;		/* what goes upstream; NULL: target */
};

static void
path_cases(const struct path_case *cases, size_t n)
{
	struct request_answer ans;
	char fwd[256];
	struct gen g;
	size_t i;
	int port;

	paths_gen(&g);
	for (i = 0; i < n; i++) {
		const struct path_case *k = &cases[i];

		port = route_of(&g, k->host, k->target, fwd, sizeof(fwd),
		    &ans);
		if (port != k->port || (port == 0 &&
		    (ans.status != k->status || !ans.close)) ||
		    (port != 0 && strcmp(fwd, k->fwd != NULL ? k->fwd :
		    k->target) != 0))
			fail_msg("%s %s: backend %d status %d \"%s\", want "
			    "%d %d \"%s\"", k->host, k->target, port,
			    ans.status, fwd, k->port, k->status,
			    k->fwd != NULL ? k->fwd : k->target);
	}
	drop_gen(&g);
}

/* The longest prefix the normalised path is under; none: the site's. */
static void
test_path_selection(void **state)
{
	static const struct path_case cases[] = {
		{ "a.test", "/", 1, 0, NULL },
		{ "a.test", "/x?y=1", 1, 0, NULL },
		{ "a.test", "/static/", 2, 0, NULL },
		{ "a.test", "/static/app.js?v=3", 2, 0, NULL },
		{ "a.test", "/static", 1, 0, NULL },
		{ "a.test", "/staticx/", 1, 0, NULL },
		{ "a.test", "/api/", 3, 0, NULL },
		{ "a.test", "/api/users?q=1", 3, 0, NULL },
		{ "a.test", "/api/v2", 3, 0, NULL },
		{ "a.test", "/api/v2/users", 4, 0, "/v2/users" },
		{ "a.test", "/api/v2/", 4, 0, "/v2/" },
		/* Without a trailing '/', the prefix and what is below. */
		{ "a.test", "/exact", 6, 0, "/e" },
		{ "a.test", "/exact/", 6, 0, "/e/" },
		{ "a.test", "/exact/y?z", 6, 0, "/e/y?z" },
		{ "a.test", "/exactly", 1, 0, NULL },
		/* A site's blocks are its own. */
		{ "r.a.test", "/api/v2/users", 8, 0, "/v2/users" },
		{ "r.a.test", "/other", 7, 0, NULL },
		/* OPTIONS * has no path: the site's. */
		{ "a.test", "*", 1, 0, NULL },
	};

	(void)state;
	path_cases(cases, nitems(cases));
}

/* What replace-path sends: the normalised path, the query as sent. */
static void
test_path_replace(void **state)
{
	static const struct path_case cases[] = {
		{ "a.test", "/rw/users?q=1", 5, 0, "/users?q=1" },
		{ "a.test", "/rw/", 5, 0, "/" },
		{ "a.test", "/rw/x?", 5, 0, "/x?" },
		{ "a.test", "/rw/a/./b/../c?x=/../", 5, 0, "/a/c?x=/../" },
		{ "a.test", "/rw//x//y/", 5, 0, "/x/y/" },
		{ "a.test", "/rw/%7Euser/%2f%41?q=%7E", 5, 0,
		    "/~user/%2FA?q=%7E" },
		{ "a.test", "/rw/a;p=1/b", 5, 0, "/a;p=1/b" },
		{ "a.test", "/static/../rw/x", 5, 0, "/x" },
		/* The prefix reached only through a decoded %2F or a dropped
		   ;parameter: not a path replace-path can rewrite. */
		{ "a.test", "/rw%2Fx", 0, 400, NULL },
		{ "a.test", "/rw;p/x", 0, 400, NULL },
		{ "a.test", "/exact;p", 0, 400, NULL },
		{ "a.test", "/api/v2%2Fx", 0, 400, NULL },
		/* ... where no replace-path is, the target goes as sent. */
		{ "a.test", "/api%2Fx", 3, 0, NULL },
	};

	(void)state;
	path_cases(cases, nitems(cases));
}

/*
 * The attack vectors against /api/ and /static/: the block is the one
 * the normalised path is under, whatever the target looks like; a path
 * above the root is 400 (never clamped to the root).
 */
static void
test_path_attack_vectors(void **state)
{
	static const struct path_case cases[] = {
		{ "a.test", "/static/../api/x", 3, 0, NULL },
		{ "a.test", "/static/%2e%2e/api/x", 3, 0, NULL },
		{ "a.test", "/static/%2E./api/x", 3, 0, NULL },
		{ "a.test", "/%2e%2e/api/x", 0, 400, NULL },
		{ "a.test", "//api/x", 3, 0, NULL },
		{ "a.test", "/api%2Fx", 3, 0, NULL },
		{ "r.a.test", "/api%2Fx", 0, 400, NULL },
		{ "r.a.test", "/api%2fx", 0, 400, NULL },
		{ "a.test", "/api", 1, 0, NULL },
		{ "a.test", "/api;x/y", 3, 0, NULL },
		{ "a.test", "/static/..;/api/x", 3, 0, NULL },
		{ "a.test", "/API/x", 1, 0, NULL },
		{ "a.test", "/static/%252e%252e/api/x", 2, 0, NULL },
		{ "a.test", "/%61pi/x", 3, 0, NULL },
		{ "a.test", "/static/./../api/x", 3, 0, NULL },
		{ "a.test", "/..", 0, 400, NULL },
		{ "a.test", "/a/../../x", 0, 400, NULL },
		{ "a.test", "/static/../../api/x", 0, 400, NULL },
		/* The same through replace-path: the rewritten target. */
		{ "r.a.test", "/static/../api/x", 8, 0, "/x" },
		{ "r.a.test", "//api/x", 8, 0, "/x" },
		{ "r.a.test", "/api;x/y", 0, 400, NULL },
		{ "r.a.test", "/static/..;/api/x", 0, 400, NULL },
		{ "r.a.test", "/static/%252e%252e/api/x", 9, 0, NULL },
	};

	(void)state;
	path_cases(cases, nitems(cases));
}

/*
 * A path that does not normalise is 400 on every site, path blocks or
 * not (the connection closes); after the checks before it; not on the
 * plain port, whose redirect repeats the path as sent.
 */
static void
test_bad_path_is_400(void **state)
{
	static const char *const bad[] = {
		"/..", "/../x", "/a/../..", "/%2e%2e", "/x/%2E%2E/%2e%2e/y",
		"/%", "/%4", "/%zz/", "/a%g0",
	};
	struct request_conn c = conn(0, true, "a.test");
	struct request_answer ans;
	struct proxy_request pr;
	size_t i;

	(void)state;
	c.rl = NULL;
	for (i = 0; i < nitems(bad); i++) {
		pr = get("a.test", bad[i]);
		assert_int_equal(admit(&c, &pr, 0, &ans), 0);
		if (ans.status != 400 || !ans.close)
			fail_msg("%s: %d", bad[i], ans.status);
		assert_null(pr.target);
	}
	/* What comes first still does. */
	pr = get("b.test", "/..");
	assert_int_equal(admit(&c, &pr, 0, &ans), 0);
	assert_int_equal(ans.status, 421);
	pr = get("a.test", "/..");
	pr.h.framing = HEADERS_FRAME_LENGTH;
	pr.h.content_length = 1001;
	assert_int_equal(admit(&c, &pr, 0, &ans), 0);
	assert_int_equal(ans.status, 413);
	/* The plain port redirects it as it came. */
	c = conn(0, false, NULL);
	c.rl = NULL;
	pr = get("a.test", "/../x");
	assert_int_equal(admit(&c, &pr, 0, &ans), 0);
	assert_int_equal(ans.status, 301);
	assert_string_equal(ans.value, "https://a.test:8443/../x");
}

/*
 * allow and deny (issue 18): a.test with an allow list then a deny list,
 * its path blocks /admin/ (a deny list of its own, which replaces the
 * site's) and /open/ (the site's rules, its own empty response-header);
 * b.a.test deny then allow, e.a.test allow then deny, c.a.test deny
 * only, d.a.test allow only.
 */
static const char access_fmt[] =
    "user = \"nobody\"\n"
    "listener {\n"
    "  bind = \"127.0.0.1\"\n"
    "  https-port = 8443\n"
    "  tls { cert = \"%s\" key = \"%s\" }\n"
    "  site \"a.test\" {\n"
    "    upstream = \"127.0.0.1:1\"\n"
    "    allow = { \"192.0.2.0/24\", \"2001:db8:42::/48\" }\n"
    "    deny = { \"0.0.0.0/0\", \"::/0\" }\n"
    "    response-header = { \"X-A: site\" }\n"
    "    request-header = { \"X-Env: prod\" }\n"
    "    path \"/admin/\" { upstream = \"127.0.0.1:2\"\n"
    "      deny = { \"192.0.2.0/25\" } }\n"
    "    path \"/open/\" { upstream = \"127.0.0.1:3\"\n"
    "      response-header = { } hide-response-header = { \"Server\" } }\n"
    "  }\n"
    "  site \"b.a.test\" {\n"
    "    upstream = \"127.0.0.1:4\"\n"
    "    deny = { \"10.0.0.0/8\" }\n"
    "    allow = { \"10.1.0.0/16\" }\n"
    "  }\n"
    "  site \"e.a.test\" {\n"
    "    upstream = \"127.0.0.1:5\"\n"
    "    allow = { \"10.1.0.0/16\" }\n"
    "    deny = { \"10.0.0.0/8\" }\n"
    "  }\n"
    "  site \"c.a.test\" { upstream = \"127.0.0.1:6\"\n"
    "    deny = { \"198.51.100.0/24\" } }\n"
    "  site \"d.a.test\" { upstream = \"127.0.0.1:7\"\n"
    "    allow = { \"203.0.113.0/24\" } }\n"
    "}\n";

/* A client address, IPv4 or IPv6 (an IPv4-mapped one too). */
static struct sockaddr_storage
client(const char *ip)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1)
		sin->sin_family = AF_INET;
	else {
		assert_int_equal(inet_pton(AF_INET6, ip, &sin6->sin6_addr), 1);
		sin6->sin6_family = AF_INET6;
	}
	return ss;
}

/*
 * GET target of host from ip on g (no rate limit): the port digit of the
 * backend, or 0 with the answer in *ans; pr as admission left it.
 */
static int
admit_from(const struct gen *g, const char *ip, const char *host,
    const char *target, struct proxy_request *pr,
    struct request_answer *ans)
{
	struct sockaddr_storage ss = client(ip);
	struct request_conn c = { .li = 0, .tls = true, .gen = g,
	    .peer = (struct sockaddr *)&ss, .client_ip = ip, .rl = NULL };
	const struct config_site *s;
	int port = 0;

	c.cert_id = tls_ctx_cert_id(g->tls, 0, route_lookup(g->routes, 0,
	    host, strlen(host)), host, strlen(host));
	*pr = get(host, target);
	memset(ans, 0, sizeof(*ans));
	ans->status = -1;
	s = request_admit(&c, g, pr, pr->h.path, 0, ans);
	if (s != NULL) {
		assert_int_equal(ans->status, -1);
		port = pr->be->ups[0].name[strlen(pr->be->ups[0].name) - 1] -
		    '0';
	}
	request_release(pr);
	/* Admission never leaves a peer of a stack frame behind. */
	pr->peer = NULL;
	return port;
}

struct access_case {
	const char	*ip;
	const char	*host;
	const char	*target;
	int		 port;		/* admitted to; 0: refused */
	int		 status;	/* the refusal */
	const char	*why;		/* a 403's rule */
};

static void
access_gen(struct gen *g)
{
	char conf[4096];

	gen_of(g, conf, snprintf(conf, sizeof(conf), access_fmt, a_crt,
	    a_pem), 5);
}

static void
test_access_rules(void **state)
{
	static const struct access_case cases[] = {
		/* allow, then deny of every client: a whitelist. */
		{ "192.0.2.1", "a.test", "/", 1, 0, "" },
		{ "192.0.2.255", "a.test", "/x", 1, 0, "" },
		{ "198.51.100.1", "a.test", "/", 0, 403, "deny 0.0.0.0/0" },
		{ "2001:db8:42::1", "a.test", "/", 1, 0, "" },
		{ "2001:db8:42:ffff::1", "a.test", "/", 1, 0, "" },
		{ "2001:db8:43::1", "a.test", "/", 0, 403, "deny ::/0" },
		{ "::1", "a.test", "/", 0, 403, "deny ::/0" },
		/* IPv4-mapped clients are IPv4 clients. */
		{ "::ffff:192.0.2.9", "a.test", "/", 1, 0, "" },
		{ "::ffff:198.51.100.1", "a.test", "/", 0, 403,
		    "deny 0.0.0.0/0" },
		/* A path block's rules replace the site's. */
		{ "198.51.100.1", "a.test", "/admin/x", 2, 0, "" },
		{ "192.0.2.1", "a.test", "/admin/x", 0, 403,
		    "deny 192.0.2.0/25" },
		{ "192.0.2.200", "a.test", "/admin/", 2, 0, "" },
		/* ... matched on the normalised path. */
		{ "192.0.2.1", "a.test", "/x/../admin/y", 0, 403,
		    "deny 192.0.2.0/25" },
		{ "192.0.2.1", "a.test", "//admin/y", 0, 403,
		    "deny 192.0.2.0/25" },
		/* A block without rules has the site's. */
		{ "198.51.100.1", "a.test", "/open/", 0, 403,
		    "deny 0.0.0.0/0" },
		{ "192.0.2.1", "a.test", "/open/", 3, 0, "" },
		/* Forwarded as sent, a path must come under the same rules
		   as matched: nginx reads "/admin/;/../x" as /admin/x, a
		   router of raw paths "/admin/x%2F.." under /admin/. */
		{ "192.0.2.1", "a.test", "/admin/;/../x", 0, 400, "" },
		{ "192.0.2.1", "a.test", "/admin/x%2F..%2F..%2Fy", 0, 400,
		    "" },
		{ "192.0.2.200", "a.test", "/x%2F..%2Fadmin/y", 0, 400, "" },
		/* ... which the same rules are, inherited: as before. */
		{ "192.0.2.1", "a.test", "/open;p=1/x", 3, 0, "" },
		{ "192.0.2.1", "a.test", "/open/a%2Fb", 3, 0, "" },
		/* The order written: deny first, then allow. */
		{ "10.1.2.3", "b.a.test", "/", 0, 403, "deny 10.0.0.0/8" },
		{ "203.0.113.1", "b.a.test", "/", 0, 403, "not in allow" },
		/* allow first, then deny. */
		{ "10.1.2.3", "e.a.test", "/", 5, 0, "" },
		{ "10.2.0.1", "e.a.test", "/", 0, 403, "deny 10.0.0.0/8" },
		{ "203.0.113.1", "e.a.test", "/", 0, 403, "not in allow" },
		/* deny only: a blacklist. */
		{ "198.51.100.9", "c.a.test", "/", 0, 403,
		    "deny 198.51.100.0/24" },
		{ "203.0.113.1", "c.a.test", "/", 6, 0, "" },
		{ "::1", "c.a.test", "/", 6, 0, "" },
		/* allow only: a whitelist. */
		{ "203.0.113.9", "d.a.test", "/", 7, 0, "" },
		{ "198.51.100.1", "d.a.test", "/", 0, 403, "not in allow" },
		{ "::1", "d.a.test", "/", 0, 403, "not in allow" },
		/* What comes before: no such site, the certificate, the
		   path; a denied client gets those answers first. */
		{ "198.51.100.1", "x.example", "/", 0, 404, "" },
		{ "198.51.100.1", "a.test", "/..", 0, 400, "" },
	};
	struct request_answer ans;
	struct proxy_request pr;
	struct gen g;
	size_t i;
	int port;

	(void)state;
	access_gen(&g);
	for (i = 0; i < nitems(cases); i++) {
		const struct access_case *k = &cases[i];

		port = admit_from(&g, k->ip, k->host, k->target, &pr, &ans);
		if (port != k->port || (port == 0 &&
		    (ans.status != k->status || strcmp(ans.why, k->why) != 0)))
			fail_msg("%s %s%s: backend %d status %d why \"%s\", "
			    "want %d %d \"%s\"", k->ip, k->host, k->target,
			    port, ans.status, port == 0 ? ans.why : "",
			    k->port, k->status, k->why);
		if (port == 0 && ans.status == 403) {
			/* Nothing of the upstream was chosen. */
			assert_null(pr.be);
			assert_false(ans.close);
		}
	}
	drop_gen(&g);
}

/* The header lists a request leaves with: its path block's or its site's. */
static void
test_header_options_chosen(void **state)
{
	struct request_answer ans;
	struct proxy_request pr;
	struct gen g;

	(void)state;
	access_gen(&g);
	assert_int_equal(admit_from(&g, "192.0.2.1", "a.test", "/", &pr,
	    &ans), 1);
	assert_non_null(pr.h.edit);
	assert_int_equal(pr.h.edit->nadd, 1);
	assert_int_equal(pr.h.edit->add[0].name.len, 5);
	assert_memory_equal(pr.h.edit->add[0].name.p, "X-Env", 5);
	assert_memory_equal(pr.h.edit->add[0].value.p, "prod", 4);
	assert_int_equal(pr.resp_edit->nadd, 1);
	assert_memory_equal(pr.resp_edit->add[0].value.p, "site", 4);
	assert_int_equal(pr.resp_edit->nhide, 0);
	/* /admin/ sets none: the site's. */
	assert_int_equal(admit_from(&g, "198.51.100.1", "a.test", "/admin/",
	    &pr, &ans), 2);
	assert_int_equal(pr.h.edit->nadd, 1);
	assert_int_equal(pr.resp_edit->nadd, 1);
	/* /open/: its own (empty) response-header and hide list, the
	   site's request-header. */
	assert_int_equal(admit_from(&g, "192.0.2.1", "a.test", "/open/x",
	    &pr, &ans), 3);
	assert_int_equal(pr.resp_edit->nadd, 0);
	assert_int_equal(pr.resp_edit->nhide, 1);
	assert_memory_equal(pr.resp_edit->hide[0].name.p, "Server", 6);
	assert_int_equal(pr.h.edit->nadd, 1);
	/* A site without them: none at all (nothing to ask per field). */
	assert_int_equal(admit_from(&g, "203.0.113.1", "c.a.test", "/", &pr,
	    &ans), 6);
	assert_null(pr.h.edit);
	assert_null(pr.resp_edit);
	drop_gen(&g);
}

/* redirect-port: the port the plain port's Location names. */
static void
test_redirect_port(void **state)
{
	static const char fmt[] =
	    "user = \"nobody\"\n"
	    "listener {\n"
	    "  bind = \"127.0.0.1\"\n"
	    "  https-port = 8443\n"
	    "  http-port = 8080\n"
	    "  redirect-port = %s\n"
	    "  tls { cert = \"%s\" key = \"%s\" }\n"
	    "  site \"a.test\" { upstream = \"127.0.0.1:1\" }\n"
	    "}\n";
	static const struct {
		const char	*port;
		const char	*location;
	} cases[] = {
		{ "443", "https://a.test/x?y" },
		{ "9443", "https://a.test:9443/x?y" },
		{ "8443", "https://a.test:8443/x?y" },
	};
	struct request_answer ans;
	struct proxy_request pr;
	struct request_conn c;
	char conf[2048];
	struct gen g;
	size_t i;

	(void)state;
	for (i = 0; i < nitems(cases); i++) {
		gen_of(&g, conf, snprintf(conf, sizeof(conf), fmt,
		    cases[i].port, a_crt, a_pem), 6);
		c = (struct request_conn){ .li = 0, .tls = false, .gen = &g,
		    .peer = (struct sockaddr *)&peer,
		    .client_ip = "192.0.2.1" };
		pr = get("a.test", "/x?y");
		assert_int_equal(admit_by(&g, &c, &pr, 0, &ans), 0);
		assert_int_equal(ans.status, 301);
		assert_string_equal(ans.value, cases[i].location);
		drop_gen(&g);
	}
}

static void
test_body_over(void **state)
{
	(void)state;
	assert_false(request_body_over(&gen, 1000, "x"));
	assert_true(request_body_over(&gen, 1001, "x"));
	assert_false(request_body_over(NULL, 1 << 30, "x"));
}

/*
 * real-ip-header (listener 1, trusted 192.0.2.0/24 and 10.0.0.0/8): from
 * the trusted peer 192.0.2.1, the rightmost untrusted address of the
 * fields is the request's client, for everything after admission; a
 * listener without it, an untrusted peer, or a list that does not parse
 * leave the connection's.
 */
/* A GET of / for host with fields f[0..n). */
static struct proxy_request
get_with(const char *host, const struct http1_header *f, size_t n)
{
	struct proxy_request pr = get(host, "/");

	pr.h.fields = f;
	pr.h.nfields = n;
	return pr;
}

static void
test_real_ip_header(void **state)
{
	struct http1_header f[3] = {
		{ sl("X-Forwarded-For"), sl("6.6.6.6, 198.51.100.9") },
		{ sl("Accept"), sl("*/*") },
		{ sl("x-forwarded-for"), sl("10.1.2.3, 192.0.2.50") },
	};
	struct request_conn c = conn(1, true, "a.test");
	struct request_answer ans;
	struct proxy_request pr = get_with("a.test", f, 3);
	const struct sockaddr_in *sin;
	struct sockaddr_in other;

	(void)state;
	assert_int_equal(admit(&c, &pr, 0, &ans), 5);
	assert_string_equal(pr.h.client_ip, "198.51.100.9");
	sin = (const struct sockaddr_in *)pr.peer;
	assert_int_equal(sin->sin_family, AF_INET);
	assert_int_equal(ntohl(sin->sin_addr.s_addr), 0xc6336409);
	/* Before the answer too: a 404's log line names the same client. */
	pr = get_with("nowhere.test", f, 3);
	assert_int_equal(admit(&c, &pr, 0, &ans), 0);
	assert_int_equal(ans.status, 404);
	assert_string_equal(pr.h.client_ip, "198.51.100.9");
	/* Not a field that parses: the connection's client. */
	f[2].value = sl("10.1.2.3, junk");
	pr = get_with("a.test", f, 3);
	assert_int_equal(admit(&c, &pr, 0, &ans), 5);
	assert_string_equal(pr.h.client_ip, "192.0.2.1");
	assert_ptr_equal(pr.peer, c.peer);
	f[2].value = sl("10.1.2.3");
	/* A listener without real-ip-header. */
	c = conn(0, true, "a.test");
	pr = get_with("a.test", f, 3);
	assert_int_equal(admit(&c, &pr, 0, &ans), 1);
	assert_string_equal(pr.h.client_ip, "192.0.2.1");
	/* A peer that is not trusted. */
	other = peer;
	other.sin_addr.s_addr = htonl(0xcb007101);	/* 203.0.113.1 */
	c = conn(1, true, "a.test");
	c.peer = (struct sockaddr *)&other;
	c.client_ip = "203.0.113.1";
	pr = get_with("a.test", f, 3);
	assert_int_equal(admit(&c, &pr, 0, &ans), 5);
	assert_string_equal(pr.h.client_ip, "203.0.113.1");
	assert_ptr_equal(pr.peer, c.peer);
}

/*
 * upstream-proxy-protocol: admission makes the header for the request's
 * connection (the client, the address its socket has) when its backend
 * sends one, and none otherwise; request_release() lets it go.
 */
static void
test_proxy_header(void **state)
{
	struct request_conn c = conn(0, true, "pp.a.test");
	struct request_answer ans;
	struct proxy_request pr;
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	char want[128];
	int fd;

	(void)state;
	/* The connection's socket: its own address is the destination. */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, len), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	c.fd = fd;
	snprintf(want, sizeof(want), "PROXY TCP4 192.0.2.1 127.0.0.1 0 %u\r\n",
	    ntohs(sin.sin_port));

	pr = get("pp.a.test", "/x");
	assert_non_null(request_admit(&c, &gen, &pr, pr.h.path, 0, &ans));
	assert_int_equal(pr.be->proxy_protocol, CONFIG_PROXY_V1);
	assert_non_null(pr.pp);
	assert_int_equal(pr.pp_len, strlen(want));
	assert_memory_equal(pr.pp, want, pr.pp_len);
	request_release(&pr);
	assert_null(pr.pp);
	assert_int_equal(pr.pp_len, 0);
	/* Its path block turns it off. */
	pr = get("pp.a.test", "/none/x");
	assert_non_null(request_admit(&c, &gen, &pr, pr.h.path, 0, &ans));
	assert_null(pr.pp);
	request_release(&pr);
	/* A site without it. */
	c = conn(0, true, "a.test");
	c.fd = fd;
	pr = get("a.test", "/");
	assert_non_null(request_admit(&c, &gen, &pr, pr.h.path, 0, &ans));
	assert_null(pr.pp);
	assert_int_equal(pr.pp_len, 0);
	request_release(&pr);
	/* v2; a socket whose address cannot be had: LOCAL, 16 bytes. */
	c = conn(0, true, "pp2.a.test");
	c.fd = -1;
	pr = get("pp2.a.test", "/");
	assert_non_null(request_admit(&c, &gen, &pr, pr.h.path, 0, &ans));
	assert_int_equal(pr.pp_len, 16);
	assert_memory_equal(pr.pp, "\x0d\x0a\x0d\x0a\x00\x0d\x0a\x51\x55\x49"
	    "\x54\x0a\x20\x00\x00\x00", 16);
	request_release(&pr);
	/* v2 with both addresses: TCP4, the client's and the socket's. */
	c.fd = fd;
	pr = get("pp2.a.test", "/");
	assert_non_null(request_admit(&c, &gen, &pr, pr.h.path, 0, &ans));
	assert_int_equal(pr.pp_len, 28);
	assert_memory_equal(pr.pp + 12, "\x21\x11\x00\x0c\xc0\x00\x02\x01"
	    "\x7f\x00\x00\x01\x00\x00", 14);
	assert_int_equal((pr.pp[26] << 8) | pr.pp[27], ntohs(sin.sin_port));
	request_release(&pr);
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_host_is_400_and_closes),
		cmocka_unit_test(test_plain_port_redirects_known_hosts),
		cmocka_unit_test(test_plain_port_443_and_long_paths),
		cmocka_unit_test(test_admitted_request_is_filled_in),
		cmocka_unit_test(test_unknown_host_is_404_after_the_rate_limit),
		cmocka_unit_test(test_rate_limit_is_429_with_retry_after),
		cmocka_unit_test(test_other_certificate_is_421),
		cmocka_unit_test(test_421_asks_the_connections_generation),
		cmocka_unit_test(test_client_auth_421),
		cmocka_unit_test(test_http01_answers_a_pending_token),
		cmocka_unit_test(test_http01_other_tokens_as_before),
		cmocka_unit_test(test_http01_leaves_the_rest_alone),
		cmocka_unit_test(test_acme_421_by_the_name),
		cmocka_unit_test(test_connect_is_405_with_allow),
		cmocka_unit_test(test_body_over_the_limit_is_413),
		cmocka_unit_test(test_path_selection),
		cmocka_unit_test(test_real_ip_header),
		cmocka_unit_test(test_path_replace),
		cmocka_unit_test(test_path_attack_vectors),
		cmocka_unit_test(test_bad_path_is_400),
		cmocka_unit_test(test_body_over),
		cmocka_unit_test(test_proxy_header),
		cmocka_unit_test(test_access_rules),
		cmocka_unit_test(test_header_options_chosen),
		cmocka_unit_test(test_redirect_port),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
