/*
 * ratelimit.c - per-client token buckets shared by every worker
 * (see ratelimit.h).
 */
#include "autoconf.h"

#include <sys/random.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "ratelimit.h"
#include "shm.h"
#include "util.h"

#define RL_MAGIC	0x4c544152u	/* "RATL" */
#define RL_VERSION	1u

#define TIME_MASK	((UINT64_C(1) << RATELIMIT_TIME_BITS) - 1)
#define TOKEN_MASK	((UINT64_C(1) << RATELIMIT_TOKEN_BITS) - 1)
#define TOKEN_MAX	((uint32_t)TOKEN_MASK)
/* Compare-and-swap rounds on one bucket before giving up (and admitting). */
#define CAS_TRIES	64
/* An IPv6 client is its /64: the bytes of the address in its key. */
#define V6_NET_BYTES	(RATELIMIT_V6_PREFIX / 8)
/* The longest wait ever announced (a week). */
#define RETRY_MAX_MS	(7u * 86400 * 1000)

struct rl_entry {
	_Atomic uint64_t key;		/* 0: never used */
	_Atomic uint64_t word;		/* the bucket */
};

/* At the start of the table's region, written once by the master. */
struct rl_hdr {
	uint32_t	 magic;
	uint32_t	 version;
	uint64_t	 entries;
	unsigned char	 secret[16];
	unsigned char	 pad[32];	/* entries start on a cache line */
};

struct ratelimit {
	struct rl_entry		*tab;
	uint64_t		 n;
	unsigned char		 secret[16];
	struct shm_counters	*counters;
};

/* ---- the bucket arithmetic ---- */

uint64_t
ratelimit_pack(uint64_t now_ms, uint32_t tokens)
{
	if (tokens > TOKEN_MAX)
		tokens = TOKEN_MAX;
	return ((now_ms & TIME_MASK) << RATELIMIT_TOKEN_BITS) | tokens;
}

uint32_t
ratelimit_tokens(uint64_t word)
{
	return (uint32_t)(word & TOKEN_MASK);
}

uint64_t
ratelimit_stamp(uint64_t word)
{
	return word >> RATELIMIT_TOKEN_BITS;
}

/*
 * now - then on the 36-bit clock, as a signed number: negative when
 * `then` is ahead (another worker read the clock a moment later).
 */
static int64_t
stamp_diff(uint64_t now_ms, uint64_t then)
{
	uint64_t d = (now_ms - then) & TIME_MASK;

	if (d & (UINT64_C(1) << (RATELIMIT_TIME_BITS - 1)))
		return (int64_t)d - ((int64_t)1 << RATELIMIT_TIME_BITS);
	return (int64_t)d;
}

static uint32_t
burst_units(unsigned burst)
{
	uint64_t cap = (uint64_t)burst * RATELIMIT_TOKEN;

	return cap > TOKEN_MAX ? TOKEN_MAX : (uint32_t)cap;
}

struct ratelimit_take
ratelimit_take(uint64_t word, uint64_t now_ms, double rate, unsigned burst)
{
	struct ratelimit_take r = { word, false, 0 };
	uint32_t cap = burst_units(burst);
	uint32_t stored = MINIMUM(ratelimit_tokens(word), cap), tokens = stored;
	uint64_t stamp = ratelimit_stamp(word);
	double per_ms = rate * RATELIMIT_TOKEN / 1000.0, gained, wait;
	int64_t elapsed = stamp_diff(now_ms, stamp);

	now_ms &= TIME_MASK;
	if (elapsed < 0 && elapsed > -RATELIMIT_SKEW_MS) {
		/* Behind another worker's clock: no time has passed. */
		elapsed = 0;
		now_ms = stamp;
	}
	/* Further back than that: refilled half the clock's range ago. */
	gained = elapsed < 0 ? INFINITY : (double)elapsed * per_ms;
	if (gained >= (double)(cap - tokens)) {
		tokens = cap;
		stamp = now_ms;
	} else if (gained >= 1.0) {
		/*
		 * Whole units only; the fraction is dropped with the time
		 * it stood for (at most 1/256 token a request, never a gift).
		 * Less than a unit: the stamp stays, so time accumulates.
		 */
		tokens += (uint32_t)gained;
		stamp = now_ms;
	}
	if (tokens >= RATELIMIT_TOKEN) {
		r.allowed = true;
		r.word = ratelimit_pack(stamp, tokens - RATELIMIT_TOKEN);
		return r;
	}
	/*
	 * Refused: the bucket is left as it was, so the wait runs from its
	 * stamp until whole units make a token.
	 */
	wait = ceil((double)(RATELIMIT_TOKEN - stored) / per_ms) -
	    (double)elapsed;
	r.retry_ms = wait < 1.0 ? 1 : wait > RETRY_MAX_MS ? RETRY_MAX_MS :
	    (uint32_t)wait;
	return r;
}

uint64_t
ratelimit_siphash(const unsigned char key[16], const void *data, size_t len)
{
	return util_siphash(key, data, len);
}

/* ---- the table ---- */

size_t
ratelimit_table_bytes(unsigned entries)
{
	return sizeof(struct rl_hdr) + (size_t)entries *
	    sizeof(struct rl_entry);
}

int
ratelimit_init(void *mem, size_t size, unsigned entries)
{
	struct rl_hdr *h = mem;
	size_t got = 0;
	ssize_t n;

	if (entries < RATELIMIT_TABLE_MIN || entries > RATELIMIT_TABLE_MAX ||
	    size < ratelimit_table_bytes(entries)) {
		errno = EINVAL;
		return -1;
	}
	while (got < sizeof(h->secret)) {
		n = getrandom(h->secret + got, sizeof(h->secret) - got, 0);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	h->entries = entries;
	h->version = RL_VERSION;
	h->magic = RL_MAGIC;
	return 0;
}

struct ratelimit *
ratelimit_attach(void *mem, size_t size, struct shm_counters *counters)
{
	const struct rl_hdr *h = mem;
	struct ratelimit *rl;
	uint64_t n;

	if (mem == NULL || size < sizeof(*h))
		return NULL;
	/*
	 * Read once: every worker can write the header, and a count checked
	 * here but read again after calloc() could be another one.
	 */
	n = __atomic_load_n(&h->entries, __ATOMIC_RELAXED);
	if (h->magic != RL_MAGIC || h->version != RL_VERSION ||
	    n < RATELIMIT_TABLE_MIN || n > RATELIMIT_TABLE_MAX ||
	    ratelimit_table_bytes((unsigned)n) > size ||
	    (rl = calloc(1, sizeof(*rl))) == NULL)
		return NULL;
	rl->tab = (struct rl_entry *)(h + 1);
	rl->n = n;
	memcpy(rl->secret, h->secret, sizeof(rl->secret));
	rl->counters = counters;
	return rl;
}

int
ratelimit_repair(const struct ratelimit *rl)
{
	struct rl_hdr *h = (struct rl_hdr *)(void *)rl->tab - 1;

	if (h->magic == RL_MAGIC && h->version == RL_VERSION &&
	    h->entries == rl->n &&
	    memcmp(h->secret, rl->secret, sizeof(h->secret)) == 0)
		return 0;
	h->magic = RL_MAGIC;
	h->version = RL_VERSION;
	h->entries = rl->n;
	memcpy(h->secret, rl->secret, sizeof(h->secret));
	return 1;
}

void
ratelimit_detach(struct ratelimit *rl)
{
	if (rl == NULL)
		return;
	explicit_bzero(rl->secret, sizeof(rl->secret));
	free(rl);
}

uint64_t
ratelimit_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

bool
ratelimit_key(const struct ratelimit *rl, const struct sockaddr *peer,
    const char *site_host, uint64_t *key)
{
	unsigned char buf[UTIL_CLIENT_KEY_MAX + CONFIG_HOST_MAX + 2];
	size_t len, hl;

	if ((len = util_client_key(peer, buf)) == 0)
		return false;
	if (site_host != NULL) {
		hl = MINIMUM(strlen(site_host), (size_t)CONFIG_HOST_MAX + 1);
		buf[len++] = '/';
		memcpy(buf + len, site_host, hl);
		len += hl;
	}
	*key = ratelimit_siphash(rl->secret, buf, len);
	if (*key == 0)
		*key = 1;		/* 0 marks a free entry */
	return true;
}

bool
ratelimit_net_name(const struct sockaddr *peer, char *buf, size_t len)
{
	const struct sockaddr_in6 *sin6 = (const void *)peer;
	struct in6_addr net;
	char addr[INET6_ADDRSTRLEN];
	int n;

	if (len > 0)
		buf[0] = '\0';
	if (peer->sa_family != AF_INET6 ||
	    IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr))
		return false;
	memset(&net, 0, sizeof(net));
	memcpy(net.s6_addr, sin6->sin6_addr.s6_addr, V6_NET_BYTES);
	if (inet_ntop(AF_INET6, &net, addr, sizeof(addr)) == NULL)
		return false;
	n = snprintf(buf, len, "%s/%d", addr, RATELIMIT_V6_PREFIX);
	if (n < 0 || (size_t)n >= len) {
		if (len > 0)
			buf[0] = '\0';
		return false;
	}
	return true;
}

/* The entry of the table at i from a key's first one, wrapping. */
static struct rl_entry *
slot(const struct ratelimit *rl, uint64_t first, unsigned i)
{
	uint64_t at = first + i;

	return &rl->tab[at >= rl->n ? at - rl->n : at];
}

/* How long ago a bucket was refilled (ancient: INT64_MAX - 1). */
static int64_t
word_age(uint64_t word, uint64_t now_ms)
{
	int64_t age = stamp_diff(now_ms, ratelimit_stamp(word));

	if (age < 0)
		return age > -RATELIMIT_SKEW_MS ? 0 : INT64_MAX - 1;
	return age;
}

/* Where a key's window starts: the high bits, any table size. */
static uint64_t
first_slot(const struct ratelimit *rl, uint64_t key)
{
	return (uint64_t)(((unsigned __int128)key * rl->n) >> 64);
}

/*
 * The entry holding key, or one taken over for it.  NULL only if the
 * window changed under us every time.
 *
 * A free entry gets its full bucket before its key, so that nobody can
 * find the key with the bucket not yet set.  An entry taken over from
 * another key gets a full bucket only if nobody touched the old one since
 * it was chosen; otherwise the new key inherits it for one refill, which
 * is all a race (or a worker killed in the middle) can ever cost.
 */
static struct rl_entry *
find_or_claim(struct ratelimit *rl, uint64_t key, uint64_t now_ms,
    unsigned burst)
{
	uint64_t first = first_slot(rl, key), k, victim_key, victim_word, w;
	struct rl_entry *e, *victim;
	int64_t age, oldest;
	unsigned i, round;

	for (round = 0; round < CAS_TRIES; round++) {
		victim = NULL;
		victim_key = victim_word = 0;
		oldest = -1;
		for (i = 0; i < RATELIMIT_WINDOW; i++) {
			e = slot(rl, first, i);
			k = atomic_load_explicit(&e->key, memory_order_acquire);
			if (k == key)
				return e;
			w = atomic_load_explicit(&e->word,
			    memory_order_relaxed);
			age = k == 0 ? INT64_MAX : word_age(w, now_ms);
			if (age > oldest) {
				oldest = age;
				victim = e;
				victim_key = k;
				victim_word = w;
			}
			/*
			 * Keys are never freed and a key takes the first free
			 * entry of its window: none lies past a free one.
			 */
			if (k == 0)
				break;
		}
		if (victim_key == 0) {
			w = 0;
			(void)atomic_compare_exchange_strong(&victim->word, &w,
			    ratelimit_pack(now_ms, burst_units(burst)));
		}
		if (!atomic_compare_exchange_strong(&victim->key, &victim_key,
		    key)) {
			if (victim_key == key)
				return victim;
			continue;	/* lost a race for it: look again */
		}
		if (victim_key != 0)	/* still the old key: it succeeded */
			(void)atomic_compare_exchange_strong(&victim->word,
			    &victim_word, ratelimit_pack(now_ms,
			    burst_units(burst)));
		return victim;
	}
	return NULL;
}

bool
ratelimit_table_take(struct ratelimit *rl, uint64_t key, uint64_t now_ms,
    double rate, unsigned burst, uint32_t *retry_ms)
{
	struct ratelimit_take t;
	struct rl_entry *e;
	uint64_t w;
	unsigned i;

	if ((e = find_or_claim(rl, key, now_ms, burst)) == NULL)
		return true;
	w = atomic_load_explicit(&e->word, memory_order_acquire);
	for (i = 0; i < CAS_TRIES; i++) {
		t = ratelimit_take(w, now_ms, rate, burst);
		if (!t.allowed) {
			*retry_ms = t.retry_ms;
			return false;
		}
		/* On failure w is reloaded: the entry may belong to another
		   key by now, which is harmless for one request. */
		if (atomic_compare_exchange_weak(&e->word, &w, t.word))
			return true;
	}
	/* Others kept winning, so they are making progress: let it pass. */
	return true;
}

/*
 * client_net, the network the bucket belongs to, follows host: filters
 * written for the older line (anchored on "client_ip=<ADDR> host=") keep
 * matching every line, and it still comes before the one long value a
 * client controls (host is normalised, at most CONFIG_HOST_MAX bytes, so
 * it can never push client_net off the line).  An IPv4 client's key is
 * its address: its line has no client_net and is what it always was.
 */
static void
log_refusal(const struct ratelimit_req *req)
{
	struct log_event ev;
	char net[RATELIMIT_NET_NAME_MAX];

	log_event_begin(&ev, "RATE_LIMIT");
	log_event_cstr(&ev, "client_ip", req->client_ip);
	log_event_str(&ev, "host", req->host, req->host_len);
	if (ratelimit_net_name(req->peer, net, sizeof(net)))
		log_event_cstr(&ev, "client_net", net);
	log_event_str(&ev, "path", req->path, req->path_len);
	log_event_uint(&ev, "status", 429);
	log_event_end(&ev);
}

bool
ratelimit_admit(struct ratelimit *rl, const struct config *cfg,
    const struct config_site *site, const struct ratelimit_req *req,
    unsigned *retry_after_s)
{
	const char *scope = NULL;
	double rate = cfg->rate_rps;
	unsigned burst = cfg->rate_burst;
	uint32_t retry_ms = 0;
	uint64_t key;

	if (rl == NULL)
		return true;
	if (site != NULL && site->rate_own) {
		scope = site->host;
		rate = site->rate_rps;
		burst = site->rate_burst;
	}
	if (!ratelimit_key(rl, req->peer, scope, &key))
		return true;
	if (ratelimit_table_take(rl, key, ratelimit_now_ms(), rate, burst,
	    &retry_ms))
		return true;
	*retry_after_s = (retry_ms + 999) / 1000;
	if (*retry_after_s < 1)
		*retry_after_s = 1;
	if (rl->counters != NULL)
		atomic_fetch_add(&rl->counters->rate_limited, 1);
	log_refusal(req);
	return false;
}
