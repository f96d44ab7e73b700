/*
 * metrics_test.c - the exposition of /metrics: the exact text of a
 * snapshot with and without upstreams, label values escaped as the
 * format wants, and a buffer too small (the length needed, the text cut
 * and terminated).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

#define HEAD_TEXT \
"# HELP portcullis_build_info The version portcullis was built from; " \
    "always 1.\n" \
"# TYPE portcullis_build_info gauge\n" \
"portcullis_build_info{version=\"1.2\"} 1\n" \
"# HELP portcullis_requests_total Client requests answered, all workers.\n" \
"# TYPE portcullis_requests_total counter\n" \
"portcullis_requests_total 7\n" \
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
	char buf[4096];
	size_t n;

	(void)state;
	snapshot(&s);
	n = metrics_render(&s, buf, sizeof(buf));
	assert_int_equal(n, strlen(HEAD_TEXT OPS_EMPTY_TEXT));
	assert_string_equal(buf, HEAD_TEXT OPS_EMPTY_TEXT);
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
    "path=\"/api/\",upstream=\"u:80\"} 3\n" OPS_EMPTY_TEXT;

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
	assert_int_equal(n, strlen(HEAD_TEXT OPS_EMPTY_TEXT));
	assert_memory_equal(small, HEAD_TEXT, sizeof(small) - 1);
	assert_int_equal(small[sizeof(small) - 1], '\0');
	assert_int_equal(metrics_render(&s, NULL, 0), n);
	big = malloc(n + 1);
	assert_non_null(big);
	m = metrics_render(&s, big, n + 1);
	assert_int_equal(m, n);
	assert_string_equal(big, HEAD_TEXT OPS_EMPTY_TEXT);
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
	assert_string_equal(p, "");
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
