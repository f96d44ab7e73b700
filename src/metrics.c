/*
 * metrics.c - GET /metrics: the snapshot and its exposition (see
 * metrics.h).
 *
 * The renderer writes into a caller's buffer and, when it is too small,
 * still counts what it would need, as snprintf does: the caller grows
 * the buffer once and renders again.
 */
#include "autoconf.h"

#include <assert.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>

#include "config.h"
#include "metrics.h"
#include "shm.h"
#include "tls.h"
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

/* ---- the operational families: collecting ---- */

/*
 * What a config's certificates say does not change while it is served:
 * metrics_certs_new() reads it once per generation (each certificate's
 * bytes parsed once, however many sites share them), and a scrape only
 * copies it (issue 20: the scrape costs the data path nothing).
 */
struct metrics_certs {
	struct metrics_cert *certs;
	size_t		 ncerts;
	const char	**acme;		/* the ACME names, each once */
	size_t		 nacme;
};

unsigned long metrics_cert_parses;

/* Certificates' bytes parsed, by content: the same bytes, one parse. */
struct nacache {
	struct nakey {
		const struct config_blob *blob;
		int64_t		 t;
	}		*tab;
	size_t		 mask;
};

static uint64_t
blob_hash(const struct config_blob *b)
{
	uint64_t h = 14695981039346656037u;	/* FNV-1a */
	size_t i;

	for (i = 0; i < b->len; i++)
		h = (h ^ b->data[i]) * 1099511628211u;
	return h;
}

static int64_t
nacache_get(struct nacache *c, const struct config_blob *b)
{
	struct nakey *k;
	size_t i;

	for (i = blob_hash(b) & c->mask;; i = (i + 1) & c->mask) {
		k = &c->tab[i];
		if (k->blob == NULL)
			break;
		if (k->blob == b || (k->blob->len == b->len &&
		    memcmp(k->blob->data, b->data, b->len) == 0))
			return k->t;
	}
	metrics_cert_parses++;
	k->blob = b;
	k->t = tls_cert_not_after(b);
	return k->t;
}

static int
certs_add(struct metrics_certs *m, size_t *cap, struct nacache *nc,
    unsigned listener, const char *site, const char *source,
    const struct config_blob *cert)
{
	struct metrics_cert *n;
	int64_t t;

	/* A certificate that does not parse has no date to show. */
	if (cert->len == 0 || (t = nacache_get(nc, cert)) <= 0)
		return 0;
	if (m->ncerts == *cap) {
		*cap = *cap == 0 ? 8 : 2 * *cap;
		if ((n = reallocarray(m->certs, *cap, sizeof(*n))) == NULL)
			return -1;
		m->certs = n;
	}
	m->certs[m->ncerts++] = (struct metrics_cert){ listener, site, source,
	    t };
	return 0;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

struct metrics_certs *
metrics_certs_new(const struct config *cfg)
{
	const struct config_listener *l;
	const struct config_site *site;
	struct metrics_certs *m;
	struct nacache nc = { NULL, 0 };
	size_t i, j, n = 0, cap = 0, size = 16;

	if ((m = calloc(1, sizeof(*m))) == NULL)
		return NULL;
	for (i = 0; i < cfg->nlisteners; i++) {
		l = &cfg->listeners[i];
		n += l->nsites + l->nacme_certs;
		m->nacme += l->tls_mode == CONFIG_TLS_ACME ? l->acme.ndomains :
		    0;
	}
	while (size < 2 * n + 2)
		size *= 2;
	nc.mask = size - 1;
	if ((nc.tab = calloc(size, sizeof(*nc.tab))) == NULL ||
	    (m->nacme > 0 && (m->acme = calloc(m->nacme,
	    sizeof(*m->acme))) == NULL))
		goto fail;
	m->nacme = 0;
	for (i = 0; i < cfg->nlisteners; i++) {
		l = &cfg->listeners[i];
		/* Per site its own or (manual mode) its listener's. */
		for (j = 0; j < l->nsites; j++) {
			site = &l->sites[j];
			/* Decoded from the image, "none" is 0 bytes. */
			if (site->tls.cert.len > 0) {
				if (certs_add(m, &cap, &nc, (unsigned)i,
				    site->host, "manual", &site->tls.cert) ==
				    -1)
					goto fail;
			} else if (l->tls_mode == CONFIG_TLS_MANUAL &&
			    l->tls.cert.len > 0 && certs_add(m, &cap, &nc,
			    (unsigned)i, site->host, "manual", &l->tls.cert) ==
			    -1)
				goto fail;
		}
		if (l->tls_mode != CONFIG_TLS_ACME)
			continue;
		/* Per ACME name the one the master attached to this
		   generation, if any yet. */
		for (j = 0; j < l->nacme_certs; j++)
			if (certs_add(m, &cap, &nc, (unsigned)i,
			    l->acme_certs[j].name, "acme",
			    &l->acme_certs[j].cert) == -1)
				goto fail;
		for (j = 0; j < l->acme.ndomains; j++)
			m->acme[m->nacme++] = l->acme.domains[j];
	}
	/* Two listeners may share a name: one series. */
	if (m->nacme > 0) {
		qsort(m->acme, m->nacme, sizeof(*m->acme), name_cmp);
		for (i = 1, j = 1; i < m->nacme; i++)
			if (strcmp(m->acme[i], m->acme[j - 1]) != 0)
				m->acme[j++] = m->acme[i];
		m->nacme = j;
	}
	free(nc.tab);
	return m;
fail:
	free(nc.tab);
	metrics_certs_free(m);
	return NULL;
}

void
metrics_certs_free(struct metrics_certs *m)
{
	if (m == NULL)
		return;
	free(m->certs);
	free(m->acme);
	free(m);
}

/*
 * The master's counters, and what mc read of cfg's certificates.  An
 * ACME name the master's table has no row for (full) has no series: it
 * would say 0, which nobody knows.
 */
static int
collect_ops(struct metrics_ops *o, const struct shm *shm,
    const struct metrics_certs *mc)
{
	const struct shm_mstats *st = shm_mstats(shm);
	struct metrics_acme *a;
	size_t i;
	unsigned p, c;

	o->reloads_ok = atomic_load_explicit(&st->reloads_ok,
	    memory_order_relaxed);
	o->reloads_failed = atomic_load_explicit(&st->reloads_failed,
	    memory_order_relaxed);
	for (p = 0; p < METRICS_PROCS; p++)
		for (c = 0; c < METRICS_CAUSES; c++)
			o->restarts[p][c] = atomic_load_explicit(
			    &st->restarts[p][c], memory_order_relaxed);
	if (mc->ncerts > 0) {
		if ((o->certs = calloc(mc->ncerts, sizeof(*o->certs))) ==
		    NULL)
			return -1;
		memcpy(o->certs, mc->certs, mc->ncerts * sizeof(*o->certs));
		o->ncerts = mc->ncerts;
	}
	if (mc->nacme > 0 && (o->acme = calloc(mc->nacme,
	    sizeof(*o->acme))) == NULL)
		return -1;
	for (i = 0; i < mc->nacme; i++) {
		a = &o->acme[o->nacme];
		a->site = mc->acme[i];
		if (shm_mstats_acme_get(shm, a->site, &a->failures,
		    &a->renewals) == 0)
			o->nacme++;
	}
	return 0;
}
static int	collect_sites(struct metrics_snapshot *, const struct shm *,
		    const struct config *);

int
metrics_collect(struct metrics_snapshot *s, const struct shm *shm,
    const struct upstate *u, const struct config *cfg,
    const struct metrics_certs *mc)
{
	struct collect c = { s, u, cfg, upstate_now_ms(), 0, 0 };
	struct metrics_certs *own = NULL;
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
	if (c.rc == 0 && mc == NULL && (mc = own = metrics_certs_new(cfg)) ==
	    NULL)
		c.rc = -1;
	if (c.rc == 0 && (collect_ops(&s->ops, shm, mc) == -1 ||
	    collect_sites(s, shm, cfg) == -1))
		c.rc = -1;
	metrics_certs_free(own);
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
	free(s->ops.certs);
	s->ops.certs = NULL;
	s->ops.ncerts = 0;
	free(s->ops.acme);
	s->ops.acme = NULL;
	s->ops.nacme = 0;
	free(s->sites);
	s->sites = NULL;
	s->nsites = 0;
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

/* ---- the operational families: the exposition ---- */

_Static_assert(METRICS_PROCS == SHM_PROCS && METRICS_CAUSES == SHM_CAUSES,
    "the labels of portcullis_worker_restarts_total");

static const char *const proc_names[METRICS_PROCS] = {
	"worker", "acme", "prober", "signer"		/* enum shm_proc */
};
static const char *const cause_names[METRICS_CAUSES] = {
	"exit", "signal", "sandbox", "killed"		/* enum shm_cause */
};

/* A counter of every ACME name: the member at off of each. */
static void
acme_family(struct out *o, const struct metrics_ops *ops, const char *name,
    const char *help, size_t off)
{
	uint64_t v;
	size_t i;

	family(o, name, "counter", help);
	for (i = 0; i < ops->nacme; i++) {
		memcpy(&v, (const char *)&ops->acme[i] + off, sizeof(v));
		put_str(o, name);
		put_str(o, "{site=\"");
		put_label(o, ops->acme[i].site);
		putf(o, "\"} %llu\n", (unsigned long long)v);
	}
}

/*
 * Every family always has its HELP and TYPE (a dashboard's query finds
 * the name), and the counters with fixed labels have every combination,
 * 0 included, from the start.
 */
static void
render_ops(struct out *o, const struct metrics_ops *ops)
{
	const struct metrics_cert *c;
	size_t i;
	unsigned p, k;

	family(o, "portcullis_certificate_not_after_seconds", "gauge",
	    "The notAfter of a certificate served, in seconds since the "
	    "epoch; source: manual (files) or acme.");
	for (i = 0; i < ops->ncerts; i++) {
		c = &ops->certs[i];
		put_str(o, "portcullis_certificate_not_after_seconds"
		    "{listener=\"");
		putf(o, "%u\",site=\"", c->listener);
		put_label(o, c->site);
		put_str(o, "\",source=\"");
		put_label(o, c->source);
		putf(o, "\"} %lld\n", (long long)c->not_after);
	}
	acme_family(o, ops, "portcullis_acme_failures_total",
	    "ACME orders that failed, by name (one failed attempt: 1).",
	    offsetof(struct metrics_acme, failures));
	acme_family(o, ops, "portcullis_acme_renewals_total",
	    "ACME orders that got a certificate (first or renewal), by name.",
	    offsetof(struct metrics_acme, renewals));
	family(o, "portcullis_reloads_total", "counter",
	    "Reloads of the configuration (SIGHUP, ctl reload), by result.");
	put_str(o, "portcullis_reloads_total{result=\"ok\"}");
	putf(o, " %llu\n", (unsigned long long)ops->reloads_ok);
	put_str(o, "portcullis_reloads_total{result=\"failed\"}");
	putf(o, " %llu\n", (unsigned long long)ops->reloads_failed);
	family(o, "portcullis_worker_restarts_total", "counter",
	    "Children the master respawned, by process and cause (exit, "
	    "signal, sandbox: SIGSYS, killed: by the master).");
	for (p = 0; p < METRICS_PROCS; p++)
		for (k = 0; k < METRICS_CAUSES; k++) {
			put_str(o, "portcullis_worker_restarts_total{process=\"");
			put_str(o, proc_names[p]);
			put_str(o, "\",cause=\"");
			put_str(o, cause_names[k]);
			putf(o, "\"} %llu\n",
			    (unsigned long long)ops->restarts[p][k]);
		}
}
static void	render_sites(struct out *, const struct metrics_snapshot *);
static void	render_tls(struct out *, const struct metrics_snapshot *);

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
	render_ops(&o, &s->ops);
	render_sites(&o, s);
	render_tls(&o, s);
	if (size > 0)
		buf[o.len < size ? o.len : size - 1] = '\0';
	return o.len;
}

/* ---- requests by site, protocol and status class; TLS handshakes ---- */

static_assert(SHM_PROTOCOLS == 2 && SHM_STATUS_CLASSES == 5 &&
    SHM_DURATION_BUCKETS == 12 && SHM_TLS_REASONS == METRICS_TLS_NREASONS,
    "struct metrics_site and struct shm_site_row differ");

const double metrics_duration_bounds[11] = {
	0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
};
/* The same, as the le label says them. */
static const char *const bound_labels[12] = {
	"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5",
	"5", "10", "+Inf"
};

static const char *const tls_reasons[METRICS_TLS_NREASONS] = {
	"timeout", "closed", "protocol", "version", "cipher", "sni",
	"client_cert", "key", "other"
};

static const char *const protocols[2] = { "http/1.1", "h2" };

const char *
metrics_tls_reason_name(enum metrics_tls_reason r)
{
	return (unsigned)r < METRICS_TLS_NREASONS ? tls_reasons[r] : "other";
}

enum metrics_tls_reason
metrics_tls_reason(int err, unsigned flags)
{
	/* What the TLS layer decided first: the error is its consequence. */
	if (flags & METRICS_TLS_F_TIMEOUT)
		return METRICS_TLS_TIMEOUT;
	if (flags & METRICS_TLS_F_CLIENT_CERT)
		return METRICS_TLS_CLIENT_CERT;
	if (flags & METRICS_TLS_F_NO_CERT)
		return METRICS_TLS_SNI;
	switch (err) {
	case GNUTLS_E_PREMATURE_TERMINATION:
	case GNUTLS_E_PULL_ERROR:
	case GNUTLS_E_PUSH_ERROR:
	case GNUTLS_E_SESSION_EOF:
	case GNUTLS_E_TIMEDOUT:
		return METRICS_TLS_CLOSED;
	case GNUTLS_E_UNSUPPORTED_VERSION_PACKET:
	case GNUTLS_E_INAPPROPRIATE_FALLBACK:
		return METRICS_TLS_VERSION;
	case GNUTLS_E_NO_CIPHER_SUITES:
	case GNUTLS_E_NO_COMMON_KEY_SHARE:
	case GNUTLS_E_INSUFFICIENT_SECURITY:
	case GNUTLS_E_UNSUPPORTED_SIGNATURE_ALGORITHM:
	case GNUTLS_E_ECC_NO_SUPPORTED_CURVES:
	case GNUTLS_E_UNKNOWN_PK_ALGORITHM:
		return METRICS_TLS_CIPHER;
	case GNUTLS_E_UNRECOGNIZED_NAME:
		return METRICS_TLS_SNI;
	case GNUTLS_E_CERTIFICATE_REQUIRED:
	case GNUTLS_E_NO_CERTIFICATE_FOUND:
	case GNUTLS_E_CERTIFICATE_ERROR:
	case GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR:
		return METRICS_TLS_CLIENT_CERT;
	case GNUTLS_E_PK_SIGN_FAILED:
	case GNUTLS_E_CERTIFICATE_KEY_MISMATCH:
		return METRICS_TLS_KEY;
	case GNUTLS_E_FATAL_ALERT_RECEIVED:
	case GNUTLS_E_WARNING_ALERT_RECEIVED:
	case GNUTLS_E_UNEXPECTED_PACKET:
	case GNUTLS_E_UNEXPECTED_PACKET_LENGTH:
	case GNUTLS_E_UNEXPECTED_HANDSHAKE_PACKET:
	case GNUTLS_E_UNEXPECTED_EXTENSIONS_LENGTH:
	case GNUTLS_E_DECRYPTION_FAILED:
	case GNUTLS_E_MAC_VERIFY_FAILED:
	case GNUTLS_E_RECORD_OVERFLOW:
	case GNUTLS_E_RECEIVED_ILLEGAL_PARAMETER:
	case GNUTLS_E_ILLEGAL_PARAMETER:
	case GNUTLS_E_RECEIVED_ILLEGAL_EXTENSION:
	case GNUTLS_E_HANDSHAKE_TOO_LARGE:
	case GNUTLS_E_ERROR_IN_FINISHED_PACKET:
	case GNUTLS_E_NO_APPLICATION_PROTOCOL:
		return METRICS_TLS_PROTOCOL;
	default:
		return METRICS_TLS_OTHER;
	}
}

unsigned
metrics_duration_bucket(double seconds)
{
	unsigned i;

	/* le: a request of exactly a bound is in its bucket.  NaN: +Inf. */
	for (i = 0; i < 11; i++)
		if (seconds <= metrics_duration_bounds[i])
			return i;
	return 11;
}

void
metrics_count_request(struct shm_stats *st, unsigned slot, bool h2,
    int status, double seconds)
{
	struct shm_site_row *r;
	unsigned cls;

	if (slot >= SHM_SITE_ROWS)
		slot = SHM_SITE_OTHER;
	r = &st->site[slot];
	cls = status >= 100 && status < 600 ? (unsigned)status / 100 - 1 : 4;
	atomic_fetch_add_explicit(&r->requests[h2 ? 1 : 0][cls], 1,
	    memory_order_relaxed);
	if (!(seconds > 0))
		seconds = 0;
	atomic_fetch_add_explicit(&r->duration[metrics_duration_bucket(
	    seconds)], 1, memory_order_relaxed);
	/* A clock gone wild adds at most some 11 days. */
	atomic_fetch_add_explicit(&r->duration_us, seconds < 1e6 ?
	    (uint64_t)(seconds * 1e6) : 1000000000000u, memory_order_relaxed);
}

void
metrics_count_handshake(struct shm_stats *st)
{
	atomic_fetch_add_explicit(&st->tls_handshakes, 1,
	    memory_order_relaxed);
}

void
metrics_count_handshake_failure(struct shm_stats *st,
    enum metrics_tls_reason reason)
{
	if ((unsigned)reason >= METRICS_TLS_NREASONS)
		reason = METRICS_TLS_OTHER;
	atomic_fetch_add_explicit(&st->tls_failures[reason], 1,
	    memory_order_relaxed);
}

/* -- the master's rows by name -- */

struct metrics_sites {
	char		*names[SHM_SITE_SLOTS];	/* row SHM_SITE_FIRST + i */
	unsigned	 n;
};

struct metrics_sites *
metrics_sites_new(void)
{
	return calloc(1, sizeof(struct metrics_sites));
}

void
metrics_sites_free(struct metrics_sites *m)
{
	unsigned i;

	if (m == NULL)
		return;
	for (i = 0; i < m->n; i++)
		free(m->names[i]);
	free(m);
}

/* The row of name, given now if it has none; -1 if out of memory. */
static int
site_row(struct metrics_sites *m, const char *name)
{
	unsigned i;

	/* At most 256 names, compared at a (re)load only. */
	for (i = 0; i < m->n; i++)
		if (strcmp(m->names[i], name) == 0)
			return (int)(SHM_SITE_FIRST + i);
	if (m->n == SHM_SITE_SLOTS)
		return SHM_SITE_OTHER;
	if ((m->names[m->n] = strdup(name)) == NULL)
		return -1;
	return (int)(SHM_SITE_FIRST + m->n++);
}

int
metrics_sites_assign(struct metrics_sites *m, struct config *cfg)
{
	struct config_listener *l;
	size_t i, j;
	int row;

	for (i = 0; i < cfg->nlisteners; i++) {
		l = &cfg->listeners[i];
		for (j = 0; j < l->nsites; j++) {
			if ((row = site_row(m, l->sites[j].host)) == -1)
				return -1;
			l->sites[j].metrics_slot = (uint16_t)row;
		}
	}
	return 0;
}

/* -- the snapshot -- */

static void
site_add(struct metrics_site *d, const struct shm_site_row *r)
{
	unsigned p, c;

	for (p = 0; p < 2; p++)
		for (c = 0; c < 5; c++)
			d->requests[p][c] = sat_add(d->requests[p][c],
			    atomic_load_explicit(&r->requests[p][c],
			    memory_order_relaxed));
	for (c = 0; c < 12; c++)
		d->buckets[c] = sat_add(d->buckets[c],
		    atomic_load_explicit(&r->duration[c],
		    memory_order_relaxed));
	d->sum_us = sat_add(d->sum_us, atomic_load_explicit(&r->duration_us,
	    memory_order_relaxed));
}

/*
 * _unknown, _other and each row of cfg's sites once, summed over the
 * workers that ever started (a row of one that never did is a page
 * nobody wrote: not read, not allocated).  O(sites + rows): a row seen
 * is a bit (a name on two listeners, or past the slots: once).
 */
static int
collect_sites(struct metrics_snapshot *s, const struct shm *shm,
    const struct config *cfg)
{
	unsigned rows[SHM_SITE_ROWS];
	uint64_t seen[(SHM_SITE_ROWS + 63) / 64] = { 0 };
	const struct config_site *site;
	struct shm_counters *k;
	struct shm_stats *st;
	size_t i, j, n;
	unsigned w, p, r;

	if ((s->sites = calloc(SHM_SITE_ROWS, sizeof(*s->sites))) == NULL)
		return -1;
	s->sites[0].name = "_unknown";
	s->sites[1].name = "_other";
	rows[0] = SHM_SITE_UNKNOWN;
	rows[1] = SHM_SITE_OTHER;
	seen[SHM_SITE_UNKNOWN / 64] |= UINT64_C(1) << SHM_SITE_UNKNOWN % 64;
	seen[SHM_SITE_OTHER / 64] |= UINT64_C(1) << SHM_SITE_OTHER % 64;
	n = 2;
	for (i = 0; i < cfg->nlisteners; i++)
		for (j = 0; j < cfg->listeners[i].nsites; j++) {
			site = &cfg->listeners[i].sites[j];
			r = site->metrics_slot;
			if (r >= SHM_SITE_ROWS ||
			    (seen[r / 64] & UINT64_C(1) << r % 64))
				continue;
			seen[r / 64] |= UINT64_C(1) << r % 64;
			rows[n] = r;
			s->sites[n++].name = site->host;
		}
	s->nsites = n;
	for (w = 0; (k = shm_counters(shm, w)) != NULL; w++) {
		if (atomic_load(&k->pid) == 0 || (st = shm_stats(shm, w)) ==
		    NULL)
			continue;
		for (i = 0; i < n; i++)
			site_add(&s->sites[i], &st->site[rows[i]]);
		s->tls_handshakes = sat_add(s->tls_handshakes,
		    atomic_load_explicit(&st->tls_handshakes,
		    memory_order_relaxed));
		for (p = 0; p < METRICS_TLS_NREASONS; p++)
			s->tls_failures[p] = sat_add(s->tls_failures[p],
			    atomic_load_explicit(&st->tls_failures[p],
			    memory_order_relaxed));
	}
	return 0;
}

/* -- the exposition -- */

static void
site_label(struct out *o, const char *name)
{
	put_str(o, "site=\"");
	put_label(o, name);
	put_str(o, "\"");
}

static void
render_sites(struct out *o, const struct metrics_snapshot *s)
{
	const struct metrics_site *m;
	uint64_t cum, count;
	size_t i;
	unsigned p, c;

	family(o, "portcullis_requests_total", "counter",
	    "Client requests answered, by site, protocol and status class.");
	for (i = 0; i < s->nsites; i++) {
		m = &s->sites[i];
		for (p = 0; p < 2; p++)
			for (c = 0; c < 5; c++) {
				put_str(o, "portcullis_requests_total{");
				site_label(o, m->name);
				putf(o, ",protocol=\"%s\",status=\"%uxx\"} "
				    "%llu\n", protocols[p], c + 1,
				    (unsigned long long)m->requests[p][c]);
			}
	}
	family(o, "portcullis_request_duration_seconds", "histogram",
	    "Time from a request's head received to its response's end "
	    "(or the connection's), by site.");
	for (i = 0; i < s->nsites; i++) {
		m = &s->sites[i];
		cum = 0;
		for (c = 0; c < 12; c++) {
			cum = sat_add(cum, m->buckets[c]);
			put_str(o, "portcullis_request_duration_seconds_bucket{");
			site_label(o, m->name);
			putf(o, ",le=\"%s\"} %llu\n", bound_labels[c],
			    (unsigned long long)cum);
		}
		count = cum;
		put_str(o, "portcullis_request_duration_seconds_sum{");
		site_label(o, m->name);
		putf(o, "} %llu.%06llu\n",
		    (unsigned long long)(m->sum_us / 1000000),
		    (unsigned long long)(m->sum_us % 1000000));
		put_str(o, "portcullis_request_duration_seconds_count{");
		site_label(o, m->name);
		putf(o, "} %llu\n", (unsigned long long)count);
	}
}

static void
render_tls(struct out *o, const struct metrics_snapshot *s)
{
	unsigned r;

	family(o, "portcullis_tls_handshakes_total", "counter",
	    "TLS handshakes completed with clients.");
	putf(o, "portcullis_tls_handshakes_total %llu\n",
	    (unsigned long long)s->tls_handshakes);
	family(o, "portcullis_tls_handshake_failures_total", "counter",
	    "TLS handshakes with clients that failed, by reason.");
	for (r = 0; r < METRICS_TLS_NREASONS; r++) {
		put_str(o, "portcullis_tls_handshake_failures_total");
		putf(o, "{reason=\"%s\"} %llu\n", tls_reasons[r],
		    (unsigned long long)s->tls_failures[r]);
	}
}
