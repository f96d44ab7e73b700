/*
 * ticketkeys.c - the master's session-ticket keys (see ticketkeys.h).
 */
#include "autoconf.h"

#include <string.h>

#include <gnutls/gnutls.h>

#include "ticketkeys.h"

static int
make_key(unsigned char out[TICKETKEYS_SIZE])
{
	gnutls_datum_t key = { NULL, 0 };
	int rc = -1;

	if (gnutls_session_ticket_key_generate(&key) < 0)
		return -1;
	if (key.size == TICKETKEYS_SIZE) {
		memcpy(out, key.data, TICKETKEYS_SIZE);
		rc = 0;
	}
	gnutls_memset(key.data, 0, key.size);
	gnutls_free(key.data);
	return rc;
}

int
ticketkeys_init(struct ticketkeys *tk)
{
	memset(tk, 0, sizeof(*tk));
	if (make_key(tk->key[0]) == -1) {
		ticketkeys_wipe(tk);
		return -1;
	}
	tk->n = 1;
	return 0;
}

int
ticketkeys_rotate(struct ticketkeys *tk)
{
	unsigned char fresh[TICKETKEYS_SIZE];

	if (tk->n == 0 || make_key(fresh) == -1)
		return -1;
	memcpy(tk->key[1], tk->key[0], TICKETKEYS_SIZE);
	memcpy(tk->key[0], fresh, TICKETKEYS_SIZE);
	gnutls_memset(fresh, 0, sizeof(fresh));
	tk->n = 2;
	tk->rotations++;
	return 0;
}

const unsigned char *
ticketkeys_bytes(const struct ticketkeys *tk, size_t *len)
{
	*len = (size_t)tk->n * TICKETKEYS_SIZE;
	return tk->key[0];
}

void
ticketkeys_wipe(struct ticketkeys *tk)
{
	gnutls_memset(tk->key, 0, sizeof(tk->key));
	tk->n = 0;
}
