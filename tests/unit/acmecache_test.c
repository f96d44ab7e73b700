/*
 * acmecache_test.c - the ACME cache directory, on real files in a fresh
 * directory: round trips, modes (umask or not), atomic replacement (an
 * open reader keeps the old bytes, no temporary file left), symbolic
 * links refused at every component (and never written through), size
 * limits, what counts as missing, bad paths and names, and
 * acme_cache_read over a real chain made by acmecrypto.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/stat.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "acmecache.h"
#include "acmecrypto.h"

struct dirs {
	char	 top[64];	/* mkdtemp */
	char	 cache[96];	/* top/cache: the cache directory */
	char	 outside[96];	/* top/outside: must stay empty */
};

static int
setup(void **state)
{
	struct dirs *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return -1;
	snprintf(d->top, sizeof(d->top), "/tmp/acmecache_test.XXXXXX");
	if (mkdtemp(d->top) == NULL)
		return -1;
	snprintf(d->cache, sizeof(d->cache), "%s/cache", d->top);
	snprintf(d->outside, sizeof(d->outside), "%s/outside", d->top);
	if (mkdir(d->cache, 0700) == -1 || mkdir(d->outside, 0700) == -1)
		return -1;
	*state = d;
	return 0;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static int
teardown(void **state)
{
	struct dirs *d = *state;
	int ret;

	ret = nftw(d->top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(d);
	return ret;
}

static void
path_of(const struct dirs *d, const char *rel, char *out, size_t outsz)
{
	snprintf(out, outsz, "%s/%s", d->cache, rel);
}

static int
write_s(const struct dirs *d, const char *rel, const char *s, unsigned mode,
    char *err, size_t errsz)
{
	err[0] = '\0';
	return acme_cache_write(d->cache, rel, s, strlen(s), mode, err, errsz);
}

/* 0 and the bytes equal s, or the load's result. */
static int
load_eq(const struct dirs *d, const char *rel, size_t max, const char *s)
{
	unsigned char *data = (unsigned char *)"x";
	size_t len = 99;
	char err[256];
	int ret;

	err[0] = '\0';
	ret = acme_cache_load(d->cache, rel, max, &data, &len, err,
	    sizeof(err));
	if (ret != 0) {
		assert_null(data);
		if (ret == -1)
			assert_true(err[0] != '\0');
		return ret;
	}
	assert_int_equal(len, strlen(s));
	assert_memory_equal(data, s, len);
	assert_int_equal(data[len], '\0');
	free(data);
	return 0;
}

/* The entries of dir (not . and ..), sorted, space-joined. */
static void
entries(const char *dir, char *out, size_t outsz)
{
	struct dirent **list;
	int i, n;
	size_t used = 0;

	n = scandir(dir, &list, NULL, alphasort);
	assert_true(n >= 0);
	out[0] = '\0';
	for (i = 0; i < n; i++) {
		if (strcmp(list[i]->d_name, ".") != 0 &&
		    strcmp(list[i]->d_name, "..") != 0)
			used += (size_t)snprintf(out + used, outsz - used,
			    "%s%s", used > 0 ? " " : "", list[i]->d_name);
		free(list[i]);
	}
	free(list);
	assert_true(used < outsz);
}

static unsigned
mode_of(const char *path)
{
	struct stat st;

	assert_int_equal(lstat(path, &st), 0);
	return (unsigned)(st.st_mode & 07777);
}

static void
test_round_trip(void **state)
{
	struct dirs *d = *state;
	char err[256], p[256], ls[256];

	assert_int_equal(write_s(d, "account-0123456789abcdef/url",
	    "https://ca.test/acct/7", 0644, err, sizeof(err)), 0);
	assert_int_equal(load_eq(d, "account-0123456789abcdef/url", 1024,
	    "https://ca.test/acct/7"), 0);
	assert_int_equal(write_s(d, "certs/a.example/fullchain.pem", "chain",
	    0644, err, sizeof(err)), 0);
	assert_int_equal(write_s(d, "certs/a.example/key.pem", "key", 0600,
	    err, sizeof(err)), 0);
	assert_int_equal(load_eq(d, "certs/a.example/key.pem", 3, "key"), 0);
	/* an empty file too */
	assert_int_equal(write_s(d, "empty", "", 0600, err, sizeof(err)), 0);
	assert_int_equal(load_eq(d, "empty", 0, ""), 0);
	/* directories made 0700, no temporary file left */
	path_of(d, "certs", p, sizeof(p));
	assert_int_equal(mode_of(p), 0700);
	path_of(d, "certs/a.example", p, sizeof(p));
	assert_int_equal(mode_of(p), 0700);
	entries(p, ls, sizeof(ls));
	assert_string_equal(ls, "fullchain.pem key.pem");
	entries(d->cache, ls, sizeof(ls));
	assert_string_equal(ls, "account-0123456789abcdef certs empty");
}

static void
test_modes(void **state)
{
	struct dirs *d = *state;
	char err[256], p[256];
	mode_t old;

	/* the mode asked for, whatever the umask */
	old = umask(0077);
	assert_int_equal(write_s(d, "certs/m.example/fullchain.pem", "c",
	    0644, err, sizeof(err)), 0);
	umask(0);
	assert_int_equal(write_s(d, "certs/m.example/key.pem", "k", 0600,
	    err, sizeof(err)), 0);
	umask(old);
	path_of(d, "certs/m.example/fullchain.pem", p, sizeof(p));
	assert_int_equal(mode_of(p), 0644);
	path_of(d, "certs/m.example/key.pem", p, sizeof(p));
	assert_int_equal(mode_of(p), 0600);
	/* a replacement takes the new mode */
	assert_int_equal(write_s(d, "certs/m.example/key.pem", "k2", 0640,
	    err, sizeof(err)), 0);
	assert_int_equal(mode_of(p), 0640);
}

static void
test_atomic_replace(void **state)
{
	struct dirs *d = *state;
	char err[256], p[256], buf[32], ls[256];
	struct stat st1, st2;
	ssize_t n;
	int fd;

	assert_int_equal(write_s(d, "certs/r.example/key.pem", "old bytes",
	    0600, err, sizeof(err)), 0);
	path_of(d, "certs/r.example/key.pem", p, sizeof(p));
	fd = open(p, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st1), 0);
	/* a temporary file left by a crash is replaced, not in the way */
	{
		char t[256];
		int tfd;

		path_of(d, "certs/r.example/.key.pem.tmp", t, sizeof(t));
		tfd = open(t, O_WRONLY | O_CREAT | O_EXCL, 0600);
		assert_true(tfd >= 0);
		assert_int_equal(write(tfd, "stale", 5), 5);
		close(tfd);
	}
	assert_int_equal(write_s(d, "certs/r.example/key.pem", "new bytes!",
	    0600, err, sizeof(err)), 0);
	/* the reader still has the old file whole: a new inode was renamed */
	n = read(fd, buf, sizeof(buf));
	assert_int_equal(n, 9);
	assert_memory_equal(buf, "old bytes", 9);
	close(fd);
	assert_int_equal(stat(p, &st2), 0);
	assert_true(st1.st_ino != st2.st_ino);
	assert_int_equal(load_eq(d, "certs/r.example/key.pem", 100,
	    "new bytes!"), 0);
	path_of(d, "certs/r.example", p, sizeof(p));
	entries(p, ls, sizeof(ls));
	assert_string_equal(ls, "key.pem");
}

/* A symbolic link at any component: refused, never followed. */
static void
test_symlinks(void **state)
{
	struct dirs *d = *state;
	char err[256], p[256], t[256], ls[256];

	/* the first component, to a directory outside */
	path_of(d, "certs", p, sizeof(p));
	assert_int_equal(symlink(d->outside, p), 0);
	assert_int_equal(write_s(d, "certs/x.example/key.pem", "k", 0600,
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "symbolic link"));
	entries(d->outside, ls, sizeof(ls));
	assert_string_equal(ls, "");
	assert_int_equal(unlink(p), 0);
	/* to /etc: neither a file under it nor ".." out of it is read */
	assert_int_equal(symlink("/etc", p), 0);
	assert_int_equal(load_eq(d, "certs/passwd", 1 << 20, ""), -1);
	assert_int_equal(load_eq(d, "certs/x/../passwd", 1 << 20, ""), -1);
	assert_int_equal(load_eq(d, "certs/../../../etc/passwd", 1 << 20, ""),
	    -1);
	assert_int_equal(write_s(d, "certs/x/../y", "k", 0600, err,
	    sizeof(err)), -1);
	assert_int_equal(unlink(p), 0);

	/* a middle component, even one pointing inside the cache */
	assert_int_equal(write_s(d, "certs/a.example/key.pem", "real", 0600,
	    err, sizeof(err)), 0);
	path_of(d, "certs/b.example", p, sizeof(p));
	assert_int_equal(symlink("a.example", p), 0);
	assert_int_equal(load_eq(d, "certs/b.example/key.pem", 100, "real"),
	    -1);
	assert_int_equal(write_s(d, "certs/b.example/key.pem", "k", 0600,
	    err, sizeof(err)), -1);
	assert_int_equal(load_eq(d, "certs/a.example/key.pem", 100, "real"),
	    0);

	/* the last component: not read; a write replaces the link itself */
	snprintf(t, sizeof(t), "%s/target", d->outside);
	path_of(d, "certs/a.example/fullchain.pem", p, sizeof(p));
	{
		int fd = open(t, O_WRONLY | O_CREAT, 0600);

		assert_true(fd >= 0);
		assert_int_equal(write(fd, "outside", 7), 7);
		close(fd);
	}
	assert_int_equal(symlink(t, p), 0);
	assert_int_equal(load_eq(d, "certs/a.example/fullchain.pem", 100,
	    "outside"), -1);
	assert_int_equal(write_s(d, "certs/a.example/fullchain.pem", "mine",
	    0644, err, sizeof(err)), 0);
	assert_int_equal(load_eq(d, "certs/a.example/fullchain.pem", 100,
	    "mine"), 0);
	{
		struct stat st;

		assert_int_equal(lstat(p, &st), 0);
		assert_true(S_ISREG(st.st_mode));
		assert_int_equal(stat(t, &st), 0);
		assert_int_equal(st.st_size, 7);	/* untouched */
	}

	/* the cache directory itself */
	snprintf(t, sizeof(t), "%s/link", d->top);
	assert_int_equal(symlink(d->cache, t), 0);
	err[0] = '\0';
	assert_int_equal(acme_cache_write(t, "f", "x", 1, 0600, err,
	    sizeof(err)), -1);
	assert_true(err[0] != '\0');
	{
		unsigned char *data;
		size_t len;

		assert_int_equal(acme_cache_load(t, "certs/a.example/key.pem",
		    100, &data, &len, err, sizeof(err)), -1);
	}
}

static void
test_limits_and_missing(void **state)
{
	struct dirs *d = *state;
	char err[256], big[101], p[256];
	unsigned char *data;
	size_t len;

	memset(big, 'b', 100);
	big[100] = '\0';
	assert_int_equal(write_s(d, "big", big, 0600, err, sizeof(err)), 0);
	assert_int_equal(load_eq(d, "big", 100, big), 0);
	assert_int_equal(load_eq(d, "big", 99, big), -1);
	/* missing: the file, a directory on the way, the cache itself */
	assert_int_equal(load_eq(d, "nope", 100, ""), 1);
	assert_int_equal(load_eq(d, "certs/none.example/key.pem", 100, ""),
	    1);
	assert_int_equal(acme_cache_load("/nonexistent-acmecache-test/x",
	    "key.pem", 100, &data, &len, err, sizeof(err)), 1);
	assert_null(data);
	/* a directory is not a file; a file is not a directory */
	assert_int_equal(write_s(d, "dir/f", "f", 0600, err, sizeof(err)), 0);
	assert_int_equal(load_eq(d, "dir", 100, ""), -1);
	assert_int_equal(load_eq(d, "big/f", 100, ""), -1);
	assert_int_equal(write_s(d, "big/f", "f", 0600, err, sizeof(err)),
	    -1);
	assert_int_equal(write_s(d, "dir", "f", 0600, err, sizeof(err)), -1);
	/* the cache directory is made when its parent exists */
	snprintf(p, sizeof(p), "%s/fresh", d->top);
	assert_int_equal(acme_cache_write(p, "certs/n.example/key.pem", "k",
	    1, 0600, err, sizeof(err)), 0);
	assert_int_equal(mode_of(p), 0700);
	snprintf(p, sizeof(p), "%s/no/such", d->top);
	assert_int_equal(acme_cache_write(p, "f", "k", 1, 0600, err,
	    sizeof(err)), -1);
}

static void
test_bad_paths(void **state)
{
	struct dirs *d = *state;
	static const char *const bad[] = {
		"", "/etc/passwd", "a//b", "./a", "a/./b", "a/../b", "a/",
		"..", ".", "../cache/x", "a/..",
	};
	char err[256], ls[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(write_s(d, bad[i], "x", 0600, err,
		    sizeof(err)), -1);
		assert_true(err[0] != '\0');
		assert_int_equal(load_eq(d, bad[i], 100, ""), -1);
	}
	entries(d->cache, ls, sizeof(ls));
	assert_string_equal(ls, "");
}

/* A chain and key for name from acme_alpn_cert, written to the cache. */
static void
put_cert(const struct dirs *d, const char *dir, const char *name,
    char **chain, char **key)
{
	unsigned char digest[32] = { 1 };
	char err[256], rel[256];
	size_t clen, klen;

	assert_int_equal(acme_alpn_cert(name, digest, chain, &clen, key,
	    &klen, err, sizeof(err)), 0);
	snprintf(rel, sizeof(rel), "certs/%s/fullchain.pem", dir);
	assert_int_equal(acme_cache_write(d->cache, rel, *chain, clen, 0644,
	    err, sizeof(err)), 0);
	snprintf(rel, sizeof(rel), "certs/%s/key.pem", dir);
	assert_int_equal(acme_cache_write(d->cache, rel, *key, klen, 0600,
	    err, sizeof(err)), 0);
}

static void
test_read(void **state)
{
	struct dirs *d = *state;
	struct config_acme_cert c;
	char err[256], *chain, *key, *chain2, *key2;
	int64_t now = (int64_t)time(NULL), na = 0;
	static const char *const bad[] = { "", ".", "..", "a/b", "../x" };
	size_t i;

	put_cert(d, "a.example", "a.example", &chain, &key);
	assert_int_equal(acme_cache_read(d->cache, "a.example", now, &c, &na,
	    err, sizeof(err)), 0);
	assert_string_equal(c.name, "a.example");
	assert_int_equal(c.cert.len, strlen(chain));
	assert_memory_equal(c.cert.data, chain, c.cert.len);
	assert_int_equal(c.key.len, strlen(key));
	assert_memory_equal(c.key.data, key, c.key.len);
	assert_in_range(na, now + 7 * 86400 - 60, now + 7 * 86400 + 60);
	acme_cache_cert_free(&c);
	assert_null(c.name);
	assert_null(c.key.data);

	/* nothing there, or half of it */
	assert_int_equal(acme_cache_read(d->cache, "none.example", now, &c,
	    &na, err, sizeof(err)), 1);
	assert_int_equal(acme_cache_write(d->cache,
	    "certs/half.example/fullchain.pem", chain, strlen(chain), 0644,
	    err, sizeof(err)), 0);
	assert_int_equal(acme_cache_read(d->cache, "half.example", now, &c,
	    &na, err, sizeof(err)), 1);
	assert_int_equal(acme_cache_read("/nonexistent-acmecache-test",
	    "a.example", now, &c, &na, err, sizeof(err)), 1);

	/* unusable: expired, another name's, another key */
	err[0] = '\0';
	assert_int_equal(acme_cache_read(d->cache, "a.example",
	    now + 8 * 86400, &c, &na, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "expired"));
	put_cert(d, "b.example", "other.example", &chain2, &key2);
	assert_int_equal(acme_cache_read(d->cache, "b.example", now, &c, &na,
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not for"));
	assert_int_equal(acme_cache_write(d->cache, "certs/a.example/key.pem",
	    key2, strlen(key2), 0600, err, sizeof(err)), 0);
	assert_int_equal(acme_cache_read(d->cache, "a.example", now, &c, &na,
	    err, sizeof(err)), -1);
	assert_non_null(strstr(err, "does not belong"));
	assert_null(c.name);

	/* names that are not plain host names */
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(acme_cache_read(d->cache, bad[i], now, &c,
		    &na, err, sizeof(err)), -1);
		assert_true(err[0] != '\0');
	}
	free(chain);
	free(key);
	free(chain2);
	free(key2);
}

/* A file larger than CONFIG_PEM_MAX is refused. */
static void
test_read_too_big(void **state)
{
	struct dirs *d = *state;
	struct config_acme_cert c;
	char err[256], *chain, *key, *big;
	int64_t na;
	size_t len;

	put_cert(d, "big.example", "big.example", &chain, &key);
	len = CONFIG_PEM_MAX + 1;
	big = malloc(len);
	assert_non_null(big);
	memset(big, '\n', len);
	memcpy(big, chain, strlen(chain));
	assert_int_equal(acme_cache_write(d->cache,
	    "certs/big.example/fullchain.pem", big, len, 0644, err,
	    sizeof(err)), 0);
	err[0] = '\0';
	assert_int_equal(acme_cache_read(d->cache, "big.example",
	    (int64_t)time(NULL), &c, &na, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "larger than"));
	/* one byte less: fine */
	assert_int_equal(acme_cache_write(d->cache,
	    "certs/big.example/fullchain.pem", big, len - 1, 0644, err,
	    sizeof(err)), 0);
	assert_int_equal(acme_cache_read(d->cache, "big.example",
	    (int64_t)time(NULL), &c, &na, err, sizeof(err)), 0);
	acme_cache_cert_free(&c);
	free(big);
	free(chain);
	free(key);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_modes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_atomic_replace, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_symlinks, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_limits_and_missing, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_bad_paths, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_too_big, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
