/*
 * fuzz.h - what every fuzz target shares: CHECK(), which abort()s with the
 * file, line and condition when an invariant fails (libFuzzer and the
 * replays of tests/fuzz/standalone.c then report the input).
 */
#ifndef PORTCULLIS_FUZZ_H
#define PORTCULLIS_FUZZ_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: invariant failed: %s\n",	\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

#endif /* PORTCULLIS_FUZZ_H */
