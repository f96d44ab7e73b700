/*
 * upstream_test.c - how an upstream address is named in logs: IPv4 and
 * bracketed IPv6 with the port, shortened to the buffer, and the name
 * kept from the last call never given for another address; and the
 * pool never hands out a connection that holds a byte or an EOF, even
 * one given back within the same loop iteration (its watcher has not run)
 * or one whose readiness the last poll left unreported (its watcher is
 * not pending).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ev.h>

#include "upstream.h"

static struct sockaddr_storage
v4(const char *ip, unsigned port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s = (struct sockaddr_in *)(void *)&ss;

	memset(&ss, 0, sizeof(ss));
	s->sin_family = AF_INET;
	s->sin_port = htons((uint16_t)port);
	assert_int_equal(inet_pton(AF_INET, ip, &s->sin_addr), 1);
	return ss;
}

static struct sockaddr_storage
v6(const char *ip, unsigned port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *s = (struct sockaddr_in6 *)(void *)&ss;

	memset(&ss, 0, sizeof(ss));
	s->sin6_family = AF_INET6;
	s->sin6_port = htons((uint16_t)port);
	assert_int_equal(inet_pton(AF_INET6, ip, &s->sin6_addr), 1);
	return ss;
}

/* buf has 64 bytes, all set to 'x' first; len of them are offered. */
static const char *
name(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	memset(buf, 'x', 64);
	upstream_describe((const struct sockaddr *)ss, buf, len);
	return buf;
}

static void
test_names(void **state)
{
	struct sockaddr_storage a = v4("127.0.0.1", 8080);
	struct sockaddr_storage b = v4("127.0.0.1", 8081);
	struct sockaddr_storage c = v6("::1", 8080);
	struct sockaddr_storage d = v6("2001:db8::17", 443);
	struct sockaddr_storage u;
	char buf[64];
	int round;

	(void)state;
	/* Twice over, alternating: the kept name must follow the address. */
	for (round = 0; round < 2; round++) {
		assert_string_equal(name(&a, buf, sizeof(buf)),
		    "127.0.0.1:8080");
		assert_string_equal(name(&a, buf, sizeof(buf)),
		    "127.0.0.1:8080");
		assert_string_equal(name(&b, buf, sizeof(buf)),
		    "127.0.0.1:8081");
		assert_string_equal(name(&c, buf, sizeof(buf)), "[::1]:8080");
		assert_string_equal(name(&c, buf, sizeof(buf)), "[::1]:8080");
		assert_string_equal(name(&d, buf, sizeof(buf)),
		    "[2001:db8::17]:443");
		assert_string_equal(name(&a, buf, sizeof(buf)),
		    "127.0.0.1:8080");
	}
	memset(&u, 0, sizeof(u));
	u.ss_family = AF_UNIX;
	assert_string_equal(name(&u, buf, sizeof(buf)), "-");
	assert_string_equal(name(&a, buf, sizeof(buf)), "127.0.0.1:8080");
}

static void
test_short_buffers(void **state)
{
	struct sockaddr_storage a = v4("192.168.100.200", 65535);
	char buf[64];

	(void)state;
	/* Shortened, NUL-terminated, never past len; first and kept. */
	assert_string_equal(name(&a, buf, 8), "192.168");
	assert_int_equal(buf[8], 'x');
	assert_string_equal(name(&a, buf, sizeof(buf)),
	    "192.168.100.200:65535");
	assert_string_equal(name(&a, buf, 8), "192.168");
	assert_int_equal(buf[8], 'x');
	assert_string_equal(name(&a, buf, 1), "");
	assert_int_equal(buf[1], 'x');
	buf[0] = 'y';
	upstream_describe((const struct sockaddr *)&a, buf, 0);
	assert_int_equal(buf[0], 'y');
}

/* A connected pair: [0] goes into the pool, [1] plays the upstream. */
static void
pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0, sv), 0);
}

/* A plain connection from the pool (tag 0): never a TLS session. */
static int
take(struct upstream_pool *p, const struct sockaddr *sa, socklen_t len,
    unsigned keep)
{
	struct uptls_conn *tls = (struct uptls_conn *)1;
	int fd = upstream_take(p, sa, len, 0, keep, &tls);

	assert_null(tls);
	return fd;
}

static bool
is_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

/*
 * Given back and taken again without the loop running in between (as a
 * pipelined request does): a connection holding late bytes (a body after
 * a HEAD answer, a second response nobody asked for) or an EOF is closed,
 * never taken; a clean one behind it still is.
 */
static void
test_pool_takes_only_clean(void **state)
{
	struct sockaddr_storage a = v4("127.0.0.1", 8080);
	const struct sockaddr *sa = (const struct sockaddr *)&a;
	socklen_t len = sizeof(struct sockaddr_in);
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct upstream_pool *p;
	int clean[2], late[2], eof[2];

	(void)state;
	assert_non_null(loop);
	assert_non_null(p = upstream_pool_new(loop));

	pair(clean);
	upstream_put(p, sa, len, 0, clean[0], NULL, 4, 60);
	assert_int_equal(take(p, sa, len, 4), clean[0]);
	assert_int_equal(upstream_pool_size(p), 0);

	/* Late bytes: the newest is tried first and thrown away. */
	upstream_put(p, sa, len, 0, clean[0], NULL, 4, 60);
	pair(late);
	upstream_put(p, sa, len, 0, late[0], NULL, 4, 60);
	assert_int_equal(write(late[1], "HTTP/1.1 200 OK\r\n", 17), 17);
	assert_int_equal(take(p, sa, len, 4), clean[0]);
	assert_false(is_open(late[0]));
	assert_int_equal(upstream_pool_size(p), 0);

	/* The upstream closed it. */
	pair(eof);
	upstream_put(p, sa, len, 0, eof[0], NULL, 4, 60);
	close(eof[1]);
	assert_int_equal(take(p, sa, len, 4), -1);
	assert_false(is_open(eof[0]));

	/* One byte is enough, and nothing is left to take. */
	close(late[1]);
	pair(late);
	upstream_put(p, sa, len, 0, late[0], NULL, 4, 60);
	assert_int_equal(write(late[1], "x", 1), 1);
	assert_int_equal(take(p, sa, len, 4), -1);
	assert_false(is_open(late[0]));
	assert_int_equal(upstream_pool_size(p), 0);

	close(clean[0]);
	close(clean[1]);
	close(late[1]);
	upstream_pool_free(p);
	ev_loop_destroy(loop);
}

/*
 * The loop's poll does not report every ready descriptor: libev's epoll
 * backend asks epoll_wait() for at most as many events as its array holds
 * (64 at first), and the kernel keeps the rest for the next call.  So a
 * connection pooled before this iteration's poll, holding late bytes that
 * arrived before it, may have an idle watcher that is not pending: only
 * asking the socket tells.  Here 300 other descriptors are ready ahead of
 * it; one of their callbacks (this iteration) takes from the pool.
 */
#define BUSY	300

struct busy_take {
	struct upstream_pool	*p;
	const struct sockaddr	*sa;
	socklen_t		 len;
	int			 taken;
	bool			 done;
};

static void
busy_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct busy_take *b = w->data;

	(void)revents;
	if (b->done)
		return;
	b->done = true;
	b->taken = take(b->p, b->sa, b->len, 4);
	ev_break(loop, EVBREAK_ALL);
}

static void
test_pool_takes_only_clean_under_load(void **state)
{
	struct sockaddr_storage a = v4("127.0.0.1", 8080);
	struct ev_loop *loop = ev_loop_new(EVBACKEND_EPOLL);
	struct busy_take b;
	static ev_io busy[BUSY];
	int sv[2], late[2], k;

	(void)state;
	assert_non_null(loop);
	memset(&b, 0, sizeof(b));
	b.sa = (const struct sockaddr *)&a;
	b.len = sizeof(struct sockaddr_in);
	b.taken = -2;
	assert_non_null(b.p = upstream_pool_new(loop));
	/* Readable before the pooled one, and never read. */
	for (k = 0; k < BUSY; k++) {
		pair(sv);
		assert_int_equal(write(sv[1], "x", 1), 1);
		close(sv[1]);
		ev_io_init(&busy[k], busy_cb, sv[0], EV_READ);
		busy[k].data = &b;
		ev_io_start(loop, &busy[k]);
	}
	/* Pooled in an earlier iteration; its late bytes came before the
	   poll, after the others were ready. */
	pair(late);
	upstream_put(b.p, b.sa, b.len, 0, late[0], NULL, 4, 60);
	assert_int_equal(write(late[1], "HTTP/1.1 200 OK\r\n", 17), 17);
	ev_run(loop, EVRUN_ONCE);
	assert_true(b.done);
	assert_int_equal(b.taken, -1);
	assert_false(is_open(late[0]));
	assert_int_equal(upstream_pool_size(b.p), 0);

	for (k = 0; k < BUSY; k++) {
		ev_io_stop(loop, &busy[k]);
		close(busy[k].fd);
	}
	close(late[1]);
	upstream_pool_free(b.p);
	ev_loop_destroy(loop);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_short_buffers),
		cmocka_unit_test(test_pool_takes_only_clean),
		cmocka_unit_test(test_pool_takes_only_clean_under_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
