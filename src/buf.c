/*
 * buf.c - a byte buffer with a hard capacity (see buf.h).
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "util.h"

struct buf {
	size_t	 cap;
	size_t	 off;		/* first unread byte */
	size_t	 len;		/* unread bytes */
	char	 data[];
};

/*
 * Freed buffers of the few sizes the proxy uses are kept for the next
 * buf_new() of the same size: a request takes and returns several, and
 * malloc/free of 16-64 KiB blocks made the heap grow and shrink (brk and
 * a TLB flush) on every request, and cost the allocator's bin search
 * (_int_malloc and unlink_chunk were 9% of the HTTP/2 benchmark's CPU with
 * only 32 kept per size, fewer than 500 streams in flight use).
 *
 * One util_cache per size, the first CACHE_SIZES sizes freed (a size is
 * given its cache the first time a buffer of it is freed, for the life of
 * the process).  Bounded: UTIL_CACHE_DEPTH per size and CACHE_BYTES in
 * all.  What load no longer needs goes back: every TRIM_EVERY frees, as
 * many buffers of each size as stayed unused all along (its low-water
 * mark) are freed.  A process is one thread (master, worker), so no lock.
 * Under AddressSanitizer util_cache keeps nothing.
 */
#define CACHE_SIZES	8
#define TRIM_EVERY	1024
#define CACHE_BYTES	((size_t)8 << 20)

static struct {
	size_t			 cap;	/* 0: not given to a size yet */
	struct util_cache	 kept;
} cache[CACHE_SIZES];
static size_t	 cache_bytes;
static unsigned	 frees;

static void
cache_trim(void)
{
	size_t i;

	for (i = 0; i < CACHE_SIZES; i++)
		cache_bytes -= util_cache_trim(&cache[i].kept) * cache[i].cap;
}

size_t
buf_cache_bytes(void)
{
	return cache_bytes;
}

struct buf *
buf_new(size_t cap)
{
	struct buf *b;
	size_t i;

	if (cap == 0 || cap > ((size_t)1 << 30))
		return NULL;
	for (i = 0; i < CACHE_SIZES; i++)
		if (cache[i].cap == cap) {
			if ((b = util_cache_get(&cache[i].kept)) == NULL)
				break;
			cache_bytes -= cap;
			b->off = b->len = 0;
			return b;
		}
	if ((b = malloc(sizeof(*b) + cap)) == NULL)
		return NULL;
	b->cap = cap;
	b->off = b->len = 0;
	return b;
}

void
buf_free(struct buf *b)
{
	size_t i;

	if (b == NULL)
		return;
	if (++frees % TRIM_EVERY == 0)
		cache_trim();
	for (i = 0; i < CACHE_SIZES; i++) {
		if (cache[i].cap == 0)
			cache[i].cap = b->cap;	/* a size not seen yet */
		if (cache[i].cap != b->cap)
			continue;
		if (cache_bytes + b->cap > CACHE_BYTES)
			break;
		if (util_cache_put(&cache[i].kept, b))
			cache_bytes += b->cap;
		return;			/* kept, or freed when full */
	}
	free(b);
}

struct buf *
buf_resize(struct buf *b, size_t cap)
{
	struct buf *nb;

	if (cap < b->len || (nb = buf_new(cap)) == NULL)
		return NULL;
	memcpy(nb->data, b->data + b->off, b->len);
	nb->len = b->len;
	buf_free(b);
	return nb;
}

size_t
buf_cap(const struct buf *b)
{
	return b->cap;
}

size_t
buf_len(const struct buf *b)
{
	return b->len;
}

const char *
buf_data(const struct buf *b)
{
	return b->data + b->off;
}

bool
buf_empty(const struct buf *b)
{
	return b->len == 0;
}

size_t
buf_space(struct buf *b)
{
	/* Move the unread bytes down when little room is left behind them. */
	if (b->len == 0)
		b->off = 0;
	else if (b->off > 0 && b->cap - b->off - b->len < b->cap / 4) {
		memmove(b->data, b->data + b->off, b->len);
		b->off = 0;
	}
	return b->cap - b->off - b->len;
}

char *
buf_tail(struct buf *b)
{
	return b->data + b->off + b->len;
}

void
buf_produce(struct buf *b, size_t n)
{
	if (n > b->cap - b->off - b->len)
		abort();	/* a caller wrote past buf_space() */
	b->len += n;
}

void
buf_consume(struct buf *b, size_t n)
{
	if (n > b->len)
		abort();
	b->off += n;
	b->len -= n;
	if (b->len == 0)
		b->off = 0;
}

void
buf_reset(struct buf *b)
{
	b->off = b->len = 0;
}

static bool
make_room(struct buf *b, size_t n)
{
	if (n > b->cap - b->len)
		return false;
	if (n > b->cap - b->off - b->len) {
		memmove(b->data, b->data + b->off, b->len);
		b->off = 0;
	}
	return true;
}

int
buf_add(struct buf *b, const void *data, size_t n)
{
	if (!make_room(b, n))
		return -1;
	memcpy(b->data + b->off + b->len, data, n);
	b->len += n;
	return 0;
}

char *
buf_reserve(struct buf *b, size_t n)
{
	if (!make_room(b, n))
		return NULL;
	return b->data + b->off + b->len;
}

int
buf_addstr(struct buf *b, const char *s)
{
	return buf_add(b, s, strlen(s));
}

int
buf_adddec(struct buf *b, uint64_t v)
{
	char d[20];
	size_t i = sizeof(d);

	do {
		d[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	return buf_add(b, d + i, sizeof(d) - i);
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	size_t room;
	int n;

	/* Compact first so that all free space is at the end. */
	if (b->off > 0 && !make_room(b, b->cap - b->len))
		return -1;
	room = b->cap - b->off - b->len;
	va_start(ap, fmt);
	n = vsnprintf(b->data + b->off + b->len, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= room)
		return -1;
	b->len += (size_t)n;
	return 0;
}
