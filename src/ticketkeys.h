/*
 * ticketkeys.h - the master's session-ticket keys: the current one and
 * the one before it.
 *
 * The master makes a key at start and a new one on every rotation
 * (session-ticket-rotation seconds, and "rotate-ticket-keys" on the admin
 * socket).  A rotation keeps the key it replaces as the previous one, for
 * decryption only (tls.c chooses it for a ticket made under it), and
 * wipes the one before that: a ticket lives at most two periods, and a
 * worker that is compromised holds neither the keys of older tickets
 * nor those of later ones.  The keys travel with each generation
 * (shm_publish()); every generation, a reload's too, carries the ring as
 * it is, so a reload keeps resumption working.
 */
#ifndef PORTCULLIS_TICKETKEYS_H
#define PORTCULLIS_TICKETKEYS_H

#include <stddef.h>
#include <stdint.h>

/* A key as gnutls_session_ticket_key_generate() makes it. */
#define TICKETKEYS_SIZE	64

struct ticketkeys {
	/* key[0] the current, key[1] the previous (n == 2 only). */
	unsigned char	 key[2][TICKETKEYS_SIZE];
	unsigned	 n;		/* 0 before init, then 1 or 2 */
	uint64_t	 rotations;	/* since start */
};

/* A first key.  0, or -1 (the ring is left empty). */
int	 ticketkeys_init(struct ticketkeys *tk);

/* A new current key; the current one becomes the previous one and the
   previous one is wiped.  0, or -1 with the ring unchanged. */
int	 ticketkeys_rotate(struct ticketkeys *tk);

/* The keys as one byte string (current, then previous): *len bytes. */
const unsigned char *ticketkeys_bytes(const struct ticketkeys *tk,
	    size_t *len);

/* Wipe every key. */
void	 ticketkeys_wipe(struct ticketkeys *tk);

#endif /* PORTCULLIS_TICKETKEYS_H */
