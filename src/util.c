/*
 * util.c - small helpers shared by every module.
 */
#include "autoconf.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "util.h"

/* Its number differs on parisc and sparc. */
#if !defined(SO_PASSRIGHTS) && !defined(__hppa__) && !defined(__sparc__)
#define SO_PASSRIGHTS	83
#endif

int
util_parse_u64(const char *s, size_t len, uint64_t min, uint64_t max,
    uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > 20)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return -1;
		d = (unsigned)(s[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

bool
util_caseeq(const char *a, const char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (util_lower(a[i]) != util_lower(b[i]))
			return false;
	return true;
}

void *
util_cache_take(struct util_cache *c, size_t size)
{
	void *p = util_cache_get(c);

	return p != NULL ? p : malloc(size);
}

size_t
util_cache_trim(struct util_cache *c)
{
	size_t k, drop = c->low;

	for (k = 0; k < drop; k++)
		free(c->obj[k]);
	memmove(c->obj, c->obj + drop, (c->n - drop) * sizeof(c->obj[0]));
	c->n -= drop;
	c->low = c->n;
	return drop;
}

void
util_cache_clear(struct util_cache *c)
{
	while (c->n > 0)
		free(c->obj[--c->n]);
	c->low = 0;
}

double
util_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
util_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

void
util_watch(struct ev_loop *loop, struct ev_io *w, int fd, int events)
{
	int pending = ev_clear_pending(loop, w);

	ev_io_stop(loop, w);
	/* Same descriptor: only the events change, and libev then skips
	   the epoll_ctl a new descriptor needs. */
	if (w->fd == fd)
		ev_io_modify(w, events);
	else
		ev_io_set(w, fd, events);
	if (events != 0)
		ev_io_start(loop, w);
	if (pending != 0)
		ev_feed_event(loop, w, pending);
}

int
util_close_fail(int fd)
{
	int saved = errno;

	close(fd);
	errno = saved;
	return -1;
}

int
util_set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1)
		return -1;
	return 0;
}

int
util_set_cloexec(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFD);

	if (fl == -1)
		return -1;
	fl = on ? (fl | FD_CLOEXEC) : (fl & ~FD_CLOEXEC);
	return fcntl(fd, F_SETFD, fl) == -1 ? -1 : 0;
}

int
util_refuse_fds(int sock)
{
#ifdef SO_PASSRIGHTS
	int zero = 0;

	if (setsockopt(sock, SOL_SOCKET, SO_PASSRIGHTS, &zero,
	    sizeof(zero)) == -1 && errno != ENOPROTOOPT)
		return -1;
#else
	(void)sock;
#endif
	return 0;
}

size_t
util_client_key(const struct sockaddr *peer,
    unsigned char key[UTIL_CLIENT_KEY_MAX])
{
	if (peer->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)peer;

		key[0] = 4;
		memcpy(key + 1, &sin->sin_addr, 4);
		return 5;
	}
	if (peer->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)peer;

		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			key[0] = 4;
			memcpy(key + 1, sin6->sin6_addr.s6_addr + 12, 4);
			return 5;
		}
		key[0] = 6;
		memcpy(key + 1, sin6->sin6_addr.s6_addr, 8);
		return 9;
	}
	return 0;
}

/* ---- SipHash-2-4 (Aumasson and Bernstein), the reference algorithm ---- */

#define ROTL(x, b)	(uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND do {							\
	v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);	\
	v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;				\
	v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;				\
	v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);	\
} while (0)

static uint64_t
le64(const unsigned char *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

uint64_t
util_siphash(const unsigned char key[16], const void *data, size_t len)
{
	const unsigned char *in = data, *end = in + (len - len % 8);
	uint64_t k0 = le64(key), k1 = le64(key + 8), m, b;
	uint64_t v0 = k0 ^ UINT64_C(0x736f6d6570736575);
	uint64_t v1 = k1 ^ UINT64_C(0x646f72616e646f6d);
	uint64_t v2 = k0 ^ UINT64_C(0x6c7967656e657261);
	uint64_t v3 = k1 ^ UINT64_C(0x7465646279746573);
	size_t i;

	for (; in != end; in += 8) {
		m = le64(in);
		v3 ^= m;
		SIPROUND;
		SIPROUND;
		v0 ^= m;
	}
	b = (uint64_t)len << 56;
	for (i = 0; i < len % 8; i++)
		b |= (uint64_t)in[i] << (8 * i);
	v3 ^= b;
	SIPROUND;
	SIPROUND;
	v0 ^= b;
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

void
util_addr_text(const struct sockaddr_storage *sa, char *ip, size_t iplen)
{
	const void *addr;

	snprintf(ip, iplen, "-");
	if (sa->ss_family == AF_INET)
		addr = &((const struct sockaddr_in *)sa)->sin_addr;
	else if (sa->ss_family == AF_INET6)
		addr = &((const struct sockaddr_in6 *)sa)->sin6_addr;
	else
		return;
	if (inet_ntop(sa->ss_family, addr, ip, (socklen_t)iplen) == NULL)
		snprintf(ip, iplen, "-");
}
