/*
 * h2guard.c - the checks on a client's HTTP/2 frames that must not depend
 * on whether nghttp2 still knows the stream (see h2guard.h).
 */
#include <stdbool.h>
#include <string.h>

#include "h2guard.h"

#define PREFACE_LEN	24	/* "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" */
#define FRAME_HEAD	9

#define T_DATA		0x0
#define T_HEADERS	0x1
#define T_RST_STREAM	0x3
#define T_WINDOW_UPDATE	0x8
#define F_END_STREAM	0x1
#define F_PADDED	0x8

void
h2guard_init(struct h2guard *g)
{
	memset(g, 0, sizeof(*g));
	g->preface = PREFACE_LEN;
	g->need = FRAME_HEAD;
}

static uint32_t
be24(const uint8_t *p)
{
	return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}

static uint32_t
be31(const uint8_t *p)
{
	return ((uint32_t)p[0] & 0x7f) << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* The entry of a stream still remembered, or NULL. */
static uint32_t *
find(struct h2guard *g, uint32_t id)
{
	uint32_t i, *e;

	for (i = 0; i < g->n; i++) {
		e = &g->ids[(g->first + i) % H2GUARD_STREAMS];
		if (*e >> 1 == id)
			return e;
	}
	return NULL;
}

static void
opened(struct h2guard *g, uint32_t id, bool ended)
{
	if (g->n == H2GUARD_STREAMS) {
		g->forgot = g->ids[g->first] >> 1;
		g->first = (g->first + 1) % H2GUARD_STREAMS;
		g->n--;
	}
	g->ids[(g->first + g->n) % H2GUARD_STREAMS] = id << 1 | ended;
	g->n++;
	g->max_id = id;
}

/* True if the client had ended the stream; marks it ended if `ends`. */
static bool
ended(struct h2guard *g, uint32_t id, bool ends)
{
	uint32_t *e = find(g, id);

	if (e == NULL)
		return false;
	if (*e & 1)
		return true;
	if (ends)
		*e |= 1;
	return false;
}

static enum h2guard_verdict
fail(struct h2guard *g, enum h2guard_verdict v, const char *why, uint32_t id)
{
	g->verdict = v;
	g->why = why;
	g->why_id = id;
	return v;
}

static enum h2guard_verdict
judge_headers(struct h2guard *g, uint32_t id, bool es)
{
	if (id == 0 || id % 2 == 0)
		return H2GUARD_OK;	/* nghttp2 refuses those itself */
	if (id > g->max_id) {
		opened(g, id, es);
		return H2GUARD_OK;
	}
	if (find(g, id) == NULL) {
		if (id <= g->forgot)
			return H2GUARD_OK;	/* too old to tell */
		return fail(g, H2GUARD_PROTOCOL_ERROR,
		    "HEADERS below a stream already opened", id);
	}
	if (ended(g, id, es))
		return fail(g, H2GUARD_STREAM_CLOSED,
		    "HEADERS after the client ended the stream", id);
	return H2GUARD_OK;
}

/* The frame in g->head, with its first need - 9 payload octets. */
static enum h2guard_verdict
judge(struct h2guard *g)
{
	uint32_t len = be24(g->head), id = be31(g->head + 5);
	uint8_t type = g->head[3], flags = g->head[4];

	switch (type) {
	case T_DATA:
		if ((flags & F_PADDED) && (len == 0 || g->head[9] >= len))
			return fail(g, H2GUARD_PROTOCOL_ERROR,
			    "DATA padded past its end", id);
		if (id != 0 && ended(g, id, flags & F_END_STREAM))
			return fail(g, H2GUARD_STREAM_CLOSED,
			    "DATA after the client ended the stream", id);
		break;
	case T_HEADERS:
		return judge_headers(g, id, flags & F_END_STREAM);
	case T_RST_STREAM:
		(void)ended(g, id, true);
		break;
	case T_WINDOW_UPDATE:
		if (len == 4 && be31(g->head + 9) == 0)
			return fail(g, H2GUARD_PROTOCOL_ERROR,
			    "WINDOW_UPDATE of 0", id);
		break;
	default:
		break;
	}
	return H2GUARD_OK;
}

/* How much of the payload the frame whose header is in g->head needs. */
static uint32_t
payload_needed(const struct h2guard *g)
{
	uint32_t len = be24(g->head);

	if (g->head[3] == T_DATA && (g->head[4] & F_PADDED) && len > 0)
		return 1;	/* the pad length */
	if (g->head[3] == T_WINDOW_UPDATE && len == 4)
		return 4;	/* the increment */
	return 0;
}

enum h2guard_verdict
h2guard_scan(struct h2guard *g, const uint8_t *p, size_t len, size_t *ok)
{
	size_t i = 0, start = 0, n;

	*ok = 0;
	if (g->verdict != H2GUARD_OK)
		return g->verdict;
	n = len < g->preface ? len : g->preface;
	g->preface -= (uint32_t)n;
	i += n;
	while (i < len) {
		if (g->skip > 0) {
			n = len - i < g->skip ? len - i : g->skip;
			g->skip -= (uint32_t)n;
			i += n;
			continue;
		}
		if (g->have == 0)
			start = i;	/* the frame begins in this call */
		n = len - i < g->need - g->have ? len - i : g->need - g->have;
		memcpy(g->head + g->have, p + i, n);
		g->have += (uint32_t)n;
		i += n;
		if (g->have == FRAME_HEAD && g->need == FRAME_HEAD)
			g->need += payload_needed(g);
		if (g->have < g->need)
			continue;
		if (judge(g) != H2GUARD_OK) {
			*ok = start;
			return g->verdict;
		}
		g->skip = be24(g->head) - (g->need - FRAME_HEAD);
		g->have = 0;
		g->need = FRAME_HEAD;
	}
	*ok = len;
	return H2GUARD_OK;
}
