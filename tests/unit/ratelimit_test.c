/*
 * ratelimit_test.c - the token buckets: the pure arithmetic (burst,
 * fractional rates, retry times, a clock that goes backwards, very long
 * idle times, rounding), SipHash against its reference vectors, keys, and
 * the shared table: reclaiming under a million keys, exact counts under
 * concurrent processes, and no harm from a process killed mid-update;
 * the RATE_LIMIT line, which names the network an IPv6 bucket stands for.
 */

#include "autoconf.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/mman.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "ratelimit.h"
#include "shm.h"
#include "util.h"

#define T0		UINT64_C(5000000)	/* an arbitrary clock reading */
#define TOKEN		RATELIMIT_TOKEN
#define HALF_RANGE	(UINT64_C(1) << (RATELIMIT_TIME_BITS - 1))

/* ---- the arithmetic ---- */

static uint64_t
full(uint64_t now, unsigned burst)
{
	return ratelimit_pack(now, burst * TOKEN);
}

/* Take until refused at a fixed time; returns how many passed. */
static unsigned
drain(uint64_t *word, uint64_t now, double rate, unsigned burst)
{
	struct ratelimit_take t;
	unsigned n = 0;

	for (;;) {
		t = ratelimit_take(*word, now, rate, burst);
		if (!t.allowed) {
			assert_true(t.word == *word);	/* untouched */
			return n;
		}
		*word = t.word;
		n++;
		assert_true(n <= 2000000);
	}
}

/* A request that must be refused; returns its retry time. */
static uint32_t
refused(uint64_t word, uint64_t now, double rate, unsigned burst)
{
	struct ratelimit_take t = ratelimit_take(word, now, rate, burst);

	assert_false(t.allowed);
	assert_true(t.word == word);
	return t.retry_ms;
}

static void
test_pack(void **state)
{
	uint64_t w;

	(void)state;
	w = ratelimit_pack(T0, 1234);
	assert_int_equal(ratelimit_tokens(w), 1234);
	assert_true(ratelimit_stamp(w) == T0);
	/* The clock is kept mod 2^36; tokens saturate at 28 bits. */
	w = ratelimit_pack((UINT64_C(1) << RATELIMIT_TIME_BITS) + 7, 0xfffffff);
	assert_true(ratelimit_stamp(w) == 7);
	assert_int_equal(ratelimit_tokens(w), 0xfffffff);
	w = ratelimit_pack(0, 0xffffffffu);
	assert_int_equal(ratelimit_tokens(w), 0xfffffff);
}

/* A full bucket admits exactly burst at once (nginx nodelay). */
static void
test_burst_at_once(void **state)
{
	static const unsigned bursts[] = { 1, 2, 5, 20, 1000, 1000000 };
	size_t i;
	uint64_t w;

	(void)state;
	for (i = 0; i < sizeof(bursts) / sizeof(bursts[0]); i++) {
		w = full(T0, bursts[i]);
		assert_int_equal(drain(&w, T0, 1.0, bursts[i]), bursts[i]);
	}
}

static void
test_refill_and_retry(void **state)
{
	struct ratelimit_take t;
	uint64_t w = full(T0, 3);

	(void)state;
	assert_int_equal(drain(&w, T0, 10.0, 3), 3);
	assert_int_equal(refused(w, T0, 10.0, 3), 100);
	/* The wait counts down from the last refill. */
	assert_int_equal(refused(w, T0 + 60, 10.0, 3), 40);
	assert_int_equal(refused(w, T0 + 99, 10.0, 3), 1);
	t = ratelimit_take(w, T0 + 100, 10.0, 3);
	assert_true(t.allowed);
	w = t.word;
	assert_int_equal(drain(&w, T0 + 100, 10.0, 3), 0);
	/* After a long pause the bucket is full again, not fuller. */
	assert_int_equal(drain(&w, T0 + 3600000, 10.0, 3), 3);
}

static void
test_fractional_rate(void **state)
{
	struct ratelimit_take t;
	uint64_t w = full(T0, 2), now;
	unsigned passed = 0;

	(void)state;
	assert_int_equal(drain(&w, T0, 0.5, 2), 2);
	t.retry_ms = refused(w, T0, 0.5, 2);
	assert_true(t.retry_ms >= 2000 && t.retry_ms <= 2001);
	assert_false(ratelimit_take(w, T0 + 1999, 0.5, 2).allowed);
	/* Refused requests every millisecond cost the client nothing. */
	for (now = T0; now < T0 + 2001; now++) {
		t = ratelimit_take(w, now, 0.5, 2);
		if (t.allowed) {
			w = t.word;
			passed++;
		}
	}
	assert_int_equal(passed, 1);
	/* One every two seconds, over a minute: 30. */
	for (; now < T0 + 62001; now++) {
		t = ratelimit_take(w, now, 0.5, 2);
		if (t.allowed) {
			w = t.word;
			passed++;
		}
	}
	assert_int_equal(passed, 31);

	/* Very slow: one token in 1000 s. */
	w = full(T0, 1);
	assert_int_equal(drain(&w, T0, 0.001, 1), 1);
	t = ratelimit_take(w, T0, 0.001, 1);
	assert_true(t.retry_ms >= 1000000 && t.retry_ms <= 1000001);
	assert_false(ratelimit_take(w, T0 + 999999, 0.001, 1).allowed);
	assert_true(ratelimit_take(w, T0 + 1000001, 0.001, 1).allowed);
}

/*
 * A client that asks as fast as it can gets rate x time (+ the burst),
 * whatever the rate: the rounding never gives and loses at most 1/256 of
 * a token a request.
 */
static void
test_long_run_accuracy(void **state)
{
	static const double rates[] = { 0.3, 1, 7.5, 100, 333, 999.9 };
	struct ratelimit_take t;
	size_t i;
	uint64_t w, now;
	double want;
	unsigned passed;

	(void)state;
	for (i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
		w = full(T0, 5);
		passed = 0;
		for (now = T0; now <= T0 + 100000; now++) {
			t = ratelimit_take(w, now, rates[i], 5);
			if (t.allowed) {
				w = t.word;
				passed++;
			}
		}
		want = 5 + rates[i] * 100.0;
		assert_true(passed <= want + 1);
		assert_true(passed >= want * (1 - 1.0 / TOKEN) - 1);
	}
}

static void
test_clock_backwards(void **state)
{
	struct ratelimit_take t;
	uint64_t w = full(T0, 2);

	(void)state;
	assert_int_equal(drain(&w, T0, 1.0, 2), 2);
	/* Another worker read the clock a moment earlier: nothing passed. */
	assert_int_equal(refused(w, T0 - 500, 1.0, 2), 1000);
	assert_false(ratelimit_take(w, T0 - RATELIMIT_SKEW_MS + 1, 1.0,
	    2).allowed);
	/* A refill never moves the stamp backwards. */
	t = ratelimit_take(full(T0 + 10, 2), T0 - 10, 1.0, 2);
	assert_true(t.allowed);
	assert_true(ratelimit_stamp(t.word) == T0 + 10);
	/*
	 * Far "ahead" on the 36-bit clock means refilled more than half
	 * its range (about a year) ago: full.
	 */
	assert_int_equal(drain(&w, T0 - RATELIMIT_SKEW_MS - 1, 1.0, 2), 2);
}

static void
test_long_idle(void **state)
{
	uint64_t w, now;

	(void)state;
	/* Empty, then idle for ever longer: always full, never more. */
	for (now = T0 + 4000; now < T0 + HALF_RANGE; now *= 3) {
		w = ratelimit_pack(T0, 0);
		assert_int_equal(drain(&w, now, 1.0, 4), 4);
		w = ratelimit_pack(T0, 0);
		assert_int_equal(drain(&w, now, 1e6, 1000000), 1000000);
	}
	w = ratelimit_pack(T0, 0);
	assert_int_equal(drain(&w, T0 + HALF_RANGE - 1, 0.001, 3), 3);
	w = ratelimit_pack(T0, 0);
	assert_int_equal(drain(&w, T0 + HALF_RANGE + 1, 0.001, 3), 3);
	/* Largest rate and burst: no overflow anywhere. */
	w = ratelimit_pack(T0, 0);
	assert_int_equal(drain(&w, T0 + 1, 1e6, 1000000), 1000);
}

/* A reload changes rate and burst, not the tokens a bucket holds. */
static void
test_new_rate_keeps_tokens(void **state)
{
	uint64_t w = full(T0, 10);

	(void)state;
	assert_int_equal(drain(&w, T0, 1.0, 10), 10);
	/* Faster now: empty still, but refilling at the new rate. */
	assert_int_equal(refused(w, T0, 4.0, 10), 250);
	assert_int_equal(drain(&w, T0 + 1000, 4.0, 10), 4);
	/* A half-full bucket keeps its tokens under a larger burst... */
	w = ratelimit_pack(T0, 5 * TOKEN);
	assert_int_equal(drain(&w, T0, 1.0, 20), 5);
	/* ...and a smaller burst caps them. */
	w = ratelimit_pack(T0, 5 * TOKEN);
	assert_int_equal(drain(&w, T0, 1.0, 2), 2);
}

static void
test_retry_bounds(void **state)
{
	(void)state;
	/* Never 0, never more than a week. */
	assert_int_equal(refused(ratelimit_pack(T0, 255), T0, 1e6, 1), 1);
	assert_int_equal(refused(ratelimit_pack(T0, 0), T0, 0.001, 1),
	    1000000);
	assert_int_equal(refused(ratelimit_pack(T0, 0), T0, 1e-9, 1),
	    7u * 86400 * 1000);
}

/* ---- SipHash-2-4: the reference vectors (key 00..0f, input 00..) ---- */

static void
test_siphash(void **state)
{
	unsigned char key[16], msg[64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(key); i++)
		key[i] = (unsigned char)i;
	for (i = 0; i < sizeof(msg); i++)
		msg[i] = (unsigned char)i;
	assert_true(ratelimit_siphash(key, msg, 0) ==
	    UINT64_C(0x726fdb47dd0e0e31));
	assert_true(ratelimit_siphash(key, msg, 1) ==
	    UINT64_C(0x74f839c593dc67fd));
	assert_true(ratelimit_siphash(key, msg, 15) ==
	    UINT64_C(0xa129ca6149be45e5));
	assert_true(ratelimit_siphash(key, msg, 63) ==
	    UINT64_C(0x958a324ceb064572));
}

/* ---- the table ---- */

struct table {
	void			*mem;
	size_t			 size;
	struct ratelimit	*rl;
};

/* In shared anonymous memory, so that forked children share it. */
static void
table_make(struct table *t, unsigned entries)
{
	t->size = ratelimit_table_bytes(entries);
	t->mem = mmap(NULL, t->size, PROT_READ | PROT_WRITE, MAP_SHARED |
	    MAP_ANONYMOUS, -1, 0);
	assert_true(t->mem != MAP_FAILED);
	assert_int_equal(ratelimit_init(t->mem, t->size, entries), 0);
	t->rl = ratelimit_attach(t->mem, t->size, NULL);
	assert_non_null(t->rl);
}

static void
table_free(struct table *t)
{
	ratelimit_detach(t->rl);
	munmap(t->mem, t->size);
}

static struct sockaddr_in6
v6(const char *text)
{
	struct sockaddr_in6 a;

	memset(&a, 0, sizeof(a));
	a.sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, text, &a.sin6_addr), 1);
	return a;
}

static struct sockaddr_in
v4(const char *text)
{
	struct sockaddr_in a;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, text, &a.sin_addr), 1);
	return a;
}

static uint64_t
key_of(struct table *t, const void *sa, const char *site)
{
	uint64_t k = 0;

	assert_true(ratelimit_key(t->rl, sa, site, &k));
	assert_true(k != 0);
	return k;
}

static void
test_keys(void **state)
{
	struct sockaddr_in a4 = v4("203.0.113.50"), b4 = v4("203.0.113.51");
	struct sockaddr_in6 m = v6("::ffff:203.0.113.50");
	struct sockaddr_in6 a6 = v6("2001:db8:1:2::1");
	struct sockaddr_in6 b6 = v6("2001:db8:1:2:ffff:ffff:ffff:ffff");
	struct sockaddr_in6 c6 = v6("2001:db8:1:3::1");
	struct sockaddr_un { sa_family_t f; char p[8]; } un = { AF_UNIX, "" };
	struct table t, u;
	uint64_t k;

	(void)state;
	table_make(&t, RATELIMIT_TABLE_MIN);
	table_make(&u, RATELIMIT_TABLE_MIN);
	/* IPv4-mapped IPv6 is the IPv4 address; IPv6 counts per /64. */
	assert_true(key_of(&t, &a4, NULL) == key_of(&t, &m, NULL));
	assert_true(key_of(&t, &a4, NULL) != key_of(&t, &b4, NULL));
	assert_true(key_of(&t, &a6, NULL) == key_of(&t, &b6, NULL));
	assert_true(key_of(&t, &a6, NULL) != key_of(&t, &c6, NULL));
	/* A site of its own: other buckets, one family per site. */
	assert_true(key_of(&t, &a4, "login.example") !=
	    key_of(&t, &a4, NULL));
	assert_true(key_of(&t, &a4, "login.example") !=
	    key_of(&t, &a4, "other.example"));
	assert_true(key_of(&t, &a4, "login.example") ==
	    key_of(&t, &m, "login.example"));
	/* Another start, another secret: other keys. */
	assert_true(key_of(&t, &a4, NULL) != key_of(&u, &a4, NULL));
	assert_false(ratelimit_key(t.rl, (struct sockaddr *)&un, NULL, &k));
	table_free(&t);
	table_free(&u);
}

static void
net_is(const void *sa, const char *want)
{
	char buf[RATELIMIT_NET_NAME_MAX];

	assert_true(ratelimit_net_name(sa, buf, sizeof(buf)));
	assert_string_equal(buf, want);
}

/* The network an IPv6 key stands for, as the log names it. */
static void
test_net_name(void **state)
{
	struct sockaddr_in a4 = v4("203.0.113.50");
	struct sockaddr_in6 m = v6("::ffff:203.0.113.50");
	struct sockaddr_in6 a6 = v6("2001:db8:1:2:aaaa:bbbb:cccc:dddd");
	struct sockaddr_in6 full = v6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:1");
	struct sockaddr_un { sa_family_t f; char p[8]; } un = { AF_UNIX, "" };
	char buf[RATELIMIT_NET_NAME_MAX], small[20];

	(void)state;
	net_is(&a6, "2001:db8:1:2::/64");
	net_is(&full, "ffff:ffff:ffff:ffff::/64");
	/* inet_ntop's form, also for the zero network (the filter reads
	   it with a group of its own, fail2ban's <SUBNET> would not). */
	net_is((struct sockaddr_in6[]){ v6("::1") }, "::/64");
	net_is((struct sockaddr_in6[]){ v6("0:0:1:2::1") }, "0:0:1:2::/64");
	net_is((struct sockaddr_in6[]){ v6("fe80::1:2") }, "fe80::/64");
	net_is((struct sockaddr_in6[]){ v6("2001:db8::5") }, "2001:db8::/64");
	/* Whose key is the address: no network of its own. */
	buf[0] = 'x';
	buf[1] = '\0';
	assert_false(ratelimit_net_name((void *)&a4, buf, sizeof(buf)));
	assert_string_equal(buf, "");
	assert_false(ratelimit_net_name((void *)&m, buf, sizeof(buf)));
	assert_false(ratelimit_net_name((void *)&un, buf, sizeof(buf)));
	/* Too small a buffer: nothing half-written. */
	assert_false(ratelimit_net_name((void *)&full, small, sizeof(small)));
	assert_string_equal(small, "");
}

/* What one refused request writes to fd 2, without its timestamp. */
static void
refusal_line(const void *peer, const char *client_ip, const char *host,
    const char *path, char *line, size_t linesz)
{
	struct ratelimit_req rq = { peer, client_ip, host, strlen(host), path,
	    strlen(path) };
	struct config cfg;
	struct table t;
	unsigned retry;
	int fd, saved;
	ssize_t n;
	char *sp;

	memset(&cfg, 0, sizeof(cfg));
	cfg.rate_rps = 0.001;
	cfg.rate_burst = 1;
	table_make(&t, RATELIMIT_TABLE_MIN);
	assert_true(ratelimit_admit(t.rl, &cfg, NULL, &rq, &retry));
	fd = memfd_create("ratelimit_test", MFD_CLOEXEC);
	assert_true(fd >= 0);
	saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	assert_false(ratelimit_admit(t.rl, &cfg, NULL, &rq, &retry));
	dup2(saved, STDERR_FILENO);
	close(saved);
	table_free(&t);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	n = read(fd, line, linesz - 1);
	close(fd);
	assert_true(n > 0 && line[n - 1] == '\n');
	line[n - 1] = '\0';
	assert_null(strchr(line, '\n'));	/* one line */
	/* The timestamp (text) or the time member (JSON) goes. */
	if (line[0] == '{') {
		assert_true(strncmp(line, "{\"time\":\"", 9) == 0);
		sp = strchr(line + 9, '"') + 1;
	} else
		sp = strchr(line, ' ') + 1;
	memmove(line, sp, strlen(sp) + 1);
}

/*
 * The RATE_LIMIT line names what was limited: an IPv6 client's /64 as
 * client_net, after host (old filters anchored on "client_ip=<ADDR>
 * host=" still match) and before path, where no client value can push
 * it off the line.  IPv4 lines are what they always were.
 */
static void
test_refusal_line(void **state)
{
	struct sockaddr_in a4 = v4("203.0.113.50");
	struct sockaddr_in6 m = v6("::ffff:203.0.113.50");
	struct sockaddr_in6 a6 = v6("2001:db8:1:2:aaaa::5");
	char line[LOG_LINE_MAX + 1], host[CONFIG_HOST_MAX + 1];
	char path[LOG_LINE_MAX];

	(void)state;
	log_init("test", 0);
	log_configure(LOG_LEVEL_INFO, LOG_FORMAT_TEXT);
	refusal_line(&a6, "2001:db8:1:2:aaaa::5", "git.example.com", "/login",
	    line, sizeof(line));
	assert_string_equal(line, "RATE_LIMIT client_ip=2001:db8:1:2:aaaa::5 "
	    "host=git.example.com client_net=2001:db8:1:2::/64 path=/login "
	    "status=429");
	refusal_line(&a4, "203.0.113.50", "git.example.com", "/login", line,
	    sizeof(line));
	assert_string_equal(line, "RATE_LIMIT client_ip=203.0.113.50 "
	    "host=git.example.com path=/login status=429");
	refusal_line(&m, "::ffff:203.0.113.50", "h", "/", line, sizeof(line));
	assert_string_equal(line, "RATE_LIMIT client_ip=::ffff:203.0.113.50 "
	    "host=h path=/ status=429");
	/* The longest host, every byte escaped 4-fold, and a path that
	   fills the line: client_net is still there, the path is cut. */
	memset(host, 1, CONFIG_HOST_MAX);
	host[CONFIG_HOST_MAX] = '\0';
	memset(path, 'p', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	refusal_line(&a6, "2001:db8:1:2:aaaa::5", host, path, line,
	    sizeof(line));
	assert_non_null(strstr(line, "\" client_net=2001:db8:1:2::/64 "
	    "path=pppp"));
	assert_non_null(strstr(line, " truncated=1"));

	log_configure(LOG_LEVEL_INFO, LOG_FORMAT_JSON);
	refusal_line(&a6, "2001:db8:1:2:aaaa::5", "git.example.com", "/login",
	    line, sizeof(line));
	assert_string_equal(line, ",\"event\":\"rate_limit\","
	    "\"client_ip\":\"2001:db8:1:2:aaaa::5\","
	    "\"host\":\"git.example.com\","
	    "\"client_net\":\"2001:db8:1:2::/64\",\"path\":\"/login\","
	    "\"status\":429}");
	refusal_line(&a4, "203.0.113.50", "h", "/", line, sizeof(line));
	assert_string_equal(line, ",\"event\":\"rate_limit\","
	    "\"client_ip\":\"203.0.113.50\",\"host\":\"h\","
	    "\"path\":\"/\",\"status\":429}");
	log_configure(LOG_LEVEL_INFO, LOG_FORMAT_TEXT);
}

static void
test_attach_checks(void **state)
{
	struct table t;
	unsigned char junk[4096];

	(void)state;
	table_make(&t, RATELIMIT_TABLE_MIN);
	/* Too small for what its header says, or not a table at all. */
	assert_null(ratelimit_attach(t.mem, t.size - 1, NULL));
	assert_null(ratelimit_attach(NULL, 0, NULL));
	memset(junk, 0, sizeof(junk));
	assert_null(ratelimit_attach(junk, sizeof(junk), NULL));
	assert_int_equal(ratelimit_init(junk, sizeof(junk),
	    RATELIMIT_TABLE_MIN), -1);
	assert_int_equal(ratelimit_init(t.mem, t.size,
	    RATELIMIT_TABLE_MIN - 1), -1);
	table_free(&t);
}

/*
 * A worker can rewrite the table's header; the master puts it back from
 * its own handle, so that a worker started later attaches to the same
 * table with the same secret.
 */
static void
test_repair_header(void **state)
{
	/* magic, version, entries, secret, and all of them. */
	static const struct { size_t off, len; } bad[] = {
		{ 0, 4 }, { 4, 4 }, { 8, 8 }, { 16, 16 }, { 0, 32 },
	};
	struct sockaddr_in a4 = v4("203.0.113.50");
	struct ratelimit *again;
	struct table t;
	uint64_t k, k2;
	size_t i;

	(void)state;
	table_make(&t, RATELIMIT_TABLE_MIN);
	k = key_of(&t, &a4, NULL);
	assert_int_equal(ratelimit_repair(t.rl), 0);
	for (i = 0; i < nitems(bad); i++) {
		memset((unsigned char *)t.mem + bad[i].off, 0xa5, bad[i].len);
		assert_int_equal(ratelimit_repair(t.rl), 1);
		assert_int_equal(ratelimit_repair(t.rl), 0);
		again = ratelimit_attach(t.mem, t.size, NULL);
		assert_non_null(again);
		k2 = 0;
		assert_true(ratelimit_key(again, (struct sockaddr *)&a4, NULL,
		    &k2));
		assert_true(k2 == k);
		ratelimit_detach(again);
	}
	table_free(&t);
}

static bool
take(struct table *t, uint64_t key, uint64_t now, double rate,
    unsigned burst)
{
	uint32_t retry = 0;
	bool ok = ratelimit_table_take(t->rl, key, now, rate, burst, &retry);

	assert_true(ok || retry >= 1);
	return ok;
}

/*
 * A million clients through a table of 1024 entries: every newcomer gets
 * a fresh bucket (entries are reclaimed, nothing is allocated), and a
 * client that comes back while the flood is over is limited again at
 * once.  With room to spare, a limited client stays limited through a
 * flood of other clients.
 */
static void
test_million_keys(void **state)
{
	struct table t;
	uint64_t me, now = T0, i;
	unsigned passed;

	(void)state;
	table_make(&t, RATELIMIT_TABLE_MIN);
	me = UINT64_C(0x5eed);
	for (i = 0; i < 1000000; i++) {
		assert_true(take(&t, i * UINT64_C(0x9e3779b97f4a7c15) | 1,
		    now, 1.0, 3));
		if (i % 1000 == 0)
			now++;
	}
	for (passed = 0; take(&t, me, now, 1.0, 3); passed++)
		assert_true(passed < 10);
	assert_int_equal(passed, 3);
	table_free(&t);

	table_make(&t, 262144);
	for (passed = 0; take(&t, me, now, 1.0, 3); passed++)
		;
	for (i = 0; i < 100000; i++)
		assert_true(take(&t, (i + 7) * UINT64_C(0x9e3779b97f4a7c15),
		    now + i, 1.0, 3));
	/* Still empty; 100 s later 100 tokens came back, 3 fit. */
	assert_false(take(&t, me, now + 999, 1.0, 3));
	for (passed = 0; take(&t, me, now + 100000, 1.0, 3); passed++)
		assert_true(passed < 10);
	assert_int_equal(passed, 3);
	table_free(&t);
}

/*
 * Processes taking from one bucket at once, with a clock that stands
 * still: exactly burst pass, no more, no fewer.
 */
static void
test_concurrent_exact(void **state)
{
	enum { KIDS = 4, BURST = 5000 };
	struct table t;
	pid_t pids[KIDS];
	unsigned *passed, total = 0;
	int i, status;
	uint64_t key = UINT64_C(0xabcdef);

	(void)state;
	table_make(&t, RATELIMIT_TABLE_MIN);
	passed = mmap(NULL, KIDS * sizeof(*passed), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(passed != MAP_FAILED);
	for (i = 0; i < KIDS; i++) {
		pids[i] = fork();
		assert_true(pids[i] != -1);
		if (pids[i] == 0) {
			uint32_t retry;
			unsigned j;

			for (j = 0; j < 2 * BURST; j++)
				if (ratelimit_table_take(t.rl, key, T0, 1e-6,
				    BURST, &retry))
					passed[i]++;
			_exit(0);
		}
	}
	for (i = 0; i < KIDS; i++) {
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		total += passed[i];
	}
	assert_int_equal(total, BURST);
	assert_false(take(&t, key, T0, 1e-6, BURST));
	munmap(passed, KIDS * sizeof(*passed));
	table_free(&t);
}

/* Processes killed in the middle of updates leave a working table. */
static void
test_killed_midway(void **state)
{
	enum { KIDS = 3 };
	struct table t;
	pid_t pids[KIDS];
	unsigned passed;
	int i;

	(void)state;
	table_make(&t, RATELIMIT_TABLE_MIN);
	for (i = 0; i < KIDS; i++) {
		pids[i] = fork();
		assert_true(pids[i] != -1);
		if (pids[i] == 0) {
			uint64_t k = (uint64_t)i;
			uint32_t retry;

			for (;; k++)
				(void)ratelimit_table_take(t.rl, (k % 5000) *
				    UINT64_C(0x9e3779b97f4a7c15) | 1, T0 + k /
				    100, 5.0, 2, &retry);
		}
	}
	usleep(100000);
	for (i = 0; i < KIDS; i++) {
		kill(pids[i], SIGKILL);
		waitpid(pids[i], NULL, 0);
	}
	for (passed = 0; take(&t, 42, T0 + 1000000, 1.0, 4); passed++)
		assert_true(passed < 10);
	assert_int_equal(passed, 4);
	table_free(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pack),
		cmocka_unit_test(test_burst_at_once),
		cmocka_unit_test(test_refill_and_retry),
		cmocka_unit_test(test_fractional_rate),
		cmocka_unit_test(test_long_run_accuracy),
		cmocka_unit_test(test_clock_backwards),
		cmocka_unit_test(test_long_idle),
		cmocka_unit_test(test_new_rate_keeps_tokens),
		cmocka_unit_test(test_retry_bounds),
		cmocka_unit_test(test_siphash),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_net_name),
		cmocka_unit_test(test_refusal_line),
		cmocka_unit_test(test_attach_checks),
		cmocka_unit_test(test_repair_header),
		cmocka_unit_test(test_million_keys),
		cmocka_unit_test(test_concurrent_exact),
		cmocka_unit_test(test_killed_midway),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
