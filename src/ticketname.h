/*
 * ticketname.h - the key names of the session tickets a ClientHello
 * offers.
 *
 * A GnuTLS ticket (TLS 1.2's session_ticket extension, a TLS 1.3
 * pre_shared_key identity) begins with the 16-byte name of the key it was
 * encrypted under.  tls.c reads those names before GnuTLS decrypts
 * anything, to give the session the one of its two ticket keys (current,
 * previous) that made the ticket.  The names are a hint only: a ticket
 * whose name matches is still authenticated and decrypted by GnuTLS, and
 * one whose name matches nothing is ignored by it (a full handshake).
 *
 * The input is the body of a ClientHello handshake message (no record or
 * handshake header) as a network peer sent it: anything may be in it.
 * Pure, no allocation.
 */
#ifndef PORTCULLIS_TICKETNAME_H
#define PORTCULLIS_TICKETNAME_H

#include <stddef.h>

#define TICKETNAME_LEN	16	/* GnuTLS's TICKET_KEY_NAME_SIZE */
#define TICKETNAME_MAX	8	/* names kept; more are not looked at */

/*
 * The key names of the tickets in hello[0..len): the session_ticket
 * extension's ticket and each pre_shared_key identity, in that order,
 * those of fewer than TICKETNAME_LEN bytes skipped, at most max of them
 * into names.  Returns how many, or -1 if the message or one of those two
 * extensions is malformed (lengths that overrun what holds them).
 */
int	 ticketname_parse(const unsigned char *hello, size_t len,
	    unsigned char names[][TICKETNAME_LEN], size_t max);

#endif /* PORTCULLIS_TICKETNAME_H */
