/*
 * acmestate.h - the master's view of ACME: the certificate of every
 * (listener, name) in ACME mode, what the ACME process last said of it,
 * and the challenges the workers must answer now.
 *
 * Everything the ACME process reports comes here first and is checked as
 * coming from an adversary (it parses what a CA sends): a listener in
 * ACME mode, a name among that listener's domains, a challenge of the
 * listener's type with a well-formed token.  A certificate is never taken
 * from a message: on ISSUED the master reads it from the listener's cache
 * directory itself (acme_cache_read: no symbolic link followed, the chain
 * checked against its key and name).  No I/O but those reads and log
 * lines; unit-tested (tests/unit/acmestate_test.c).
 */
#ifndef PORTCULLIS_ACMESTATE_H
#define PORTCULLIS_ACMESTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "control.h"

struct acme_state;

struct acme_state *acme_state_new(void);
void	 acme_state_free(struct acme_state *st);

/* Whether any listener of cfg is in ACME mode. */
bool	 acme_state_wanted(const struct config *cfg);

/*
 * Bring the state in line with cfg (at start and after each reload):
 * names no longer configured are forgotten, with their challenges; a new
 * name's certificate is read from its cache directory if one is there and
 * valid at now.
 */
void	 acme_state_sync(struct acme_state *st, const struct config *cfg,
	    int64_t now);

/*
 * Replace the acme_certs and challenges of cfg's listeners with the
 * state's, for a generation about to be published.  -1 if out of memory
 * (cfg is then left without any).
 */
int	 acme_state_attach(const struct acme_state *st, struct config *cfg);

/* Generation gen, which holds every challenge known now, is published. */
void	 acme_state_published(struct acme_state *st, uint64_t gen);

/*
 * The ids of the challenges that every worker serves now that gen is
 * live everywhere, each given once: up to max of them into ids.
 */
size_t	 acme_state_live(struct acme_state *st, uint64_t gen, uint32_t *ids,
	    size_t max);

/* What an ACME_* report asks of the master. */
enum acme_state_result {
	ACME_STATE_VIOLATION = -1,	/* a lie or a malformed claim: why */
	ACME_STATE_KEEP = 0,		/* noted, nothing to publish */
	ACME_STATE_PUBLISH = 1		/* a new generation is needed */
};

/*
 * Apply CONTROL_ACME_CHALLENGE, _WITHDRAW, _ISSUED or _STATE from the
 * ACME process (text: the message's text).  Checked against cfg, the
 * configuration the ACME process was last given.  ISSUED reads the
 * certificate from the cache at now; one that does not check out is
 * logged and the one served so far kept (ACME_STATE_KEEP).
 */
enum acme_state_result acme_state_report(struct acme_state *st,
	    const struct config *cfg, enum control_type type,
	    const struct control_acme *a, const char *text, int64_t now,
	    char *why, size_t whysz);

/* Whether name is an ACME name of some listener of cfg. */
bool	 acme_state_has_name(const struct config *cfg, const char *name);

/* Whether name is an ACME name of listener li of cfg. */
bool	 acme_state_listener_has_name(const struct config *cfg, size_t li,
	    const char *name);

/*
 * The "certificates" member of the status answer (without braces around
 * it): every name of every listener with the certificate it is served
 * with, its source ("manual" or "acme"), not-after, and for ACME names
 * the next renewal and the last error.  not_after_of gives a manual
 * certificate's not-after (0 if unknown).  malloc'd, NULL if out of
 * memory.
 */
char	*acme_state_json(const struct acme_state *st, const struct config *cfg,
	    int64_t (*not_after_of)(const struct config_blob *cert));

#endif /* PORTCULLIS_ACMESTATE_H */
