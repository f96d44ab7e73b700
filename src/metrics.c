/*
 * metrics.c - GET /metrics: the snapshot and its exposition (see
 * metrics.h).
 *
 * The renderer writes into a caller's buffer and, when it is too small,
 * still counts what it would need, as snprintf does: the caller grows
 * the buffer once and renders again.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "metrics.h"
#include "shm.h"
#include "upstate.h"

/* ---- the snapshot ---- */

static uint64_t
sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

struct collect {
	struct metrics_snapshot	*s;
	const struct upstate	*u;
	const struct config	*cfg;
	uint64_t		 now;
	size_t			 cap;
	int			 rc;
};

static void
collect_backend(void *arg, const struct config_listener *l,
    const struct config_site *site, const struct config_path *path,
    struct config_backend *be)
{
	struct collect *c = arg;
	struct metrics_upstream *m, *n;
	struct upstate_view v;
	size_t i;

	for (i = 0; i < be->nups && c->rc == 0; i++) {
		if (c->s->nups == c->cap) {
			c->cap = c->cap == 0 ? 16 : 2 * c->cap;
			n = reallocarray(c->s->ups, c->cap, sizeof(*n));
			if (n == NULL) {
				c->rc = -1;
				return;
			}
			c->s->ups = n;
		}
		upstate_view(c->u, be, be->ups[i].slot, c->now, &v);
		m = &c->s->ups[c->s->nups++];
		m->listener = (unsigned)(l - c->cfg->listeners);
		m->site = site->host;
		m->path = path != NULL ? path->prefix : "";
		m->upstream = be->ups[i].name;
		m->up = v.up;
		m->in_flight = v.inflight;
		m->requests = v.requests;
		m->failures = v.failures;
	}
}

int
metrics_collect(struct metrics_snapshot *s, const struct shm *shm,
    const struct upstate *u, const struct config *cfg)
{
	struct collect c = { s, u, cfg, upstate_now_ms(), 0, 0 };
	struct shm_counters *k;
	unsigned i;

	memset(s, 0, sizeof(*s));
	s->version = PACKAGE_VERSION;
	for (i = 0; (k = shm_counters(shm, i)) != NULL; i++) {
		s->requests = sat_add(s->requests, atomic_load(&k->requests));
		s->rate_limited = sat_add(s->rate_limited,
		    atomic_load(&k->rate_limited));
		s->active_connections = sat_add(s->active_connections,
		    atomic_load(&k->active_connections));
		s->accepted = sat_add(s->accepted, atomic_load(&k->accepted));
		s->bytes_in = sat_add(s->bytes_in, atomic_load(&k->bytes_in));
		s->bytes_out = sat_add(s->bytes_out,
		    atomic_load(&k->bytes_out));
	}
	s->generation = shm_generation(shm);
	config_foreach_backend(cfg, collect_backend, &c);
	if (c.rc != 0) {
		metrics_snapshot_free(s);
		return -1;
	}
	return 0;
}

void
metrics_snapshot_free(struct metrics_snapshot *s)
{
	free(s->ups);
	s->ups = NULL;
	s->nups = 0;
}

/* ---- the exposition ---- */

struct out {
	char	*buf;
	size_t	 size;
	size_t	 len;		/* what it needs, whatever fits */
};

static void
put(struct out *o, const char *p, size_t n)
{
	if (o->len < o->size) {
		size_t room = o->size - o->len;

		memcpy(o->buf + o->len, p, n < room ? n : room);
	}
	o->len += n;
}

static void __attribute__((format(printf, 2, 3)))
putf(struct out *o, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	/* Only numbers and our own names go through here: they fit. */
	if (n > 0)
		put(o, tmp, (size_t)n < sizeof(tmp) ? (size_t)n :
		    sizeof(tmp) - 1);
}

static void
put_str(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

/* A label value: backslash, double quote and line feed escaped. */
static void
put_label(struct out *o, const char *v)
{
	const char *p;

	for (p = v; *p != '\0'; p++) {
		switch (*p) {
		case '\\':
			put_str(o, "\\\\");
			break;
		case '"':
			put_str(o, "\\\"");
			break;
		case '\n':
			put_str(o, "\\n");
			break;
		default:
			put(o, p, 1);
		}
	}
}

size_t
metrics_escape(const char *v, char *buf, size_t size)
{
	struct out o = { buf, size, 0 };

	put_label(&o, v);
	if (size > 0)
		buf[o.len < size ? o.len : size - 1] = '\0';
	return o.len;
}

static void
family(struct out *o, const char *name, const char *type, const char *help)
{
	putf(o, "# HELP %s ", name);
	put_str(o, help);
	putf(o, "\n# TYPE %s %s\n", name, type);
}

static void
upstream_labels(struct out *o, const struct metrics_upstream *m)
{
	putf(o, "{listener=\"%u\",site=\"", m->listener);
	put_label(o, m->site);
	put_str(o, "\",path=\"");
	put_label(o, m->path);
	put_str(o, "\",upstream=\"");
	put_label(o, m->upstream);
	put_str(o, "\"}");
}

enum ups_field { UF_UP, UF_IN_FLIGHT, UF_REQUESTS, UF_FAILURES };

static void
upstream_family(struct out *o, const struct metrics_snapshot *s,
    const char *name, const char *type, const char *help, enum ups_field f)
{
	const struct metrics_upstream *m;
	uint64_t v;
	size_t i;

	if (s->nups == 0)
		return;
	family(o, name, type, help);
	for (i = 0; i < s->nups; i++) {
		m = &s->ups[i];
		switch (f) {
		case UF_UP:
			v = m->up;
			break;
		case UF_IN_FLIGHT:
			v = m->in_flight;
			break;
		case UF_REQUESTS:
			v = m->requests;
			break;
		default:
			v = m->failures;
		}
		put_str(o, name);
		upstream_labels(o, m);
		putf(o, " %llu\n", (unsigned long long)v);
	}
}

/* The families without labels, in their order. */
struct scalar {
	const char	*name;
	const char	*type;
	const char	*help;
	size_t		 off;		/* of its value in the snapshot */
};

#define SNAP(f)	offsetof(struct metrics_snapshot, f)

static const struct scalar scalars[] = {
	{ "portcullis_requests_total", "counter",
	    "Client requests answered, all workers.", SNAP(requests) },
	{ "portcullis_rate_limited_requests_total", "counter",
	    "Client requests refused by a rate limit.", SNAP(rate_limited) },
	{ "portcullis_connections_active", "gauge",
	    "Open client connections, the health port's included.",
	    SNAP(active_connections) },
	{ "portcullis_connections_accepted_total", "counter",
	    "Client connections accepted, the health port's not.",
	    SNAP(accepted) },
	{ "portcullis_received_bytes_total", "counter",
	    "Bytes of client requests, counted when a request ends.",
	    SNAP(bytes_in) },
	{ "portcullis_sent_bytes_total", "counter",
	    "Bytes of responses to clients, counted when a request ends.",
	    SNAP(bytes_out) },
	{ "portcullis_config_generation", "gauge",
	    "The latest configuration generation published.",
	    SNAP(generation) },
};

size_t
metrics_render(const struct metrics_snapshot *s, char *buf, size_t size)
{
	struct out o = { buf, size, 0 };
	const struct scalar *f;
	uint64_t v;
	size_t i;

	family(&o, "portcullis_build_info", "gauge",
	    "The version portcullis was built from; always 1.");
	put_str(&o, "portcullis_build_info{version=\"");
	put_label(&o, s->version);
	put_str(&o, "\"} 1\n");
	for (i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++) {
		f = &scalars[i];
		memcpy(&v, (const char *)s + f->off, sizeof(v));
		family(&o, f->name, f->type, f->help);
		putf(&o, "%s %llu\n", f->name, (unsigned long long)v);
	}
	upstream_family(&o, s, "portcullis_upstream_up", "gauge",
	    "Whether an upstream may be chosen (1) or is down (0).", UF_UP);
	upstream_family(&o, s, "portcullis_upstream_in_flight", "gauge",
	    "Requests in flight to an upstream, all workers.", UF_IN_FLIGHT);
	upstream_family(&o, s, "portcullis_upstream_requests_total",
	    "counter", "Requests sent to an upstream.", UF_REQUESTS);
	upstream_family(&o, s, "portcullis_upstream_failures_total",
	    "counter", "Failures of an upstream (connect, reset, 502 class).",
	    UF_FAILURES);
	if (size > 0)
		buf[o.len < size ? o.len : size - 1] = '\0';
	return o.len;
}
