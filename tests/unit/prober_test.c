/*
 * prober_test.c - the pure parts of the prober: the request a check
 * sends (Host as written, or the upstream-server-name of https, the port
 * unless the scheme's own, brackets for IPv6, nothing that is not a
 * valid host or path), how an answer is judged (status
 * range, a head in pieces, malformed, too large, closed early), the
 * counting of passes and failures into a verdict, the spread of first
 * checks, and when the prober must run at all.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "prober.h"
#include "upstate.h"

/* An upstream as config.c makes it: host as written, resolved address. */
static struct config_upstream
upstream(const char *host, const char *ip, uint16_t port)
{
	struct config_upstream up;
	struct sockaddr_in *s4 = (struct sockaddr_in *)(void *)&up.addr;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)(void *)&up.addr;

	memset(&up, 0, sizeof(up));
	up.host = (char *)host;
	if (strchr(ip, ':') != NULL) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
		up.addrlen = sizeof(*s6);
	} else {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
		up.addrlen = sizeof(*s4);
	}
	return up;
}

/* The request of a check of up over plain HTTP. */
static int
plain(const struct config_upstream *up, const char *path, char *buf,
    size_t size)
{
	return prober_request(up, false, NULL, path, buf, size);
}

static void
assert_request_as(const struct config_upstream *up, bool https,
    const char *name, const char *path, const char *host)
{
	char buf[PROBER_REQUEST_MAX], want[PROBER_REQUEST_MAX];
	int n;

	snprintf(want, sizeof(want), "GET %s HTTP/1.1\r\nHost: %s\r\n"
	    "User-Agent: portcullis-prober\r\nConnection: close\r\n\r\n",
	    path, host);
	n = prober_request(up, https, name, path, buf, sizeof(buf));
	assert_int_equal(n, (int)strlen(want));
	assert_memory_equal(buf, want, strlen(want));
}

static void
assert_request(const struct config_upstream *up, const char *path,
    const char *host)
{
	assert_request_as(up, false, NULL, path, host);
}

static void
test_request(void **state)
{
	struct config_upstream up;
	char buf[PROBER_REQUEST_MAX], big[CONFIG_PREFIX_MAX + 2];

	(void)state;
	up = upstream("app-1.internal", "10.0.0.5", 8080);
	assert_request(&up, "/healthz", "app-1.internal:8080");
	assert_request(&up, "/h?full=1&x=%20", "app-1.internal:8080");
	/* Port 80: the host alone. */
	up = upstream("app-1.internal", "10.0.0.5", 80);
	assert_request(&up, "/", "app-1.internal");
	up = upstream("127.0.0.1", "127.0.0.1", 9001);
	assert_request(&up, "/healthz", "127.0.0.1:9001");
	/* IPv6: in brackets, as written. */
	up = upstream("::1", "::1", 9001);
	assert_request(&up, "/healthz", "[::1]:9001");
	up = upstream("::1", "::1", 80);
	assert_request(&up, "/healthz", "[::1]");
	/* https: 443 is the default port, 80 is not; the server name, when
	   upstream-server-name gives one, is the Host (as it is the SNI). */
	up = upstream("10.0.0.5", "10.0.0.5", 443);
	assert_request_as(&up, true, NULL, "/h", "10.0.0.5");
	assert_request_as(&up, true, "app.internal", "/h", "app.internal");
	assert_request(&up, "/h", "10.0.0.5:443");
	up = upstream("10.0.0.5", "10.0.0.5", 80);
	assert_request_as(&up, true, NULL, "/h", "10.0.0.5:80");
	up = upstream("::1", "::1", 8443);
	assert_request_as(&up, true, "app.internal", "/h",
	    "app.internal:8443");
	assert_request_as(&up, true, NULL, "/h", "[::1]:8443");
	/* Without https, a name is not used. */
	assert_request_as(&up, false, "app.internal", "/h",
	    "app.internal:8443");
	/* The longest path fits. */
	memset(big, 'a', sizeof(big));
	big[0] = '/';
	big[CONFIG_PREFIX_MAX] = '\0';
	up = upstream("app-1.internal", "10.0.0.5", 8080);
	assert_true(plain(&up, big, buf, sizeof(buf)) > 0);
	/* A path that is not one, one too long, a buffer too small. */
	big[CONFIG_PREFIX_MAX] = 'a';
	big[CONFIG_PREFIX_MAX + 1] = '\0';
	assert_int_equal(plain(&up, big, buf, sizeof(buf)), -1);
	assert_int_equal(plain(&up, "healthz", buf, sizeof(buf)), -1);
	assert_int_equal(plain(&up, "/a b", buf, sizeof(buf)), -1);
	assert_int_equal(plain(&up, "/a\r\nX: y", buf, sizeof(buf)), -1);
	assert_int_equal(plain(&up, "/h", buf, 40), -1);
	/* A host that is not one never reaches a request. */
	up = upstream("a\r\nX-Evil: 1", "10.0.0.5", 8080);
	assert_int_equal(plain(&up, "/h", buf, sizeof(buf)), -1);
	up = upstream("a b", "10.0.0.5", 8080);
	assert_int_equal(plain(&up, "/h", buf, sizeof(buf)), -1);
	/* No address: no port to send. */
	memset(&up.addr, 0, sizeof(up.addr));
	up.host = (char *)"a.test";
	assert_int_equal(plain(&up, "/h", buf, sizeof(buf)), -1);
}

static enum prober_judgement
judge(const char *resp, size_t len, bool eof, uint16_t min, uint16_t max,
    char *why, size_t whysz)
{
	struct http1_parser p;

	memset(&p, 0, sizeof(p));
	why[0] = '\0';
	return prober_judge(&p, resp, len, eof, min, max, why, whysz);
}

#define OK200	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

static void
test_judge(void **state)
{
	char why[128], *big;
	struct http1_parser p;
	const char *r;
	size_t i;

	(void)state;
	assert_int_equal(judge(OK200, strlen(OK200), false, 200, 299, why,
	    sizeof(why)), PROBER_PASS);
	/* The body does not matter, nor whether it is all there. */
	r = "HTTP/1.1 204 No Content\r\n\r\n";
	assert_int_equal(judge(r, strlen(r), false, 200, 299, why,
	    sizeof(why)), PROBER_PASS);
	assert_int_equal(judge(r, strlen(r), true, 204, 204, why,
	    sizeof(why)), PROBER_PASS);
	/* Another status fails, and says which. */
	r = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n";
	assert_int_equal(judge(r, strlen(r), false, 200, 299, why,
	    sizeof(why)), PROBER_FAIL);
	assert_string_equal(why, "status 500");
	assert_int_equal(judge(OK200, strlen(OK200), false, 204, 204, why,
	    sizeof(why)), PROBER_FAIL);
	assert_string_equal(why, "status 200");
	r = "HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n";
	assert_int_equal(judge(r, strlen(r), false, 200, 299, why,
	    sizeof(why)), PROBER_FAIL);
	assert_int_equal(judge(r, strlen(r), false, 300, 399, why,
	    sizeof(why)), PROBER_PASS);
	/* In pieces, a byte at a time: more until the head is whole. */
	memset(&p, 0, sizeof(p));
	for (i = 1; i < strlen(OK200) - 2; i++)
		assert_int_equal(prober_judge(&p, OK200, i, false, 200, 299,
		    why, sizeof(why)), PROBER_MORE);
	assert_int_equal(prober_judge(&p, OK200, i, false, 200, 299, why,
	    sizeof(why)), PROBER_PASS);
	/* Closed before or in the head. */
	assert_int_equal(judge("", 0, true, 200, 299, why, sizeof(why)),
	    PROBER_FAIL);
	assert_string_equal(why, "closed before the response head");
	assert_int_equal(judge(OK200, 20, true, 200, 299, why, sizeof(why)),
	    PROBER_FAIL);
	assert_string_equal(why, "closed in the response head");
	/* Malformed: the strict parser's word. */
	r = "HTTP/1.1 200 OK\nContent-Length: 0\n\n";
	assert_int_equal(judge(r, strlen(r), false, 200, 299, why,
	    sizeof(why)), PROBER_FAIL);
	assert_non_null(strstr(why, "malformed response head"));
	r = "HTTP/1.1 2000 OK\r\n\r\n";
	assert_int_equal(judge(r, strlen(r), false, 200, 299, why,
	    sizeof(why)), PROBER_FAIL);
	assert_non_null(strstr(why, "malformed response head"));
	r = "ICY 200 OK\r\n\r\n";
	assert_int_equal(judge(r, strlen(r), false, 200, 299, why,
	    sizeof(why)), PROBER_FAIL);
	r = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
	assert_int_equal(judge(r, strlen(r), false, 200, 299, why,
	    sizeof(why)), PROBER_FAIL);
	/* A head that never ends: failed at PROBER_HEAD_MAX bytes. */
	assert_non_null(big = malloc(PROBER_HEAD_MAX));
	memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
	memset(big + 20, 'a', PROBER_HEAD_MAX - 20);
	assert_int_equal(judge(big, PROBER_HEAD_MAX, false, 200, 299, why,
	    sizeof(why)), PROBER_FAIL);
	assert_true(strstr(why, "malformed") != NULL ||
	    strstr(why, "over") != NULL);
	/* Just under it, a head that ends passes. */
	memcpy(big + PROBER_HEAD_MAX - 4, "\r\n\r\n", 4);
	assert_int_equal(judge(big, PROBER_HEAD_MAX, false, 200, 299, why,
	    sizeof(why)), PROBER_PASS);
	free(big);
}

static void
test_count(void **state)
{
	struct prober_tally t = { UPSTATE_CHECK_NONE, 0, 0 };

	(void)state;
	/* passes 2, fails 3; the first verdict too needs them in a row. */
	assert_false(prober_count(&t, false, 2, 3));
	assert_false(prober_count(&t, false, 2, 3));
	assert_false(prober_count(&t, true, 2, 3));	/* the row breaks */
	assert_int_equal(t.verdict, UPSTATE_CHECK_NONE);
	assert_int_equal(t.bad, 0);
	assert_true(prober_count(&t, true, 2, 3));
	assert_int_equal(t.verdict, UPSTATE_CHECK_UP);
	assert_int_equal(t.good, 2);
	/* Up stays up: said once. */
	assert_false(prober_count(&t, true, 2, 3));
	assert_false(prober_count(&t, false, 2, 3));
	assert_false(prober_count(&t, false, 2, 3));
	assert_true(prober_count(&t, false, 2, 3));
	assert_int_equal(t.verdict, UPSTATE_CHECK_DOWN);
	assert_int_equal(t.bad, 3);
	assert_false(prober_count(&t, false, 2, 3));
	assert_int_equal(t.bad, 4);
	assert_false(prober_count(&t, true, 2, 3));
	assert_int_equal(t.verdict, UPSTATE_CHECK_DOWN);
	assert_true(prober_count(&t, true, 2, 3));
	assert_int_equal(t.verdict, UPSTATE_CHECK_UP);
	/* From NONE straight down; 1 and 1: every check decides. */
	t = (struct prober_tally){ UPSTATE_CHECK_NONE, 0, 0 };
	assert_true(prober_count(&t, false, 1, 1));
	assert_int_equal(t.verdict, UPSTATE_CHECK_DOWN);
	assert_true(prober_count(&t, true, 1, 1));
	assert_int_equal(t.verdict, UPSTATE_CHECK_UP);
	/* A respawned prober starts from the table's verdict, counts 0. */
	t = (struct prober_tally){ UPSTATE_CHECK_DOWN, 0, 0 };
	assert_false(prober_count(&t, false, 2, 3));
	assert_false(prober_count(&t, true, 2, 3));
	assert_true(prober_count(&t, true, 2, 3));
	/* Lower thresholds (a reload): the next check decides. */
	t = (struct prober_tally){ UPSTATE_CHECK_UP, 0, 5 };
	assert_true(prober_count(&t, false, 2, 3));
	/* Counts do not wrap. */
	t = (struct prober_tally){ UPSTATE_CHECK_UP, UINT32_MAX, 0 };
	assert_false(prober_count(&t, true, 2, 3));
	assert_int_equal(t.good, UINT32_MAX);
}

static void
test_offset(void **state)
{
	(void)state;
	/* Three upstreams, 1 s: 0, 333, 666 ms. */
	assert_int_equal(prober_offset_ms(0, 3, 1), 0);
	assert_int_equal(prober_offset_ms(1, 3, 1), 333);
	assert_int_equal(prober_offset_ms(2, 3, 1), 666);
	/* Every one within the interval, however many. */
	assert_int_equal(prober_offset_ms(4095, 4096, 3600), 3599121);
	assert_int_equal(prober_offset_ms(0, 1, 5), 0);
	assert_int_equal(prober_offset_ms(0, 0, 5), 0);
	assert_int_equal(prober_offset_ms(3, 3, 5), 0);
}

/* A listener, a site, one path block: any backend's check wants it. */
static void
test_wanted(void **state)
{
	struct config_path path;
	struct config_site site;
	struct config_listener l;
	struct config cfg;

	(void)state;
	memset(&path, 0, sizeof(path));
	memset(&site, 0, sizeof(site));
	memset(&l, 0, sizeof(l));
	memset(&cfg, 0, sizeof(cfg));
	site.paths = &path;
	site.npaths = 1;
	l.sites = &site;
	l.nsites = 1;
	cfg.listeners = &l;
	cfg.nlisteners = 1;
	assert_false(prober_wanted(&cfg));
	path.be.health.on = true;
	assert_true(prober_wanted(&cfg));
	path.be.health.on = false;
	site.be.health.on = true;
	assert_true(prober_wanted(&cfg));
	cfg.nlisteners = 0;
	assert_false(prober_wanted(&cfg));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request),
		cmocka_unit_test(test_judge),
		cmocka_unit_test(test_count),
		cmocka_unit_test(test_offset),
		cmocka_unit_test(test_wanted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
