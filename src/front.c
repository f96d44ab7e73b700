/*
 * front.c - shared by the HTTP/1.1 and HTTP/2 frontends (see front.h).
 */
#include "autoconf.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "front.h"
#include "gen.h"
#include "log.h"
#include "metrics.h"
#include "shm.h"
#include "util.h"

void
front_log_begin(struct front_log *l, double now)
{
	/* Field by field: a memset of the 2.4 KiB and four snprintf() were
	   2% of the instructions per request. */
	l->method[0] = l->host[0] = l->path[0] = l->upstream[0] = '-';
	l->method[1] = l->host[1] = l->path[1] = l->upstream[1] = '\0';
	l->upstream_error[0] = '-';
	l->upstream_error[1] = '\0';
	l->client_ip[0] = '\0';
	l->proto = "-";
	l->status = 0;
	l->cut = false;
	l->denied[0] = '\0';
	l->bytes_in = l->bytes_out = 0;
	l->start = now;
	l->upgraded = 0;
	l->site = SHM_SITE_UNKNOWN;
}

/* Copy a string for the log; "" stays "-". */
static void
copy_field(char *dst, size_t dstsz, const char *s)
{
	size_t n = strnlen(s, dstsz - 1);

	if (n == 0)
		return;
	memcpy(dst, s, n);
	dst[n] = '\0';
}

void
front_log_client(struct front_log *l, const char *client_ip)
{
	l->client_ip[0] = '\0';
	copy_field(l->client_ip, sizeof(l->client_ip), client_ip);
}

void
front_log_upstream(struct front_log *l, const char *name, const char *error)
{
	copy_field(l->upstream, sizeof(l->upstream), name);
	copy_field(l->upstream_error, sizeof(l->upstream_error), error);
}

static struct util_cache log_cache;

struct front_log *
front_log_new(double now)
{
	struct front_log *l;

	if ((l = util_cache_take(&log_cache, sizeof(*l))) == NULL)
		return NULL;
	front_log_begin(l, now);
	return l;
}

void
front_log_free(struct front_log *l)
{
	util_cache_put(&log_cache, l);
}

/* Copy for the log; true if it had to be shortened. */
static bool
copy_slice(char *dst, size_t dstsz, struct http1_slice s)
{
	size_t n = MINIMUM(s.len, dstsz - 1);

	if (s.len == 0)
		return false;	/* stays "-" */
	memcpy(dst, s.p, n);
	dst[n] = '\0';
	return n < s.len;
}

void
front_log_request(struct front_log *l, struct http1_slice method,
    struct http1_slice host, struct http1_slice target)
{
	l->cut = false;
	if (copy_slice(l->method, sizeof(l->method), method))
		l->cut = true;
	if (copy_slice(l->host, sizeof(l->host), host))
		l->cut = true;
	if (copy_slice(l->path, sizeof(l->path), target))
		l->cut = true;
}


void
front_log_denied(struct front_log *l, const char *why)
{
	snprintf(l->denied, sizeof(l->denied), "%s", why);
}

void
front_log_emit(struct front_log *l, const char *client_ip, double now)
{
	struct log_event ev;
	double ms = (now - l->start) * 1000.;

	if (l->status == 0)
		l->status = 499;
	if (!log_access_enabled())
		return;
	log_event_begin(&ev, "ACCESS");
	log_event_cstr(&ev, "client_ip", l->client_ip[0] != '\0' ?
	    l->client_ip : client_ip);
	log_event_cstr(&ev, "method", l->method);
	log_event_cstr(&ev, "host", l->host);
	log_event_cstr(&ev, "path", l->path);
	log_event_cstr(&ev, "protocol", l->proto);
	log_event_uint(&ev, "status", (uint64_t)l->status);
	log_event_uint(&ev, "bytes_in", l->bytes_in);
	log_event_uint(&ev, "bytes_out", l->bytes_out);
	log_event_uint(&ev, "duration_ms", ms > 0 ? (uint64_t)ms : 0);
	log_event_cstr(&ev, "upstream", l->upstream);
	log_event_cstr(&ev, "upstream_error", l->upstream_error);
	/* Last, so that what matches the fields before it still does. */
	if (l->denied[0] != '\0')
		log_event_cstr(&ev, "denied", l->denied);
	ev.truncated = ev.truncated || l->cut;
	log_event_end(&ev);
}

void
front_count(struct shm_counters *k, struct shm_stats *st,
    const struct front_log *l, bool broken, bool h2, double now)
{
	/* The status the client got: 0 (it left first) is logged as 499.
	   A tunnel's request took until its upgrade, however long the
	   tunnel lived after. */
	metrics_count_request(st, l->site, h2, l->status != 0 ? l->status :
	    499, (l->upgraded > 0 ? l->upgraded : now) - l->start);
	atomic_fetch_add(&k->requests, 1);
	atomic_fetch_add(&k->bytes_in, l->bytes_in);
	atomic_fetch_add(&k->bytes_out, l->bytes_out);
	if (l->status >= 500 || broken)
		atomic_fetch_add(&k->errors, 1);
}
