/*
 * buf.h - a byte buffer with a hard capacity fixed when it is made.
 *
 * Bytes are appended at the end and consumed from the front; space freed
 * at the front is reclaimed by moving the unread bytes down when more room
 * is needed.  Nothing a peer sends can grow a buffer past its capacity: a
 * write that does not fit fails.
 */
#ifndef PORTCULLIS_BUF_H
#define PORTCULLIS_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct buf;

/* One allocation of cap bytes (plus the header).  NULL if out of memory. */
struct buf	*buf_new(size_t cap);
void		 buf_free(struct buf *b);
/* b's unread bytes moved to a new buffer of cap bytes, b freed; NULL (and
   b untouched) if out of memory or cap is below what b holds. */
struct buf	*buf_resize(struct buf *b, size_t cap);
/* Bytes of freed buffers kept for reuse (0 under AddressSanitizer). */
size_t		 buf_cache_bytes(void);

size_t		 buf_cap(const struct buf *b);
size_t		 buf_len(const struct buf *b);		/* unread bytes */
const char	*buf_data(const struct buf *b);		/* first unread */
bool		 buf_empty(const struct buf *b);

/* Room to write at the end, after compacting if that makes room. */
size_t		 buf_space(struct buf *b);
char		*buf_tail(struct buf *b);	/* where to write; see buf_space */
void		 buf_produce(struct buf *b, size_t n);	/* n bytes written */
void		 buf_consume(struct buf *b, size_t n);	/* n bytes used */
void		 buf_reset(struct buf *b);

/* Append; -1 (and nothing written) if it does not fit. */
int		 buf_add(struct buf *b, const void *data, size_t n);
/* Room for exactly n more bytes (compacting if need be): where to write
   them before buf_produce(b, n); NULL if they do not fit. */
char		*buf_reserve(struct buf *b, size_t n);
int		 buf_addstr(struct buf *b, const char *s);
/* A string literal, its length known at compile time. */
#define buf_addlit(b, lit)	buf_add((b), "" lit "", sizeof(lit) - 1)
/* v in decimal (no printf on the hot path). */
int		 buf_adddec(struct buf *b, uint64_t v);
int		 buf_printf(struct buf *b, const char *fmt, ...) PRINTFLIKE(2, 3);

#endif /* PORTCULLIS_BUF_H */
