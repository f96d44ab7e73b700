/*
 * connlimit_test.c - max-connections-per-client's table: up to N admitted
 * and N+1 refused, a release lets one in, listeners apart, an IPv6 /64 as
 * one client, IPv4-mapped as IPv4, a full window fails open, a dead
 * worker's row taken back (clamped, whatever the row says), and the
 * once-a-minute decision of who logs a refusal.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "config.h"
#include "connlimit.h"

static const unsigned char KEY[CONNLIMIT_KEY_LEN] = "0123456789abcdef";

/* A zeroed table, as the master makes it (sparse, like the memfd). */
static void *
table(void)
{
	void *p = mmap(NULL, connlimit_bytes(), PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	assert_true(p != MAP_FAILED);
	return p;
}

/* Worker w's handle (UINT32_MAX: the master's) under the test key. */
static void
attach(struct connlimit *c, void *mem, unsigned w)
{
	connlimit_attach(c, mem, connlimit_bytes(), CONFIG_MAX_WORKERS, w,
	    KEY);
}

static struct sockaddr_storage
addr(const char *s)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(s, ':') != NULL) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, s, &a->sin6_addr), 1);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, s, &a->sin_addr), 1);
	}
	return ss;
}

static uint64_t
hash_of(const struct connlimit *c, size_t li, const char *s)
{
	struct sockaddr_storage ss = addr(s);

	return connlimit_hash(c, li, (struct sockaddr *)&ss);
}

static void
test_cap(void **state)
{
	void *mem = table();
	struct connlimit w0, w1;
	struct connlimit_ticket t[5], x;
	uint64_t h;
	int i;

	(void)state;
	attach(&w0, mem, 0);
	attach(&w1, mem, 1);
	h = hash_of(&w0, 0, "192.0.2.7");
	assert_true(h != 0 && h < (UINT64_C(1) << CONNLIMIT_HASH_BITS));
	/* Both workers hash alike: the same key, the same count. */
	assert_true(hash_of(&w1, 0, "192.0.2.7") == h);
	for (i = 0; i < 4; i++)
		assert_int_equal(connlimit_take(i % 2 ? &w1 : &w0, h, 4, &t[i]),
		    CONNLIMIT_COUNTED);
	assert_int_equal(connlimit_count(&w0, h), 4);
	assert_int_equal(connlimit_take(&w0, h, 4, &t[4]), CONNLIMIT_REFUSED);
	assert_int_equal(connlimit_take(&w1, h, 4, &t[4]), CONNLIMIT_REFUSED);
	assert_true(t[4].hash == 0);	/* nothing to release */
	assert_int_equal(connlimit_count(&w0, h), 4);	/* refusal uncounted */
	connlimit_release(&w1, &t[1]);
	assert_int_equal(connlimit_count(&w0, h), 3);
	connlimit_release(&w1, &t[1]);	/* a second release: nothing */
	assert_int_equal(connlimit_count(&w0, h), 3);
	assert_int_equal(connlimit_take(&w0, h, 4, &t[1]), CONNLIMIT_COUNTED);
	assert_int_equal(connlimit_take(&w0, h, 4, &x), CONNLIMIT_REFUSED);
	/* Another client is not affected. */
	assert_int_equal(connlimit_take(&w0, hash_of(&w0, 0, "192.0.2.8"), 1,
	    &x), CONNLIMIT_COUNTED);
	for (i = 0; i < 4; i++)
		connlimit_release(i % 2 ? &w1 : &w0, &t[i]);
	assert_int_equal(connlimit_count(&w0, h), 0);
	munmap(mem, connlimit_bytes());
}

static void
test_keys(void **state)
{
	void *mem = table();
	struct connlimit c;
	struct connlimit_ticket t, u;
	struct sockaddr_storage unix_peer;

	(void)state;
	attach(&c, mem, 0);
	/* Two listeners apart. */
	assert_true(hash_of(&c, 0, "192.0.2.7") != hash_of(&c, 1, "192.0.2.7"));
	assert_int_equal(connlimit_take(&c, hash_of(&c, 0, "192.0.2.7"), 1,
	    &t), CONNLIMIT_COUNTED);
	assert_int_equal(connlimit_take(&c, hash_of(&c, 1, "192.0.2.7"), 1,
	    &u), CONNLIMIT_COUNTED);
	/* An IPv6 /64 is one client; the next /64 another. */
	assert_true(hash_of(&c, 0, "2001:db8:1:2::1") ==
	    hash_of(&c, 0, "2001:db8:1:2:ffff:1:2:3"));
	assert_true(hash_of(&c, 0, "2001:db8:1:2::1") !=
	    hash_of(&c, 0, "2001:db8:1:3::1"));
	assert_int_equal(connlimit_take(&c, hash_of(&c, 0, "2001:db8:1:2::1"),
	    1, &t), CONNLIMIT_COUNTED);
	assert_int_equal(connlimit_take(&c, hash_of(&c, 0,
	    "2001:db8:1:2::99"), 1, &u), CONNLIMIT_REFUSED);
	/* IPv4-mapped is the IPv4 address. */
	assert_true(hash_of(&c, 0, "::ffff:192.0.2.7") ==
	    hash_of(&c, 0, "192.0.2.7"));
	assert_int_equal(connlimit_take(&c, hash_of(&c, 0,
	    "::ffff:192.0.2.7"), 1, &u), CONNLIMIT_REFUSED);
	/* Another secret, other hashes. */
	{
		struct connlimit d;
		static const unsigned char k2[CONNLIMIT_KEY_LEN] = "x";

		connlimit_attach(&d, mem, connlimit_bytes(),
		    CONFIG_MAX_WORKERS, 0, k2);
		assert_true(hash_of(&d, 0, "192.0.2.7") !=
		    hash_of(&c, 0, "192.0.2.7"));
	}
	/* Neither family: no key, never refused. */
	memset(&unix_peer, 0, sizeof(unix_peer));
	unix_peer.ss_family = AF_UNIX;
	assert_true(connlimit_hash(&c, 0, (struct sockaddr *)&unix_peer) == 0);
	assert_int_equal(connlimit_take(&c, 0, 1, &u), CONNLIMIT_UNCOUNTED);
	assert_true(u.hash == 0);
	munmap(mem, connlimit_bytes());
}

/* Hashes aimed at one window: the table fails open, never refuses. */
static void
test_full_window(void **state)
{
	void *mem = table();
	struct connlimit c;
	struct connlimit_ticket t[CONNLIMIT_WINDOW + 2];
	uint64_t base = 1000, h;
	unsigned i;

	(void)state;
	attach(&c, mem, 0);
	/* Keys whose windows all cover entry 1000..1007: each its own. */
	for (i = 0; i < CONNLIMIT_WINDOW; i++) {
		h = base + (uint64_t)(i + 1) * CONNLIMIT_ENTRIES;
		assert_int_equal(connlimit_take(&c, h, 1, &t[i]),
		    CONNLIMIT_COUNTED);
	}
	h = base + (uint64_t)(CONNLIMIT_WINDOW + 1) * CONNLIMIT_ENTRIES;
	assert_int_equal(connlimit_take(&c, h, 1, &t[i]), CONNLIMIT_UNCOUNTED);
	assert_true(t[i].hash == 0);
	/* Again: still admitted, even past its cap of 1. */
	assert_int_equal(connlimit_take(&c, h, 1, &t[i + 1]),
	    CONNLIMIT_UNCOUNTED);
	/* The full line: once a minute per process. */
	assert_true(connlimit_full_due(&c, 500));
	assert_false(connlimit_full_due(&c, 530));
	assert_true(connlimit_full_due(&c, 560));
	/* One released: its entry goes to the next key (count 0 is free). */
	connlimit_release(&c, &t[3]);
	assert_int_equal(connlimit_take(&c, h, 1, &t[i]), CONNLIMIT_COUNTED);
	assert_int_equal(connlimit_take(&c, h, 1, &t[i + 1]),
	    CONNLIMIT_REFUSED);
	munmap(mem, connlimit_bytes());
}

static void
test_worker_gone(void **state)
{
	void *mem = table();
	struct connlimit master, w0, w1;
	struct connlimit_ticket t[3];
	uint64_t h, other;

	(void)state;
	attach(&master, mem, UINT32_MAX);
	attach(&w0, mem, 0);
	attach(&w1, mem, 1);
	h = hash_of(&w0, 0, "198.51.100.1");
	other = hash_of(&w0, 0, "198.51.100.2");
	assert_int_equal(connlimit_take(&w0, h, 3, &t[0]), CONNLIMIT_COUNTED);
	assert_int_equal(connlimit_take(&w0, h, 3, &t[1]), CONNLIMIT_COUNTED);
	assert_int_equal(connlimit_take(&w1, h, 3, &t[2]), CONNLIMIT_COUNTED);
	assert_int_equal(connlimit_take(&w1, other, 3, &t[0]),
	    CONNLIMIT_COUNTED);
	assert_int_equal(connlimit_count(&master, h), 3);
	connlimit_worker_gone(&master, 0);	/* died holding two */
	assert_int_equal(connlimit_count(&master, h), 1);
	assert_int_equal(connlimit_count(&master, other), 1);
	connlimit_worker_gone(&master, 0);	/* twice: nothing more */
	assert_int_equal(connlimit_count(&master, h), 1);
	assert_int_equal(connlimit_take(&w0, h, 3, &t[0]), CONNLIMIT_COUNTED);
	assert_int_equal(connlimit_take(&w0, h, 3, &t[1]), CONNLIMIT_COUNTED);
	assert_int_equal(connlimit_take(&w0, h, 3, &t[1]), CONNLIMIT_REFUSED);
	/* A row that lies (a compromised worker): the count stays >= 0. */
	atomic_store(&w1.rows[(size_t)1 * CONNLIMIT_ENTRIES + t[2].entry],
	    1000);
	atomic_store(&w1.rows[(size_t)1 * CONNLIMIT_ENTRIES + 5], -7);
	connlimit_worker_gone(&master, 1);
	assert_int_equal(connlimit_count(&master, h), 0);
	assert_int_equal(connlimit_count(&master, other), 0);
	/* Out of range: nothing happens. */
	connlimit_worker_gone(&master, CONFIG_MAX_WORKERS);
	connlimit_worker_gone(&master, UINT32_MAX);
	munmap(mem, connlimit_bytes());
}

static void
test_log_due(void **state)
{
	void *mem = table();
	struct connlimit w0, w1;
	uint64_t h, g;

	(void)state;
	attach(&w0, mem, 0);
	attach(&w1, mem, 1);
	h = hash_of(&w0, 0, "203.0.113.9");
	g = hash_of(&w0, 0, "203.0.113.10");
	/* One worker logs; the others, and itself, not within a minute. */
	assert_true(connlimit_log_due(&w0, h, 1000));
	assert_false(connlimit_log_due(&w1, h, 1000));
	assert_false(connlimit_log_due(&w0, h, 1001));
	assert_false(connlimit_log_due(&w1, h, 1059));
	/* Another client has its own minute. */
	assert_true(connlimit_log_due(&w1, g, 1030));
	/* A minute on (not a minute boundary: 60 seconds). */
	assert_true(connlimit_log_due(&w1, h, 1060));
	assert_false(connlimit_log_due(&w0, h, 1119));
	assert_true(connlimit_log_due(&w0, h, 1120));
	/* Across the stamp's wrap. */
	assert_true(connlimit_log_due(&w0, h, (UINT64_C(1) << 24) - 10));
	assert_false(connlimit_log_due(&w0, h, (UINT64_C(1) << 24) + 10));
	assert_true(connlimit_log_due(&w0, h, (UINT64_C(1) << 24) + 50));
	munmap(mem, connlimit_bytes());
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cap),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_full_window),
		cmocka_unit_test(test_worker_gone),
		cmocka_unit_test(test_log_due),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
