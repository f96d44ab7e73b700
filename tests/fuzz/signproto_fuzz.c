/*
 * signproto_fuzz.c - libFuzzer target for the signer's wire formats
 * (src/signproto.c) and the signer's answer to anything a worker sends
 * (signer_answer in src/signer.c, with no key loaded).
 *
 * The first byte picks what the rest is: 0 a key set, 1 a request, 2 an
 * answer, 3 a request the signer answers.  Whatever parses encodes back
 * to exactly the input, with every length within its bound and every
 * pointer inside the input; the signer's answer to any record of at
 * least 4 bytes parses, carries the record's first 4 bytes as its id and
 * is never a success (it has no key).  The input is read from a heap
 * block of exactly its length.  Any violation abort()s.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "signer.h"
#include "signproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
keys(const unsigned char *p, size_t len)
{
	static struct signproto_key k[64];
	unsigned char *again;
	long n;
	size_t i;

	n = signproto_keys_parse(p, len, NULL, 0);
	if (n == -1)
		return;
	CHECK(n >= 0 && n <= SIGNPROTO_KEYS_MAX);
	if (n > (long)(sizeof(k) / sizeof(k[0]))) {
		CHECK(signproto_keys_parse(p, len, k, 64) == -1);
		return;
	}
	CHECK(signproto_keys_parse(p, len, k, (size_t)n) == n);
	for (i = 0; i < (size_t)n; i++) {
		CHECK(k[i].len > 0 && k[i].len <= SIGNPROTO_KEY_MAX);
		CHECK(k[i].pem >= p && k[i].pem + k[i].len <= p + len);
	}
	CHECK(signproto_keys_size(k, (size_t)n) == len);
	again = malloc(len);
	CHECK(again != NULL);
	CHECK(signproto_keys_encode(k, (size_t)n, again) == len);
	CHECK(memcmp(again, p, len) == 0);
	free(again);
}

static void
req(const unsigned char *p, size_t len)
{
	unsigned char again[SIGNPROTO_REQ_MAX];
	struct signproto_req r;

	if (signproto_req_parse(p, len, &r) == -1)
		return;
	CHECK(r.op == SIGNPROTO_SIGN_HASH || r.op == SIGNPROTO_SIGN_DATA);
	CHECK(r.len > 0 && r.len <= (r.op == SIGNPROTO_SIGN_HASH ?
	    SIGNPROTO_HASH_MAX : SIGNPROTO_DATA_MAX));
	CHECK(r.data == p + SIGNPROTO_REQ_HDR && r.len + SIGNPROTO_REQ_HDR ==
	    len);
	CHECK(signproto_req_encode(&r, again) == len);
	CHECK(memcmp(again, p, len) == 0);
}

static void
ans(const unsigned char *p, size_t len)
{
	unsigned char again[SIGNPROTO_ANS_MAX];
	struct signproto_ans a;

	if (signproto_ans_parse(p, len, &a) == -1)
		return;
	CHECK(a.status <= SIGNPROTO_E_MAX);
	CHECK((a.status == SIGNPROTO_OK) == (a.len > 0));
	CHECK(a.len <= SIGNPROTO_SIG_MAX && a.len + SIGNPROTO_ANS_HDR == len);
	CHECK(signproto_ans_encode(&a, again) == len);
	CHECK(memcmp(again, p, len) == 0);
}

static void
answer(const unsigned char *p, size_t len)
{
	static struct signer_keys *ks;
	unsigned char out[SIGNPROTO_ANS_MAX];
	struct signproto_ans a;
	size_t n;

	if (ks == NULL && (ks = signer_keys_new()) == NULL)
		abort();
	n = signer_answer(ks, p, len, out);
	if (len < 4) {
		CHECK(n == 0);
		return;
	}
	CHECK(signproto_ans_parse(out, n, &a) == 0);
	CHECK(memcmp(&a.id, p, 4) == 0);
	CHECK(a.status == SIGNPROTO_E_MALFORMED ||
	    a.status == SIGNPROTO_E_NOKEY);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *p;

	if (size < 1)
		return 0;
	if ((p = malloc(size - 1 + 1)) == NULL)
		return 0;
	memcpy(p, data + 1, size - 1);
	switch (data[0] & 3) {
	case 0:
		keys(p, size - 1);
		break;
	case 1:
		req(p, size - 1);
		break;
	case 2:
		ans(p, size - 1);
		break;
	default:
		answer(p, size - 1);
	}
	free(p);
	return 0;
}
