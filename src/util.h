/*
 * util.h - small helpers shared by every module.
 */
#ifndef PORTCULLIS_UTIL_H
#define PORTCULLIS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define UNUSED		__attribute__((unused))
#define NORETURN	__attribute__((noreturn))
#define PRINTFLIKE(f, a) __attribute__((format(printf, f, a)))

#define nitems(a)	(sizeof(a) / sizeof((a)[0]))
/* The struct of type `type` whose member `member` p points to. */
#define CONTAINER_OF(p, type, member) \
	((type *)(void *)((char *)(p) - offsetof(type, member)))
#define MINIMUM(a, b)	((a) < (b) ? (a) : (b))
#define MAXIMUM(a, b)	((a) > (b) ? (a) : (b))

/*
 * 1 in an AddressSanitizer build, else 0 (for #if and for if ()): freed
 * objects are then really freed, never kept for reuse, or a use after
 * free would go unseen; and some hardening steps (PR_SET_DUMPABLE 0) stop
 * LeakSanitizer.
 */
#if defined(__SANITIZE_ADDRESS__)
#define UTIL_ASAN	1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UTIL_ASAN	1
/*
 * SipHash-2-4 of data under a 16-byte key: the keyed hash of the shared
 * tables (ratelimit.h, connlimit.h) and of sticky cookies (balance.h).
 */
uint64_t util_siphash(const unsigned char key[16], const void *data,
	    size_t len);

#endif
/*
 * SipHash-2-4 of data under a 16-byte key: the keyed hash of the shared
 * tables (ratelimit.h, connlimit.h) and of sticky cookies (balance.h).
 */
uint64_t util_siphash(const unsigned char key[16], const void *data,
	    size_t len);

#endif
#ifndef UTIL_ASAN
#define UTIL_ASAN	0
/*
 * SipHash-2-4 of data under a 16-byte key: the keyed hash of the shared
 * tables (ratelimit.h, connlimit.h) and of sticky cookies (balance.h).
 */
uint64_t util_siphash(const unsigned char key[16], const void *data,
	    size_t len);

#endif

/*
 * Strict decimal: all of s[0..len) must be digits, no sign, no space, and
 * the value must lie in [min, max].  Returns 0 or -1.
 */
int	 util_parse_u64(const char *s, size_t len, uint64_t min, uint64_t max,
	    uint64_t *out);

/* ASCII-only helpers: never locale dependent. */
static inline char
util_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c + ('a' - 'A')) : c;
}

/* The value of an ASCII hex digit (either case), or -1. */
static inline int
util_hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* n bytes equal, ignoring ASCII case. */
bool	 util_caseeq(const char *a, const char *b, size_t n);

/* Equal spans, ignoring ASCII case; the lengths decide most at no cost. */
static inline bool
util_strcaseeq(const char *a, size_t alen, const char *b, size_t blen)
{
	/* the first byte here too: most names of a length differ there */
	return alen == blen && (alen == 0 || (util_lower(a[0]) ==
	    util_lower(b[0]) && util_caseeq(a + 1, b + 1, alen - 1)));
}

/* Does the span equal the string literal lit, ignoring ASCII case? */
#define UTIL_LIT_IS(s, n, lit)						\
	util_strcaseeq((s), (n), "" lit "", sizeof(lit) - 1)

struct sockaddr_storage;

/* An IPv4 or IPv6 address as text ("-" for another family). */
void	 util_addr_text(const struct sockaddr_storage *sa, char *ip,
	    size_t iplen);

/* Monotonic seconds since an arbitrary point. */
double	 util_now(void);

/* Write all of buf to fd, retrying on EINTR/short writes.  0 or -1. */
int	 util_write_all(int fd, const void *buf, size_t len);

struct ev_loop;
struct ev_io;

/*
 * Point an io watcher at fd for events (none: stopped).  Unlike a bare
 * ev_io_stop/ev_io_start, an event already pending for the watcher (one
 * fed with ev_feed_event) is kept, not silently dropped.  For the same fd
 * as before only the events change (no epoll_ctl when they did not):
 * whoever closes a watched descriptor must point its watcher at -1 with
 * ev_io_set(), so that a new descriptor with the same number is
 * registered anew.
 */
void	 util_watch(struct ev_loop *loop, struct ev_io *w, int fd, int events);

/* Close fd on a failure path, keeping errno; returns -1. */
int	 util_close_fail(int fd);

/* Set O_NONBLOCK / FD_CLOEXEC.  0 or -1. */
int	 util_set_nonblock(int fd);
int	 util_set_cloexec(int fd, bool on);

/*
 * Unix socket: refuse descriptors (SCM_RIGHTS) sent to it, where the
 * kernel can (SO_PASSRIGHTS, Linux 6.16; a no-op before).  Set on a
 * listener, it holds for the connections it accepts.  0 or -1.
 */
int	 util_refuse_fds(int sock);

/*
 * Up to UTIL_CACHE_DEPTH freed objects of one kind, kept for the next
 * allocation (one thread per process: no lock).  get: a kept object or
 * NULL (last in, first out); put: keeps p and returns true, or frees it
 * and returns false when full (always under ASan).  A zeroed struct is an
 * empty cache.
 */
#define UTIL_CACHE_DEPTH	256
struct util_cache {
	size_t	 n;
	size_t	 low;		/* fewest kept since the last trim */
	void	*obj[UTIL_CACHE_DEPTH];
};
/* Inline: buf.c's buffers go through get and put on every request. */
static inline void *
util_cache_get(struct util_cache *c)
{
	if (c->n == 0)
		return NULL;
	if (c->low > --c->n)
		c->low = c->n;
	return c->obj[c->n];
}

static inline bool
util_cache_put(struct util_cache *c, void *p)
{
	if (p == NULL)
		return false;
	if (!UTIL_ASAN && c->n < UTIL_CACHE_DEPTH) {
		c->obj[c->n++] = p;
		return true;
	}
	free(p);
	return false;
}

/* A kept object, else malloc(size); NULL when out of memory. */
void	*util_cache_take(struct util_cache *c, size_t size);
/*
 * Free what no get needed since the last trim (the low-water mark of n),
 * the longest kept first, so that a cache shrinks once load goes down.
 * Returns how many were freed.  Only for a caller that trims now and then.
 */
size_t	 util_cache_trim(struct util_cache *c);
/* Free every kept object. */
void	 util_cache_clear(struct util_cache *c);

/*
 * The client key of a peer: 1 type byte (4 or 6), then the 4 bytes of an
 * IPv4 address (an IPv4-mapped IPv6 address counts as the IPv4 address)
 * or the first 8 bytes (the /64) of an IPv6 address.  Its length (5 or
 * 9), or 0 for another family.  What the rate limit keys its buckets by
 * and ip-hash hashes.
 */
#define UTIL_CLIENT_KEY_MAX	9
struct sockaddr;
size_t	 util_client_key(const struct sockaddr *peer,
	    unsigned char key[UTIL_CLIENT_KEY_MAX]);

/*
 * SipHash-2-4 of data under a 16-byte key: the keyed hash of the shared
 * tables (ratelimit.h, connlimit.h) and of sticky cookies (balance.h).
 */
uint64_t util_siphash(const unsigned char key[16], const void *data,
	    size_t len);

#endif /* PORTCULLIS_UTIL_H */
