/*
 * config.c - the configuration file: schema, parsing and validation.
 *
 * libconfuse parses the syntax; everything else happens here, in two steps:
 * while libconfuse parses, a validate callback records the line of every
 * option (libconfuse keeps none), then the tree is converted into plain
 * structs and every rule is checked, each failure becoming one
 * "FILE:LINE: reason" message.  Conversion goes on after an error so that
 * one run reports every problem.
 */
#include "autoconf.h"

#include <sys/stat.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include <confuse.h>

#include "cidr.h"
#include "config.h"
#include "path.h"
#include "util.h"

#define MAX_ERRORS	100

/* Where libconfuse saw an option: the key is the section and the name. */
struct line_rec {
	const cfg_t	*sec;
	const char	*name;
	unsigned	 idx;		/* a list's element; else 0 */
	int		 line;
};

struct loader {
	const char		*name;		/* file name for messages */
	const struct config_opts *opts;
	struct config_errors	*errs;
	struct line_rec		*lines;
	size_t			 nlines;
	size_t			 caplines;
	int			 last_line;	/* last line of the file */
	const cfg_t		*root;
	const struct config	*cfg;		/* its global settings first */
	const cfg_opt_t		*list;		/* the list being parsed */
	unsigned		 list_n;	/* its elements so far */
	char			*list_last;	/* its last string element */
	bool			 oom;
	/* The config being loaded: its files are added as backends name
	   them (load_file), what was found of each in fstate. */
	struct config		*out;
	struct file_state	*fstate;
	size_t			 files_bytes;
	/* Client certificate and key pairs already checked (key_checked). */
	struct key_pair		*pairs;
	size_t			 npairs;
};

/* What the load found of a file in cfg->files (same index). */
struct file_state {
	bool		 readable;	/* read whole (always, when pure) */
	bool		 ca_checked;	/* checked as a trust store */
	bool		 ca_ok;
};

struct key_pair {
	uint32_t	 cert, key;
};

/* libconfuse callbacks carry no user pointer; parsing is not reentrant. */
static struct loader *cur_loader;

static int	 record_line(cfg_t *, cfg_opt_t *);
static bool	 path_ok(struct loader *, int, const char *, const char *,
		    bool);
static void	 load_site_limit(struct loader *, cfg_t *, struct config_site *);
static void	 load_client_auth(struct loader *, cfg_t *,
		    struct config_site *, const char *);
static void	 load_edge(struct loader *, cfg_t *, struct config_access *,
		    struct config_edits *, const char *);

/* Every acme-* option needs mode = "acme" (refuse_acme_options). */
static cfg_opt_t tls_opts[] = {
	CFG_STR("mode", "manual", CFGF_NONE),
	CFG_STR("cert", NULL, CFGF_NODEFAULT),
	CFG_STR("key", NULL, CFGF_NODEFAULT),
	CFG_STR_LIST("acme-domains", NULL, CFGF_NODEFAULT),
	CFG_STR("acme-directory", "production", CFGF_NONE),
	CFG_STR("acme-contact", NULL, CFGF_NODEFAULT),
	CFG_STR("acme-challenge", "tls-alpn-01", CFGF_NONE),
	CFG_STR("acme-cache-dir", CONFIG_ACME_CACHE_DIR, CFGF_NONE),
	CFG_STR("acme-ca-file", NULL, CFGF_NODEFAULT),
	CFG_INT("acme-renew-days", 0, CFGF_NONE),
	CFG_STR("acme-eab-kid", NULL, CFGF_NODEFAULT),
	CFG_STR("acme-eab-hmac-key", NULL, CFGF_NODEFAULT),
	CFG_END()
};

/* A site's own limit; what it leaves out comes from the global one. */
static cfg_opt_t site_ratelimit_opts[] = {
	CFG_FLOAT("requests-per-second", 10, CFGF_NONE),
	CFG_INT("burst", 20, CFGF_NONE),
	CFG_END()
};

/* health-check { } of a backend (written at most once). */
static cfg_opt_t health_opts[] = {
	CFG_STR("path", "/", CFGF_NONE),
	CFG_INT("interval", 5, CFGF_NONE),
	CFG_INT("timeout", 2, CFGF_NONE),
	CFG_INT("passes", 2, CFGF_NONE),
	CFG_INT("fails", 3, CFGF_NONE),
	CFG_STR("status", "2xx", CFGF_NONE),
	CFG_END()
};

/*
 * A backend's options (load_backend), in a site and in a path block,
 * where those left out are the site's: the defaults below are a site's.
 */
#define BACKEND_OPTS							\
	CFG_STR_LIST("upstream", NULL, CFGF_NODEFAULT),			\
	CFG_STR("upstream-scheme", "http", CFGF_NONE),			\
	CFG_STR("load-balance", "round-robin", CFGF_NONE),		\
	CFG_INT("max-fails", 1, CFGF_NONE),				\
	CFG_INT("fail-timeout", 10, CFGF_NONE),				\
	CFG_SEC("health-check", health_opts, CFGF_MULTI),		\
	CFG_STR("upstream-ca-file", NULL, CFGF_NODEFAULT),		\
	CFG_STR("upstream-server-name", NULL, CFGF_NODEFAULT),		\
	CFG_BOOL("upstream-verify", cfg_true, CFGF_NONE),		\
	CFG_STR("upstream-client-cert", NULL, CFGF_NODEFAULT),		\
	CFG_STR("upstream-client-key", NULL, CFGF_NODEFAULT),		\
	CFG_INT("connect-timeout", 5, CFGF_NONE),			\
	CFG_INT("request-timeout", 60, CFGF_NONE),			\
	CFG_INT("upstream-keepalive", 256, CFGF_NONE),			\
	CFG_INT("upstream-keepalive-timeout", 60, CFGF_NONE),		\
	CFG_STR("upstream-proxy-protocol", "none", CFGF_NONE)

/*
 * Client address rules and the header options (issue 18, load_edge), in
 * a site and in a path block, where each left out is the site's.
 */
#define EDGE_OPTS							\
	CFG_STR_LIST("allow", NULL, CFGF_NODEFAULT),			\
	CFG_STR_LIST("deny", NULL, CFGF_NODEFAULT),			\
	CFG_STR_LIST("response-header", NULL, CFGF_NODEFAULT),		\
	CFG_STR_LIST("hide-response-header", NULL, CFGF_NODEFAULT),	\
	CFG_STR_LIST("request-header", NULL, CFGF_NODEFAULT)

/* path "PREFIX" { } in a site. */
static cfg_opt_t path_opts[] = {
	BACKEND_OPTS,
	EDGE_OPTS,
	CFG_STR("replace-path", NULL, CFGF_NODEFAULT),
	CFG_END()
};

static cfg_opt_t site_opts[] = {
	BACKEND_OPTS,
	EDGE_OPTS,
	CFG_STR("cert", NULL, CFGF_NODEFAULT),
	CFG_STR("key", NULL, CFGF_NODEFAULT),
	CFG_STR("client-ca-file", NULL, CFGF_NODEFAULT),
	CFG_STR("client-auth", NULL, CFGF_NODEFAULT),
	CFG_SEC("rate-limit", site_ratelimit_opts, CFGF_NONE),
	CFG_SEC("path", path_opts, CFGF_MULTI | CFGF_TITLE |
	    CFGF_NO_TITLE_DUPES),
	CFG_END()
};

static cfg_opt_t listener_opts[] = {
	CFG_STR("bind", NULL, CFGF_NODEFAULT),
	CFG_INT("https-port", 443, CFGF_NONE),
	CFG_INT("http-port", 80, CFGF_NONE),
	CFG_INT("max-connections-per-client", 0, CFGF_NONE),
	CFG_BOOL("proxy-protocol", cfg_false, CFGF_NONE),
	CFG_STR_LIST("trusted-proxies", NULL, CFGF_NODEFAULT),
	CFG_STR("real-ip-header", NULL, CFGF_NODEFAULT),
	CFG_INT("redirect-port", 0, CFGF_NONE),
	CFG_SEC("tls", tls_opts, CFGF_NONE),
	CFG_SEC("site", site_opts, CFGF_MULTI | CFGF_TITLE |
	    CFGF_NO_TITLE_DUPES),
	CFG_END()
};

static cfg_opt_t logging_opts[] = {
	CFG_STR("level", "info", CFGF_NONE),
	CFG_STR("format", "text", CFGF_NONE),
	CFG_BOOL("access", cfg_true, CFGF_NONE),
	CFG_STR("file", NULL, CFGF_NODEFAULT),
	CFG_END()
};

static cfg_opt_t ratelimit_opts[] = {
	CFG_FLOAT("requests-per-second", 10, CFGF_NONE),
	CFG_INT("burst", 20, CFGF_NONE),
	CFG_INT("table-size", CONFIG_RATE_TABLE_DEFAULT, CFGF_NONE),
	CFG_END()
};

static cfg_opt_t body_opts[] = {
	CFG_INT("limit-bytes", 104857600, CFGF_NONE),
	CFG_END()
};

static cfg_opt_t http_opts[] = {
	CFG_INT("max-request-line", 8192, CFGF_NONE),
	CFG_INT("max-header-size", 16384, CFGF_NONE),
	CFG_INT("max-headers", 100, CFGF_NONE),
	CFG_INT("handshake-timeout", 10, CFGF_NONE),
	CFG_INT("header-timeout", 20, CFGF_NONE),
	CFG_INT("idle-timeout", 60, CFGF_NONE),
	CFG_INT("client-timeout", 60, CFGF_NONE),
	CFG_INT("tunnel-idle-timeout", 300, CFGF_NONE),
	CFG_BOOL("http2", cfg_true, CFGF_NONE),
	CFG_INT("http2-max-concurrent-streams", 100, CFGF_NONE),
	CFG_END()
};

static cfg_opt_t root_opts[] = {
	CFG_STR("user", "portcullis", CFGF_NONE),
	CFG_INT("workers", 0, CFGF_NONE),
	CFG_BOOL("allow-wildcard-bind", cfg_false, CFGF_NONE),
	CFG_INT("health-check-port", 9900, CFGF_NONE),
	CFG_STR("admin-socket", CONFIG_ADMIN_SOCKET, CFGF_NONE),
	CFG_INT("shutdown-timeout", 30, CFGF_NONE),
	CFG_INT("max-connections", 4096, CFGF_NONE),
	CFG_INT("session-ticket-rotation", CONFIG_TICKET_ROTATION, CFGF_NONE),
	CFG_STR("seccomp", "kill", CFGF_NONE),
	CFG_SEC("logging", logging_opts, CFGF_NONE),
	CFG_SEC("rate-limit", ratelimit_opts, CFGF_NONE),
	CFG_SEC("body", body_opts, CFGF_NONE),
	CFG_SEC("http", http_opts, CFGF_NONE),
	CFG_SEC("listener", listener_opts, CFGF_MULTI),
	CFG_END()
};

/* Every option of every section records its line when it is parsed. */
static void
install_line_recorders(cfg_opt_t *opts)
{
	for (; opts->name != NULL; opts++) {
		opts->validcb = record_line;
		if (opts->type == CFGT_SEC)
			install_line_recorders(opts->subopts);
	}
}

static void PRINTFLIKE(4, 0)
add_msg(struct loader *ld, int line, bool warning, const char *fmt,
    va_list ap)
{
	struct config_errors *e = ld->errs;
	char msg[1024], **n;
	int *nl;
	size_t i;

	if (e->n >= MAX_ERRORS)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if ((n = reallocarray(e->msgs, e->n + 1, sizeof(*n))) != NULL)
		e->msgs = n;
	if ((nl = reallocarray(e->lines, e->n + 1, sizeof(*nl))) != NULL)
		e->lines = nl;
	if (n == NULL || nl == NULL) {
		ld->oom = true;
		return;
	}
	/* Keep the messages in line order (stable). */
	for (i = e->n; i > 0 && e->lines[i - 1] > line; i--) {
		e->msgs[i] = e->msgs[i - 1];
		e->lines[i] = e->lines[i - 1];
	}
	if (asprintf(&e->msgs[i], "%s:%d: %s%s", ld->name, line,
	    warning ? "warning: " : "", msg) < 0) {
		memmove(&e->msgs[i], &e->msgs[i + 1], (e->n - i) *
		    sizeof(*e->msgs));
		memmove(&e->lines[i], &e->lines[i + 1], (e->n - i) *
		    sizeof(*e->lines));
		ld->oom = true;
		return;
	}
	e->lines[i] = line;
	e->n++;
	if (warning)
		e->nwarn++;
}

/* An error: the load fails. */
static void PRINTFLIKE(3, 4)
cerr(struct loader *ld, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add_msg(ld, line, false, fmt, ap);
	va_end(ap);
}

/* A warning: said, and the load goes on. */
static void PRINTFLIKE(3, 4)
cwarn(struct loader *ld, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add_msg(ld, line, true, fmt, ap);
	va_end(ap);
}

static size_t
nerrors(const struct config_errors *e)
{
	return e->n - e->nwarn;
}

static void PRINTFLIKE(2, 0)
confuse_error(cfg_t *cfg, const char *fmt, va_list ap)
{
	char msg[1024];

	if (cur_loader == NULL)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	cerr(cur_loader, cfg != NULL ? cfg->line : 0, "%s", msg);
}

/*
 * libconfuse calls a list's callback once per element (the list growing
 * by one each time) and once more at its closing brace (no growth); a
 * list in one string, l = "a", gets a single call.  Returns true for a
 * call that is not the first of an assignment, with *idx the element to
 * record (or UINT_MAX: nothing to record).  l = "a" then l = "b" also
 * makes a call without growth (the second assignment replaces the list):
 * for a list of strings, it is told from a closing brace by its element,
 * which differs (the same string twice is the same setting).
 */
static bool
list_continues(struct loader *ld, const cfg_opt_t *opt, unsigned *idx)
{
	unsigned n = cfg_opt_size((cfg_opt_t *)opt);
	const char *last = NULL;
	bool same;

	*idx = 0;
	if (!(opt->flags & CFGF_LIST)) {
		ld->list = NULL;
		return false;
	}
	if (opt->type == CFGT_STR && n > 0)
		last = cfg_opt_getnstr((cfg_opt_t *)opt, n - 1);
	same = (last == NULL && ld->list_last == NULL) || (last != NULL &&
	    ld->list_last != NULL && strcmp(last, ld->list_last) == 0);
	free(ld->list_last);
	ld->list_last = last != NULL ? strdup(last) : NULL;
	if (ld->list == opt && n == ld->list_n && same) {
		ld->list = NULL;		/* the closing brace */
		*idx = UINT_MAX;
		return true;
	}
	if (ld->list == opt && n == ld->list_n + 1) {
		ld->list_n = n;
		*idx = n - 1;
		return true;
	}
	ld->list = opt;
	ld->list_n = n;
	*idx = n > 0 ? n - 1 : 0;
	return false;
}

static int
record_line(cfg_t *cfg, cfg_opt_t *opt)
{
	struct loader *ld = cur_loader;
	const cfg_t *sec = cfg;
	struct line_rec *n;
	unsigned idx;
	size_t i;

	if (ld == NULL)
		return 0;
	/* A section records against itself: it is the last one of its kind. */
	if (opt->type == CFGT_SEC)
		return 0;
	if (list_continues(ld, opt, &idx)) {
		if (idx == UINT_MAX)
			return 0;
		goto add;
	}
	for (i = 0; i < ld->nlines; i++) {
		if (ld->lines[i].sec == sec &&
		    strcmp(ld->lines[i].name, opt->name) == 0) {
			cerr(ld, cfg->line, "'%s' set twice (first on line %d)",
			    opt->name, ld->lines[i].line);
			return 0;
		}
	}
add:
	if (ld->nlines == ld->caplines) {
		size_t cap = ld->caplines ? ld->caplines * 2 : 64;

		if ((n = reallocarray(ld->lines, cap, sizeof(*n))) == NULL) {
			ld->oom = true;
			return -1;
		}
		ld->lines = n;
		ld->caplines = cap;
	}
	ld->lines[ld->nlines].sec = sec;
	ld->lines[ld->nlines].name = opt->name;
	ld->lines[ld->nlines].idx = idx;
	ld->lines[ld->nlines].line = cfg->line;
	ld->nlines++;
	return 0;
}

/* The line an option was set on, or 0 if it kept its default. */
static int
opt_line(struct loader *ld, const cfg_t *sec, const char *name)
{
	size_t i;

	for (i = 0; i < ld->nlines; i++)
		if (ld->lines[i].sec == sec &&
		    strcmp(ld->lines[i].name, name) == 0)
			return ld->lines[i].line;
	return 0;
}

/* The line of element idx of a list option (else of the option). */
static int
elem_line(struct loader *ld, const cfg_t *sec, const char *name,
    unsigned idx)
{
	size_t i;

	for (i = 0; i < ld->nlines; i++)
		if (ld->lines[i].sec == sec && ld->lines[i].idx == idx &&
		    strcmp(ld->lines[i].name, name) == 0)
			return ld->lines[i].line;
	return opt_line(ld, sec, name);
}

/*
 * The line to blame for a section as a whole: its first option, or (for an
 * empty section, where libconfuse only knows its closing brace) that.
 */
static int
sec_line(struct loader *ld, const cfg_t *sec)
{
	int best = 0;
	size_t i;

	for (i = 0; i < ld->nlines; i++)
		if (ld->lines[i].sec == sec &&
		    (best == 0 || ld->lines[i].line < best))
			best = ld->lines[i].line;
	/* The root's own line is past the end of the file: use the end. */
	if (best == 0)
		best = sec != ld->root && sec->line > 0 ? sec->line :
		    ld->last_line;
	return best;
}

/* An option's line, falling back to its section's line for defaults. */
static int
line_of(struct loader *ld, const cfg_t *sec, const char *name)
{
	int line = opt_line(ld, sec, name);

	return line != 0 ? line : sec_line(ld, sec);
}

/* An integer option within [min, max]. */
static long
get_int(struct loader *ld, cfg_t *sec, const char *name, long min, long max)
{
	long v = cfg_getint(sec, name);

	if (v < min || v > max) {
		cerr(ld, line_of(ld, sec, name), "'%s' must be between %ld "
		    "and %ld, not %ld", name, min, max, v);
		return min;
	}
	return v;
}

static char *
xstrdup_or_null(struct loader *ld, const char *s)
{
	char *d;

	if (s == NULL)
		return NULL;
	if ((d = strdup(s)) == NULL)
		ld->oom = true;
	return d;
}

static int
dns_label_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > 63 || s[0] == '-' || s[len - 1] == '-')
		return -1;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-'))
			return -1;
	}
	return 0;
}

int
config_check_hostname(const char *name, size_t len, bool allow_wildcard)
{
	size_t start, i;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len > CONFIG_HOST_MAX)
		return -1;	/* "*." counts too */
	if (allow_wildcard && len > 2 && name[0] == '*' && name[1] == '.') {
		name += 2;
		len -= 2;
		/* "*.com" would match a whole top-level domain. */
		if (memchr(name, '.', len) == NULL)
			return -1;
	}
	if (len == 0 || len > CONFIG_HOST_MAX)
		return -1;
	for (start = 0, i = 0; i <= len; i++) {
		if (i == len || name[i] == '.') {
			if (dns_label_ok(name + start, i - start) == -1)
				return -1;
			start = i + 1;
		}
	}
	/* An all-numeric last label is an IPv4 address, not a name. */
	for (start = 0, i = 0; i < len; i++)
		if (name[i] == '.')
			start = i + 1;
	for (i = start; i < len; i++)
		if (name[i] < '0' || name[i] > '9')
			return 0;
	return -1;
}

/*
 * Read a whole regular file of at most max bytes, NUL-terminated (the
 * terminator is not counted in out->len).
 */
static int
read_file(const char *path, size_t max, struct config_blob *out, char *err,
    size_t errsz)
{
	struct stat st;
	size_t got = 0;
	ssize_t n;
	int fd;

	out->data = NULL;
	out->len = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) == -1)
		goto fail_errno;
	if (fstat(fd, &st) == -1)
		goto fail_errno;
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errsz, "not a regular file");
		goto fail;
	}
	if ((uint64_t)st.st_size > max) {
		snprintf(err, errsz, "larger than %zu bytes", max);
		goto fail;
	}
	/* One byte more than the limit, to notice a file that grew. */
	if ((out->data = malloc(max + 1)) == NULL)
		goto fail_errno;
	while (got <= max) {
		n = read(fd, out->data + got, max + 1 - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1)
			goto fail_errno;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got > max) {
		snprintf(err, errsz, "larger than %zu bytes", max);
		goto fail;
	}
	out->data[got] = '\0';
	out->len = got;
	close(fd);
	return 0;
fail_errno:
	snprintf(err, errsz, "%s", strerror(errno));
fail:
	if (fd != -1)
		close(fd);
	free(out->data);
	out->data = NULL;
	return -1;
}

static void
blob_free(struct config_blob *b, bool secret)
{
	if (b->data != NULL && secret)
		explicit_bzero(b->data, b->len);
	free(b->data);
	b->data = NULL;
	b->len = 0;
}

/* A cert/key pair in sec: both or neither, required or optional. */
static void
load_tls_pair(struct loader *ld, cfg_t *sec, struct config_tls *tls,
    bool required, const char *what)
{
	bool has_cert = cfg_size(sec, "cert") > 0;
	bool has_key = cfg_size(sec, "key") > 0;
	int cline = line_of(ld, sec, "cert"), kline = line_of(ld, sec, "key");
	char err[256];
	bool ok = true;

	if (!has_cert && !has_key) {
		if (required)
			cerr(ld, sec_line(ld, sec), "%s: 'cert' and 'key' are "
			    "required", what);
		return;
	}
	if (has_cert != has_key) {
		cerr(ld, has_cert ? cline : kline, "%s: 'cert' and 'key' go "
		    "together", what);
		return;
	}
	tls->cert_path = xstrdup_or_null(ld, cfg_getstr(sec, "cert"));
	tls->key_path = xstrdup_or_null(ld, cfg_getstr(sec, "key"));
	if (ld->opts->pure || tls->cert_path == NULL || tls->key_path == NULL)
		return;
	if (read_file(tls->cert_path, CONFIG_PEM_MAX, &tls->cert, err,
	    sizeof(err)) == -1) {
		cerr(ld, cline, "cannot read certificate %s: %s",
		    tls->cert_path, err);
		ok = false;
	}
	if (read_file(tls->key_path, CONFIG_PEM_MAX, &tls->key, err,
	    sizeof(err)) == -1) {
		cerr(ld, kline, "cannot read key %s: %s", tls->key_path, err);
		ok = false;
	}
	if (ok && ld->opts->keypair_check(&tls->cert, &tls->key, err,
	    sizeof(err)) == -1)
		cerr(ld, kline, "%s with %s: %s", tls->key_path,
		    tls->cert_path, err);
}

/* Resolve an upstream host; literal addresses need no look-up. */
static int
resolve_upstream(struct loader *ld, int line, const char *host, uint16_t port,
    struct config_upstream *up)
{
	struct addrinfo hints, *res = NULL;
	char portstr[8];
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if (ld->opts->pure)
		hints.ai_flags |= AI_NUMERICHOST;
	snprintf(portstr, sizeof(portstr), "%u", port);
	if ((rc = getaddrinfo(host, portstr, &hints, &res)) != 0) {
		if (ld->opts->pure && rc == EAI_NONAME)
			return 0;
		cerr(ld, line, "cannot resolve upstream host \"%s\": %s", host,
		    gai_strerror(rc));
		return -1;
	}
	if (res->ai_addrlen > sizeof(up->addr)) {
		freeaddrinfo(res);
		return -1;
	}
	memcpy(&up->addr, res->ai_addr, res->ai_addrlen);
	up->addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* "host:port", "1.2.3.4:port" or "[v6]:port". */
static void
parse_upstream(struct loader *ld, int line, const char *s,
    struct config_upstream *up)
{
	char host[CONFIG_HOST_MAX + 1];
	const char *hp, *pp, *colon, *close;
	struct in6_addr a6;
	struct in_addr a4;
	uint64_t port;
	size_t hlen;

	if (strstr(s, "://") != NULL) {
		cerr(ld, line, "upstream \"%s\" is host:port, without a scheme "
		    "(upstream-scheme says how to talk to it)", s);
		return;
	}
	if (s[0] == '[') {
		close = strchr(s, ']');
		if (close == NULL || close[1] != ':')
			goto bad;
		hp = s + 1;
		hlen = (size_t)(close - hp);
		pp = close + 2;
	} else {
		if ((colon = strrchr(s, ':')) == NULL)
			goto bad;
		if (memchr(s, ':', (size_t)(colon - s)) != NULL) {
			cerr(ld, line, "upstream \"%s\": an IPv6 address "
			    "goes in brackets, as in \"[::1]:8080\"", s);
			return;
		}
		hp = s;
		hlen = (size_t)(colon - s);
		pp = colon + 1;
	}
	if (hlen == 0 || hlen > CONFIG_HOST_MAX ||
	    util_parse_u64(pp, strlen(pp), 1, 65535, &port) == -1)
		goto bad;
	memcpy(host, hp, hlen);
	host[hlen] = '\0';
	if (s[0] == '[') {
		if (inet_pton(AF_INET6, host, &a6) != 1)
			goto bad;
	} else if (inet_pton(AF_INET, host, &a4) != 1 &&
	    config_check_hostname(host, hlen, false) == -1)
		goto bad;
	up->host = xstrdup_or_null(ld, host);
	resolve_upstream(ld, line, host, (uint16_t)port, up);
	return;
bad:
	cerr(ld, line, "upstream \"%s\" is not host:port (a DNS name, an IPv4 "
	    "address or a bracketed IPv6 address, and a port 1-65535)", s);
}

/* Lower-case, without a trailing dot. */
static char *
normalize_host(struct loader *ld, const char *title)
{
	size_t i, len = strlen(title);
	char *h;

	if (len > 0 && title[len - 1] == '.')
		len--;
	if ((h = malloc(len + 1)) == NULL) {
		ld->oom = true;
		return NULL;
	}
	for (i = 0; i < len; i++)
		h[i] = util_lower(title[i]);
	h[len] = '\0';
	return h;
}

/*
 * An integer option of a backend: from section s if it is set there or
 * there is no site to take it from, else the site's value.
 */
static unsigned
backend_int(struct loader *ld, cfg_t *s, const char *name, long min,
    long max, const struct config_backend *site, unsigned site_value)
{
	if (site != NULL && opt_line(ld, s, name) == 0)
		return site_value;
	return (unsigned)get_int(ld, s, name, min, max);
}

/* A backend's list of upstreams: 1..CONFIG_MAX_UPSTREAMS, none twice. */
static void
load_upstreams(struct loader *ld, cfg_t *s, struct config_backend *be,
    int line, const char *what)
{
	size_t i, j, n = cfg_size(s, "upstream");
	const char *name;
	int eline;

	if (n == 0) {
		cerr(ld, line, "%s: 'upstream' is required", what);
		return;
	}
	if (n > CONFIG_MAX_UPSTREAMS) {
		cerr(ld, line_of(ld, s, "upstream"), "%s: more than %d "
		    "upstreams", what, CONFIG_MAX_UPSTREAMS);
		return;
	}
	if ((be->ups = calloc(n, sizeof(*be->ups))) == NULL) {
		ld->oom = true;
		return;
	}
	be->nups = n;
	for (i = 0; i < n; i++) {
		name = cfg_getnstr(s, "upstream", (unsigned)i);
		eline = elem_line(ld, s, "upstream", (unsigned)i);
		for (j = 0; j < i; j++)
			if (strcmp(be->ups[j].name, name) == 0)
				cerr(ld, eline, "%s: upstream \"%s\" is "
				    "listed twice", what, name);
		be->ups[i].name = xstrdup_or_null(ld, name);
		parse_upstream(ld, eline, name, &be->ups[i]);
		if (be->ups[i].name == NULL)
			be->ups[i].name = xstrdup_or_null(ld, "");
	}
}

static const char *const balance_names[] = {
	[CONFIG_LB_ROUND_ROBIN] = "round-robin",
	[CONFIG_LB_LEAST_CONN] = "least-connections",
	[CONFIG_LB_IP_HASH] = "ip-hash",
	[CONFIG_LB_STICKY] = "sticky-cookie",
};

const char *
config_balance_name(enum config_balance b)
{
	if ((size_t)b >= sizeof(balance_names) / sizeof(balance_names[0]))
		return "?";
	return balance_names[b];
}

static void
load_balance(struct loader *ld, cfg_t *s, struct config_backend *be,
    const struct config_backend *site, const char *what)
{
	const char *v = cfg_getstr(s, "load-balance");
	size_t i;

	if (site != NULL && opt_line(ld, s, "load-balance") == 0) {
		be->balance = site->balance;
		return;
	}
	for (i = 0; i < sizeof(balance_names) / sizeof(balance_names[0]); i++)
		if (v != NULL && strcmp(v, balance_names[i]) == 0) {
			be->balance = (enum config_balance)i;
			return;
		}
	cerr(ld, line_of(ld, s, "load-balance"), "%s: load-balance must be "
	    "\"round-robin\", \"least-connections\", \"ip-hash\" or "
	    "\"sticky-cookie\", not \"%s\"", what, v != NULL ? v : "");
}

/* "2xx" (a class) or "204" (one code): the status a check passes with. */
int
config_parse_status(const char *s, uint16_t *min, uint16_t *max)
{
	uint64_t v;

	if (strlen(s) != 3)
		return -1;
	if (s[0] >= '1' && s[0] <= '5' && s[1] == 'x' && s[2] == 'x') {
		*min = (uint16_t)((s[0] - '0') * 100);
		*max = (uint16_t)(*min + 99);
		return 0;
	}
	if (util_parse_u64(s, 3, 100, 599, &v) == -1)
		return -1;
	*min = *max = (uint16_t)v;
	return 0;
}

/* A check's path: origin-form, printable ASCII, no fragment. */
bool
config_health_path_ok(const char *p)
{
	size_t i, len = strlen(p);

	if (len == 0 || len > CONFIG_PREFIX_MAX || p[0] != '/')
		return false;
	for (i = 0; i < len; i++)
		if (p[i] <= 0x20 || p[i] >= 0x7f || p[i] == '#')
			return false;
	return true;
}

/* health-check { }: the section's, else the site's (else none). */
static void
load_health(struct loader *ld, cfg_t *s, struct config_backend *be,
    const struct config_backend *site, const char *what)
{
	struct config_health *h = &be->health;
	const char *path, *status;
	cfg_t *hc;

	if (cfg_size(s, "health-check") == 0) {
		if (site != NULL && site->health.on) {
			*h = site->health;
			h->path = xstrdup_or_null(ld, site->health.path);
		}
		return;
	}
	hc = cfg_getnsec(s, "health-check", 0);
	if (cfg_size(s, "health-check") > 1) {
		cerr(ld, sec_line(ld, cfg_getnsec(s, "health-check", 1)),
		    "%s: health-check given twice", what);
		return;
	}
	h->on = true;
	path = cfg_getstr(hc, "path");
	if (path == NULL || !config_health_path_ok(path))
		cerr(ld, line_of(ld, hc, "path"), "%s: health-check path must "
		    "start with '/' and be printable ASCII without spaces or "
		    "'#' (at most %d bytes)", what, CONFIG_PREFIX_MAX);
	h->path = xstrdup_or_null(ld, path != NULL ? path : "/");
	h->interval = (unsigned)get_int(ld, hc, "interval", 1, 3600);
	h->timeout = (unsigned)get_int(ld, hc, "timeout", 1, 3600);
	h->passes = (unsigned)get_int(ld, hc, "passes", 1, 100);
	h->fails = (unsigned)get_int(ld, hc, "fails", 1, 100);
	status = cfg_getstr(hc, "status");
	if (status == NULL || config_parse_status(status, &h->status_min,
	    &h->status_max) == -1)
		cerr(ld, line_of(ld, hc, "status"), "%s: health-check status "
		    "must be a class such as \"2xx\" or a code such as "
		    "\"204\", not \"%s\"", what, status != NULL ? status : "");
	/* One message per mistake: not if either is out of its range. */
	if (h->timeout > h->interval && cfg_getint(hc, "interval") ==
	    (long)h->interval && cfg_getint(hc, "timeout") == (long)h->timeout)
		cerr(ld, line_of(ld, hc, "timeout"), "%s: health-check timeout "
		    "(%u) is longer than its interval (%u)", what, h->timeout,
		    h->interval);
}

bool
config_server_name_ok(const char *s)
{
	struct in6_addr a6;
	struct in_addr a4;
	size_t len = strlen(s);

	if (len == 0 || len > CONFIG_HOST_MAX)
		return false;
	if (inet_pton(AF_INET, s, &a4) == 1 || inet_pton(AF_INET6, s, &a6) == 1)
		return true;
	return s[len - 1] != '.' && config_check_hostname(s, len, false) == 0;
}

bool
config_backend_tls_ok(const struct config_backend *be, size_t nfiles)
{
	if (be->scheme == CONFIG_SCHEME_HTTP)
		return be->server_name == NULL && be->verify &&
		    be->ca == CONFIG_NO_FILE &&
		    be->client_cert == CONFIG_NO_FILE &&
		    be->client_key == CONFIG_NO_FILE;
	return be->scheme == CONFIG_SCHEME_HTTPS &&
	    (be->server_name == NULL ||
	    config_server_name_ok(be->server_name)) &&
	    be->ca < nfiles &&
	    (be->client_cert == CONFIG_NO_FILE) ==
	    (be->client_key == CONFIG_NO_FILE) &&
	    (be->client_cert == CONFIG_NO_FILE ||
	    (be->client_cert < nfiles && be->client_key < nfiles));
}

/*
 * The file at path, named by option opt on line, in the config's files:
 * read once however many backends name it.  Its index, or CONFIG_NO_FILE
 * when it cannot be had (said once, for the first option that names it).
 * With missing_ok, a file that does not exist is no error (the system
 * store's candidates), and is not added.
 */
static uint32_t
load_file(struct loader *ld, int line, const char *opt, const char *path,
    size_t max, bool secret, bool missing_ok)
{
	struct config *cfg = ld->out;
	struct config_file *files, *f;
	struct file_state *st;
	struct stat sb;
	char err[256];
	size_t i;

	for (i = 0; i < cfg->nfiles; i++) {
		if (strcmp(cfg->files[i].path, path) == 0) {
			cfg->files[i].secret |= secret;
			return ld->fstate[i].readable ? (uint32_t)i :
			    CONFIG_NO_FILE;
		}
	}
	if (missing_ok && !ld->opts->pure && stat(path, &sb) == -1 &&
	    errno == ENOENT)
		return CONFIG_NO_FILE;
	if (cfg->nfiles == CONFIG_MAX_FILES) {
		cerr(ld, line, "%s %s: more than %d distinct files named by "
		    "upstream-* options", opt, path, CONFIG_MAX_FILES);
		return CONFIG_NO_FILE;
	}
	if ((files = reallocarray(cfg->files, cfg->nfiles + 1,
	    sizeof(*files))) != NULL)
		cfg->files = files;
	if ((st = reallocarray(ld->fstate, cfg->nfiles + 1,
	    sizeof(*st))) != NULL)
		ld->fstate = st;
	if (files == NULL || st == NULL) {
		ld->oom = true;
		return CONFIG_NO_FILE;
	}
	f = &cfg->files[cfg->nfiles];
	st = &ld->fstate[cfg->nfiles];
	memset(f, 0, sizeof(*f));
	memset(st, 0, sizeof(*st));
	f->secret = secret;
	if (!ld->opts->pure && read_file(path, max, &f->data, err,
	    sizeof(err)) == -1) {
		cerr(ld, line, "cannot read %s %s: %s", opt, path, err);
	} else if (f->data.len > CONFIG_FILES_BYTES_MAX - ld->files_bytes) {
		cerr(ld, line, "%s %s: the files upstream-* options name "
		    "come to more than %d MiB in all", opt, path,
		    CONFIG_FILES_BYTES_MAX >> 20);
		blob_free(&f->data, secret);
	} else {
		ld->files_bytes += f->data.len;
		st->readable = true;
	}
	if ((f->path = strdup(path)) == NULL) {
		blob_free(&f->data, secret);
		ld->oom = true;
		return CONFIG_NO_FILE;
	}
	cfg->nfiles++;
	return st->readable ? (uint32_t)(cfg->nfiles - 1) : CONFIG_NO_FILE;
}

/* File idx as a trust store (ca_check), once a file; what opt named. */
static uint32_t
check_ca(struct loader *ld, int line, const char *opt, uint32_t idx)
{
	const struct config_file *f;
	struct file_state *st;
	char err[256];

	if (idx == CONFIG_NO_FILE || ld->opts->pure)
		return idx;
	f = &ld->out->files[idx];
	st = &ld->fstate[idx];
	if (!st->ca_checked) {
		st->ca_checked = true;
		snprintf(err, sizeof(err), "no certificate in it (no "
		    "\"-----BEGIN CERTIFICATE-----\")");
		if (ld->opts->ca_check != NULL)
			st->ca_ok = ld->opts->ca_check(&f->data, err,
			    sizeof(err)) == 0;
		else
			st->ca_ok = memmem(f->data.data, f->data.len,
			    "-----BEGIN CERTIFICATE-----", 27) != NULL;
		if (!st->ca_ok)
			cerr(ld, line, "%s %s: %s", opt, f->path, err);
	}
	return st->ca_ok ? idx : CONFIG_NO_FILE;
}

/*
 * The system trust store (CONFIG_SYSTEM_CA_FILES: the first bundle that
 * exists), for an https backend without upstream-ca-file on line.
 */
static uint32_t
load_system_ca(struct loader *ld, int line, const char *what)
{
	static const char *const bundles[] = { CONFIG_SYSTEM_CA_FILES };
	uint32_t idx;
	size_t i, n;

	for (i = 0; i < nitems(bundles); i++) {
		n = ld->out->nfiles;
		idx = load_file(ld, line, "the system's CA bundle", bundles[i],
		    CONFIG_CA_MAX, false, true);
		if (idx != CONFIG_NO_FILE)
			return check_ca(ld, line, "the system's CA bundle",
			    idx);
		/* Found, but unreadable: said already. */
		if (ld->out->nfiles > n || ld->oom)
			return CONFIG_NO_FILE;
	}
	cerr(ld, line, "%s: upstream-scheme \"https\" without "
	    "upstream-ca-file trusts the system's CA bundle, and there is "
	    "none (%s, %s, %s): install one (Debian: ca-certificates) or set "
	    "upstream-ca-file", what, bundles[0], bundles[1], bundles[2]);
	return CONFIG_NO_FILE;
}

/* Whether option name is set in section s itself. */
static bool
opt_set(struct loader *ld, cfg_t *s, const char *name)
{
	return opt_line(ld, s, name) != 0;
}

/* The upstream-* options that only "https" takes. */
static const char *const tls_opt_names[] = {
	"upstream-ca-file", "upstream-server-name", "upstream-verify",
	"upstream-client-cert", "upstream-client-key",
};

/*
 * upstream-client-cert and -key in section s: both or neither; read,
 * and the key checked against the certificate (once a pair).
 */
static void
load_client_cert(struct loader *ld, cfg_t *s, struct config_backend *be,
    const char *what)
{
	bool has_cert = opt_set(ld, s, "upstream-client-cert");
	bool has_key = opt_set(ld, s, "upstream-client-key");
	int cline = line_of(ld, s, "upstream-client-cert");
	int kline = line_of(ld, s, "upstream-client-key");
	const struct config_file *f;
	char err[256];
	size_t i;

	if (has_cert != has_key) {
		cerr(ld, has_cert ? cline : kline, "%s: '%s' needs '%s' (a "
		    "client certificate and its key go together)", what,
		    has_cert ? "upstream-client-cert" : "upstream-client-key",
		    has_cert ? "upstream-client-key" : "upstream-client-cert");
		return;
	}
	be->client_cert = load_file(ld, cline, "upstream-client-cert",
	    cfg_getstr(s, "upstream-client-cert"), CONFIG_PEM_MAX, false,
	    false);
	be->client_key = load_file(ld, kline, "upstream-client-key",
	    cfg_getstr(s, "upstream-client-key"), CONFIG_PEM_MAX, true,
	    false);
	if (be->client_cert == CONFIG_NO_FILE ||
	    be->client_key == CONFIG_NO_FILE || ld->opts->pure)
		return;
	for (i = 0; i < ld->npairs; i++)
		if (ld->pairs[i].cert == be->client_cert &&
		    ld->pairs[i].key == be->client_key)
			return;
	f = ld->out->files;
	if (ld->opts->keypair_check(&f[be->client_cert].data,
	    &f[be->client_key].data, err, sizeof(err)) == -1)
		cerr(ld, kline, "upstream-client-key %s with "
		    "upstream-client-cert %s: %s", f[be->client_key].path,
		    f[be->client_cert].path, err);
	if ((ld->pairs = reallocarray(ld->pairs, ld->npairs + 1,
	    sizeof(*ld->pairs))) == NULL) {
		ld->oom = true;
		ld->npairs = 0;
		return;
	}
	ld->pairs[ld->npairs++] = (struct key_pair){ be->client_cert,
	    be->client_key };
}

/*
 * upstream-scheme and the TLS options of section s, a site (site NULL)
 * or a path block, which takes what it leaves out from the site: the
 * scheme; with "https", the trust (upstream-ca-file, else the system's
 * bundle), the server name, verification and the client certificate.
 * With "http", a TLS option set in s is an error.
 */
static void
load_backend_tls(struct loader *ld, cfg_t *s, struct config_backend *be,
    const struct config_backend *site, const char *what)
{
	bool inherit = site != NULL && site->scheme == CONFIG_SCHEME_HTTPS;
	int sline = line_of(ld, s, "upstream-scheme");
	const char *v;
	size_t i;

	be->ca = be->client_cert = be->client_key = CONFIG_NO_FILE;
	be->verify = true;
	if (site != NULL && !opt_set(ld, s, "upstream-scheme"))
		be->scheme = site->scheme;
	else if ((v = cfg_getstr(s, "upstream-scheme")) != NULL &&
	    strcmp(v, "https") == 0)
		be->scheme = CONFIG_SCHEME_HTTPS;
	else if (v == NULL || strcmp(v, "http") != 0) {
		cerr(ld, sline, "%s: upstream-scheme must be \"http\" or "
		    "\"https\"", what);
		return;
	}
	if (be->scheme == CONFIG_SCHEME_HTTP) {
		for (i = 0; i < nitems(tls_opt_names); i++)
			if (opt_set(ld, s, tls_opt_names[i]))
				cerr(ld, line_of(ld, s, tls_opt_names[i]),
				    "%s: %s is for upstream-scheme \"https\" "
				    "(the scheme here is \"http\")", what,
				    tls_opt_names[i]);
		return;
	}

	if (opt_set(ld, s, "upstream-ca-file")) {
		int line = line_of(ld, s, "upstream-ca-file");

		v = cfg_getstr(s, "upstream-ca-file");
		if (path_ok(ld, line, "upstream-ca-file", v, false))
			be->ca = check_ca(ld, line, "upstream-ca-file",
			    load_file(ld, line, "upstream-ca-file", v,
			    CONFIG_CA_MAX, false, false));
	} else if (inherit)
		be->ca = site->ca;
	else
		be->ca = load_system_ca(ld, sline, what);

	if (opt_set(ld, s, "upstream-server-name")) {
		v = cfg_getstr(s, "upstream-server-name");
		if (config_server_name_ok(v))
			be->server_name = xstrdup_or_null(ld, v);
		else
			cerr(ld, line_of(ld, s, "upstream-server-name"), "%s: "
			    "upstream-server-name \"%s\" is not a DNS name "
			    "(without a trailing dot) or an IP address", what,
			    v);
	} else if (inherit && site->server_name != NULL)
		be->server_name = xstrdup_or_null(ld, site->server_name);

	if (opt_set(ld, s, "upstream-verify")) {
		be->verify = cfg_getbool(s, "upstream-verify");
		if (!be->verify)
			cwarn(ld, line_of(ld, s, "upstream-verify"), "%s: "
			    "upstream-verify = false: the upstream's "
			    "certificate is not checked, so anyone on the way "
			    "can read and change this traffic", what);
	} else if (inherit)
		be->verify = site->verify;

	if (opt_set(ld, s, "upstream-client-cert") ||
	    opt_set(ld, s, "upstream-client-key"))
		load_client_cert(ld, s, be, what);
	else if (inherit) {
		be->client_cert = site->client_cert;
		be->client_key = site->client_key;
	}
}

/*
 * upstream-proxy-protocol of section s, a site (site NULL) or a path
 * block, which takes the site's when it leaves it out: "v1", "v2" or
 * "none" (the default).
 */
static void
load_proxy_protocol(struct loader *ld, cfg_t *s, struct config_backend *be,
    const struct config_backend *site, const char *what)
{
	const char *v = cfg_getstr(s, "upstream-proxy-protocol");

	if (site != NULL && !opt_set(ld, s, "upstream-proxy-protocol")) {
		be->proxy_protocol = site->proxy_protocol;
		return;
	}
	if (v != NULL && strcmp(v, "v1") == 0)
		be->proxy_protocol = CONFIG_PROXY_V1;
	else if (v != NULL && strcmp(v, "v2") == 0)
		be->proxy_protocol = CONFIG_PROXY_V2;
	else if (v != NULL && strcmp(v, "none") == 0)
		be->proxy_protocol = CONFIG_PROXY_NONE;
	else
		cerr(ld, line_of(ld, s, "upstream-proxy-protocol"), "%s: "
		    "upstream-proxy-protocol must be \"v1\", \"v2\" or "
		    "\"none\", not \"%s\"", what, v != NULL ? v : "");
}

/*
 * A backend's options in section s, a site (site NULL) or one of its path
 * blocks (what it leaves out is site's): the upstreams (required: the
 * message blames line, the section's, when there are none), how one is
 * chosen, their health, scheme and TLS, timeouts and keep-alive.
 */
static void
load_backend(struct loader *ld, cfg_t *s, struct config_backend *be,
    const struct config_backend *site, int line, const char *what)
{
	load_upstreams(ld, s, be, line, what);
	load_backend_tls(ld, s, be, site, what);
	load_balance(ld, s, be, site, what);
	be->max_fails = backend_int(ld, s, "max-fails", 0, 1000, site,
	    site ? site->max_fails : 0);
	be->fail_timeout = backend_int(ld, s, "fail-timeout", 1, 3600, site,
	    site ? site->fail_timeout : 0);
	load_health(ld, s, be, site, what);
	be->connect_timeout = backend_int(ld, s, "connect-timeout", 1, 3600,
	    site, site ? site->connect_timeout : 0);
	be->request_timeout = backend_int(ld, s, "request-timeout", 1, 86400,
	    site, site ? site->request_timeout : 0);
	be->keepalive = backend_int(ld, s, "upstream-keepalive", 0,
	    CONFIG_KEEPALIVE_MAX, site, site ? site->keepalive : 0);
	be->keepalive_timeout = backend_int(ld, s,
	    "upstream-keepalive-timeout", 1, 3600, site,
	    site ? site->keepalive_timeout : 0);
	load_proxy_protocol(ld, s, be, site, what);
}

/* What is wrong with a path block's prefix or a replace-path. */
enum path_form {
	PATH_FORM_OK,
	PATH_FORM_SLASH,	/* does not start with '/' */
	PATH_FORM_LONG,		/* over CONFIG_PREFIX_MAX bytes */
	PATH_FORM_QUERY,	/* '?' or '#' */
	PATH_FORM_ASCII,	/* a byte not printable ASCII */
	PATH_FORM_INVALID,	/* path_normalize() refused it */
	PATH_FORM_NOT_NORMAL,	/* path_normalize() changed it */
};

/*
 * Whether s[0..len) is a path block's prefix (flags PATH_MATCH) or a
 * replace-path (flags 0): 1..CONFIG_PREFIX_MAX bytes of printable ASCII
 * starting with '/', without '?' or '#', a valid path (else *err is
 * path_normalize()'s error) in its normal form (else norm[0..*normlen)
 * is that form; norm has room for CONFIG_PREFIX_MAX bytes).
 */
static enum path_form
path_form(const char *s, size_t len, unsigned flags, int *err, char *norm,
    size_t *normlen)
{
	size_t i;

	if (len == 0 || s[0] != '/')
		return PATH_FORM_SLASH;
	if (len > CONFIG_PREFIX_MAX)
		return PATH_FORM_LONG;
	for (i = 0; i < len; i++) {
		if (s[i] == '?' || s[i] == '#')
			return PATH_FORM_QUERY;
		if (s[i] < 0x21 || s[i] > 0x7e)
			return PATH_FORM_ASCII;
	}
	if ((*err = path_normalize(s, len, flags, norm, CONFIG_PREFIX_MAX,
	    normlen)) != 0)
		return PATH_FORM_INVALID;
	if (*normlen != len || memcmp(norm, s, len) != 0)
		return PATH_FORM_NOT_NORMAL;
	return PATH_FORM_OK;
}

bool
config_path_ok(const char *s, size_t len, bool prefix)
{
	char norm[CONFIG_PREFIX_MAX];
	size_t normlen;
	int err;

	return path_form(s, len, prefix ? PATH_MATCH : 0, &err, norm,
	    &normlen) == PATH_FORM_OK;
}

/*
 * A path block's prefix or replace-path (name), s, checked: a copy, or
 * NULL (and a message on line).
 */
static char *
load_path_form(struct loader *ld, int line, const char *what,
    const char *name, const char *s, unsigned flags)
{
	char norm[CONFIG_PREFIX_MAX];
	size_t normlen = 0;
	int err = 0;

	switch (path_form(s, strlen(s), flags, &err, norm, &normlen)) {
	case PATH_FORM_OK:
		return xstrdup_or_null(ld, s);
	case PATH_FORM_SLASH:
		cerr(ld, line, "%s: %s must start with '/'", what, name);
		break;
	case PATH_FORM_LONG:
		cerr(ld, line, "%s: %s is longer than %d bytes", what, name,
		    CONFIG_PREFIX_MAX);
		break;
	case PATH_FORM_QUERY:
		cerr(ld, line, "%s: %s must not have a '?' or '#' (it is a "
		    "path, never a query)", what, name);
		break;
	case PATH_FORM_ASCII:
		cerr(ld, line, "%s: %s must be printable ASCII without spaces "
		    "(percent-encode other bytes)", what, name);
		break;
	case PATH_FORM_INVALID:
		cerr(ld, line, "%s: %s is not a valid path: %s", what, name,
		    path_strerror(err));
		break;
	case PATH_FORM_NOT_NORMAL:
		cerr(ld, line, "%s: %s is not in normal form: write \"%.*s\"",
		    what, name, (int)normlen, norm);
		break;
	}
	return NULL;
}

/* ---- allow, deny and the header options (issue 18) ---- */

/* s for a message: at most 64 bytes, anything not printable as '?'. */
static const char *
shown(const char *s, char buf[72])
{
	size_t i;

	for (i = 0; s[i] != '\0' && i < 64; i++)
		buf[i] = s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' ? s[i] :
		    '?';
	memcpy(buf + i, s[i] != '\0' ? "..." : "", s[i] != '\0' ? 4 : 1);
	return buf;
}

/*
 * Whether option name of s is set, an empty list too (libconfuse calls
 * no validate callback for one, so it has no line: its section's).
 */
static bool
list_given(struct loader *ld, cfg_t *s, const char *name, int *line)
{
	*line = opt_line(ld, s, name);
	if (*line == 0 && (cfg_getopt(s, name)->flags & CFGF_MODIFIED))
		*line = sec_line(ld, s);
	return *line != 0;
}

/*
 * allow and deny of a site or a path block: the ranges of the list
 * written first, then the other's (config.h).  Neither set: own false.
 */
static void
load_access(struct loader *ld, cfg_t *s, struct config_access *a,
    const char *what)
{
	static const char *const opt[2] = { "allow", "deny" };
	char why[128], buf[72];
	size_t n[2], i, k, o;
	int line[2];
	bool set[2];
	const char *e;

	for (k = 0; k < 2; k++) {
		n[k] = cfg_size(s, opt[k]);
		set[k] = list_given(ld, s, opt[k], &line[k]);
	}
	if (!set[0] && !set[1])
		return;
	a->own = true;
	for (k = 0; k < 2; k++) {
		if (set[k] && n[k] == 0)
			cerr(ld, line[k], "%s: '%s' is an empty list (leave it "
			    "out)", what, opt[k]);
		if (n[k] > CONFIG_MAX_ACCESS_RULES) {
			cerr(ld, line[k], "%s: '%s' has more than %d ranges",
			    what, opt[k], CONFIG_MAX_ACCESS_RULES);
			return;
		}
	}
	if (set[0] && line[0] == line[1]) {
		cerr(ld, line[0], "%s: allow and deny on one line: write each "
		    "on a line of its own (the first written is evaluated "
		    "first)", what);
		return;
	}
	a->first_allow = set[0] && (!set[1] || line[0] < line[1]);
	a->whitelist = n[0] > 0;
	if (n[0] + n[1] == 0)
		return;
	if ((a->ranges = calloc(n[0] + n[1], sizeof(*a->ranges))) == NULL) {
		ld->oom = true;
		return;
	}
	for (o = 0; o < 2; o++) {
		k = (o == 0) == a->first_allow ? 0 : 1;
		for (i = 0; i < n[k]; i++) {
			e = cfg_getnstr(s, opt[k], (unsigned)i);
			if (strcmp(e, "all") == 0)
				cerr(ld, elem_line(ld, s, opt[k], (unsigned)i),
				    "%s: %s \"all\": write \"0.0.0.0/0\" and "
				    "\"::/0\" for every client", what, opt[k]);
			else if (cidr_parse(e, strlen(e),
			    &a->ranges[a->nranges], why, sizeof(why)) == -1)
				cerr(ld, elem_line(ld, s, opt[k], (unsigned)i),
				    "%s: %s \"%s\": %s", what, opt[k],
				    shown(e, buf), why);
			else
				a->nranges++;
		}
		if (o == 0)
			a->nfirst = a->nranges;
	}
}

struct http1_header *
config_fields_make(const char *const *names, const char *const *values,
    size_t n)
{
	struct http1_header *f;
	size_t i, len, size = n * sizeof(*f);
	char *p;

	if (n == 0)
		return NULL;
	for (i = 0; i < n; i++)
		size += strlen(names[i]) + 1 +
		    (values[i] != NULL ? strlen(values[i]) + 1 : 0);
	if ((f = malloc(size)) == NULL)
		return NULL;
	p = (char *)(f + n);
	for (i = 0; i < n; i++) {
		len = strlen(names[i]);
		memcpy(p, names[i], len + 1);
		f[i].name = (struct http1_slice){ p, len };
		p += len + 1;
		f[i].value = (struct http1_slice){ "", 0 };
		if (values[i] == NULL)
			continue;
		len = strlen(values[i]);
		memcpy(p, values[i], len + 1);
		f[i].value = (struct http1_slice){ p, len };
		p += len + 1;
	}
	return f;
}

/*
 * One header option's list: "Name: value" entries (a name only for
 * hide-response-header), each as headers_option_check() allows, no name
 * twice.  An empty list is a list: a path block's "none here".
 */
static void
load_fields(struct loader *ld, cfg_t *s, const char *opt,
    enum headers_option kind, struct config_fields *out, const char *what)
{
	char *names[HEADERS_EDIT_MAX];
	const char *values[HEADERS_EDIT_MAX], *e, *colon, *why;
	size_t n = cfg_size(s, opt), i, j, nlen;
	char buf[72];
	int line;
	bool bad = false;

	if (!list_given(ld, s, opt, &line))
		return;
	out->own = true;
	if (n > HEADERS_EDIT_MAX) {
		cerr(ld, line, "%s: '%s' has more than %d fields", what, opt,
		    HEADERS_EDIT_MAX);
		return;
	}
	for (i = 0; i < n; i++) {
		e = cfg_getnstr(s, opt, (unsigned)i);
		line = elem_line(ld, s, opt, (unsigned)i);
		values[i] = NULL;
		nlen = strlen(e);
		if (kind != HEADERS_OPT_HIDE) {
			if ((colon = strchr(e, ':')) == NULL) {
				cerr(ld, line, "%s: %s \"%s\": \"Name: value\" "
				    "expected", what, opt, shown(e, buf));
				bad = true;
				names[i] = NULL;
				continue;
			}
			nlen = (size_t)(colon - e);
			values[i] = colon + 1;
			while (*values[i] == ' ' || *values[i] == '\t')
				values[i]++;
		}
		if ((names[i] = strndup(e, nlen)) == NULL) {
			ld->oom = true;
			bad = true;
			continue;
		}
		why = headers_option_check(kind, e, nlen, values[i],
		    values[i] != NULL ? strlen(values[i]) : 0);
		for (j = 0; why == NULL && j < i; j++)
			if (names[j] != NULL && util_strcaseeq(names[j],
			    strlen(names[j]), e, nlen))
				why = "the same field twice";
		if (why != NULL) {
			cerr(ld, line, "%s: %s \"%s\": %s", what, opt,
			    shown(e, buf), why);
			bad = true;
		}
	}
	if (!bad && n > 0 && (out->f = config_fields_make(
	    (const char *const *)names, values, n)) == NULL)
		ld->oom = true;
	if (out->f != NULL)
		out->n = n;
	for (i = 0; i < n; i++)
		free(names[i]);
}

void
config_edits_view(struct config_edits *e)
{
	e->edit_resp = (struct headers_edit){ e->resp_add.f, e->resp_add.n,
	    e->resp_hide.f, e->resp_hide.n };
	e->edit_req = (struct headers_edit){ e->req_add.f, e->req_add.n,
	    NULL, 0 };
}

static void
inherit_fields(struct config_fields *f, const struct config_fields *site)
{
	if (!f->own)
		*f = (struct config_fields){ site->f, site->n, false };
}

void
config_path_inherit(const struct config_site *site, struct config_path *p)
{
	if (!p->access.own) {
		p->access = site->access;
		p->access.own = false;
	}
	inherit_fields(&p->edits.resp_add, &site->edits.resp_add);
	inherit_fields(&p->edits.resp_hide, &site->edits.resp_hide);
	inherit_fields(&p->edits.req_add, &site->edits.req_add);
	config_edits_view(&p->edits);
}

/* A site's or a path block's allow, deny and header options. */
static void
load_edge(struct loader *ld, cfg_t *s, struct config_access *a,
    struct config_edits *e, const char *what)
{
	load_access(ld, s, a, what);
	load_fields(ld, s, "response-header", HEADERS_OPT_RESPONSE,
	    &e->resp_add, what);
	load_fields(ld, s, "hide-response-header", HEADERS_OPT_HIDE,
	    &e->resp_hide, what);
	load_fields(ld, s, "request-header", HEADERS_OPT_REQUEST,
	    &e->req_add, what);
	config_edits_view(e);
}

/* path "PREFIX" { ... } of site. */
static void
load_path(struct loader *ld, cfg_t *p, const struct config_site *site,
    struct config_path *path)
{
	const char *title = cfg_title(p);
	char what[CONFIG_HOST_MAX + 128];

	path->line = sec_line(ld, p);
	/* A long prefix is cut in messages (the rule says how long). */
	snprintf(what, sizeof(what), "site \"%s\" path \"%.64s%s\"",
	    site->host != NULL ? site->host : "", title,
	    strlen(title) > 64 ? "..." : "");
	if ((path->prefix = load_path_form(ld, path->line, what, "the prefix",
	    title, PATH_MATCH)) != NULL)
		path->prefix_len = strlen(path->prefix);
	if (cfg_size(p, "replace-path") > 0 &&
	    (path->replace = load_path_form(ld, line_of(ld, p,
	    "replace-path"), what, "replace-path", cfg_getstr(p,
	    "replace-path"), 0)) != NULL)
		path->replace_len = strlen(path->replace);
	load_backend(ld, p, &path->be, &site->be, path->line, what);
	load_edge(ld, p, &path->access, &path->edits, what);
	config_path_inherit(site, path);
}

/*
 * A site's path blocks, longest prefix first; equal lengths keep the
 * file's order (two prefixes of one length never match the same path).
 */
static void
load_paths(struct loader *ld, cfg_t *s, struct config_site *site)
{
	size_t i, j, n = cfg_size(s, "path");
	struct config_path tmp;

	if (n == 0)
		return;
	if (n > CONFIG_MAX_PATHS) {
		cerr(ld, site->line, "site \"%s\": more than %d path blocks",
		    site->host != NULL ? site->host : "", CONFIG_MAX_PATHS);
		return;
	}
	if ((site->paths = calloc(n, sizeof(*site->paths))) == NULL) {
		ld->oom = true;
		return;
	}
	site->npaths = n;
	for (i = 0; i < n; i++)
		load_path(ld, cfg_getnsec(s, "path", (unsigned)i), site,
		    &site->paths[i]);
	for (i = 1; i < n; i++) {
		tmp = site->paths[i];
		for (j = i; j > 0 &&
		    site->paths[j - 1].prefix_len < tmp.prefix_len; j--)
			site->paths[j] = site->paths[j - 1];
		site->paths[j] = tmp;
	}
}

static void
load_site(struct loader *ld, cfg_t *s, struct config_site *site)
{
	const char *title = cfg_title(s);
	char what[CONFIG_HOST_MAX + 16];

	site->line = sec_line(ld, s);
	snprintf(what, sizeof(what), "site \"%s\"", title);
	if (config_check_hostname(title, strlen(title), true) == -1)
		cerr(ld, site->line, "%s: not a valid DNS name (or *.domain "
		    "wildcard)", what);
	site->host = normalize_host(ld, title);
	site->wildcard = title[0] == '*';
	load_backend(ld, s, &site->be, NULL, site->line, what);
	load_tls_pair(ld, s, &site->tls, false, what);
	load_client_auth(ld, s, site, what);
	load_site_limit(ld, s, site);
	load_edge(ld, s, &site->access, &site->edits, what);
	load_paths(ld, s, site);
}

static void
load_sites(struct loader *ld, cfg_t *l, struct config_listener *lst)
{
	size_t i, j, n = cfg_size(l, "site");

	if (n == 0) {
		cerr(ld, lst->line, "listener%s%s: at least one site is "
		    "required", lst->bind ? " " : "", lst->bind ? lst->bind : "");
		return;
	}
	if (n > CONFIG_MAX_SITES) {
		cerr(ld, lst->line, "listener: more than %d sites",
		    CONFIG_MAX_SITES);
		return;
	}
	if ((lst->sites = calloc(n, sizeof(*lst->sites))) == NULL) {
		ld->oom = true;
		return;
	}
	lst->nsites = n;
	for (i = 0; i < n; i++) {
		load_site(ld, cfg_getnsec(l, "site", (unsigned)i),
		    &lst->sites[i]);
		for (j = 0; j < i && lst->sites[i].host != NULL; j++) {
			if (lst->sites[j].host != NULL && strcmp(
			    lst->sites[j].host, lst->sites[i].host) == 0) {
				cerr(ld, lst->sites[i].line, "duplicate site "
				    "\"%s\" (first on line %d)",
				    lst->sites[i].host, lst->sites[j].line);
				break;
			}
		}
	}
}

static bool
listener_is_wildcard(const struct config_listener *l)
{
	if (l->family == AF_INET)
		return l->addr.v4.s_addr == htonl(INADDR_ANY);
	return IN6_IS_ADDR_UNSPECIFIED(&l->addr.v6);
}

static void
parse_bind(struct loader *ld, cfg_t *l, struct config_listener *lst,
    bool wildcard_ok)
{
	char buf[INET6_ADDRSTRLEN + 2];
	const char *s = cfg_getstr(l, "bind");
	int line = line_of(ld, l, "bind");
	size_t len;

	if (s == NULL) {
		cerr(ld, lst->line, "listener: 'bind' is required");
		return;
	}
	lst->bind = xstrdup_or_null(ld, s);
	len = strlen(s);
	/* "[::1]" is accepted as well as "::1". */
	if (len >= 2 && len < sizeof(buf) && s[0] == '[' && s[len - 1] == ']') {
		memcpy(buf, s + 1, len - 2);
		buf[len - 2] = '\0';
		s = buf;
	}
	/* Brackets are for IPv6 only: "[127.0.0.1]" is not an address. */
	if (s != buf && inet_pton(AF_INET, s, &lst->addr.v4) == 1)
		lst->family = AF_INET;
	else if (inet_pton(AF_INET6, s, &lst->addr.v6) == 1)
		lst->family = AF_INET6;
	else {
		cerr(ld, line, "bind \"%s\" is not an IPv4 or IPv6 address "
		    "(host names are not resolved)", lst->bind);
		return;
	}
	if (listener_is_wildcard(lst) && !wildcard_ok)
		cerr(ld, line, "bind \"%s\" listens on every address; set "
		    "allow-wildcard-bind = true or pass --allow-wildcard-bind",
		    lst->bind);
}

/* Whether the section sets any option of its own. */
static bool
sec_is_set(struct loader *ld, const cfg_t *sec)
{
	size_t i;

	for (i = 0; i < ld->nlines; i++)
		if (ld->lines[i].sec == sec)
			return true;
	return false;
}

/* Mode "manual": every acme-* option set is a mistake. */
static void
refuse_acme_options(struct loader *ld, cfg_t *tls)
{
	const cfg_opt_t *o;
	int line;

	for (o = tls_opts; o->name != NULL; o++) {
		if (strncmp(o->name, "acme-", 5) != 0 ||
		    (line = opt_line(ld, tls, o->name)) == 0)
			continue;
		cerr(ld, line, "tls: '%s' needs mode = \"acme\"", o->name);
	}
}

/* Mode "acme": the listener's own certificate is refused. */
static void
refuse_listener_pair(struct loader *ld, cfg_t *tls)
{
	static const char *const names[] = { "cert", "key" };
	size_t i;
	int line;

	for (i = 0; i < nitems(names); i++)
		if ((line = opt_line(ld, tls, names[i])) != 0)
			cerr(ld, line, "tls: '%s' is for mode = \"manual\"; "
			    "with mode = \"acme\", give cert and key to a site, "
			    "where they win over ACME", names[i]);
}

/*
 * 1..max bytes, none of them a control character, a space, a byte
 * outside ASCII or one of bad.
 */
static bool
token_ok(const char *s, size_t max, const char *bad)
{
	size_t i, len = strlen(s);

	if (len == 0 || len > max)
		return false;
	for (i = 0; i < len; i++)
		if (s[i] < 0x21 || s[i] > 0x7e || strchr(bad, s[i]) != NULL)
			return false;
	return true;
}

bool
config_acme_url_ok(const char *s)
{
	return strncmp(s, "https://", 8) == 0 && s[8] != '\0' &&
	    token_ok(s, CONFIG_ACME_URL_MAX, "");
}

bool
config_acme_contact_ok(const char *s)
{
	const char *at = strchr(s, '@');

	return strncmp(s, "mailto:", 7) == 0 && at != NULL && at > s + 7 &&
	    at[1] != '\0' && token_ok(s, CONFIG_ACME_URL_MAX, ",");
}

/* acme-directory: a Let's Encrypt alias or an https:// URL. */
static void
load_acme_directory(struct loader *ld, cfg_t *tls, struct config_acme *a)
{
	const char *s = cfg_getstr(tls, "acme-directory");

	if (s != NULL && strcmp(s, "production") == 0)
		s = CONFIG_ACME_PRODUCTION;
	else if (s != NULL && strcmp(s, "staging") == 0)
		s = CONFIG_ACME_STAGING;
	else if (s == NULL || !config_acme_url_ok(s)) {
		cerr(ld, line_of(ld, tls, "acme-directory"), "acme-directory "
		    "must be \"production\", \"staging\" or an https:// URL "
		    "(at most %d characters, no spaces)", CONFIG_ACME_URL_MAX);
		return;
	}
	a->directory = xstrdup_or_null(ld, s);
}

static void
load_acme_contact(struct loader *ld, cfg_t *tls, struct config_acme *a)
{
	const char *s;

	if (cfg_size(tls, "acme-contact") == 0)
		return;
	s = cfg_getstr(tls, "acme-contact");
	if (s == NULL || !config_acme_contact_ok(s)) {
		cerr(ld, line_of(ld, tls, "acme-contact"), "acme-contact must "
		    "be \"mailto:\" and an e-mail address, as in "
		    "\"mailto:admin@example.com\" (no spaces or commas)");
		return;
	}
	a->contact = xstrdup_or_null(ld, s);
}

static void
load_acme_challenge(struct loader *ld, cfg_t *tls,
    struct config_listener *lst)
{
	const char *s = cfg_getstr(tls, "acme-challenge");
	int line = line_of(ld, tls, "acme-challenge");

	if (s != NULL && strcmp(s, "tls-alpn-01") == 0)
		lst->acme.challenge = CONFIG_ACME_TLS_ALPN_01;
	else if (s != NULL && strcmp(s, "http-01") == 0) {
		lst->acme.challenge = CONFIG_ACME_HTTP_01;
		if (lst->http_port == 0)
			cerr(ld, line, "acme-challenge \"http-01\" is answered "
			    "on the http-port, and http-port is 0");
	} else
		cerr(ld, line, "acme-challenge must be \"tls-alpn-01\" or "
		    "\"http-01\"");
}

/* A path the image can carry: 1..CONFIG_PATH_MAX bytes. */
static bool
path_ok(struct loader *ld, int line, const char *name, const char *s,
    bool absolute)
{
	if (s == NULL || s[0] == '\0' || (absolute && s[0] != '/')) {
		cerr(ld, line, "%s must be %s path", name, absolute ?
		    "an absolute" : "a");
		return false;
	}
	if (strlen(s) > CONFIG_PATH_MAX) {
		cerr(ld, line, "%s is longer than %d bytes", name,
		    CONFIG_PATH_MAX);
		return false;
	}
	return true;
}

/* acme-ca-file: PEM certificates, read like a site's. */
static void
load_acme_ca(struct loader *ld, cfg_t *tls, struct config_acme *a)
{
	int line = line_of(ld, tls, "acme-ca-file");
	const char *s;
	char err[256];

	if (cfg_size(tls, "acme-ca-file") == 0)
		return;
	s = cfg_getstr(tls, "acme-ca-file");
	if (!path_ok(ld, line, "acme-ca-file", s, false))
		return;
	a->ca_file = xstrdup_or_null(ld, s);
	if (ld->opts->pure || a->ca_file == NULL)
		return;
	if (read_file(a->ca_file, CONFIG_PEM_MAX, &a->ca, err,
	    sizeof(err)) == -1)
		cerr(ld, line, "cannot read acme-ca-file %s: %s", a->ca_file,
		    err);
	else if (memmem(a->ca.data, a->ca.len, "-----BEGIN CERTIFICATE-----",
	    27) == NULL)
		cerr(ld, line, "acme-ca-file %s holds no certificate (no "
		    "\"-----BEGIN CERTIFICATE-----\")", a->ca_file);
}

bool
config_base64url_ok(const char *s, size_t max)
{
	size_t i, len = strlen(s), pad = 0;

	if (len == 0 || len > max)
		return false;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (c == '=')
			pad++;
		else if (pad > 0 || !((c >= 'A' && c <= 'Z') ||
		    (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_'))
			return false;
	}
	return pad < len && pad <= 2;
}

/* External Account Binding: both or neither. */
static void
load_acme_eab(struct loader *ld, cfg_t *tls, struct config_acme *a)
{
	bool has_kid = cfg_size(tls, "acme-eab-kid") > 0;
	bool has_key = cfg_size(tls, "acme-eab-hmac-key") > 0;
	int kid_line = line_of(ld, tls, "acme-eab-kid");
	int key_line = line_of(ld, tls, "acme-eab-hmac-key");
	const char *kid, *key;

	if (!has_kid && !has_key)
		return;
	if (has_kid != has_key) {
		cerr(ld, has_kid ? kid_line : key_line, "'%s' needs '%s' "
		    "(External Account Binding takes both or neither)",
		    has_kid ? "acme-eab-kid" : "acme-eab-hmac-key",
		    has_kid ? "acme-eab-hmac-key" : "acme-eab-kid");
		return;
	}
	kid = cfg_getstr(tls, "acme-eab-kid");
	key = cfg_getstr(tls, "acme-eab-hmac-key");
	if (kid == NULL || !token_ok(kid, CONFIG_ACME_EAB_MAX, ""))
		cerr(ld, kid_line, "acme-eab-kid must be 1 to %d printable "
		    "characters, no spaces", CONFIG_ACME_EAB_MAX);
	if (key == NULL || !config_base64url_ok(key, CONFIG_ACME_EAB_MAX))
		cerr(ld, key_line, "acme-eab-hmac-key must be base64url (A-Z "
		    "a-z 0-9 - _, '=' padding at the end), 1 to %d characters",
		    CONFIG_ACME_EAB_MAX);
	else
		a->eab_hmac_key = xstrdup_or_null(ld, key);
	a->eab_kid = xstrdup_or_null(ld, kid);
}

/* Everything of mode "acme" but the domains, which need the sites. */
static void
load_acme(struct loader *ld, cfg_t *tls, struct config_listener *lst)
{
	struct config_acme *a = &lst->acme;
	const char *dir = cfg_getstr(tls, "acme-cache-dir");

	lst->tls_mode = CONFIG_TLS_ACME;
	a->line = line_of(ld, tls, "mode");
	refuse_listener_pair(ld, tls);
	load_acme_directory(ld, tls, a);
	load_acme_contact(ld, tls, a);
	load_acme_challenge(ld, tls, lst);
	if (path_ok(ld, line_of(ld, tls, "acme-cache-dir"), "acme-cache-dir",
	    dir, true))
		a->cache_dir = xstrdup_or_null(ld, dir);
	load_acme_ca(ld, tls, a);
	if (opt_line(ld, tls, "acme-renew-days") != 0)
		a->renew_days = (unsigned)get_int(ld, tls, "acme-renew-days",
		    1, 365);
	load_acme_eab(ld, tls, a);
}

/* A site of l answers for name: the same name, or a *. one label up. */
static bool
listener_serves(const struct config_listener *l, const char *name)
{
	const char *up = strchr(name, '.');
	size_t i;

	for (i = 0; i < l->nsites; i++) {
		const struct config_site *s = &l->sites[i];

		if (s->host == NULL)
			continue;
		if (!s->wildcard && strcmp(s->host, name) == 0)
			return true;
		if (s->wildcard && up != NULL && strcmp(s->host + 1, up) == 0)
			return true;
	}
	return false;
}

/* One acme-domains entry: its normalised name, or NULL (said why). */
static char *
acme_domain(struct loader *ld, int line, const struct config_listener *lst,
    const char *s)
{
	const struct config_acme *a = &lst->acme;
	size_t i;
	char *h;

	if (config_check_hostname(s, strlen(s), true) == -1) {
		cerr(ld, line, "acme-domains: \"%s\" is not a valid DNS name",
		    s);
		return NULL;
	}
	if (s[0] == '*') {
		cerr(ld, line, "acme-domains: \"%s\" is a wildcard name: those "
		    "need the DNS-01 challenge, which portcullis does not do",
		    s);
		return NULL;
	}
	if ((h = normalize_host(ld, s)) == NULL)
		return NULL;
	for (i = 0; i < a->ndomains; i++) {
		if (strcmp(a->domains[i], h) == 0) {
			cerr(ld, line, "acme-domains: \"%s\" is listed twice",
			    h);
			free(h);
			return NULL;
		}
	}
	if (!listener_serves(lst, h)) {
		cerr(ld, line, "acme-domains: \"%s\" is not served by a site "
		    "of this listener", h);
		free(h);
		return NULL;
	}
	return h;
}

/*
 * acme-domains, or every site name that is neither a wildcard nor a site
 * with a certificate of its own (which wins: ordering one would only use
 * up the CA's rate limits); after the sites are loaded.
 */
static void
load_acme_domains(struct loader *ld, cfg_t *tls, struct config_listener *lst)
{
	struct config_acme *a = &lst->acme;
	int line = line_of(ld, tls, "acme-domains");
	size_t i, n, own = 0;
	char *h;

	/* An empty list is the default, as the man page says. */
	a->domains_set = opt_line(ld, tls, "acme-domains") != 0 &&
	    cfg_size(tls, "acme-domains") > 0;
	n = a->domains_set ? cfg_size(tls, "acme-domains") : lst->nsites;
	if (n > CONFIG_MAX_SITES) {
		cerr(ld, line, "acme-domains: more than %d names",
		    CONFIG_MAX_SITES);
		return;
	}
	if (n == 0)
		return;		/* no site: said already */
	if ((a->domains = calloc(n, sizeof(*a->domains))) == NULL) {
		ld->oom = true;
		return;
	}
	for (i = 0; i < n; i++) {
		if (a->domains_set)
			h = acme_domain(ld, elem_line(ld, tls, "acme-domains",
			    (unsigned)i), lst, cfg_getnstr(tls, "acme-domains",
			    (unsigned)i));
		else if (lst->sites[i].tls.cert_path != NULL) {
			own++;
			h = NULL;
		} else if (lst->sites[i].host != NULL &&
		    !lst->sites[i].wildcard)
			h = xstrdup_or_null(ld, lst->sites[i].host);
		else
			h = NULL;
		if (h != NULL)
			a->domains[a->ndomains++] = h;
	}
	if (!a->domains_set && a->ndomains == 0 && own == 0)
		cerr(ld, a->line, "tls mode \"acme\": every site is a "
		    "wildcard, and wildcard names need the DNS-01 challenge, "
		    "which portcullis does not do: name the hosts in "
		    "acme-domains");
	else if (!a->domains_set && a->ndomains == 0)
		cerr(ld, a->line, "tls mode \"acme\": no site needs a "
		    "certificate from the CA (each has its own cert or is a "
		    "wildcard, which needs DNS-01): name the hosts in "
		    "acme-domains, or use mode \"manual\"");
}

/* max-connections-per-client: unset is no cap; set, 1..the maximum. */
static void
load_connlimit(struct loader *ld, cfg_t *l, struct config_listener *lst)
{
	if (!opt_set(ld, l, "max-connections-per-client"))
		return;
	lst->max_conns_per_client = (unsigned)get_int(ld, l,
	    "max-connections-per-client", 1, CONFIG_MAX_CONNS_PER_CLIENT);
}

/* A tchar of RFC 9110 5.6.2. */
static bool
tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != '\0' &&
	    strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

bool
config_real_ip_header_ok(const char *s)
{
	struct http1_header h;
	size_t i, len = strlen(s);

	if (len == 0 || len > CONFIG_REAL_IP_MAX)
		return false;
	for (i = 0; i < len; i++)
		if (!tchar(s[i]))
			return false;
	if (util_strcaseeq(s, len, "forwarded", 9) ||
	    util_strcaseeq(s, len, "host", 4))
		return false;
	/* One the proxy drops from what clients send: a client behind an
	   untrusted peer must never get its value to the upstream. */
	h.name = (struct http1_slice){ s, len };
	h.value = (struct http1_slice){ "", 0 };
	return !headers_request_forwards(&h, &h, 0);
}

/*
 * proxy-protocol, trusted-proxies and real-ip-header: the sources that
 * may name a client (a PROXY header, a header of each request), and
 * both of those need the list.
 */
static void
load_listener_proxy(struct loader *ld, cfg_t *l, struct config_listener *lst)
{
	unsigned i, n = cfg_size(l, "trusted-proxies");
	int tline = opt_line(ld, l, "trusted-proxies");
	const char *h = cfg_getstr(l, "real-ip-header");
	char why[128];

	lst->proxy_protocol = cfg_getbool(l, "proxy-protocol");
	if (n > CONFIG_MAX_TRUSTED) {
		cerr(ld, tline, "trusted-proxies: more than %d ranges",
		    CONFIG_MAX_TRUSTED);
		n = 0;
	}
	if (n > 0 && (lst->trusted = calloc(n, sizeof(*lst->trusted))) ==
	    NULL) {
		ld->oom = true;
		return;
	}
	for (i = 0; i < n; i++) {
		const char *r = cfg_getnstr(l, "trusted-proxies", i);

		if (cidr_parse(r, strlen(r), &lst->trusted[lst->ntrusted],
		    why, sizeof(why)) != 0)
			cerr(ld, elem_line(ld, l, "trusted-proxies", i),
			    "trusted-proxies: \"%s\": %s", r, why);
		else
			lst->ntrusted++;
	}
	/* An empty list records no line: it is as good as none. */
	if (lst->proxy_protocol && tline == 0)
		cerr(ld, line_of(ld, l, "proxy-protocol"), "proxy-protocol "
		    "needs trusted-proxies: the sources a PROXY header is "
		    "taken from (anyone else's is refused)");
	if (h != NULL) {
		if (!config_real_ip_header_ok(h))
			cerr(ld, line_of(ld, l, "real-ip-header"),
			    "real-ip-header: \"%s\" is not a field name that "
			    "holds addresses (a token of at most %d bytes, not "
			    "Forwarded or Host, and one the proxy never "
			    "forwards from clients: X-Forwarded-For, X-Real-IP, "
			    "True-Client-IP, CF-Connecting-IP ...)", h,
			    CONFIG_REAL_IP_MAX);
		else if (tline == 0)
			cerr(ld, line_of(ld, l, "real-ip-header"),
			    "real-ip-header needs trusted-proxies: the peers "
			    "whose header is believed");
		else if ((lst->real_ip_header = strdup(h)) == NULL)
			ld->oom = true;
	}
	if (tline != 0 && n > 0 && !lst->proxy_protocol && h == NULL)
		cwarn(ld, tline, "trusted-proxies has no effect without "
		    "proxy-protocol or real-ip-header");
}

/*
 * redirect-port (issue 18): the port the plain port's redirect names,
 * when clients reach the https-port by another (a container's mapping).
 */
static void
load_redirect_port(struct loader *ld, cfg_t *l, struct config_listener *lst)
{
	int line = opt_line(ld, l, "redirect-port");

	if (line == 0)
		return;
	lst->redirect_port = (uint16_t)get_int(ld, l, "redirect-port", 1,
	    65535);
	if (lst->http_port == 0)
		cerr(ld, line, "redirect-port: the listener has no http-port "
		    "(0), so no redirect to name it");
}

static void
load_listener(struct loader *ld, cfg_t *l, struct config_listener *lst,
    bool wildcard_ok)
{
	cfg_t *tls = cfg_getsec(l, "tls");
	const char *mode;

	lst->line = sec_line(ld, l);
	parse_bind(ld, l, lst, wildcard_ok);
	lst->https_port = (uint16_t)get_int(ld, l, "https-port", 1, 65535);
	lst->http_port = (uint16_t)get_int(ld, l, "http-port", 0, 65535);
	lst->https_line = line_of(ld, l, "https-port");
	lst->http_line = line_of(ld, l, "http-port");
	load_connlimit(ld, l, lst);
	load_listener_proxy(ld, l, lst);
	load_redirect_port(ld, l, lst);
	mode = tls != NULL ? cfg_getstr(tls, "mode") : NULL;
	if (tls == NULL || !sec_is_set(ld, tls)) {
		cerr(ld, lst->line, "listener%s%s: a tls { } section is "
		    "required (cert and key, or mode = \"acme\")",
		    lst->bind ? " " : "", lst->bind ? lst->bind : "");
	} else if (mode != NULL && strcmp(mode, "manual") == 0) {
		refuse_acme_options(ld, tls);
		load_tls_pair(ld, tls, &lst->tls, true, "tls");
	} else if (mode != NULL && strcmp(mode, "acme") == 0)
		load_acme(ld, tls, lst);
	else
		cerr(ld, line_of(ld, tls, "mode"), "tls mode must be "
		    "\"manual\" or \"acme\"");
	load_sites(ld, l, lst);
	if (lst->tls_mode == CONFIG_TLS_ACME)
		load_acme_domains(ld, tls, lst);
}

/* One address:port a listening socket will be bound to. */
struct endpoint {
	const struct config_listener *l;	/* NULL: the health port */
	uint16_t	 port;
	const char	*what;
	int		 line;
};

static bool
endpoints_clash(const struct endpoint *a, const struct endpoint *b)
{
	static const struct config_listener health = {
		.family = AF_INET, .addr.v4.s_addr = 0x0100007f /* 127.0.0.1 */
	};
	const struct config_listener *la = a->l ? a->l : &health;
	const struct config_listener *lb = b->l ? b->l : &health;

	if (a->port != b->port || la->family != lb->family)
		return false;
	if (listener_is_wildcard(la) || listener_is_wildcard(lb))
		return true;
	if (la->family == AF_INET)
		return la->addr.v4.s_addr == lb->addr.v4.s_addr;
	return memcmp(&la->addr.v6, &lb->addr.v6, sizeof(la->addr.v6)) == 0;
}

static void
check_endpoints(struct loader *ld, const struct config *cfg, int health_line)
{
	struct endpoint *ep;
	size_t i, j, n = 0;

	if ((ep = calloc(cfg->nlisteners * 2 + 1, sizeof(*ep))) == NULL) {
		ld->oom = true;
		return;
	}
	for (i = 0; i < cfg->nlisteners; i++) {
		const struct config_listener *l = &cfg->listeners[i];

		if (l->family == 0)
			continue;
		ep[n++] = (struct endpoint){ l, l->https_port, "https-port",
		    l->https_line };
		if (l->http_port != 0)
			ep[n++] = (struct endpoint){ l, l->http_port,
			    "http-port", l->http_line };
	}
	if (cfg->health_port != 0)
		ep[n++] = (struct endpoint){ NULL, cfg->health_port,
		    "health-check-port", health_line };
	for (i = 0; i < n; i++) {
		for (j = 0; j < i; j++) {
			if (!endpoints_clash(&ep[i], &ep[j]))
				continue;
			cerr(ld, ep[i].line, "%s %s:%u clashes with %s %s:%u "
			    "(line %d)", ep[i].what,
			    ep[i].l ? ep[i].l->bind : "127.0.0.1", ep[i].port,
			    ep[j].what, ep[j].l ? ep[j].l->bind : "127.0.0.1",
			    ep[j].port, ep[j].line);
			break;
		}
	}
	free(ep);
}

static void
load_user(struct loader *ld, cfg_t *root, struct config *cfg)
{
	int line = line_of(ld, root, "user");
	struct passwd *pw;

	cfg->user = xstrdup_or_null(ld, cfg_getstr(root, "user"));
	if (cfg->user == NULL || ld->opts->pure)
		return;
	errno = 0;
	/*
	 * Only a master started as root runs its workers as user (privs.c);
	 * started as anyone else, every process keeps that one's uid and the
	 * name is never used: say so, but a config checked by an ordinary
	 * user on a machine without the service user is not wrong.
	 */
	if ((pw = getpwnam(cfg->user)) == NULL && geteuid() == 0)
		cerr(ld, line, "user \"%s\" does not exist", cfg->user);
	else if (pw == NULL)
		cwarn(ld, line, "user \"%s\" does not exist: a start as root "
		    "would fail (started as this user, portcullis keeps its "
		    "uid and does not need it)", cfg->user);
	else if (pw->pw_uid == 0)
		cerr(ld, line, "user \"%s\" is root: workers must run as an "
		    "unprivileged user", cfg->user);
}

static void
load_logging(struct loader *ld, cfg_t *root, struct config *cfg)
{
	cfg_t *lg = cfg_getsec(root, "logging");
	const char *file;

	if (log_level_parse(cfg_getstr(lg, "level"), &cfg->log_level) == -1)
		cerr(ld, line_of(ld, lg, "level"), "logging level must be "
		    "error, warn, info or debug");
	if (log_format_parse(cfg_getstr(lg, "format"), &cfg->log_format) == -1)
		cerr(ld, line_of(ld, lg, "format"), "logging format must be "
		    "text or json");
	cfg->log_access = cfg_getbool(lg, "access");
	file = cfg_size(lg, "file") > 0 ? cfg_getstr(lg, "file") : NULL;
	if (file != NULL && file[0] != '\0') {
		if (file[0] != '/')
			cerr(ld, line_of(ld, lg, "file"), "logging file must "
			    "be an absolute path");
		cfg->log_file = xstrdup_or_null(ld, file);
	}
}

/* requests-per-second of section rl: 0 and a message if out of range. */
static double
get_rate(struct loader *ld, cfg_t *rl)
{
	double rps = cfg_getfloat(rl, "requests-per-second");

	/* The negation also catches NaN. */
	if (!(rps > 0.0 && rps <= 1e6)) {
		cerr(ld, line_of(ld, rl, "requests-per-second"),
		    "requests-per-second must be more than 0 and at most "
		    "1000000");
		return 0;
	}
	return rps;
}

static void
load_limits(struct loader *ld, cfg_t *root, struct config *cfg)
{
	cfg_t *rl = cfg_getsec(root, "rate-limit");
	cfg_t *body = cfg_getsec(root, "body");

	cfg->rate_rps = get_rate(ld, rl);
	cfg->rate_burst = (unsigned)get_int(ld, rl, "burst", 1, 1000000);
	cfg->rate_table_size = (unsigned)get_int(ld, rl, "table-size",
	    CONFIG_RATE_TABLE_MIN, CONFIG_RATE_TABLE_MAX);
	cfg->body_limit = (uint64_t)get_int(ld, body, "limit-bytes", 0,
	    (long)1 << 50);
}

/*
 * A site's rate-limit { } section, if it has one; what it does not set
 * comes from the global section (loaded before any listener).
 */
static void
load_site_limit(struct loader *ld, cfg_t *s, struct config_site *site)
{
	cfg_t *rl = cfg_getsec(s, "rate-limit");

	if (rl == NULL)
		return;
	site->rate_own = opt_line(ld, rl, "requests-per-second") != 0 ||
	    opt_line(ld, rl, "burst") != 0;
	if (!site->rate_own)
		return;
	site->rate_rps = ld->cfg->rate_rps;
	site->rate_burst = ld->cfg->rate_burst;
	if (opt_line(ld, rl, "requests-per-second") != 0)
		site->rate_rps = get_rate(ld, rl);
	if (opt_line(ld, rl, "burst") != 0)
		site->rate_burst = (unsigned)get_int(ld, rl, "burst", 1,
		    1000000);
}

bool
config_client_auth_ok(const struct config_site *site, size_t nfiles)
{
	if (site->client_auth == CONFIG_CLIENT_AUTH_NONE)
		return site->client_ca == CONFIG_NO_FILE;
	return (site->client_auth == CONFIG_CLIENT_AUTH_REQUIRED ||
	    site->client_auth == CONFIG_CLIENT_AUTH_OPTIONAL) &&
	    site->client_ca < nfiles;
}

/*
 * client-auth and client-ca-file of site section s (issue 18): both or
 * neither.  The CA file is read here by the master, like an
 * upstream-ca-file (cfg->files, checked as a trust store), and is the
 * trust of this site's client certificates alone.
 */
static void
load_client_auth(struct loader *ld, cfg_t *s, struct config_site *site,
    const char *what)
{
	bool has_ca = opt_set(ld, s, "client-ca-file");
	bool has_auth = opt_set(ld, s, "client-auth");
	int cline = line_of(ld, s, "client-ca-file");
	int aline = line_of(ld, s, "client-auth");
	const char *v;

	site->client_auth = CONFIG_CLIENT_AUTH_NONE;
	site->client_ca = CONFIG_NO_FILE;
	if (has_auth) {
		v = cfg_getstr(s, "client-auth");
		if (v != NULL && strcmp(v, "required") == 0)
			site->client_auth = CONFIG_CLIENT_AUTH_REQUIRED;
		else if (v != NULL && strcmp(v, "optional") == 0)
			site->client_auth = CONFIG_CLIENT_AUTH_OPTIONAL;
		else {
			cerr(ld, aline, "%s: client-auth must be \"required\" "
			    "or \"optional\"", what);
			return;
		}
	}
	if (has_auth && !has_ca) {
		cerr(ld, aline, "%s: client-auth needs client-ca-file (the "
		    "CA bundle client certificates are verified against)",
		    what);
		site->client_auth = CONFIG_CLIENT_AUTH_NONE;
		return;
	}
	if (has_ca && !has_auth) {
		cerr(ld, cline, "%s: client-ca-file needs client-auth "
		    "(\"required\" or \"optional\")", what);
		return;
	}
	if (!has_ca)
		return;
	v = cfg_getstr(s, "client-ca-file");
	if (path_ok(ld, cline, "client-ca-file", v, false))
		site->client_ca = check_ca(ld, cline, "client-ca-file",
		    load_file(ld, cline, "client-ca-file", v, CONFIG_CA_MAX,
		    false, false));
	/* An error was said: nothing here to trust. */
	if (site->client_ca == CONFIG_NO_FILE)
		site->client_auth = CONFIG_CLIENT_AUTH_NONE;
}

static void
load_http(struct loader *ld, cfg_t *root, struct config *cfg)
{
	cfg_t *h = cfg_getsec(root, "http");
	struct config_http *c = &cfg->http;

	c->max_request_line = (unsigned)get_int(ld, h, "max-request-line",
	    256, 65536);
	c->max_header_size = (unsigned)get_int(ld, h, "max-header-size",
	    1024, 65536);
	c->max_headers = (unsigned)get_int(ld, h, "max-headers", 8, 128);
	c->handshake_timeout = (unsigned)get_int(ld, h, "handshake-timeout",
	    1, 300);
	c->header_timeout = (unsigned)get_int(ld, h, "header-timeout", 1, 300);
	c->idle_timeout = (unsigned)get_int(ld, h, "idle-timeout", 1, 3600);
	c->client_timeout = (unsigned)get_int(ld, h, "client-timeout", 1,
	    3600);
	c->tunnel_timeout = (unsigned)get_int(ld, h, "tunnel-idle-timeout", 1,
	    86400);
	c->h2 = cfg_getbool(h, "http2");
	c->h2_max_streams = (unsigned)get_int(ld, h,
	    "http2-max-concurrent-streams", 1, 1000);
	/* Only when both are in range: one message per mistake. */
	if (c->max_request_line > c->max_header_size &&
	    cfg_getint(h, "max-request-line") == (long)c->max_request_line &&
	    cfg_getint(h, "max-header-size") == (long)c->max_header_size)
		cerr(ld, line_of(ld, h, "max-request-line"), "max-request-line "
		    "(%u) is larger than max-header-size (%u)",
		    c->max_request_line, c->max_header_size);
}

static void
load_admin_socket(struct loader *ld, cfg_t *root, struct config *cfg)
{
	const char *s = cfg_getstr(root, "admin-socket");
	struct sockaddr_un sun;

	if (s == NULL || s[0] == '\0')
		return;
	if (s[0] != '/' || strlen(s) >= sizeof(sun.sun_path))
		cerr(ld, line_of(ld, root, "admin-socket"), "admin-socket must "
		    "be an absolute path shorter than %zu bytes",
		    sizeof(sun.sun_path));
	cfg->admin_socket = xstrdup_or_null(ld, s);
}

/* seccomp: the children's system-call allow-lists (sandbox.h). */
static void
load_seccomp(struct loader *ld, cfg_t *root, struct config *cfg)
{
	const char *s = cfg_getstr(root, "seccomp");

	if (sandbox_mode_parse(s, &cfg->seccomp) == -1)
		cerr(ld, line_of(ld, root, "seccomp"), "seccomp must be kill, "
		    "log or off, not \"%s\"", s != NULL ? s : "");
}

static void
load_root(struct loader *ld, cfg_t *root, struct config *cfg)
{
	bool wildcard_ok;
	size_t i, n;

	load_user(ld, root, cfg);
	cfg->workers = (unsigned)get_int(ld, root, "workers", 0,
	    CONFIG_MAX_WORKERS);
	cfg->allow_wildcard_bind = cfg_getbool(root, "allow-wildcard-bind");
	cfg->health_port = (uint16_t)get_int(ld, root, "health-check-port", 0,
	    65535);
	load_admin_socket(ld, root, cfg);
	cfg->shutdown_timeout = (unsigned)get_int(ld, root, "shutdown-timeout",
	    0, 3600);
	cfg->max_connections = (unsigned)get_int(ld, root, "max-connections",
	    16, 1000000);
	cfg->ticket_rotation = (unsigned)get_int(ld, root,
	    "session-ticket-rotation", 1, CONFIG_TICKET_ROTATION);
	load_seccomp(ld, root, cfg);
	load_logging(ld, root, cfg);
	load_limits(ld, root, cfg);
	load_http(ld, root, cfg);
	ld->cfg = cfg;

	wildcard_ok = cfg->allow_wildcard_bind || ld->opts->allow_wildcard_bind;
	n = cfg_size(root, "listener");
	if (n == 0) {
		cerr(ld, ld->last_line, "at least one listener { } section is "
		    "required");
		return;
	}
	if (n > CONFIG_MAX_LISTENERS) {
		cerr(ld, ld->last_line, "more than %d listeners",
		    CONFIG_MAX_LISTENERS);
		return;
	}
	if ((cfg->listeners = calloc(n, sizeof(*cfg->listeners))) == NULL) {
		ld->oom = true;
		return;
	}
	cfg->nlisteners = n;
	for (i = 0; i < n; i++)
		load_listener(ld, cfg_getnsec(root, "listener", (unsigned)i),
		    &cfg->listeners[i], wildcard_ok);
	check_endpoints(ld, cfg, line_of(ld, root, "health-check-port"));
	if ((n = config_upstream_count(cfg)) > CONFIG_MAX_UPSTREAM_SLOTS)
		cerr(ld, ld->last_line, "%zu upstreams in all (each site's and "
		    "path block's list counted): at most %d", n,
		    CONFIG_MAX_UPSTREAM_SLOTS);
}

/* The line of the byte at offset off (1-based). */
static int
line_at(const char *buf, size_t off)
{
	int line = 1;
	size_t i;

	for (i = 0; i < off; i++)
		if (buf[i] == '\n')
			line++;
	return line;
}

/* The number of the last line (a final newline starts no new line). */
static int
count_lines(const char *buf, size_t len)
{
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	return line_at(buf, len);
}

/* Skip a quoted string starting at text[i]; returns the index after it. */
static size_t
skip_string(const char *text, size_t len, size_t i)
{
	char quote = text[i++];

	while (i < len && text[i] != quote) {
		if (text[i] == '\\' && i + 1 < len)
			i++;
		i++;
	}
	return i < len ? i + 1 : len;
}

/* Overwrite a comment with blanks, keeping its newlines. */
static size_t
blank_comment(char *text, size_t len, size_t i)
{
	bool block = text[i] == '/' && text[i + 1] == '*';

	while (i < len) {
		if (block && text[i] == '*' && i + 1 < len &&
		    text[i + 1] == '/') {
			text[i] = text[i + 1] = ' ';
			return i + 2;
		}
		if (!block && text[i] == '\n')
			return i;
		if (text[i] != '\n')
			text[i] = ' ';
		i++;
	}
	return len;
}

/*
 * libconfuse 3.3 miscounts lines after a comment (two extra per "#"
 * comment) and takes the end of the file as closing every open section.
 * So comments are blanked out before it sees the text (strings are left
 * alone), and braces are counted here: a file cut short is an error.
 */
static void
prescan(struct loader *ld, char *text, size_t len)
{
	size_t i = 0;
	int depth = 0;

	while (i < len) {
		char c = text[i];

		if (c == '"' || c == '\'')
			i = skip_string(text, len, i);
		else if (c == '#' || (c == '/' && i + 1 < len &&
		    (text[i + 1] == '/' || text[i + 1] == '*')))
			i = blank_comment(text, len, i);
		else {
			if (c == '{')
				depth++;
			else if (c == '}')
				depth--;
			i++;
		}
	}
	if (depth > 0)
		cerr(ld, ld->last_line, "the file ends inside %d unclosed "
		    "section%s: a '}' is missing", depth, depth > 1 ? "s" : "");
}

int
config_parse_buffer(const char *name, const char *buf, size_t len,
    const struct config_opts *opts, struct config **out,
    struct config_errors *errs)
{
	struct loader ld;
	struct config *cfg = NULL;
	cfg_t *root = NULL;
	const char *nul;
	char *text = NULL;
	size_t nerr0 = nerrors(errs);	/* errs may hold earlier messages */

	/* A load that reads keys must check them: never skip it silently. */
	if (!opts->pure && opts->keypair_check == NULL)
		abort();
	*out = NULL;
	memset(&ld, 0, sizeof(ld));
	ld.name = name;
	ld.opts = opts;
	ld.errs = errs;
	ld.last_line = count_lines(buf, len);
	if ((nul = memchr(buf, '\0', len)) != NULL) {
		cerr(&ld, line_at(buf, (size_t)(nul - buf)), "NUL byte in the "
		    "configuration");
		goto done;
	}
	if ((text = malloc(len + 1)) == NULL ||
	    (cfg = calloc(1, sizeof(*cfg))) == NULL ||
	    (cfg->path = strdup(name)) == NULL) {
		ld.oom = true;
		goto done;
	}
	memcpy(text, buf, len);
	text[len] = '\0';
	prescan(&ld, text, len);
	if (nerrors(errs) > nerr0)
		goto done;
	install_line_recorders(root_opts);
	if ((root = cfg_init(root_opts, CFGF_NONE)) == NULL) {
		ld.oom = true;
		goto done;
	}
	cfg_set_error_function(root, confuse_error);
	ld.root = root;
	ld.out = cfg;
	cur_loader = &ld;
	/* A syntax error leaves no tree to check; our own errors do. */
	if (cfg_parse_buf(root, text) != CFG_SUCCESS) {
		if (nerrors(errs) == nerr0)
			cerr(&ld, root->line, "syntax error");
	} else
		load_root(&ld, root, cfg);
	cur_loader = NULL;
done:
	if (ld.oom)
		cerr(&ld, 0, "out of memory");
	if (root != NULL)
		cfg_free(root);
	free(ld.lines);
	free(ld.list_last);
	free(ld.fstate);
	free(ld.pairs);
	free(text);
	if (nerrors(errs) > nerr0 || ld.oom) {
		config_free(cfg);
		return -1;
	}
	*out = cfg;
	return 0;
}

int
config_load(const char *path, const struct config_opts *opts,
    struct config **out, struct config_errors *errs)
{
	struct config_blob file;
	struct loader ld;
	char err[256];
	int rc;

	*out = NULL;
	if (read_file(path, CONFIG_FILE_MAX, &file, err, sizeof(err)) == -1) {
		memset(&ld, 0, sizeof(ld));
		ld.name = path;
		ld.errs = errs;
		cerr(&ld, 0, "cannot read configuration: %s", err);
		return -1;
	}
	rc = config_parse_buffer(path, (const char *)file.data, file.len, opts,
	    out, errs);
	blob_free(&file, false);
	return rc;
}

static void
tls_free(struct config_tls *t)
{
	free(t->cert_path);
	free(t->key_path);
	blob_free(&t->cert, false);
	blob_free(&t->key, true);
}

static void
backend_free(struct config_backend *be)
{
	size_t i;

	for (i = 0; i < be->nups; i++) {
		free(be->ups[i].name);
		free(be->ups[i].host);
	}
	free(be->ups);
	free(be->health.path);
	free(be->ring);
	free(be->server_name);
}

/* A block's own access rules and header lists (not those it shares). */
static void
edge_free(struct config_access *a, struct config_edits *e)
{
	if (a->own)
		free(a->ranges);
	if (e->resp_add.own)
		free(e->resp_add.f);
	if (e->resp_hide.own)
		free(e->resp_hide.f);
	if (e->req_add.own)
		free(e->req_add.f);
}

static void
paths_free(struct config_site *site)
{
	size_t i;

	for (i = 0; i < site->npaths; i++) {
		free(site->paths[i].prefix);
		free(site->paths[i].replace);
		backend_free(&site->paths[i].be);
		edge_free(&site->paths[i].access, &site->paths[i].edits);
	}
	free(site->paths);
}

static void
secret_free(char *s)
{
	if (s != NULL)
		explicit_bzero(s, strlen(s));
	free(s);
}

static void
acme_free(struct config_acme *a)
{
	size_t i;

	for (i = 0; i < a->ndomains; i++)
		free(a->domains[i]);
	free(a->domains);
	free(a->directory);
	free(a->contact);
	free(a->cache_dir);
	free(a->ca_file);
	blob_free(&a->ca, false);
	free(a->eab_kid);
	secret_free(a->eab_hmac_key);
}

/* What the master adds: issued certificates and pending challenges. */
static void
acme_state_free(struct config_listener *l)
{
	size_t i;

	for (i = 0; i < l->nacme_certs; i++) {
		free(l->acme_certs[i].name);
		blob_free(&l->acme_certs[i].cert, false);
		blob_free(&l->acme_certs[i].key, true);
	}
	free(l->acme_certs);
	for (i = 0; i < l->nchallenges; i++) {
		free(l->challenges[i].name);
		free(l->challenges[i].token);
		free(l->challenges[i].keyauth);	/* served to anyone */
	}
	free(l->challenges);
}

void
config_free(struct config *cfg)
{
	size_t i, j;

	if (cfg == NULL)
		return;
	for (i = 0; i < cfg->nlisteners; i++) {
		struct config_listener *l = &cfg->listeners[i];

		for (j = 0; j < l->nsites; j++) {
			free(l->sites[j].host);
			backend_free(&l->sites[j].be);
			paths_free(&l->sites[j]);
			edge_free(&l->sites[j].access, &l->sites[j].edits);
			tls_free(&l->sites[j].tls);
		}
		free(l->sites);
		free(l->bind);
		tls_free(&l->tls);
		acme_free(&l->acme);
		acme_state_free(l);
		free(l->trusted);
		free(l->real_ip_header);
	}
	free(cfg->listeners);
	for (i = 0; i < cfg->nfiles; i++) {
		free(cfg->files[i].path);
		blob_free(&cfg->files[i].data, cfg->files[i].secret);
	}
	free(cfg->files);
	free(cfg->path);
	free(cfg->user);
	free(cfg->admin_socket);
	free(cfg->log_file);
	free(cfg);
}

void
config_errors_free(struct config_errors *errs)
{
	size_t i;

	for (i = 0; i < errs->n; i++)
		free(errs->msgs[i]);
	free(errs->msgs);
	free(errs->lines);
	errs->msgs = NULL;
	errs->lines = NULL;
	errs->n = 0;
	errs->nwarn = 0;
}

char *
config_errors_join(const struct config_errors *errs)
{
	size_t i, len = 1, off = 0;
	char *s;

	for (i = 0; i < errs->n; i++)
		len += strlen(errs->msgs[i]) + 2;
	if ((s = malloc(len)) == NULL)
		return NULL;
	s[0] = '\0';
	for (i = 0; i < errs->n; i++) {
		size_t n = strlen(errs->msgs[i]);

		if (i > 0) {
			memcpy(s + off, "; ", 2);
			off += 2;
		}
		memcpy(s + off, errs->msgs[i], n);
		off += n;
	}
	s[off] = '\0';
	return s;
}

static bool
str_differs(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a != b;
	return strcmp(a, b) != 0;
}

const char *
config_static_change(const struct config *o, const struct config *n,
    char *buf, size_t bufsz)
{
	size_t i;

	if (str_differs(o->user, n->user))
		return "user";
	if (o->workers != n->workers)
		return "workers";
	if (o->allow_wildcard_bind != n->allow_wildcard_bind)
		return "allow-wildcard-bind";
	if (o->health_port != n->health_port)
		return "health-check-port";
	if (str_differs(o->admin_socket, n->admin_socket))
		return "admin-socket";
	if (o->shutdown_timeout != n->shutdown_timeout)
		return "shutdown-timeout";
	if (o->max_connections != n->max_connections)
		return "max-connections";
	if (o->seccomp != n->seccomp)
		return "seccomp";
	if (o->rate_table_size != n->rate_table_size)
		return "rate-limit table-size";
	if (o->log_level != n->log_level || o->log_format != n->log_format ||
	    o->log_access != n->log_access ||
	    str_differs(o->log_file, n->log_file))
		return "logging";
	if (o->nlisteners != n->nlisteners)
		return "the number of listeners";
	for (i = 0; i < o->nlisteners; i++) {
		const struct config_listener *a = &o->listeners[i];
		const struct config_listener *b = &n->listeners[i];
		const char *what = NULL;

		if (a->family != b->family || memcmp(&a->addr, &b->addr,
		    a->family == AF_INET ? sizeof(a->addr.v4) :
		    sizeof(a->addr.v6)) != 0)
			what = "bind";
		else if (a->https_port != b->https_port)
			what = "https-port";
		else if (a->http_port != b->http_port)
			what = "http-port";
		else if (a->max_conns_per_client != b->max_conns_per_client)
			what = "max-connections-per-client";
		else if (a->proxy_protocol != b->proxy_protocol)
			what = "proxy-protocol";
		else if (a->ntrusted != b->ntrusted || (a->ntrusted > 0 &&
		    memcmp(a->trusted, b->trusted, a->ntrusted *
		    sizeof(*a->trusted)) != 0))
			what = "trusted-proxies";
		if (what != NULL) {
			snprintf(buf, bufsz, "listener %zu %s", i + 1, what);
			return buf;
		}
	}
	return NULL;
}

size_t
config_site_count(const struct config *cfg)
{
	size_t i, n = 0;

	for (i = 0; i < cfg->nlisteners; i++)
		n += cfg->listeners[i].nsites;
	return n;
}

void
config_foreach_backend(const struct config *cfg,
    void (*fn)(void *arg, const struct config_listener *l,
    const struct config_site *site, const struct config_path *path,
    struct config_backend *be), void *arg)
{
	struct config_listener *l;
	struct config_site *s;
	size_t i, j, k;

	for (i = 0; i < cfg->nlisteners; i++) {
		l = &cfg->listeners[i];
		for (j = 0; j < l->nsites; j++) {
			s = &l->sites[j];
			fn(arg, l, s, NULL, &s->be);
			for (k = 0; k < s->npaths; k++)
				fn(arg, l, s, &s->paths[k], &s->paths[k].be);
		}
	}
}

static void
count_ups(void *arg, const struct config_listener *l UNUSED,
    const struct config_site *site UNUSED,
    const struct config_path *path UNUSED, struct config_backend *be)
{
	*(size_t *)arg += be->nups;
}

size_t
config_upstream_count(const struct config *cfg)
{
	size_t n = 0;

	config_foreach_backend(cfg, count_ups, &n);
	return n;
}
