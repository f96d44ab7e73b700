/*
 * config.h - the configuration file: schema, parsing and validation.
 *
 * libconfuse stays inside config.c: it turns the file into these plain
 * structs, checks everything that can be checked before anything is bound
 * (types, ranges, host names, upstream addresses, duplicate sites and
 * listeners, readable certificates whose keys match), and reports every
 * problem as "FILE:LINE: reason".
 */
#ifndef PORTCULLIS_CONFIG_H
#define PORTCULLIS_CONFIG_H

#include <sys/socket.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cidr.h"
#include "headers.h"
#include "log.h"
#include "sandbox.h"

#define CONFIG_FILE_MAX		(1024 * 1024)	/* config file size limit */
#define CONFIG_PEM_MAX		(1024 * 1024)	/* cert or key file limit */
/* An upstream-ca-file or the system trust store (Debian's: 220 KiB). */
#define CONFIG_CA_MAX		(4 * 1024 * 1024)
/* Distinct files the upstream-* options name, and their bytes in all
   (they travel in the image, whose slot is not much larger). */
#define CONFIG_MAX_FILES	1024
#define CONFIG_FILES_BYTES_MAX	(32 * 1024 * 1024)
#define CONFIG_MAX_LISTENERS	64
#define CONFIG_MAX_SITES	4096		/* per listener */
#define CONFIG_MAX_PATHS	256		/* path blocks per site */
/* A path block's prefix, and a replace-path: at most this long. */
#define CONFIG_PREFIX_MAX	1024
/* The largest site upstream-keepalive (upstream.h: UPSTREAM_IDLE_MAX). */
#define CONFIG_KEEPALIVE_MAX	1024
#define CONFIG_MAX_WORKERS	256
/* max-connections-per-client: 1..this (0, the default: no cap). */
#define CONFIG_MAX_CONNS_PER_CLIENT	1000000
#define CONFIG_HOST_MAX		253		/* DNS name length */
/* admin-socket's default, and where "portcullis ctl" looks by default. */
#define CONFIG_ADMIN_SOCKET	"/run/portcullis/admin.sock"
/* session-ticket-rotation: its default and most, a day (issue 19). */
#define CONFIG_TICKET_ROTATION	86400
/* rate-limit.table-size, in entries (ratelimit.h: 16 bytes each). */
#define CONFIG_RATE_TABLE_MIN	1024u
#define CONFIG_RATE_TABLE_MAX	(16u * 1024 * 1024)
#define CONFIG_RATE_TABLE_DEFAULT 262144u		/* 4 MiB: 100k clients */

struct config_blob {
	unsigned char	*data;
	size_t		 len;
};

/* A certificate chain and its key, as PEM bytes read from disk. */
struct config_tls {
	char			*cert_path;	/* NULL: none configured */
	char			*key_path;
	struct config_blob	 cert;
	struct config_blob	 key;
};

/* tls { mode } */
enum config_tls_mode {
	CONFIG_TLS_MANUAL = 0,		/* cert and key files */
	CONFIG_TLS_ACME			/* certificates from an ACME CA */
};

/* tls { acme-challenge } */
enum config_acme_challenge {
	CONFIG_ACME_TLS_ALPN_01 = 0,	/* RFC 8737, on the https-port */
	CONFIG_ACME_HTTP_01		/* RFC 8555 8.3, on the http-port */
};

#define CONFIG_ACME_PRODUCTION \
	"https://acme-v02.api.letsencrypt.org/directory"
#define CONFIG_ACME_STAGING \
	"https://acme-staging-v02.api.letsencrypt.org/directory"
#define CONFIG_ACME_CACHE_DIR	"/var/lib/portcullis/acme"
#define CONFIG_ACME_RENEW_DAYS	30
#define CONFIG_ACME_URL_MAX	2048
#define CONFIG_ACME_EAB_MAX	512	/* acme-eab-kid, acme-eab-hmac-key */
/* acme-cache-dir, acme-ca-file: at most this long (PATH_MAX - 1). */
#define CONFIG_PATH_MAX		4095

/*
 * A listener's tls { mode = "acme" ... } settings (all reloadable).  In
 * the image every field but eab_hmac_key goes to the workers (who use
 * none of them); the ACME process gets an image with it too.
 */
struct config_acme {
	char			**domains;	/* lower-case, no wildcard */
	size_t			 ndomains;
	bool			 domains_set;	/* else: every non-wildcard
						   site name of the listener */
	char			*directory;	/* the https:// URL
						   ("production" resolved) */
	char			*contact;	/* NULL: none */
	enum config_acme_challenge challenge;
	char			*cache_dir;	/* absolute */
	char			*ca_file;	/* NULL: the system's trust */
	struct config_blob	 ca;		/* its PEM bytes */
	unsigned		 renew_days;	/* 0: the default (30, or a
						   third of the lifetime if
						   shorter) */
	char			*eab_kid;	/* both or neither */
	char			*eab_hmac_key;
	int			 line;		/* of mode */
};

/*
 * What the master adds to a generation from the ACME process's work,
 * never from the file: the certificates issued so far (one per name, its
 * own key), and the challenges the workers must answer now.
 */
struct config_acme_cert {
	char			*name;
	struct config_blob	 cert;		/* PEM chain */
	struct config_blob	 key;		/* PEM key */
};

struct config_challenge {
	enum config_acme_challenge type;
	char			*name;		/* the host it is for */
	char			*token;		/* http-01: the path's last part */
	char			*keyauth;	/* http-01: the body to answer */
	unsigned char		 digest[32];	/* tls-alpn-01: SHA-256 of the
						   key authorization */
};

/* load-balance */
enum config_balance {
	CONFIG_LB_ROUND_ROBIN = 0,
	CONFIG_LB_LEAST_CONN,		/* "least-connections" */
	CONFIG_LB_IP_HASH,
	CONFIG_LB_STICKY,		/* "sticky-cookie" */
};

/* Upstreams in a backend's list (a bit each in a retry's mask). */
#define CONFIG_MAX_UPSTREAMS	64
/*
 * Upstream entries in all (each backend's list counted), the size of the
 * shared table of their health and in-flight counts (upstate.h).
 */
#define CONFIG_MAX_UPSTREAM_SLOTS 4096
/* A sticky cookie's value: hex digits. */
#define CONFIG_COOKIE_HEX	32

/*
 * The system trust store that upstream-scheme = "https" without
 * upstream-ca-file uses: the first of these bundles that exists, read by
 * the master at load like any upstream-ca-file (Debian, Ubuntu, Alpine,
 * Arch; Fedora, RHEL; openSUSE).
 */
#define CONFIG_SYSTEM_CA_FILES						\
	"/etc/ssl/certs/ca-certificates.crt",				\
	"/etc/pki/tls/certs/ca-bundle.crt",				\
	"/etc/ssl/ca-bundle.pem"

/*
 * A file the upstream TLS options name (upstream-ca-file,
 * upstream-client-cert, upstream-client-key, or the system trust store),
 * or a site's client-ca-file: read by the master at load and carried
 * whole in the image, once however many backends or sites name it
 * (struct config's files; a backend or site holds indexes).  A worker
 * opens no file.
 */
struct config_file {
	char			*path;		/* NULL once decoded from an image */
	struct config_blob	 data;
	bool			 secret;	/* a private key: wiped when freed */
};

/* upstream-scheme */
enum config_scheme {
	CONFIG_SCHEME_HTTP = 0,
	CONFIG_SCHEME_HTTPS
};

/* upstream-proxy-protocol: the PROXY header each new upstream connection
   starts with (proxyhdr.h; the values are its versions). */
enum config_proxy_protocol {
	CONFIG_PROXY_NONE = 0,
	CONFIG_PROXY_V1 = 1,
	CONFIG_PROXY_V2 = 2,
};

/* No file: a backend without a client certificate (or not https). */
#define CONFIG_NO_FILE		UINT32_MAX

/* One upstream of a backend's list. */
struct config_upstream {
	char			*name;		/* as written: "host:port" */
	char			*host;		/* its host, no brackets */
	struct sockaddr_storage	 addr;		/* resolved when loaded */
	socklen_t		 addrlen;
	/* Its entry in the shared table (upstate.h), given by the master
	   when the generation is made (upstate_assign): the same
	   site, path block and name keep it across reloads. */
	uint32_t		 slot;
	/* sticky-cookie's value naming it (balance.h), made for a
	   worker's generation; "" in the master's. */
	char			 cookie[CONFIG_COOKIE_HEX + 1];
};

/* health-check { }: active checks, made by the prober (prober.h). */
struct config_health {
	bool			 on;
	char			*path;		/* origin-form, printable */
	unsigned		 interval;	/* seconds */
	unsigned		 timeout;	/* seconds */
	unsigned		 passes;	/* successes that mark it up */
	unsigned		 fails;		/* failures that mark it down */
	uint16_t		 status_min;	/* "2xx": 200..299 */
	uint16_t		 status_max;
};

/* A point of ip-hash's ring: upstream up owns the hashes up to hash. */
struct config_ring_point {
	uint64_t		 hash;
	uint32_t		 up;
};

/*
 * A backend: what a site (or a path block) forwards to, and how: its
 * upstreams and how one is chosen, their health, the scheme (and TLS to
 * the upstreams), the timeouts and the share of the pool of idle
 * connections.  The exchange (proxy.c) and the
 * pool (upstream.c) work from a backend and one of its upstreams, never
 * from a site.
 */
struct config_backend {
	struct config_upstream	*ups;
	size_t			 nups;		/* 1..CONFIG_MAX_UPSTREAMS */
	enum config_balance	 balance;
	unsigned		 max_fails;	/* 0: no passive health */
	unsigned		 fail_timeout;	/* seconds */
	struct config_health	 health;
	/* upstream-scheme and, for "https" only, the TLS to the upstreams. */
	enum config_scheme	 scheme;
	char			*server_name;	/* upstream-server-name: SNI and
						   the name verified; NULL: each
						   upstream's host (an IP
						   address: no SNI, its IP SAN
						   verified) */
	bool			 verify;	/* upstream-verify */
	uint32_t		 ca;		/* index in files: upstream-ca-
						   file or the system store */
	uint32_t		 client_cert;	/* index in files, or */
	uint32_t		 client_key;	/* CONFIG_NO_FILE (both) */
	unsigned		 connect_timeout;	/* seconds */
	unsigned		 request_timeout;	/* seconds */
	unsigned		 keepalive;	/* idle upstream conns per worker */
	unsigned		 keepalive_timeout;	/* seconds */
	enum config_proxy_protocol proxy_protocol;	/* upstream-proxy-
							   protocol */
	/* ip-hash's ring, sorted by hash: made for a worker's generation
	   (balance_prepare), NULL in the master's. */
	struct config_ring_point *ring;
	size_t			 nring;
};

/*
 * allow and deny of a site or a path block (issue 18): ranges[0..nfirst)
 * is the list whose option comes first in the file (first_allow: allow's),
 * the rest the other's, each in its order; the first range that holds the
 * client decides.  A client none holds is denied if there is an allow
 * list (whitelist), allowed otherwise.  No rule at all: nranges 0 and
 * every client allowed.  A path block that sets neither option shares
 * its site's (own false: ranges is the site's, not freed with the block).
 */
#define CONFIG_MAX_ACCESS_RULES	4096	/* per list */
struct config_access {
	struct cidr		*ranges;
	size_t			 nranges;
	size_t			 nfirst;
	bool			 first_allow;
	bool			 whitelist;
	bool			 own;
};

/*
 * response-header, hide-response-header and request-header of a site or
 * a path block (issue 18).  Each list is one allocation, the fields and
 * their text (config_fields_make); a path block that does not set one of
 * the options shares its site's list (its own flag false: not freed with
 * the block).  edit_resp and edit_req are the lists as headers.h takes
 * them.
 */
struct config_fields {
	struct http1_header	*f;		/* NULL: empty */
	size_t			 n;		/* 0..HEADERS_EDIT_MAX */
	bool			 own;
};

struct config_edits {
	struct config_fields	 resp_add;	/* response-header */
	struct config_fields	 resp_hide;	/* hide-response-header */
	struct config_fields	 req_add;	/* request-header */
	struct headers_edit	 edit_resp;
	struct headers_edit	 edit_req;
};

/*
 * A path block of a site, path "PREFIX" { }: a request whose path,
 * normalised for matching (path.h, PATH_MATCH), is under prefix
 * (path_prefix_match) goes to the block's backend instead of the site's;
 * the longest prefix wins.  With replace-path, the upstream gets the
 * path normalised for forwarding (without PATH_MATCH) with replace in
 * place of the prefix, and the query as sent (path_replace); without,
 * the target as the client sent it.  Both strings are printable ASCII
 * in their normal form (path_normalize gives them back unchanged),
 * start with '/' and have no '?' or '#'.
 */
struct config_path {
	char			*prefix;	/* 1..CONFIG_PREFIX_MAX bytes */
	size_t			 prefix_len;
	char			*replace;	/* NULL: no replace-path */
	size_t			 replace_len;
	struct config_backend	 be;		/* options left out: the
						   site's */
	struct config_access	 access;	/* allow, deny */
	struct config_edits	 edits;		/* the header options */
	int			 line;
};

/* client-auth (issue 18): whether a site asks TLS clients for a
   certificate, verified against its client-ca-file. */
enum config_client_auth {
	CONFIG_CLIENT_AUTH_NONE = 0,
	CONFIG_CLIENT_AUTH_REQUIRED,	/* none or a bad one: no handshake */
	CONFIG_CLIENT_AUTH_OPTIONAL	/* the result goes upstream */
};

struct config_site {
	char			*host;		/* lower-case, no trailing dot */
	bool			 wildcard;	/* "*.example.com" */
	struct config_backend	 be;		/* where its requests go */
	/* Its path blocks, longest prefix first (equal lengths in the
	   file's order): the first that matches is the longest. */
	struct config_path	*paths;
	size_t			 npaths;	/* 0..CONFIG_MAX_PATHS */
	struct config_tls	 tls;		/* optional, chosen by SNI */
	/* Its own rate-limit { } section: buckets of its own at this rate. */
	bool			 rate_own;
	double			 rate_rps;
	unsigned		 rate_burst;
	/* client-auth and client-ca-file (an index in files: the trust of
	   this site alone), both or neither: CONFIG_NO_FILE with NONE. */
	enum config_client_auth	 client_auth;
	uint32_t		 client_ca;
	struct config_access	 access;	/* allow, deny */
	struct config_edits	 edits;		/* the header options */
	int			 line;
	/* Its row of the request statistics (shm.h SHM_SITE_*): from the
	   master (metrics_sites_assign()), not the file; 0 until then. */
	uint16_t		 metrics_slot;
};

struct config_listener {
	char			*bind;		/* the address as written */
	int			 family;	/* AF_INET or AF_INET6 */
	union {
		struct in_addr	 v4;
		struct in6_addr	 v6;
	}			 addr;
	uint16_t		 https_port;
	uint16_t		 http_port;	/* 0: no redirect listener */
	uint16_t		 redirect_port;	/* the redirect's Location; 0:
						   https_port */
	int			 https_line;	/* where the ports are set */
	int			 http_line;
	struct config_tls	 tls;		/* manual: required */
	enum config_tls_mode	 tls_mode;
	struct config_acme	 acme;		/* tls_mode == CONFIG_TLS_ACME */
	struct config_acme_cert	*acme_certs;	/* from the master, not the file */
	size_t			 nacme_certs;
	struct config_challenge	*challenges;	/* from the master, not the file */
	size_t			 nchallenges;
	struct config_site	*sites;
	size_t			 nsites;
	int			 line;
	/* max-connections-per-client (connlimit.h); 0: no cap.  Static. */
	unsigned		 max_conns_per_client;
	/* PROXY protocol in and trusted proxies (proxyin.h): proxy-protocol
	   and trusted-proxies are static (listen_plan's layout does not
	   change, nor who may name a client); real-ip-header reloads. */
	bool			 proxy_protocol;
	struct cidr		*trusted;	/* trusted-proxies */
	size_t			 ntrusted;	/* 0..CONFIG_MAX_TRUSTED */
	char			*real_ip_header;	/* NULL: none */
};

/* HTTP limits and client timeouts (seconds), all changeable on reload. */
struct config_http {
	unsigned		 max_request_line;	/* 414 beyond */
	unsigned		 max_header_size;	/* whole head; 431 */
	unsigned		 max_headers;		/* fields; 431 */
	unsigned		 handshake_timeout;
	unsigned		 header_timeout;	/* a head must arrive */
	unsigned		 idle_timeout;		/* between requests */
	unsigned		 client_timeout;	/* no progress to/from */
	unsigned		 tunnel_timeout;	/* idle WebSocket */
	bool			 h2;			/* offer HTTP/2 (ALPN) */
	unsigned		 h2_max_streams;	/* concurrent, per connection */
};

struct config {
	char			*path;		/* the file it came from */
	char			*user;
	unsigned		 workers;	/* 0: one per online CPU */
	bool			 allow_wildcard_bind;
	uint16_t		 health_port;	/* 0: disabled */
	char			*admin_socket;	/* NULL: disabled */
	unsigned		 shutdown_timeout;
	unsigned		 max_connections;	/* per worker */
	/* Seconds between session-ticket key rotations (the master's;
	   ticketkeys.h): at least daily. */
	unsigned		 ticket_rotation;
	enum sandbox_mode	 seccomp;	/* the children's; static */
	enum log_level		 log_level;
	enum log_format		 log_format;
	bool			 log_access;	/* ACCESS lines (nginx access_log) */
	char			*log_file;	/* NULL: stderr */
	double			 rate_rps;
	unsigned		 rate_burst;
	unsigned		 rate_table_size;	/* entries; static */
	uint64_t		 body_limit;	/* 0: unlimited */
	struct config_http	 http;
	struct config_listener	*listeners;
	size_t			 nlisteners;
	/* What the upstream TLS options of every backend name (reloadable). */
	struct config_file	*files;
	size_t			 nfiles;	/* 0..CONFIG_MAX_FILES */
};

/*
 * Checks that cert (a PEM chain) and key (a PEM private key) load and that
 * the key belongs to the first certificate: 0, or -1 with a reason in err.
 * The caller supplies it (tls_keypair_check) so that the parser does not
 * depend on the TLS library.
 */
typedef int config_keypair_check_fn(const struct config_blob *cert,
	    const struct config_blob *key, char *err, size_t errsz);

/*
 * Checks that ca (PEM) holds certificates a TLS client can trust, every
 * one of them parsing: 0, or -1 with a reason in err (uptls_ca_check).
 */
typedef int config_ca_check_fn(const struct config_blob *ca, char *err,
	    size_t errsz);

/* Settings from the command line that validation depends on. */
struct config_opts {
	bool	 allow_wildcard_bind;	/* --allow-wildcard-bind */
	bool	 pure;			/* no file, user or DNS look-ups (fuzzing) */
	/* Required unless pure (config_load aborts without it). */
	config_keypair_check_fn	*keypair_check;
	/* For upstream-ca-file and the system store; NULL: only checked
	   for a "-----BEGIN CERTIFICATE-----" line. */
	config_ca_check_fn	*ca_check;
};

/*
 * Every problem found, each "FILE:LINE: reason", sorted by line.  A
 * warning, "FILE:LINE: warning: reason", does not fail the load; nwarn
 * counts them.
 */
struct config_errors {
	char	**msgs;
	int	 *lines;	/* the line of each message, for sorting */
	size_t	  n;
	size_t	  nwarn;	/* how many of the n are warnings */
};

/*
 * Load and validate path.  Returns 0 and a config in *out, or -1 with
 * at least one error in *errs (which the caller frees either way); *errs
 * may hold warnings either way.
 */
int	 config_load(const char *path, const struct config_opts *opts,
	    struct config **out, struct config_errors *errs);

/* The same over a buffer; name stands for the file in messages. */
int	 config_parse_buffer(const char *name, const char *buf, size_t len,
	    const struct config_opts *opts, struct config **out,
	    struct config_errors *errs);

void	 config_free(struct config *cfg);
void	 config_errors_free(struct config_errors *errs);

/* All messages joined with "; " (for the admin socket); caller frees. */
char	*config_errors_join(const struct config_errors *errs);

/*
 * The name of the first setting that needs a restart and differs between
 * old and new ("workers", "listener 1 https-port" ...), or NULL.
 */
const char *config_static_change(const struct config *old,
	    const struct config *new, char *buf, size_t bufsz);

/* Host name rules shared with routing: 0 if valid, -1 if not. */
int	 config_check_hostname(const char *name, size_t len, bool allow_wildcard);

/*
 * The rules of tls { } values, shared with the image decoder: an
 * https:// URL (acme-directory), a "mailto:" address (acme-contact), and
 * 1..max base64url characters with '=' padding at the end tolerated
 * (acme-eab-hmac-key); all printable ASCII without spaces.
 */
bool	 config_acme_url_ok(const char *s);
bool	 config_acme_contact_ok(const char *s);
bool	 config_base64url_ok(const char *s, size_t max);

/*
 * The rules of a path block's prefix (prefix true) and of a replace-path,
 * shared with the image decoder: 1..CONFIG_PREFIX_MAX bytes of printable
 * ASCII, starting with '/', no '?' or '#', and in normal form
 * (path_normalize(), path.h: with PATH_MATCH for a prefix, without for a
 * replace-path, gives it back unchanged).
 */
bool	 config_path_ok(const char *s, size_t len, bool prefix);

/*
 * A health-check path (origin-form: '/' and printable ASCII without
 * spaces or '#', at most CONFIG_PREFIX_MAX bytes), and a health-check
 * status ("2xx": a class; "204": one code) as the range it accepts;
 * shared with the image decoder.
 */
bool	 config_health_path_ok(const char *s);
int	 config_parse_status(const char *s, uint16_t *min, uint16_t *max);

/* "round-robin", "least-connections", "ip-hash", "sticky-cookie". */
const char *config_balance_name(enum config_balance b);

/*
 * Call fn for every backend of cfg (each site's, then its path blocks'),
 * with the listener, the site and the path block (NULL: the site's own).
 */
void	 config_foreach_backend(const struct config *cfg,
	    void (*fn)(void *arg, const struct config_listener *l,
	    const struct config_site *site, const struct config_path *path,
	    struct config_backend *be), void *arg);

/* Upstream entries over every backend of cfg. */
size_t	 config_upstream_count(const struct config *cfg);

/*
 * upstream-server-name's rule, shared with the image decoder: a DNS name
 * (config_check_hostname, without wildcard or trailing dot) or an IPv4 or
 * IPv6 address.
 */
bool	 config_server_name_ok(const char *s);

/*
 * The rules of a backend's scheme and TLS fields, shared with the image
 * decoder, in a config of nfiles files: with "http", none of TLS (no
 * server name, verify, no file); with "https", a server name by
 * config_server_name_ok() if any, a trust store among the files, a client
 * certificate and key both or neither, files there are.
 */
bool	 config_backend_tls_ok(const struct config_backend *be, size_t nfiles);

/*
 * A site's client-auth and client-ca-file, shared with the image
 * decoder: both or neither, the file among nfiles.
 */
bool	 config_client_auth_ok(const struct config_site *site, size_t nfiles);

/* trusted-proxies: ranges a listener lists at most. */
#define CONFIG_MAX_TRUSTED	1024
/* real-ip-header: a field name at most this long. */
#define CONFIG_REAL_IP_MAX	64

/*
 * real-ip-header's rule, shared with the image decoder: a field name
 * (RFC 9110 token, 1..CONFIG_REAL_IP_MAX bytes) that is not one the proxy
 * never takes addresses from (Forwarded, whose syntax differs; Host).
 */
bool	 config_real_ip_header_ok(const char *s);

/*
 * n fields (names[i], values[i]; values NULL for names only) as one
 * allocation of fields and their text, each as headers_option_check()
 * took it: NULL when out of memory (or n 0).  Freed with free().
 */
struct http1_header *config_fields_make(const char *const *names,
	    const char *const *values, size_t n);

/*
 * A path block's access rules and header lists, set up after its own
 * are loaded (or decoded): each it does not set is its site's.  And the
 * headers.h view of a site's or path block's lists.
 */
void	 config_path_inherit(const struct config_site *site,
	    struct config_path *p);
void	 config_edits_view(struct config_edits *e);

/* Total number of sites over all listeners. */
size_t	 config_site_count(const struct config *cfg);

#endif /* PORTCULLIS_CONFIG_H */
