/*
 * oom.c - allocators for the libraries that cannot take a failed malloc
 * (see oom.h).
 */
#include "autoconf.h"

#include <gmp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "oom.h"

/* 1 ms, doubling up to 128 ms: eleven tries, a little over a second. */
#define OOM_SLEEP_FIRST_NS	1000000L
#define OOM_SLEEP_MAX_NS	128000000L
#define OOM_TRIES		11

void *
oom_realloc_retry(void *p, size_t n)
{
	static const char msg[] = "portcullis: out of memory in a library "
	    "that cannot recover (libev, GMP): aborting\n";
	struct timespec ts = { 0, OOM_SLEEP_FIRST_NS };
	ssize_t w;
	void *q;
	int i;

	if (n == 0) {
		free(p);
		return NULL;
	}
	for (i = 0; i < OOM_TRIES; i++) {
		if ((q = realloc(p, n)) != NULL)
			return q;
		nanosleep(&ts, NULL);
		if (ts.tv_nsec < OOM_SLEEP_MAX_NS)
			ts.tv_nsec *= 2;
	}
	/* What libev and GMP do themselves, said in our words. */
	w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void)w;
	abort();
}

static void *
ev_alloc(void *p, long n)
{
	return oom_realloc_retry(p, (size_t)n);
}

static void *
gmp_alloc(size_t n)
{
	return oom_realloc_retry(NULL, n);
}

static void *
gmp_realloc(void *p, size_t old, size_t n)
{
	(void)old;
	return oom_realloc_retry(p, n);
}

static void
gmp_free(void *p, size_t n)
{
	(void)n;
	free(p);
}

void
oom_install(void)
{
	ev_set_allocator(ev_alloc);
	mp_set_memory_functions(gmp_alloc, gmp_realloc, gmp_free);
}
