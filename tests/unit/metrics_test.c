/*
 * metrics_test.c - the exposition of /metrics: the exact text of a
 * snapshot with and without upstreams, label values escaped as the
 * format wants, and a buffer too small (the length needed, the text cut
 * and terminated); requests by site, protocol and status class, the
 * duration histogram (cumulative buckets), the TLS handshake families
 * with every reason, the mapping of GnuTLS errors to reasons, the
 * counting into a worker's row, and the site rows across reloads.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>

#include "config.h"
#include "metrics.h"
#include "shm.h"
#include "upstate.h"

#define HEAD_TEXT \
"# HELP portcullis_build_info The version portcullis was built from; " \
    "always 1.\n" \
"# TYPE portcullis_build_info gauge\n" \
"portcullis_build_info{version=\"1.2\"} 1\n" \
"# HELP portcullis_rate_limited_requests_total Client requests refused " \
    "by a rate limit.\n" \
"# TYPE portcullis_rate_limited_requests_total counter\n" \
"portcullis_rate_limited_requests_total 2\n" \
"# HELP portcullis_connections_active Open client connections, the " \
    "health port's included.\n" \
"# TYPE portcullis_connections_active gauge\n" \
"portcullis_connections_active 3\n" \
"# HELP portcullis_connections_accepted_total Client connections " \
    "accepted, the health port's not.\n" \
"# TYPE portcullis_connections_accepted_total counter\n" \
"portcullis_connections_accepted_total 11\n" \
"# HELP portcullis_received_bytes_total Bytes of client requests, " \
    "counted when a request ends.\n" \
"# TYPE portcullis_received_bytes_total counter\n" \
"portcullis_received_bytes_total 18446744073709551615\n" \
"# HELP portcullis_sent_bytes_total Bytes of responses to clients, " \
    "counted when a request ends.\n" \
"# TYPE portcullis_sent_bytes_total counter\n" \
"portcullis_sent_bytes_total 0\n" \
"# HELP portcullis_config_generation The latest configuration generation " \
    "published.\n" \
"# TYPE portcullis_config_generation gauge\n" \
"portcullis_config_generation 4\n"

/* The operational families of a snapshot without certificates or ACME
   names, and no reload or restart yet: the families, every fixed series
   at 0. */
#define RESTARTS_ZERO(p) \
"portcullis_worker_restarts_total{process=\"" p "\",cause=\"exit\"} 0\n" \
"portcullis_worker_restarts_total{process=\"" p "\",cause=\"signal\"} 0\n" \
"portcullis_worker_restarts_total{process=\"" p "\",cause=\"sandbox\"} 0\n" \
"portcullis_worker_restarts_total{process=\"" p "\",cause=\"killed\"} 0\n"

#define CERT_HEAD \
"# HELP portcullis_certificate_not_after_seconds The notAfter of a " \
    "certificate served, in seconds since the epoch; source: manual " \
    "(files) or acme.\n" \
"# TYPE portcullis_certificate_not_after_seconds gauge\n"
#define ACME_FAIL_HEAD \
"# HELP portcullis_acme_failures_total ACME orders that failed, by name " \
    "(one failed attempt: 1).\n" \
"# TYPE portcullis_acme_failures_total counter\n"
#define ACME_RENEW_HEAD \
"# HELP portcullis_acme_renewals_total ACME orders that got a " \
    "certificate (first or renewal), by name.\n" \
"# TYPE portcullis_acme_renewals_total counter\n"
#define RELOAD_HEAD \
"# HELP portcullis_reloads_total Reloads of the configuration (SIGHUP, " \
    "ctl reload), by result.\n" \
"# TYPE portcullis_reloads_total counter\n"
#define RESTART_HEAD \
"# HELP portcullis_worker_restarts_total Children the master respawned, " \
    "by process and cause (exit, signal, sandbox: SIGSYS, killed: by the " \
    "master).\n" \
"# TYPE portcullis_worker_restarts_total counter\n"

#define OPS_EMPTY_TEXT \
CERT_HEAD ACME_FAIL_HEAD ACME_RENEW_HEAD RELOAD_HEAD \
"portcullis_reloads_total{result=\"ok\"} 0\n" \
"portcullis_reloads_total{result=\"failed\"} 0\n" \
RESTART_HEAD RESTARTS_ZERO("worker") RESTARTS_ZERO("acme") \
RESTARTS_ZERO("prober") RESTARTS_ZERO("signer")
/* What follows the upstreams in a snapshot without sites. */
#define TAIL_TEXT \
"# HELP portcullis_requests_total Client requests answered, by site, " \
    "protocol and status class.\n" \
"# TYPE portcullis_requests_total counter\n" \
"# HELP portcullis_request_duration_seconds Time from a request's head " \
    "received to its response's end (or the connection's), by site.\n" \
"# TYPE portcullis_request_duration_seconds histogram\n" \
"# HELP portcullis_tls_handshakes_total TLS handshakes completed with " \
    "clients.\n" \
"# TYPE portcullis_tls_handshakes_total counter\n" \
"portcullis_tls_handshakes_total 0\n" \
"# HELP portcullis_tls_handshake_failures_total TLS handshakes with " \
    "clients that failed, by reason.\n" \
"# TYPE portcullis_tls_handshake_failures_total counter\n" \
"portcullis_tls_handshake_failures_total{reason=\"timeout\"} 0\n" \
"portcullis_tls_handshake_failures_total{reason=\"closed\"} 0\n" \
"portcullis_tls_handshake_failures_total{reason=\"protocol\"} 0\n" \
"portcullis_tls_handshake_failures_total{reason=\"version\"} 0\n" \
"portcullis_tls_handshake_failures_total{reason=\"cipher\"} 0\n" \
"portcullis_tls_handshake_failures_total{reason=\"sni\"} 0\n" \
"portcullis_tls_handshake_failures_total{reason=\"client_cert\"} 0\n" \
"portcullis_tls_handshake_failures_total{reason=\"key\"} 0\n" \
"portcullis_tls_handshake_failures_total{reason=\"other\"} 0\n"

static void
snapshot(struct metrics_snapshot *s)
{
	memset(s, 0, sizeof(*s));
	s->version = "1.2";
	s->requests = 7;
	s->rate_limited = 2;
	s->active_connections = 3;
	s->accepted = 11;
	s->bytes_in = UINT64_MAX;
	s->bytes_out = 0;
	s->generation = 4;
}

static void
test_no_upstreams(void **state)
{
	struct metrics_snapshot s;
	char buf[16384];
	size_t n;

	(void)state;
	snapshot(&s);
	n = metrics_render(&s, buf, sizeof(buf));
	assert_int_equal(n, strlen(HEAD_TEXT OPS_EMPTY_TEXT TAIL_TEXT));
	assert_string_equal(buf, HEAD_TEXT OPS_EMPTY_TEXT TAIL_TEXT);
}

static void
test_upstreams_escaped(void **state)
{
	struct metrics_upstream ups[2] = {
		{ 0, "a.test", "", "127.0.0.1:9001", true, 1, 5, 0 },
		{ 1, "b\\\"\n", "/api/", "u:80", false, 0, 9, 3 },
	};
	struct metrics_snapshot s;
	char buf[8192];
	size_t n;
	static const char want[] = HEAD_TEXT
"# HELP portcullis_upstream_up Whether an upstream may be chosen (1) or is "
    "down (0).\n"
"# TYPE portcullis_upstream_up gauge\n"
"portcullis_upstream_up{listener=\"0\",site=\"a.test\",path=\"\","
    "upstream=\"127.0.0.1:9001\"} 1\n"
"portcullis_upstream_up{listener=\"1\",site=\"b\\\\\\\"\\n\",path=\"/api/\","
    "upstream=\"u:80\"} 0\n"
"# HELP portcullis_upstream_in_flight Requests in flight to an upstream, "
    "all workers.\n"
"# TYPE portcullis_upstream_in_flight gauge\n"
"portcullis_upstream_in_flight{listener=\"0\",site=\"a.test\",path=\"\","
    "upstream=\"127.0.0.1:9001\"} 1\n"
"portcullis_upstream_in_flight{listener=\"1\",site=\"b\\\\\\\"\\n\","
    "path=\"/api/\",upstream=\"u:80\"} 0\n"
"# HELP portcullis_upstream_requests_total Requests sent to an upstream.\n"
"# TYPE portcullis_upstream_requests_total counter\n"
"portcullis_upstream_requests_total{listener=\"0\",site=\"a.test\","
    "path=\"\",upstream=\"127.0.0.1:9001\"} 5\n"
"portcullis_upstream_requests_total{listener=\"1\",site=\"b\\\\\\\"\\n\","
    "path=\"/api/\",upstream=\"u:80\"} 9\n"
"# HELP portcullis_upstream_failures_total Failures of an upstream "
    "(connect, reset, 502 class).\n"
"# TYPE portcullis_upstream_failures_total counter\n"
"portcullis_upstream_failures_total{listener=\"0\",site=\"a.test\","
    "path=\"\",upstream=\"127.0.0.1:9001\"} 0\n"
"portcullis_upstream_failures_total{listener=\"1\",site=\"b\\\\\\\"\\n\","
    "path=\"/api/\",upstream=\"u:80\"} 3\n" OPS_EMPTY_TEXT TAIL_TEXT;

	(void)state;
	snapshot(&s);
	s.ups = ups;
	s.nups = 2;
	n = metrics_render(&s, buf, sizeof(buf));
	assert_int_equal(n, strlen(want));
	assert_string_equal(buf, want);
}

static void
test_escape(void **state)
{
	char buf[32];

	(void)state;
	assert_int_equal(metrics_escape("a\\b\"c\nd", buf, sizeof(buf)), 10);
	assert_string_equal(buf, "a\\\\b\\\"c\\nd");
	/* Other bytes pass as they are (UTF-8 included). */
	assert_int_equal(metrics_escape("\xc3\xa9\t", buf, sizeof(buf)), 3);
	assert_string_equal(buf, "\xc3\xa9\t");
	/* Too small: the length needed, the text cut and terminated. */
	assert_int_equal(metrics_escape("\"\"\"", buf, 4), 6);
	assert_string_equal(buf, "\\\"\\");
}

static void
test_small_buffer(void **state)
{
	struct metrics_snapshot s;
	char small[10], *big;
	size_t n, m;

	(void)state;
	snapshot(&s);
	n = metrics_render(&s, small, sizeof(small));
	assert_int_equal(n, strlen(HEAD_TEXT OPS_EMPTY_TEXT TAIL_TEXT));
	assert_memory_equal(small, HEAD_TEXT, sizeof(small) - 1);
	assert_int_equal(small[sizeof(small) - 1], '\0');
	assert_int_equal(metrics_render(&s, NULL, 0), n);
	big = malloc(n + 1);
	assert_non_null(big);
	m = metrics_render(&s, big, n + 1);
	assert_int_equal(m, n);
	assert_string_equal(big, HEAD_TEXT OPS_EMPTY_TEXT TAIL_TEXT);
	free(big);
}

/*
 * The operational families with values: certificates of both sources
 * (a label value escaped), ACME counters by name, reloads, and a restart
 * count in every process and cause, each where it belongs.
 */
static void
test_ops(void **state)
{
	struct metrics_cert certs[3] = {
		{ 0, "a.test", "manual", 1893456000 },
		{ 1, "q\"\\", "manual", 1 },
		{ 1, "acme.test", "acme", INT64_MAX },
	};
	struct metrics_acme acme[2] = {
		{ "acme.test", 3, 1 },
		{ "b.test", 0, UINT64_MAX },
	};
	struct metrics_snapshot s;
	const char *p;
	char buf[16384], line[128];
	unsigned i, k;
	size_t n;
	static const char *const procs[] = { "worker", "acme", "prober",
	    "signer" };
	static const char *const causes[] = { "exit", "signal", "sandbox",
	    "killed" };
	static const char want_head[] = CERT_HEAD
"portcullis_certificate_not_after_seconds{listener=\"0\",site=\"a.test\","
    "source=\"manual\"} 1893456000\n"
"portcullis_certificate_not_after_seconds{listener=\"1\",site=\"q\\\"\\\\\","
    "source=\"manual\"} 1\n"
"portcullis_certificate_not_after_seconds{listener=\"1\",site=\"acme.test\","
    "source=\"acme\"} 9223372036854775807\n"
ACME_FAIL_HEAD
"portcullis_acme_failures_total{site=\"acme.test\"} 3\n"
"portcullis_acme_failures_total{site=\"b.test\"} 0\n"
ACME_RENEW_HEAD
"portcullis_acme_renewals_total{site=\"acme.test\"} 1\n"
"portcullis_acme_renewals_total{site=\"b.test\"} 18446744073709551615\n"
RELOAD_HEAD
"portcullis_reloads_total{result=\"ok\"} 5\n"
"portcullis_reloads_total{result=\"failed\"} 2\n"
RESTART_HEAD;

	(void)state;
	snapshot(&s);
	s.ops.certs = certs;
	s.ops.ncerts = 3;
	s.ops.acme = acme;
	s.ops.nacme = 2;
	s.ops.reloads_ok = 5;
	s.ops.reloads_failed = 2;
	for (i = 0; i < METRICS_PROCS; i++)
		for (k = 0; k < METRICS_CAUSES; k++)
			s.ops.restarts[i][k] = 10 * i + k;
	n = metrics_render(&s, buf, sizeof(buf));
	assert_true(n < sizeof(buf));
	assert_int_equal(strlen(buf), n);
	assert_memory_equal(buf, HEAD_TEXT, strlen(HEAD_TEXT));
	p = buf + strlen(HEAD_TEXT);
	assert_memory_equal(p, want_head, strlen(want_head));
	p += strlen(want_head);
	/* Every process and cause, in order, with its own count. */
	for (i = 0; i < METRICS_PROCS; i++)
		for (k = 0; k < METRICS_CAUSES; k++) {
			snprintf(line, sizeof(line),
			    "portcullis_worker_restarts_total{process=\"%s\","
			    "cause=\"%s\"} %u\n", procs[i], causes[k],
			    10 * i + k);
			assert_memory_equal(p, line, strlen(line));
			p += strlen(line);
		}
	assert_string_equal(p, TAIL_TEXT);
}

/* ---- requests by site, protocol and status class ---- */

/* One line of the requests family. */
#define REQ(site, p, c, v) \
"portcullis_requests_total{site=\"" site "\",protocol=\"" p "\"," \
    "status=\"" c "\"} " v "\n"
#define ESC "a\\\"b\\\\c\\n"	/* a"b\c<LF>, escaped */
#define BKT(site, le, v) \
"portcullis_request_duration_seconds_bucket{site=\"" site "\",le=\"" le \
    "\"} " v "\n"

static void
test_sites(void **state)
{
	struct metrics_site sites[2] = {
		{ "_unknown", { { 0, 0, 0, 3, 0 }, { 0, 0, 0, 0, 0 } },
		    { 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, 1500 },
		{ "a\"b\\c\n", { { 1, 10, 0, 2, 1 }, { 0, 7, 0, 0, 4 } },
		    { 5, 4, 0, 0, 3, 0, 2, 0, 0, 0, 0, 11 }, 123456789 },
	};
	struct metrics_snapshot s;
	char buf[16384], *p;
	size_t n;
	static const char want[] =
"# HELP portcullis_requests_total Client requests answered, by site, "
    "protocol and status class.\n"
"# TYPE portcullis_requests_total counter\n"
REQ("_unknown", "http/1.1", "1xx", "0") REQ("_unknown", "http/1.1", "2xx", "0")
REQ("_unknown", "http/1.1", "3xx", "0") REQ("_unknown", "http/1.1", "4xx", "3")
REQ("_unknown", "http/1.1", "5xx", "0") REQ("_unknown", "h2", "1xx", "0")
REQ("_unknown", "h2", "2xx", "0") REQ("_unknown", "h2", "3xx", "0")
REQ("_unknown", "h2", "4xx", "0") REQ("_unknown", "h2", "5xx", "0")
REQ(ESC, "http/1.1", "1xx", "1") REQ(ESC, "http/1.1", "2xx", "10")
REQ(ESC, "http/1.1", "3xx", "0") REQ(ESC, "http/1.1", "4xx", "2")
REQ(ESC, "http/1.1", "5xx", "1") REQ(ESC, "h2", "1xx", "0")
REQ(ESC, "h2", "2xx", "7") REQ(ESC, "h2", "3xx", "0")
REQ(ESC, "h2", "4xx", "0") REQ(ESC, "h2", "5xx", "4")
"# HELP portcullis_request_duration_seconds Time from a request's head "
    "received to its response's end (or the connection's), by site.\n"
"# TYPE portcullis_request_duration_seconds histogram\n"
BKT("_unknown", "0.005", "3") BKT("_unknown", "0.01", "3")
BKT("_unknown", "0.025", "3") BKT("_unknown", "0.05", "3")
BKT("_unknown", "0.1", "3") BKT("_unknown", "0.25", "3")
BKT("_unknown", "0.5", "3") BKT("_unknown", "1", "3")
BKT("_unknown", "2.5", "3") BKT("_unknown", "5", "3")
BKT("_unknown", "10", "3") BKT("_unknown", "+Inf", "3")
"portcullis_request_duration_seconds_sum{site=\"_unknown\"} 0.001500\n"
"portcullis_request_duration_seconds_count{site=\"_unknown\"} 3\n"
BKT(ESC, "0.005", "5") BKT(ESC, "0.01", "9") BKT(ESC, "0.025", "9")
BKT(ESC, "0.05", "9") BKT(ESC, "0.1", "12") BKT(ESC, "0.25", "12")
BKT(ESC, "0.5", "14") BKT(ESC, "1", "14") BKT(ESC, "2.5", "14")
BKT(ESC, "5", "14") BKT(ESC, "10", "14") BKT(ESC, "+Inf", "25")
"portcullis_request_duration_seconds_sum{site=\"" ESC "\"} 123.456789\n"
"portcullis_request_duration_seconds_count{site=\"" ESC "\"} 25\n"
"# HELP portcullis_tls_handshakes_total TLS handshakes completed with "
    "clients.\n"
"# TYPE portcullis_tls_handshakes_total counter\n"
"portcullis_tls_handshakes_total 42\n";

	(void)state;
	snapshot(&s);
	s.sites = sites;
	s.nsites = 2;
	s.tls_handshakes = 42;
	s.tls_failures[METRICS_TLS_VERSION] = 2;
	s.tls_failures[METRICS_TLS_OTHER] = UINT64_MAX;
	n = metrics_render(&s, buf, sizeof(buf));
	assert_true(n < sizeof(buf));
	/* The old unlabelled requests_total is gone: one family, labelled. */
	assert_null(strstr(buf, "portcullis_requests_total 7"));
	p = strstr(buf, "# HELP portcullis_requests_total");
	assert_non_null(p);
	assert_memory_equal(p, want, strlen(want));
	p += strlen(want);
	assert_non_null(strstr(p,
	    "portcullis_tls_handshake_failures_total{reason=\"version\"} 2\n"));
	assert_non_null(strstr(p, "portcullis_tls_handshake_failures_total"
	    "{reason=\"other\"} 18446744073709551615\n"));
	assert_non_null(strstr(p,
	    "portcullis_tls_handshake_failures_total{reason=\"key\"} 0\n"));
}

static void
test_tls_reason(void **state)
{
	static const struct {
		int		err;
		unsigned	flags;
		const char	*want;
	} t[] = {
		{ 0, METRICS_TLS_F_TIMEOUT, "timeout" },
		{ GNUTLS_E_PREMATURE_TERMINATION, 0, "closed" },
		{ GNUTLS_E_PULL_ERROR, 0, "closed" },
		{ GNUTLS_E_PUSH_ERROR, 0, "closed" },
		{ GNUTLS_E_FATAL_ALERT_RECEIVED, 0, "protocol" },
		{ GNUTLS_E_UNEXPECTED_PACKET_LENGTH, 0, "protocol" },
		{ GNUTLS_E_UNEXPECTED_HANDSHAKE_PACKET, 0, "protocol" },
		{ GNUTLS_E_RECEIVED_ILLEGAL_PARAMETER, 0, "protocol" },
		{ GNUTLS_E_NO_APPLICATION_PROTOCOL, 0, "protocol" },
		{ GNUTLS_E_UNSUPPORTED_VERSION_PACKET, 0, "version" },
		{ GNUTLS_E_INAPPROPRIATE_FALLBACK, 0, "version" },
		{ GNUTLS_E_NO_CIPHER_SUITES, 0, "cipher" },
		{ GNUTLS_E_NO_COMMON_KEY_SHARE, 0, "cipher" },
		{ GNUTLS_E_INSUFFICIENT_SECURITY, 0, "cipher" },
		{ GNUTLS_E_UNSUPPORTED_SIGNATURE_ALGORITHM, 0, "cipher" },
		{ GNUTLS_E_UNRECOGNIZED_NAME, 0, "sni" },
		{ GNUTLS_E_INSUFFICIENT_CREDENTIALS, METRICS_TLS_F_NO_CERT,
		    "sni" },
		{ GNUTLS_E_CERTIFICATE_REQUIRED, 0, "client_cert" },
		{ GNUTLS_E_CERTIFICATE_ERROR, 0, "client_cert" },
		{ GNUTLS_E_FATAL_ALERT_RECEIVED, METRICS_TLS_F_CLIENT_CERT,
		    "client_cert" },
		{ GNUTLS_E_PK_SIGN_FAILED, 0, "key" },
		{ GNUTLS_E_CERTIFICATE_KEY_MISMATCH, 0, "key" },
		{ GNUTLS_E_MEMORY_ERROR, 0, "other" },
		{ GNUTLS_E_INTERNAL_ERROR, 0, "other" },
		{ 0, 0, "other" },
		{ 12345, 0, "other" },
		/* The timeout first, then the client certificate. */
		{ GNUTLS_E_PULL_ERROR, METRICS_TLS_F_TIMEOUT |
		    METRICS_TLS_F_CLIENT_CERT, "timeout" },
		{ GNUTLS_E_PULL_ERROR, METRICS_TLS_F_NO_CERT |
		    METRICS_TLS_F_CLIENT_CERT, "client_cert" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		assert_string_equal(metrics_tls_reason_name(
		    metrics_tls_reason(t[i].err, t[i].flags)), t[i].want);
	assert_string_equal(metrics_tls_reason_name(METRICS_TLS_NREASONS),
	    "other");
	assert_string_equal(metrics_tls_reason_name(METRICS_TLS_KEY), "key");
}

static void
test_count(void **state)
{
	struct shm_stats *st = calloc(1, sizeof(*st));
	struct shm_site_row *r;

	(void)state;
	assert_non_null(st);
	assert_int_equal(metrics_duration_bucket(0), 0);
	assert_int_equal(metrics_duration_bucket(0.005), 0);	/* le */
	assert_int_equal(metrics_duration_bucket(0.0051), 1);
	assert_int_equal(metrics_duration_bucket(1), 7);
	assert_int_equal(metrics_duration_bucket(10), 10);
	assert_int_equal(metrics_duration_bucket(10.01), 11);
	metrics_count_request(st, SHM_SITE_FIRST, false, 200, 0.02);
	metrics_count_request(st, SHM_SITE_FIRST, true, 204, 0.002);
	metrics_count_request(st, SHM_SITE_FIRST, true, 101, 3);
	metrics_count_request(st, SHM_SITE_FIRST, false, 499, -1);
	metrics_count_request(st, SHM_SITE_FIRST, false, 502, 20);
	metrics_count_request(st, SHM_SITE_FIRST, false, 0, 0);	/* 5xx */
	r = &st->site[SHM_SITE_FIRST];
	assert_int_equal(r->requests[0][1], 1);
	assert_int_equal(r->requests[1][1], 1);
	assert_int_equal(r->requests[1][0], 1);
	assert_int_equal(r->requests[0][3], 1);
	assert_int_equal(r->requests[0][4], 2);
	assert_int_equal(r->duration[0], 3);	/* 0.002, -1 (0), 0 */
	assert_int_equal(r->duration[2], 1);
	assert_int_equal(r->duration[9], 1);
	assert_int_equal(r->duration[11], 1);
	assert_int_equal(r->duration_us, 20000 + 2000 + 3000000 + 20000000);
	/* A row out of range counts as "_other", never past the table. */
	metrics_count_request(st, SHM_SITE_ROWS, true, 200, 0);
	metrics_count_request(st, 65535, true, 200, 0);
	assert_int_equal(st->site[SHM_SITE_OTHER].requests[1][1], 2);
	metrics_count_handshake(st);
	metrics_count_handshake_failure(st, METRICS_TLS_CLOSED);
	metrics_count_handshake_failure(st, METRICS_TLS_NREASONS);
	assert_int_equal(st->tls_handshakes, 1);
	assert_int_equal(st->tls_failures[METRICS_TLS_CLOSED], 1);
	assert_int_equal(st->tls_failures[METRICS_TLS_OTHER], 1);
	free(st);
}

/* A config of one listener with the sites named. */
struct minicfg {
	struct config		cfg;
	struct config_listener	l;
	struct config_site	s[8];
};

static struct config *
minicfg(struct minicfg *m, const char *const *names, size_t n)
{
	size_t i;

	memset(m, 0, sizeof(*m));
	for (i = 0; i < n; i++)
		m->s[i].host = (char *)(uintptr_t)names[i];
	m->l.sites = m->s;
	m->l.nsites = n;
	m->cfg.listeners = &m->l;
	m->cfg.nlisteners = 1;
	return &m->cfg;
}

static void
test_sites_assign(void **state)
{
	static const char *const v1[] = { "a.test", "b.test", "*.w.test" };
	/* A reload: b.test gone, c.test new, the order changed. */
	static const char *const v2[] = { "c.test", "*.w.test", "a.test" };
	/* Another: b.test back, d.test new. */
	static const char *const v3[] = { "d.test", "b.test", "a.test",
	    "c.test" };
	struct metrics_sites *ms = metrics_sites_new();
	struct minicfg m;
	struct config *cfg;
	char name[32];
	const char *one[1] = { name };
	unsigned i;

	(void)state;
	assert_non_null(ms);
	cfg = minicfg(&m, v1, 3);
	assert_int_equal(metrics_sites_assign(ms, cfg), 0);
	assert_int_equal(m.s[0].metrics_slot, SHM_SITE_FIRST);
	assert_int_equal(m.s[1].metrics_slot, SHM_SITE_FIRST + 1);
	assert_int_equal(m.s[2].metrics_slot, SHM_SITE_FIRST + 2);
	cfg = minicfg(&m, v2, 3);
	assert_int_equal(metrics_sites_assign(ms, cfg), 0);
	assert_int_equal(m.s[0].metrics_slot, SHM_SITE_FIRST + 3);	/* c */
	assert_int_equal(m.s[1].metrics_slot, SHM_SITE_FIRST + 2);	/* w */
	assert_int_equal(m.s[2].metrics_slot, SHM_SITE_FIRST);	/* a */
	cfg = minicfg(&m, v3, 4);
	assert_int_equal(metrics_sites_assign(ms, cfg), 0);
	assert_int_equal(m.s[0].metrics_slot, SHM_SITE_FIRST + 4);	/* d */
	assert_int_equal(m.s[1].metrics_slot, SHM_SITE_FIRST + 1);	/* b */
	assert_int_equal(m.s[2].metrics_slot, SHM_SITE_FIRST);	/* a */
	assert_int_equal(m.s[3].metrics_slot, SHM_SITE_FIRST + 3);	/* c */
	/* Past SHM_SITE_SLOTS names: "_other"; the old ones keep theirs. */
	for (i = 5; i < SHM_SITE_SLOTS + 3; i++) {
		snprintf(name, sizeof(name), "n%u.test", i);
		cfg = minicfg(&m, one, 1);
		assert_int_equal(metrics_sites_assign(ms, cfg), 0);
		assert_int_equal(m.s[0].metrics_slot, i < SHM_SITE_SLOTS ?
		    SHM_SITE_FIRST + i : SHM_SITE_OTHER);
	}
	cfg = minicfg(&m, v3, 4);
	assert_int_equal(metrics_sites_assign(ms, cfg), 0);
	assert_int_equal(m.s[0].metrics_slot, SHM_SITE_FIRST + 4);
	assert_int_equal(m.s[1].metrics_slot, SHM_SITE_FIRST + 1);
	metrics_sites_free(ms);
	metrics_sites_free(NULL);
}

/* Two self-signed P-256 certificates (request_test.c's). */
static const char cert_a[] =
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
    "-----END CERTIFICATE-----\n";
static const char cert_b[] =
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
    "-----END CERTIFICATE-----\n";

#define MANY_SITES	2000

/*
 * Issue 20, "the scrape costs the data path nothing": a config's
 * certificates are parsed once (metrics_certs_new, once per generation),
 * each distinct certificate once however many sites share it, and a
 * scrape with that cache parses none; the sites' rows are each once,
 * past 256 names "_other"; an ACME name the master's full table has no
 * row for has no series (0 would be a lie), a name with room a true 0.
 */
static void
test_certs_once(void **state)
{
	static struct config_site sites[MANY_SITES];
	static char names[MANY_SITES][16];
	char *doms[] = { "x.test", "y.test", "x.test", "z.test" };
	char *doms2[] = { "x.test" };
	unsigned char own_a[sizeof(cert_a)];
	struct config_listener ls[3];
	struct config cfg;
	struct metrics_certs *mc;
	struct metrics_snapshot s;
	struct upstate u;
	struct shm shm;
	struct shm_counters *k;
	unsigned long before;
	int64_t ta = 0, tb = 0;
	char name[32], *buf;
	size_t i, n;
	unsigned w;

	(void)state;
	memset(sites, 0, sizeof(sites));
	memset(ls, 0, sizeof(ls));
	memset(&cfg, 0, sizeof(cfg));
	memset(&u, 0, sizeof(u));
	memcpy(own_a, cert_a, sizeof(cert_a));
	for (i = 0; i < MANY_SITES; i++) {
		snprintf(names[i], sizeof(names[i]), "s%zu.test", i);
		sites[i].host = names[i];
		sites[i].metrics_slot = (uint16_t)(i < SHM_SITE_SLOTS ?
		    SHM_SITE_FIRST + i : SHM_SITE_OTHER);
	}
	/* Own certificates: b, and a's bytes at another address. */
	sites[5].tls.cert = (struct config_blob){ (unsigned char *)cert_b,
	    sizeof(cert_b) - 1 };
	sites[6].tls.cert = (struct config_blob){ own_a, sizeof(cert_a) - 1 };
	ls[0].tls_mode = CONFIG_TLS_MANUAL;
	ls[0].tls.cert = (struct config_blob){ (unsigned char *)cert_a,
	    sizeof(cert_a) - 1 };
	ls[0].sites = sites;
	ls[0].nsites = MANY_SITES;
	ls[1].tls_mode = CONFIG_TLS_ACME;
	ls[1].acme.domains = doms;
	ls[1].acme.ndomains = 4;
	ls[2].tls_mode = CONFIG_TLS_ACME;
	ls[2].acme.domains = doms2;
	ls[2].acme.ndomains = 1;
	cfg.listeners = ls;
	cfg.nlisteners = 3;
	assert_int_equal(shm_create(&shm, 10000, 0), 0);
	/* x.test has a row, then the table fills: y.test has none. */
	assert_int_equal(shm_mstats_acme(&shm, "x.test", 0), 0);
	for (w = 1; w < SHM_ACME_STATS_MAX; w++) {
		snprintf(name, sizeof(name), "n%u.test", w);
		assert_int_equal(shm_mstats_acme(&shm, name, 1), 0);
	}

	before = metrics_cert_parses;
	assert_non_null(mc = metrics_certs_new(&cfg));
	/* a (the listener's and site 6's bytes) and b: two parses. */
	assert_int_equal(metrics_cert_parses - before, 2);
	before = metrics_cert_parses;
	/* A site row counted past the 256 names: "_other"'s. */
	k = shm_counters(&shm, 0);
	atomic_store(&k->pid, 1);
	metrics_count_request(shm_stats(&shm, 0), SHM_SITE_OTHER, false, 200,
	    0.1);
	for (w = 0; w < 3; w++) {
		assert_int_equal(metrics_collect(&s, &shm, &u, &cfg, mc), 0);
		if (w < 2)
			metrics_snapshot_free(&s);
	}
	/* Three scrapes: no parse. */
	assert_int_equal(metrics_cert_parses, before);
	assert_int_equal(s.ops.ncerts, MANY_SITES);
	for (i = 0; i < s.ops.ncerts; i++) {
		assert_int_equal(s.ops.certs[i].listener, 0);
		assert_string_equal(s.ops.certs[i].site, names[i]);
		assert_string_equal(s.ops.certs[i].source, "manual");
		if (i == 5)
			tb = s.ops.certs[i].not_after;
		else if (ta == 0)
			ta = s.ops.certs[i].not_after;
		else
			assert_true(s.ops.certs[i].not_after == ta);
	}
	/* Both say 2126-11-08T21:37:38Z. */
	assert_true(ta == INT64_C(4949847458));
	assert_true(tb == ta);
	/* x.test once; y.test none (full table); z.test none either. */
	assert_int_equal(s.ops.nacme, 1);
	assert_string_equal(s.ops.acme[0].site, "x.test");
	assert_true(s.ops.acme[0].failures == 1);
	/* _unknown, _other, the 256 rows: each once. */
	assert_int_equal(s.nsites, 2 + SHM_SITE_SLOTS);
	n = metrics_render(&s, NULL, 0);
	assert_non_null(buf = malloc(n + 1));
	assert_int_equal(metrics_render(&s, buf, n + 1), n);
	assert_non_null(strstr(buf, "portcullis_requests_total{site=\"_other\","
	    "protocol=\"http/1.1\",status=\"2xx\"} 1\n"));
	assert_non_null(strstr(buf,
	    "portcullis_acme_failures_total{site=\"x.test\"} 1\n"));
	assert_null(strstr(buf, "site=\"y.test\""));
	assert_null(strstr(buf,
	    "portcullis_requests_total{site=\"s256.test\""));
	assert_non_null(strstr(buf,
	    "portcullis_requests_total{site=\"s255.test\""));
	free(buf);
	metrics_snapshot_free(&s);
	/* Without a cache: this call's own, parsed again. */
	assert_int_equal(metrics_collect(&s, &shm, &u, &cfg, NULL), 0);
	assert_int_equal(metrics_cert_parses - before, 2);
	metrics_snapshot_free(&s);
	metrics_certs_free(mc);
	metrics_certs_free(NULL);
	shm_close(&shm);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_upstreams),
		cmocka_unit_test(test_upstreams_escaped),
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_small_buffer),
		cmocka_unit_test(test_ops),
		cmocka_unit_test(test_sites),
		cmocka_unit_test(test_tls_reason),
		cmocka_unit_test(test_count),
		cmocka_unit_test(test_sites_assign),
		cmocka_unit_test(test_certs_once),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
