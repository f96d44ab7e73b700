/*
 * control_fuzz.c - libFuzzer target for the control channel parser
 * (src/control.c): what a master reads from a possibly compromised
 * worker, and a worker from its master.
 *
 * The input is one message as received.  If control_parse accepts it,
 * the message must be well formed (a known type, no descriptor, a short
 * printable NUL-terminated text for NACK and the ACME types with text,
 * none on the others; for the ACME types: strings printable and
 * NUL-terminated within their arrays, ok 0 or 1, times not negative, a
 * challenge of a known type with the fields of that type) and
 * control_encode must give back exactly the input.  Any violation
 * abort()s.
 *
 * No main(): tests/fuzz/standalone.c replays files through this function
 * when libFuzzer is not available.
 */
#include "autoconf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "control.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check_string(const char *s, size_t size)
{
	size_t i, len = strnlen(s, size);

	CHECK(len < size);
	for (i = 0; i < len; i++)
		CHECK(s[i] >= 0x20 && s[i] <= 0x7e);
}

static void
check_text(const struct control_msg *m, size_t textlen)
{
	size_t i, tlen = strnlen(m->text, sizeof(m->text));

	CHECK(tlen <= CONTROL_TEXT_MAX);
	CHECK(tlen == textlen);
	for (i = 0; i < tlen; i++)
		CHECK(m->text[i] >= 0x20 && m->text[i] <= 0x7e);
}

static void
check_acme(const struct control_msg *m, size_t plen)
{
	const struct control_acme *a = &m->acme;
	bool text = m->type == CONTROL_ACME_PUBLISHED ||
	    m->type == CONTROL_ACME_STATE || m->type == CONTROL_ACME_RENEWED;
	size_t i;

	CHECK(plen >= CONTROL_ACME_WIRE);
	CHECK(text || plen == CONTROL_ACME_WIRE);
	check_text(m, plen - CONTROL_ACME_WIRE);
	check_string(a->name, sizeof(a->name));
	check_string(a->token, sizeof(a->token));
	check_string(a->keyauth, sizeof(a->keyauth));
	CHECK(a->ok <= 1);
	CHECK(a->not_after >= 0 && a->next >= 0);
	CHECK(m->gen == 0);
	if (m->type == CONTROL_ACME_CHALLENGE) {
		CHECK(a->name[0] != '\0');
		CHECK(a->type == CONFIG_ACME_HTTP_01 ||
		    a->type == CONFIG_ACME_TLS_ALPN_01);
		if (a->type == CONFIG_ACME_HTTP_01) {
			CHECK(a->token[0] != '\0' && a->keyauth[0] != '\0');
			for (i = 0; i < 32; i++)
				CHECK(a->digest[i] == 0);
		} else
			CHECK(a->token[0] == '\0' && a->keyauth[0] == '\0');
	} else {
		CHECK(a->type == 0 && a->token[0] == '\0' &&
		    a->keyauth[0] == '\0');
		for (i = 0; i < 32; i++)
			CHECK(a->digest[i] == 0);
	}
	if (m->type == CONTROL_ACME_ISSUED || m->type == CONTROL_ACME_STATE ||
	    m->type == CONTROL_ACME_ATTEMPT)
		CHECK(a->name[0] != '\0');
	if (m->type != CONTROL_ACME_PUBLISHED &&
	    m->type != CONTROL_ACME_RENEWED && m->type != CONTROL_ACME_ATTEMPT)
		CHECK(a->ok == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char	buf[CONTROL_MSG_MAX];
	struct control_msg	m;

	memset(&m, 0x5a, sizeof(m));
	if (control_parse(data, size, &m) == -1) {
		CHECK(m.fd == -1);
		return 0;
	}
	CHECK(size >= sizeof(struct control_hdr) && size <= CONTROL_MSG_MAX);
	CHECK(m.type >= CONTROL_READY && m.type <= CONTROL_TYPE_MAX);
	CHECK(m.fd == -1);
	if (m.type == CONTROL_NACK)
		check_text(&m, size - sizeof(struct control_hdr) - 8);
	else if ((m.type >= CONTROL_ACME_CHALLENGE &&
	    m.type <= CONTROL_ACME_RENEWED) || m.type == CONTROL_ACME_ATTEMPT)
		check_acme(&m, size - sizeof(struct control_hdr));
	else
		CHECK(m.text[0] == '\0');
	CHECK(control_encode(&m, buf) == size);
	CHECK(memcmp(buf, data, size) == 0);
	return 0;
}
