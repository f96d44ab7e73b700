/*
 * ctl.h - "portcullis ctl": the admin socket client.
 */
#ifndef PORTCULLIS_CTL_H
#define PORTCULLIS_CTL_H

/* A reload waits for every worker: allow it time. */
#define CTL_REPLY_TIMEOUT_MS	60000
/* A renewal talks to the CA: orders, validations, finalize. */
#define CTL_RENEW_TIMEOUT_MS	600000

/* argv[0] is "ctl".  Returns the process exit status. */
int	 ctl_main(int argc, char **argv);

#endif /* PORTCULLIS_CTL_H */
