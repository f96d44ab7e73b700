/*
 * acmestate.c - the master's view of ACME (see acmestate.h).
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acmecache.h"
#include "acmejson.h"
#include "acmestate.h"
#include "log.h"
#include "util.h"

/* One name of one listener in ACME mode. */
struct acme_name {
	size_t			 listener;
	char			*name;
	char			*cache_dir;	/* where its certificate is */
	struct config_acme_cert	 cert;		/* cert.name NULL: none yet */
	int64_t			 not_after;	/* 0: no certificate */
	int64_t			 next;		/* as the ACME process said */
	char			 error[CONTROL_TEXT_MAX + 1];
};

/* A challenge the workers must answer. */
struct acme_chal {
	uint32_t		 id;
	size_t			 listener;
	struct config_challenge	 c;
	uint64_t		 gen;		/* first generation with it */
	bool			 live;		/* the ACME process was told */
};

struct acme_state {
	struct acme_name	*names;
	size_t			 nnames;
	struct acme_chal	*chals;
	size_t			 nchals;
};

struct acme_state *
acme_state_new(void)
{
	return calloc(1, sizeof(struct acme_state));
}

static void
blob_free(struct config_blob *b)
{
	if (b->data != NULL) {
		explicit_bzero(b->data, b->len);
		free(b->data);
	}
	b->data = NULL;
	b->len = 0;
}

static void
cert_free(struct config_acme_cert *c)
{
	free(c->name);
	c->name = NULL;
	blob_free(&c->cert);
	blob_free(&c->key);
}

static void
name_free(struct acme_name *n)
{
	free(n->name);
	free(n->cache_dir);
	cert_free(&n->cert);
}

static void
chal_free(struct acme_chal *ch)
{
	free(ch->c.name);
	free(ch->c.token);
	free(ch->c.keyauth);
}

void
acme_state_free(struct acme_state *st)
{
	size_t i;

	if (st == NULL)
		return;
	for (i = 0; i < st->nnames; i++)
		name_free(&st->names[i]);
	for (i = 0; i < st->nchals; i++)
		chal_free(&st->chals[i]);
	free(st->names);
	free(st->chals);
	free(st);
}

bool
acme_state_wanted(const struct config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->nlisteners; i++)
		if (cfg->listeners[i].tls_mode == CONFIG_TLS_ACME)
			return true;
	return false;
}

static const struct config_listener *
acme_listener(const struct config *cfg, size_t li)
{
	if (li >= cfg->nlisteners ||
	    cfg->listeners[li].tls_mode != CONFIG_TLS_ACME)
		return NULL;
	return &cfg->listeners[li];
}

static bool
listener_has_name(const struct config_listener *l, const char *name)
{
	size_t i;

	for (i = 0; i < l->acme.ndomains; i++)
		if (strcmp(l->acme.domains[i], name) == 0)
			return true;
	return false;
}

bool
acme_state_has_name(const struct config *cfg, const char *name)
{
	size_t i;

	for (i = 0; i < cfg->nlisteners; i++)
		if (acme_listener(cfg, i) != NULL &&
		    listener_has_name(&cfg->listeners[i], name))
			return true;
	return false;
}

bool
acme_state_listener_has_name(const struct config *cfg, size_t li,
    const char *name)
{
	const struct config_listener *l = acme_listener(cfg, li);

	return l != NULL && listener_has_name(l, name);
}

static struct acme_name *
find_name(struct acme_state *st, size_t li, const char *name)
{
	size_t i;

	for (i = 0; i < st->nnames; i++)
		if (st->names[i].listener == li &&
		    strcmp(st->names[i].name, name) == 0)
			return &st->names[i];
	return NULL;
}

static void
iso_time(int64_t t, char *buf, size_t bufsz)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, bufsz, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, bufsz, "%lld", (long long)t);
}

/* Read name's certificate from the cache: whether one was loaded. */
static bool
load_cached(struct acme_name *n, int64_t now)
{
	struct config_acme_cert c;
	char err[256], when[32];
	int64_t not_after;
	int rc;

	memset(&c, 0, sizeof(c));
	rc = acme_cache_read(n->cache_dir, n->name, now, &c, &not_after, err,
	    sizeof(err));
	if (rc == 1)
		return false;
	if (rc == -1) {
		log_warnx("ACME certificate for %s in %s not used: %s",
		    n->name, n->cache_dir, err);
		return false;
	}
	cert_free(&n->cert);
	n->cert = c;
	n->not_after = not_after;
	iso_time(not_after, when, sizeof(when));
	log_info("ACME certificate for %s loaded from %s (not after %s)",
	    n->name, n->cache_dir, when);
	return true;
}

void
acme_state_sync(struct acme_state *st, const struct config *cfg, int64_t now)
{
	const struct config_listener *l;
	struct acme_name *n, *nn;
	size_t i, j, k, total = 0;
	bool keep;

	/* Forget the names (and their challenges) no longer configured. */
	for (i = 0, k = 0; i < st->nnames; i++) {
		n = &st->names[i];
		l = acme_listener(cfg, n->listener);
		keep = l != NULL && listener_has_name(l, n->name) &&
		    strcmp(l->acme.cache_dir, n->cache_dir) == 0;
		if (!keep) {
			name_free(n);
			continue;
		}
		st->names[k++] = *n;
	}
	st->nnames = k;
	for (i = 0, k = 0; i < st->nchals; i++) {
		if (find_name(st, st->chals[i].listener,
		    st->chals[i].c.name) == NULL) {
			chal_free(&st->chals[i]);
			continue;
		}
		st->chals[k++] = st->chals[i];
	}
	st->nchals = k;

	for (i = 0; i < cfg->nlisteners; i++)
		if (acme_listener(cfg, i) != NULL)
			total += cfg->listeners[i].acme.ndomains;
	if (total == 0)
		return;
	if (total > st->nnames) {
		nn = reallocarray(st->names, total, sizeof(*nn));
		if (nn == NULL) {
			log_warnx("ACME: out of memory");
			return;
		}
		st->names = nn;
	}
	for (i = 0; i < cfg->nlisteners; i++) {
		if ((l = acme_listener(cfg, i)) == NULL)
			continue;
		for (j = 0; j < l->acme.ndomains; j++) {
			if (find_name(st, i, l->acme.domains[j]) != NULL)
				continue;
			n = &st->names[st->nnames];
			memset(n, 0, sizeof(*n));
			n->listener = i;
			n->name = strdup(l->acme.domains[j]);
			n->cache_dir = strdup(l->acme.cache_dir);
			if (n->name == NULL || n->cache_dir == NULL) {
				name_free(n);
				log_warnx("ACME: out of memory");
				return;
			}
			st->nnames++;
			(void)load_cached(n, now);
		}
	}
}

static int
blob_dup(struct config_blob *dst, const struct config_blob *src)
{
	dst->data = NULL;
	dst->len = 0;
	if (src->data == NULL)
		return 0;
	if ((dst->data = malloc(src->len + 1)) == NULL)
		return -1;
	memcpy(dst->data, src->data, src->len);
	dst->data[src->len] = '\0';
	dst->len = src->len;
	return 0;
}

static void
detach(struct config_listener *l)
{
	size_t i;

	for (i = 0; i < l->nacme_certs; i++)
		cert_free(&l->acme_certs[i]);
	free(l->acme_certs);
	l->acme_certs = NULL;
	l->nacme_certs = 0;
	for (i = 0; i < l->nchallenges; i++) {
		free(l->challenges[i].name);
		free(l->challenges[i].token);
		free(l->challenges[i].keyauth);
	}
	free(l->challenges);
	l->challenges = NULL;
	l->nchallenges = 0;
}

static int
attach_one(const struct acme_state *st, struct config_listener *l, size_t li)
{
	struct config_acme_cert *c;
	struct config_challenge *ch;
	size_t i;

	for (i = 0; i < st->nnames; i++) {
		if (st->names[i].listener != li ||
		    st->names[i].cert.name == NULL)
			continue;
		c = &l->acme_certs[l->nacme_certs++];
		memset(c, 0, sizeof(*c));
		if ((c->name = strdup(st->names[i].name)) == NULL ||
		    blob_dup(&c->cert, &st->names[i].cert.cert) == -1 ||
		    blob_dup(&c->key, &st->names[i].cert.key) == -1)
			return -1;
	}
	for (i = 0; i < st->nchals; i++) {
		if (st->chals[i].listener != li)
			continue;
		ch = &l->challenges[l->nchallenges++];
		*ch = st->chals[i].c;
		ch->name = ch->token = ch->keyauth = NULL;
		if ((ch->name = strdup(st->chals[i].c.name)) == NULL ||
		    (st->chals[i].c.token != NULL && (ch->token =
		    strdup(st->chals[i].c.token)) == NULL) ||
		    (st->chals[i].c.keyauth != NULL && (ch->keyauth =
		    strdup(st->chals[i].c.keyauth)) == NULL))
			return -1;
	}
	return 0;
}

int
acme_state_attach(const struct acme_state *st, struct config *cfg)
{
	struct config_listener *l;
	size_t i;

	for (i = 0; i < cfg->nlisteners; i++) {
		l = &cfg->listeners[i];
		detach(l);
		if (l->tls_mode != CONFIG_TLS_ACME)
			continue;
		/* At most every name and every challenge. */
		if (st->nnames > 0 && (l->acme_certs = calloc(st->nnames,
		    sizeof(*l->acme_certs))) == NULL)
			goto fail;
		if (st->nchals > 0 && (l->challenges = calloc(st->nchals,
		    sizeof(*l->challenges))) == NULL)
			goto fail;
		if (attach_one(st, l, i) == -1)
			goto fail;
	}
	return 0;
fail:
	for (i = 0; i < cfg->nlisteners; i++)
		detach(&cfg->listeners[i]);
	return -1;
}

void
acme_state_published(struct acme_state *st, uint64_t gen)
{
	size_t i;

	for (i = 0; i < st->nchals; i++)
		if (st->chals[i].gen == 0)
			st->chals[i].gen = gen;
}

size_t
acme_state_live(struct acme_state *st, uint64_t gen, uint32_t *ids,
    size_t max)
{
	size_t i, n = 0;

	for (i = 0; i < st->nchals && n < max; i++) {
		if (st->chals[i].live || st->chals[i].gen == 0 ||
		    st->chals[i].gen > gen)
			continue;
		st->chals[i].live = true;
		ids[n++] = st->chals[i].id;
	}
	return n;
}

static bool
keyauth_ok(const char *keyauth, const char *token)
{
	size_t tlen = strlen(token), i;

	/* "token.thumbprint": the thumbprint is 43 base64url characters. */
	if (strncmp(keyauth, token, tlen) != 0 || keyauth[tlen] != '.' ||
	    strlen(keyauth + tlen + 1) != 43)
		return false;
	for (i = tlen + 1; keyauth[i] != '\0'; i++)
		if (!acme_token_ok(keyauth + i, 1))
			return false;
	return true;
}

static void
chal_remove(struct acme_state *st, size_t i)
{
	chal_free(&st->chals[i]);
	st->chals[i] = st->chals[--st->nchals];
}

static enum acme_state_result
report_challenge(struct acme_state *st, const struct config *cfg,
    const struct control_acme *a, char *why, size_t whysz)
{
	const struct config_listener *l = acme_listener(cfg, a->listener);
	struct acme_chal *ch, *nc;
	size_t i;

	if (l == NULL || !listener_has_name(l, a->name)) {
		snprintf(why, whysz, "a challenge for %s, which is not an ACME "
		    "name of listener %u", a->name, a->listener);
		return ACME_STATE_VIOLATION;
	}
	if (a->type != (uint32_t)l->acme.challenge) {
		snprintf(why, whysz, "a challenge of another type than "
		    "listener %u's", a->listener);
		return ACME_STATE_VIOLATION;
	}
	if (a->type == CONFIG_ACME_HTTP_01 &&
	    (!acme_token_ok(a->token, strlen(a->token)) ||
	    !keyauth_ok(a->keyauth, a->token))) {
		snprintf(why, whysz, "a malformed http-01 token or key "
		    "authorization for %s", a->name);
		return ACME_STATE_VIOLATION;
	}
	/* One challenge per name: a new one replaces the old. */
	for (i = 0; i < st->nchals; i++)
		if (st->chals[i].id == a->id || (st->chals[i].listener ==
		    a->listener && strcmp(st->chals[i].c.name, a->name) == 0))
			chal_remove(st, i--);
	nc = reallocarray(st->chals, st->nchals + 1, sizeof(*nc));
	if (nc == NULL) {
		snprintf(why, whysz, "out of memory");
		return ACME_STATE_KEEP;
	}
	st->chals = nc;
	ch = &st->chals[st->nchals];
	memset(ch, 0, sizeof(*ch));
	ch->id = a->id;
	ch->listener = a->listener;
	ch->c.type = (enum config_acme_challenge)a->type;
	memcpy(ch->c.digest, a->digest, sizeof(ch->c.digest));
	if ((ch->c.name = strdup(a->name)) == NULL ||
	    (a->type == CONFIG_ACME_HTTP_01 &&
	    ((ch->c.token = strdup(a->token)) == NULL ||
	    (ch->c.keyauth = strdup(a->keyauth)) == NULL))) {
		chal_free(ch);
		snprintf(why, whysz, "out of memory");
		return ACME_STATE_KEEP;
	}
	st->nchals++;
	return ACME_STATE_PUBLISH;
}

enum acme_state_result
acme_state_report(struct acme_state *st, const struct config *cfg,
    enum control_type type, const struct control_acme *a, const char *text,
    int64_t now, char *why, size_t whysz)
{
	struct acme_name *n;
	size_t i;

	why[0] = '\0';
	switch (type) {
	case CONTROL_ACME_CHALLENGE:
		return report_challenge(st, cfg, a, why, whysz);
	case CONTROL_ACME_WITHDRAW:
		for (i = 0; i < st->nchals; i++)
			if (st->chals[i].id == a->id) {
				chal_remove(st, i);
				return ACME_STATE_PUBLISH;
			}
		return ACME_STATE_KEEP;
	case CONTROL_ACME_ISSUED:
	case CONTROL_ACME_STATE:
		break;
	default:
		snprintf(why, whysz, "an unexpected message");
		return ACME_STATE_VIOLATION;
	}
	if (acme_listener(cfg, a->listener) == NULL ||
	    (n = find_name(st, a->listener, a->name)) == NULL) {
		snprintf(why, whysz, "a report on %s, which is not an ACME "
		    "name of listener %u", a->name, a->listener);
		return ACME_STATE_VIOLATION;
	}
	if (type == CONTROL_ACME_STATE) {
		n->next = a->next;
		snprintf(n->error, sizeof(n->error), "%s", text);
		return ACME_STATE_KEEP;
	}
	return load_cached(n, now) ? ACME_STATE_PUBLISH : ACME_STATE_KEEP;
}

/* ---- status ---- */

struct jbuf {
	char	*p;
	size_t	 len, cap;
	bool	 oom;
};

static void PRINTFLIKE(2, 3)
jprintf(struct jbuf *b, const char *fmt, ...)
{
	va_list ap;
	char *np;
	int n;

	if (b->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		if ((np = realloc(b->p, b->cap * 2 + (size_t)n)) == NULL) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = b->cap * 2 + (size_t)n;
	}
}

static void
jtime(struct jbuf *b, const char *key, int64_t t)
{
	char when[32];

	if (t <= 0) {
		jprintf(b, ",\"%s\":null", key);
		return;
	}
	iso_time(t, when, sizeof(when));
	jprintf(b, ",\"%s\":\"%s\"", key, when);
}

static void
jentry(struct jbuf *b, bool *first, const char *name, size_t li,
    const char *source, int64_t not_after)
{
	char esc[2 * CONFIG_HOST_MAX + 16];
	bool cut;

	esc[log_escape_json(name, strlen(name), esc, sizeof(esc) - 1,
	    &cut)] = '\0';
	jprintf(b, "%s{\"name\":%s,\"listener\":%zu,\"source\":\"%s\"",
	    *first ? "" : ",", esc, li, source);
	jtime(b, "not_after", not_after);
	*first = false;
}

char *
acme_state_json(const struct acme_state *st, const struct config *cfg,
    int64_t (*not_after_of)(const struct config_blob *cert))
{
	struct jbuf b = { NULL, 0, 256, false };
	const struct config_listener *l;
	const struct config_site *s;
	const struct acme_name *n;
	char esc[2 * CONTROL_TEXT_MAX + 16];
	bool first = true, cut;
	size_t i, j;

	if ((b.p = malloc(b.cap)) == NULL)
		return NULL;
	jprintf(&b, "\"certificates\":[");
	for (i = 0; i < cfg->nlisteners; i++) {
		l = &cfg->listeners[i];
		/* A site's own certificate, or a manual listener's. */
		for (j = 0; j < l->nsites; j++) {
			s = &l->sites[j];
			if (s->tls.cert.data != NULL)
				jentry(&b, &first, s->host, i, "manual",
				    not_after_of(&s->tls.cert));
			else if (l->tls_mode == CONFIG_TLS_MANUAL &&
			    l->tls.cert.data != NULL)
				jentry(&b, &first, s->host, i, "manual",
				    not_after_of(&l->tls.cert));
			else
				continue;
			/* Every entry has every field: manual ones renew
			   by hand. */
			jprintf(&b, ",\"next_renewal\":null,"
			    "\"last_error\":null}");
		}
		for (j = 0; j < st->nnames; j++) {
			n = &st->names[j];
			if (n->listener != i)
				continue;
			jentry(&b, &first, n->name, i, "acme", n->not_after);
			jtime(&b, "next_renewal", n->next);
			if (n->error[0] == '\0') {
				jprintf(&b, ",\"last_error\":null}");
				continue;
			}
			esc[log_escape_json(n->error, strlen(n->error), esc,
			    sizeof(esc) - 1, &cut)] = '\0';
			jprintf(&b, ",\"last_error\":%s}", esc);
		}
	}
	jprintf(&b, "]");
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}
