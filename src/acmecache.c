/*
 * acmecache.c - acme-cache-dir: what the ACME process writes and the
 * master reads (see acmecache.h).
 *
 * Promises: every path is opened relative to a descriptor of the cache
 * directory with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), one
 * component at a time where directories are made, so that no symbolic
 * link anywhere below the cache directory is followed and nothing
 * outside it is reached; relative paths with empty, "." or ".."
 * components are refused before that.  A file is replaced atomically
 * (temporary file, fsync, rename, fsync of the directory) and read whole
 * or not at all, and what is read is wiped before it is freed on a
 * failure path (it may be a key).  The cache directory itself is made
 * (0700) by acme_cache_write when its parent exists.
 *
 * The ACME process is the only writer: the temporary file has a fixed
 * name (".<name>.tmp" beside the target) and one left by a crash is
 * removed by the next write.
 */
#include "autoconf.h"

#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <linux/openat2.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acmecache.h"
#include "acmecrypto.h"
#include "util.h"

#define REL_MAX		1024	/* a relative path under the cache dir */

/*
 * openat2 beneath dirfd, no symbolic link followed (ELOOP at any
 * component, the last one too: no O_NOFOLLOW, which would turn it into
 * ENOTDIR with O_DIRECTORY); EINTR retried.
 */
static int
open_beneath(int dirfd, const char *rel, int flags, mode_t mode)
{
	struct open_how how;
	long fd;

	memset(&how, 0, sizeof(how));
	how.flags = (uint64_t)(flags | O_CLOEXEC);
	how.mode = (flags & O_CREAT) != 0 ? mode : 0;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS;
	do
		fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
	while (fd == -1 && errno == EINTR);
	return (int)fd;
}

/* strerror, with ELOOP and EXDEV said as what they mean here. */
static const char *
why(int e)
{
	if (e == ELOOP)
		return "a symbolic link is in the way";
	if (e == EXDEV)
		return "the path leaves the cache directory";
	return strerror(e);
}

/* Relative, not empty, no empty, "." or ".." component, not too long. */
static bool
rel_ok(const char *rel)
{
	const char *p, *c;
	size_t n;

	if (rel == NULL || rel[0] == '\0' || rel[0] == '/' ||
	    strlen(rel) >= REL_MAX)
		return false;
	for (p = rel;; p = c + 1) {
		c = strchr(p, '/');
		n = c != NULL ? (size_t)(c - p) : strlen(p);
		if (n == 0 || (n == 1 && p[0] == '.') ||
		    (n == 2 && p[0] == '.' && p[1] == '.'))
			return false;
		if (c == NULL)
			return true;
	}
}

/* The cache directory (not a symbolic link), or -1 with errno. */
static int
open_cache(const char *cache_dir)
{
	if (cache_dir == NULL || cache_dir[0] == '\0') {
		errno = EINVAL;
		return -1;
	}
	return open(cache_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
}

/* fsync, EINTR retried. */
static int
sync_fd(int fd)
{
	int ret;

	while ((ret = fsync(fd)) == -1 && errno == EINTR)
		;
	return ret;
}

/*
 * The directory comp under dirfd, made (0700, and dirfd synced) when it
 * is missing.  A descriptor, or -1 with errno.
 */
static int
subdir(int dirfd, const char *comp)
{
	int fd;

	fd = open_beneath(dirfd, comp, O_RDONLY | O_DIRECTORY, 0);
	if (fd != -1 || errno != ENOENT)
		return fd;
	if (mkdirat(dirfd, comp, 0700) == -1 && errno != EEXIST)
		return -1;
	if (sync_fd(dirfd) == -1)
		return -1;
	return open_beneath(dirfd, comp, O_RDONLY | O_DIRECTORY, 0);
}

/* data as tmp, then renamed over name, under dirfd: 0, or -1 with errno. */
static int
replace(int dirfd, const char *name, const char *tmp, const void *data,
    size_t len, mode_t mode)
{
	int fd, e;

	fd = open_beneath(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL, mode);
	if (fd == -1 && errno == EEXIST) {
		/* left by a crash: this process is the only writer */
		if (unlinkat(dirfd, tmp, 0) == -1)
			return -1;
		fd = open_beneath(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL,
		    mode);
	}
	if (fd == -1)
		return -1;
	if (fchmod(fd, mode) == -1 || util_write_all(fd, data, len) == -1 ||
	    sync_fd(fd) == -1) {
		e = errno;
		close(fd);
		goto fail;
	}
	if (close(fd) == -1) {
		e = errno;
		goto fail;
	}
	if (renameat(dirfd, tmp, dirfd, name) == -1) {
		e = errno;
		goto fail;
	}
	return sync_fd(dirfd);
fail:
	unlinkat(dirfd, tmp, 0);
	errno = e;
	return -1;
}

int
acme_cache_write(const char *cache_dir, const char *rel, const void *data,
    size_t len, unsigned mode, char *err, size_t errsz)
{
	char path[REL_MAX], tmp[REL_MAX + 8];
	char *comp, *slash;
	int dirfd, fd;

	if (!rel_ok(rel)) {
		snprintf(err, errsz, "%s: not a plain relative path",
		    rel != NULL ? rel : "(null)");
		return -1;
	}
	if ((dirfd = open_cache(cache_dir)) == -1 && errno == ENOENT &&
	    mkdir(cache_dir, 0700) == 0)
		dirfd = open_cache(cache_dir);
	if (dirfd == -1) {
		snprintf(err, errsz, "%s: %s", cache_dir != NULL ? cache_dir :
		    "(null)", why(errno));
		return -1;
	}
	snprintf(path, sizeof(path), "%s", rel);
	for (comp = path; (slash = strchr(comp, '/')) != NULL;
	    comp = slash + 1) {
		*slash = '\0';
		fd = subdir(dirfd, comp);
		*slash = '/';
		if (fd == -1) {
			*slash = '\0';
			goto fail;
		}
		close(dirfd);
		dirfd = fd;
	}
	snprintf(tmp, sizeof(tmp), ".%s.tmp", comp);
	if (replace(dirfd, comp, tmp, data, len, (mode_t)(mode & 07777)) ==
	    -1)
		goto fail;
	close(dirfd);
	return 0;
fail:
	snprintf(err, errsz, "%s/%s: %s", cache_dir, path, why(errno));
	close(dirfd);
	return -1;
}

/* Read all of fd, a regular file of at most max bytes, NUL added. */
static int
read_file(int fd, size_t max, unsigned char **data, size_t *len,
    char *err, size_t errsz)
{
	struct stat st;
	unsigned char *buf;
	size_t cap, got = 0;
	ssize_t n;

	if (fstat(fd, &st) == -1) {
		snprintf(err, errsz, "%s", strerror(errno));
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errsz, "not a regular file");
		return -1;
	}
	if (st.st_size < 0 || (uintmax_t)st.st_size > max) {
		snprintf(err, errsz, "larger than %zu bytes", max);
		return -1;
	}
	cap = (size_t)st.st_size + 1;	/* one more: sees a file grow */
	if ((buf = malloc(cap + 1)) == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	while (got < cap) {
		n = read(fd, buf + got, cap - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			snprintf(err, errsz, "%s", strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got == cap) {
		snprintf(err, errsz, "changed while read");
		goto fail;
	}
	buf[got] = '\0';
	*data = buf;
	*len = got;
	return 0;
fail:
	explicit_bzero(buf, cap + 1);
	free(buf);
	return -1;
}

int
acme_cache_load(const char *cache_dir, const char *rel, size_t max,
    unsigned char **data, size_t *len, char *err, size_t errsz)
{
	char why_[256];
	int dirfd, fd, ret;

	*data = NULL;
	*len = 0;
	if (!rel_ok(rel)) {
		snprintf(err, errsz, "%s: not a plain relative path",
		    rel != NULL ? rel : "(null)");
		return -1;
	}
	if ((dirfd = open_cache(cache_dir)) == -1) {
		if (errno == ENOENT)
			return 1;
		snprintf(err, errsz, "%s: %s", cache_dir != NULL ? cache_dir :
		    "(null)", why(errno));
		return -1;
	}
	fd = open_beneath(dirfd, rel, O_RDONLY, 0);
	close(dirfd);
	if (fd == -1) {
		if (errno == ENOENT)
			return 1;
		snprintf(err, errsz, "%s/%s: %s", cache_dir, rel, why(errno));
		return -1;
	}
	ret = read_file(fd, max, data, len, why_, sizeof(why_));
	close(fd);
	if (ret == -1)
		snprintf(err, errsz, "%s/%s: %s", cache_dir, rel, why_);
	return ret;
}

/* Wipe and free what acme_cache_load gave. */
static void
wipe_free(unsigned char *p, size_t len)
{
	if (p != NULL)
		explicit_bzero(p, len);
	free(p);
}

int
acme_cache_read(const char *cache_dir, const char *name, int64_t now,
    struct config_acme_cert *out, int64_t *not_after, char *err,
    size_t errsz)
{
	struct acme_cert_info info;
	unsigned char *chain = NULL, *key = NULL;
	size_t chain_len = 0, key_len = 0;
	char rel[REL_MAX], why_[256];
	int ret;

	memset(out, 0, sizeof(*out));
	if (name == NULL || name[0] == '\0' || strchr(name, '/') != NULL ||
	    strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
	    strlen(name) > 253) {
		snprintf(err, errsz, "%s: not a host name",
		    name != NULL ? name : "(null)");
		return -1;
	}
	snprintf(rel, sizeof(rel), "certs/%s/fullchain.pem", name);
	if ((ret = acme_cache_load(cache_dir, rel, CONFIG_PEM_MAX, &chain,
	    &chain_len, err, errsz)) != 0)
		return ret;
	snprintf(rel, sizeof(rel), "certs/%s/key.pem", name);
	if ((ret = acme_cache_load(cache_dir, rel, CONFIG_PEM_MAX, &key,
	    &key_len, err, errsz)) != 0) {
		free(chain);
		return ret;
	}
	if (acme_cert_check(chain, chain_len, key, key_len, name, now, &info,
	    why_, sizeof(why_)) == -1) {
		snprintf(err, errsz, "%s/certs/%s: %s", cache_dir, name, why_);
		goto fail;
	}
	if ((out->name = strdup(name)) == NULL) {
		snprintf(err, errsz, "out of memory");
		goto fail;
	}
	out->cert.data = chain;
	out->cert.len = chain_len;
	out->key.data = key;
	out->key.len = key_len;
	if (not_after != NULL)
		*not_after = info.not_after;
	return 0;
fail:
	free(chain);
	wipe_free(key, key_len);
	return -1;
}

void
acme_cache_cert_free(struct config_acme_cert *c)
{
	if (c == NULL)
		return;
	free(c->name);
	free(c->cert.data);
	wipe_free(c->key.data, c->key.len);
	memset(c, 0, sizeof(*c));
}
