/*
 * signcli.c - a worker's side of the signer (see signcli.h).
 */
#include "autoconf.h"

#include <sys/socket.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "signcli.h"
#include "signproto.h"
#include "util.h"

struct signcli_key {
	unsigned char		 id[SIGNPROTO_KEYID];
	gnutls_pk_algorithm_t	 pk;
	unsigned		 bits;
};

static int	 chan = -1;
static uint32_t	 next_id;
/* After a timeout: fail at once until then, then probe (0: up). */
static long long down_until;

void
signcli_init(int fd)
{
	chan = fd;
	down_until = 0;
}

void
signcli_child_check(int fd, const char *env)
{
	int type = 0;
	socklen_t len = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == -1 ||
	    type != SOCK_SEQPACKET)
		fatalx("fd %d is not a channel to the signer: %s is internal",
		    fd, env);
	if (util_set_nonblock(fd) == -1)
		fatal("signer channel");
	signcli_init(fd);
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One request, and its answer within the deadline. */
static int
ask(const struct signcli_key *k, uint32_t op, gnutls_sign_algorithm_t algo,
    const gnutls_datum_t *data, gnutls_datum_t *sig)
{
	unsigned char req[SIGNPROTO_REQ_MAX], ans[SIGNPROTO_ANS_MAX + 1];
	struct signproto_req r;
	struct signproto_ans a;
	struct pollfd pfd;
	long long deadline;
	size_t len;
	ssize_t n;
	int rc;

	if (chan == -1 || now_ms() < down_until)
		return GNUTLS_E_PK_SIGN_FAILED;
	memset(&r, 0, sizeof(r));
	r.id = ++next_id;
	r.op = op;
	r.algo = (uint32_t)algo;
	memcpy(r.keyid, k->id, sizeof(r.keyid));
	r.data = data->data;
	r.len = data->size;
	if ((len = signproto_req_encode(&r, req)) == 0)
		return GNUTLS_E_PK_SIGN_FAILED;
	do
		n = send(chan, req, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n == -1 && errno == EINTR);
	if (n != (ssize_t)len)
		return GNUTLS_E_PK_SIGN_FAILED;
	deadline = now_ms() + (down_until != 0 ? SIGNCLI_PROBE_MS :
	    SIGNCLI_TIMEOUT_MS);
	for (;;) {
		n = recv(chan, ans, sizeof(ans), MSG_DONTWAIT | MSG_TRUNC);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			long long left = deadline - now_ms();

			if (left <= 0) {
				down_until = now_ms() + SIGNCLI_DOWN_MS;
				return GNUTLS_E_PK_SIGN_FAILED;
			}
			pfd.fd = chan;
			pfd.events = POLLIN;
			pfd.revents = 0;
			rc = poll(&pfd, 1, (int)left);
			if (rc == -1 && errno != EINTR)
				return GNUTLS_E_PK_SIGN_FAILED;
			continue;
		}
		/* EOF, an error, or a record no signer writes. */
		if (n <= 0 || (size_t)n > SIGNPROTO_ANS_MAX ||
		    signproto_ans_parse(ans, (size_t)n, &a) == -1)
			return GNUTLS_E_PK_SIGN_FAILED;
		if (a.id != r.id)
			continue;	/* of a request that timed out */
		down_until = 0;
		if (a.status != SIGNPROTO_OK)
			return GNUTLS_E_PK_SIGN_FAILED;
		if ((sig->data = gnutls_malloc(a.len)) == NULL)
			return GNUTLS_E_MEMORY_ERROR;
		memcpy(sig->data, a.sig, a.len);
		sig->size = (unsigned)a.len;
		return 0;
	}
}

static int
sign_hash_cb(gnutls_privkey_t key, gnutls_sign_algorithm_t algo,
    void *userdata, unsigned int flags, const gnutls_datum_t *hash,
    gnutls_datum_t *sig)
{
	(void)key;
	(void)flags;
	return ask(userdata, SIGNPROTO_SIGN_HASH, algo, hash, sig);
}

static int
sign_data_cb(gnutls_privkey_t key, gnutls_sign_algorithm_t algo,
    void *userdata, unsigned int flags, const gnutls_datum_t *data,
    gnutls_datum_t *sig)
{
	(void)key;
	(void)flags;
	return ask(userdata, SIGNPROTO_SIGN_DATA, algo, data, sig);
}

static void
deinit_cb(gnutls_privkey_t key, void *userdata)
{
	(void)key;
	free(userdata);
}

int
signcli_algo_fits(gnutls_sign_algorithm_t algo, gnutls_pk_algorithm_t pk)
{
	if (gnutls_sign_get_name(algo) == NULL ||
	    !gnutls_sign_supports_pk_algorithm(algo, pk))
		return 0;
	if (pk == GNUTLS_PK_RSA &&
	    gnutls_sign_get_pk_algorithm(algo) == GNUTLS_PK_RSA_PSS)
		return algo == GNUTLS_SIGN_RSA_PSS_RSAE_SHA256 ||
		    algo == GNUTLS_SIGN_RSA_PSS_RSAE_SHA384 ||
		    algo == GNUTLS_SIGN_RSA_PSS_RSAE_SHA512;
	return 1;
}

static int
info_cb(gnutls_privkey_t key, unsigned int flags, void *userdata)
{
	const struct signcli_key *k = userdata;
	gnutls_sign_algorithm_t algo;

	(void)key;
	if (flags & GNUTLS_PRIVKEY_INFO_PK_ALGO)
		return (int)k->pk;
	if (flags & GNUTLS_PRIVKEY_INFO_PK_ALGO_BITS)
		return (int)k->bits;
	if (flags & GNUTLS_PRIVKEY_INFO_HAVE_SIGN_ALGO) {
		algo = (gnutls_sign_algorithm_t)GNUTLS_FLAGS_TO_SIGN_ALGO(flags);
		return signcli_algo_fits(algo, k->pk);
	}
	if (flags & GNUTLS_PRIVKEY_INFO_SIGN_ALGO)
		return GNUTLS_SIGN_UNKNOWN;	/* none preferred */
	return GNUTLS_E_INVALID_REQUEST;
}

int
signcli_key(gnutls_pubkey_t pub, gnutls_privkey_t *key)
{
	struct signcli_key *k;
	size_t idlen;
	int ret;

	*key = NULL;
	if ((k = calloc(1, sizeof(*k))) == NULL)
		return GNUTLS_E_MEMORY_ERROR;
	idlen = sizeof(k->id);
	if ((ret = gnutls_pubkey_get_key_id(pub, GNUTLS_KEYID_USE_SHA256,
	    k->id, &idlen)) < 0 ||
	    (ret = gnutls_pubkey_get_pk_algorithm(pub, &k->bits)) < 0) {
		free(k);
		return ret;
	}
	k->pk = (gnutls_pk_algorithm_t)ret;
	if ((ret = gnutls_privkey_init(key)) < 0) {
		free(k);
		return ret;
	}
	if ((ret = gnutls_privkey_import_ext4(*key, k, sign_data_cb,
	    sign_hash_cb, NULL, deinit_cb, info_cb,
	    GNUTLS_PRIVKEY_IMPORT_AUTO_RELEASE)) < 0) {
		gnutls_privkey_deinit(*key);
		*key = NULL;
		free(k);
		return ret;
	}
	return 0;
}
