/*
 * standalone.c - replay files through a fuzz target without libFuzzer.
 *
 * Usage: <target>_replay [FILE|DIR]...
 *
 * Every FILE, and every regular file directly inside a DIR (one level, in
 * name order, dot files skipped), is read and passed to
 * LLVMFuzzerTestOneInput once.  With no arguments the corpus compiled in
 * as FUZZ_CORPUS_DIR is replayed.  Prints "<n> inputs replayed" and exits
 * 0; exits 1 if a path cannot be read or nothing at all was replayed (a
 * missing corpus must not pass as an empty one).  A target that finds a
 * bug abort()s, as it would under libFuzzer.
 *
 * Each input sits in a heap buffer of exactly its size, followed by a NUL
 * the target is not told about: ASan still catches reads past the end,
 * and string interceptors (strict_string_checks) see a terminated buffer,
 * as every caller of a (buffer, length) API in the daemon provides.
 */
#include "autoconf.h"

#include <sys/stat.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REPLAY_MAX	(64 * 1024 * 1024)

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);
int	LLVMFuzzerInitialize(int *, char ***) __attribute__((weak));

static size_t	replayed;

static int
replay_file(const char *path)
{
	struct stat	 st;
	uint8_t		*buf = NULL;
	size_t		 got = 0;
	ssize_t		 n;
	int		 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1 ||
	    fstat(fd, &st) == -1) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > REPLAY_MAX) {
		fprintf(stderr, "%s: not a regular file of at most %d bytes\n",
		    path, REPLAY_MAX);
		goto fail;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		fprintf(stderr, "%s: out of memory\n", path);
		goto fail;
	}
	while (got < (size_t)st.st_size) {
		n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "%s: %s\n", path, n == 0 ?
			    "file shrank" : strerror(errno));
			goto fail;
		}
		got += (size_t)n;
	}
	close(fd);
	buf[got] = '\0';
	LLVMFuzzerTestOneInput(buf, got);
	free(buf);
	replayed++;
	return 0;
fail:
	if (fd != -1)
		close(fd);
	free(buf);
	return -1;
}

static int
skip_dot(const struct dirent *de)
{
	return de->d_name[0] != '.';
}

/* A file, or the regular files directly inside a directory. */
static int
replay_path(const char *path)
{
	struct dirent	**names;
	struct stat	  st;
	char		  child[4096];
	int		  i, n, rc = 0;

	if (stat(path, &st) == -1) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return replay_file(path);
	if ((n = scandir(path, &names, skip_dot, alphasort)) == -1) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (rc == 0) {
			if ((size_t)snprintf(child, sizeof(child), "%s/%s",
			    path, names[i]->d_name) >= sizeof(child)) {
				fprintf(stderr, "%s: path too long\n", path);
				rc = -1;
			} else if (stat(child, &st) == 0 &&
			    S_ISREG(st.st_mode) && replay_file(child) == -1)
				rc = -1;
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

int
main(int argc, char **argv)
{
	int	i, rc = 0;

	if (LLVMFuzzerInitialize != NULL)
		LLVMFuzzerInitialize(&argc, &argv);
	if (argc < 2) {
#ifdef FUZZ_CORPUS_DIR
		rc = replay_path(FUZZ_CORPUS_DIR);
#else
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 1;
#endif
	}
	for (i = 1; i < argc; i++)
		if (replay_path(argv[i]) == -1)
			rc = -1;
	printf("%zu inputs replayed\n", replayed);
	if (replayed == 0) {
		fprintf(stderr, "nothing to replay\n");
		return 1;
	}
	return rc == 0 ? 0 : 1;
}
