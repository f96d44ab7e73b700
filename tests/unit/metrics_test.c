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
	assert_int_equal(n, strlen(HEAD_TEXT));
	assert_string_equal(buf, HEAD_TEXT);
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
    "path=\"/api/\",upstream=\"u:80\"} 3\n";

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
	assert_int_equal(n, strlen(HEAD_TEXT));
	assert_memory_equal(small, HEAD_TEXT, sizeof(small) - 1);
	assert_int_equal(small[sizeof(small) - 1], '\0');
	assert_int_equal(metrics_render(&s, NULL, 0), n);
	big = malloc(n + 1);
	assert_non_null(big);
	m = metrics_render(&s, big, n + 1);
	assert_int_equal(m, n);
	assert_string_equal(big, HEAD_TEXT);
	free(big);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_upstreams),
		cmocka_unit_test(test_upstreams_escaped),
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_small_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
