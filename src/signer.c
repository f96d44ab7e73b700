/*
 * signer.c - the process that holds the private keys (see signer.h).
 */
#include "autoconf.h"

#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/abstract.h>
#include <gnutls/crypto.h>

#include "control.h"
#include "listen.h"
#include "log.h"
#include "privs.h"
#include "sandbox.h"
#include "signcli.h"
#include "signer.h"
#include "util.h"

/* Requests read from one channel before the others get their turn. */
#define SIGNER_BATCH	32

struct skey {
	unsigned char		 id[SIGNPROTO_KEYID];
	gnutls_privkey_t	 key;
	gnutls_pk_algorithm_t	 pk;
};

struct kset {
	struct skey		*k;
	size_t			 n;
};

/* [0] the current set, [1] the one before. */
struct signer_keys {
	struct kset		 set[2];
};

static void
kset_wipe(struct kset *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		gnutls_privkey_deinit(s->k[i].key);
	if (s->k != NULL)
		explicit_bzero(s->k, s->n * sizeof(*s->k));
	free(s->k);
	s->k = NULL;
	s->n = 0;
}

struct signer_keys *
signer_keys_new(void)
{
	return calloc(1, sizeof(struct signer_keys));
}

void
signer_keys_free(struct signer_keys *ks)
{
	if (ks == NULL)
		return;
	kset_wipe(&ks->set[0]);
	kset_wipe(&ks->set[1]);
	free(ks);
}

size_t
signer_keys_count(const struct signer_keys *ks, int which)
{
	return ks->set[which != 0].n;
}

/* Import one PEM key and compute its id: 0, or a GnuTLS error. */
static int
key_import(struct skey *k, const struct signproto_key *pk)
{
	gnutls_pubkey_t pub = NULL;
	gnutls_datum_t d;
	size_t idlen = sizeof(k->id);
	int ret;

	d.data = (unsigned char *)pk->pem;
	d.size = (unsigned)pk->len;
	if ((ret = gnutls_privkey_init(&k->key)) < 0)
		return ret;
	if ((ret = gnutls_privkey_import_x509_raw(k->key, &d,
	    GNUTLS_X509_FMT_PEM, NULL, 0)) < 0 ||
	    (ret = gnutls_pubkey_init(&pub)) < 0 ||
	    (ret = gnutls_pubkey_import_privkey(pub, k->key, 0, 0)) < 0 ||
	    (ret = gnutls_pubkey_get_key_id(pub, GNUTLS_KEYID_USE_SHA256,
	    k->id, &idlen)) < 0) {
		if (pub != NULL)
			gnutls_pubkey_deinit(pub);
		gnutls_privkey_deinit(k->key);
		k->key = NULL;
		return ret;
	}
	gnutls_pubkey_deinit(pub);
	if (idlen != sizeof(k->id)) {
		gnutls_privkey_deinit(k->key);
		k->key = NULL;
		return GNUTLS_E_INTERNAL_ERROR;
	}
	k->pk = (gnutls_pk_algorithm_t)gnutls_privkey_get_pk_algorithm(k->key,
	    NULL);
	return 0;
}

int
signer_keys_load(struct signer_keys *ks, const unsigned char *buf,
    size_t len, char *why, size_t whysz)
{
	struct signproto_key *pk = NULL;
	struct kset ns = { NULL, 0 };
	long n;
	size_t i;
	int ret;

	if ((n = signproto_keys_parse(buf, len, NULL, 0)) == -1) {
		snprintf(why, whysz, "malformed key set");
		return -1;
	}
	if (n > 0 && ((pk = calloc((size_t)n, sizeof(*pk))) == NULL ||
	    (ns.k = calloc((size_t)n, sizeof(*ns.k))) == NULL)) {
		free(pk);
		snprintf(why, whysz, "out of memory");
		return -1;
	}
	if (n > 0 && signproto_keys_parse(buf, len, pk, (size_t)n) != n) {
		free(pk);
		free(ns.k);
		snprintf(why, whysz, "malformed key set");
		return -1;
	}
	for (i = 0; i < (size_t)n; i++) {
		if ((ret = key_import(&ns.k[ns.n], &pk[i])) < 0) {
			/* The master checked them all: say so, go on. */
			log_warnx("signer: key %zu of the set: %s", i,
			    gnutls_strerror(ret));
			continue;
		}
		ns.n++;
	}
	free(pk);
	/* Replaced twice over: wiped. */
	kset_wipe(&ks->set[1]);
	ks->set[1] = ks->set[0];
	ks->set[0] = ns;
	return 0;
}

static const struct skey *
key_find(const struct signer_keys *ks, const unsigned char *id)
{
	size_t s, i;

	for (s = 0; s < 2; s++)
		for (i = 0; i < ks->set[s].n; i++)
			if (memcmp(ks->set[s].k[i].id, id, SIGNPROTO_KEYID) ==
			    0)
				return &ks->set[s].k[i];
	return NULL;
}

/*
 * RSA_RAW (what GnuTLS asks of an RSA key for PKCS#1 v1.5): a DigestInfo
 * of SHA-256, SHA-384 or SHA-512 and nothing else.
 */
static bool
digestinfo_ok(const unsigned char *p, size_t len)
{
	static const unsigned char pre[3][19] = {
		{ 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
		  0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20 },
		{ 0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
		  0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30 },
		{ 0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
		  0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40 },
	};
	size_t i;

	for (i = 0; i < 3; i++)
		if (len == 19u + pre[i][18] && memcmp(p, pre[i], 19) == 0)
			return true;
	return false;
}

static bool
is_eddsa(gnutls_pk_algorithm_t pk)
{
	return pk == GNUTLS_PK_EDDSA_ED25519 || pk == GNUTLS_PK_EDDSA_ED448;
}

/* Sign r with its key: a status, and the signature in *sig when OK. */
static uint32_t
sign(const struct signer_keys *ks, const struct signproto_req *r,
    gnutls_datum_t *sig)
{
	gnutls_sign_algorithm_t algo = (gnutls_sign_algorithm_t)r->algo;
	const struct skey *k;
	gnutls_datum_t d;
	int ret;

	if ((k = key_find(ks, r->keyid)) == NULL)
		return SIGNPROTO_E_NOKEY;
	d.data = (unsigned char *)r->data;
	d.size = (unsigned)r->len;
	if (algo == GNUTLS_SIGN_RSA_RAW) {
		if (k->pk != GNUTLS_PK_RSA || r->op != SIGNPROTO_SIGN_HASH)
			return SIGNPROTO_E_ALGORITHM;
		if (!digestinfo_ok(r->data, r->len))
			return SIGNPROTO_E_MALFORMED;
		ret = gnutls_privkey_sign_hash(k->key, GNUTLS_DIG_UNKNOWN,
		    GNUTLS_PRIVKEY_SIGN_FLAG_TLS1_RSA, &d, sig);
	} else {
		if (!signcli_algo_fits(algo, k->pk) ||
		    is_eddsa(k->pk) != (r->op == SIGNPROTO_SIGN_DATA))
			return SIGNPROTO_E_ALGORITHM;
		if (r->op == SIGNPROTO_SIGN_DATA)
			ret = gnutls_privkey_sign_data2(k->key, algo, 0, &d,
			    sig);
		else if (r->len != (size_t)gnutls_hash_get_len(
		    gnutls_sign_get_hash_algorithm(algo)))
			return SIGNPROTO_E_MALFORMED;
		else
			ret = gnutls_privkey_sign_hash2(k->key, algo, 0, &d,
			    sig);
	}
	if (ret < 0)
		return SIGNPROTO_E_FAILED;
	if (sig->size == 0 || sig->size > SIGNPROTO_SIG_MAX) {
		gnutls_free(sig->data);
		sig->data = NULL;
		return SIGNPROTO_E_FAILED;
	}
	return SIGNPROTO_OK;
}

static size_t
answer(struct signer_keys *ks, const unsigned char *req, size_t len,
    unsigned char *out, uint32_t *status)
{
	struct signproto_req r;
	struct signproto_ans a;
	gnutls_datum_t sig = { NULL, 0 };
	size_t n;

	memset(&a, 0, sizeof(a));
	*status = SIGNPROTO_E_MALFORMED;
	if (signproto_req_parse(req, len, &r) == -1) {
		/* An id to answer, if there is one to take. */
		if (len < 4)
			return 0;
		memcpy(&a.id, req, 4);
		a.status = SIGNPROTO_E_MALFORMED;
		return signproto_ans_encode(&a, out);
	}
	a.id = r.id;
	a.status = *status = sign(ks, &r, &sig);
	if (a.status == SIGNPROTO_OK) {
		a.sig = sig.data;
		a.len = sig.size;
	}
	n = signproto_ans_encode(&a, out);
	if (sig.data != NULL)
		gnutls_memset(sig.data, 0, sig.size);
	gnutls_free(sig.data);
	return n;
}

size_t
signer_answer(struct signer_keys *ks, const unsigned char *req, size_t len,
    unsigned char *out)
{
	uint32_t status;

	return answer(ks, req, len, out, &status);
}

/* ---- the process ---- */

static struct {
	struct signer_keys	*keys;
	int			 ch[SIGNER_CHANNELS_MAX];	/* -1: none */
	uint64_t		 gen;
} S;

static void
report_ready(void)
{
	struct control_msg m;

	memset(&m, 0, sizeof(m));
	m.type = CONTROL_READY;
	m.fd = -1;
	m.pid = (uint32_t)getpid();
	control_child_report(WORKER_FD_REPORT, &m);
}

static int
pread_all(int fd, unsigned char *buf, size_t len)
{
	size_t off = 0;
	ssize_t n;

	while (off < len) {
		n = pread(fd, buf + off, len - off, (off_t)off);
		if (n == -1 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
		off += (size_t)n;
	}
	return 0;
}

/* A key set in a memfd: read into memory no core dump holds, loaded. */
static void
keys_from(int fd, uint64_t gen)
{
	struct stat st;
	unsigned char *buf;
	size_t len;
	char why[128];

	if (fstat(fd, &st) == -1 || st.st_size < 0 ||
	    (uint64_t)st.st_size > SIGNPROTO_SET_MAX) {
		log_warnx("signer: key set of generation %llu: bad size",
		    (unsigned long long)gen);
		return;
	}
	len = (size_t)st.st_size;
	if (len == 0 || (buf = mmap(NULL, len, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)) == MAP_FAILED) {
		log_warnx("signer: key set of generation %llu: empty or no "
		    "memory", (unsigned long long)gen);
		return;
	}
	(void)madvise(buf, len, MADV_DONTDUMP);
	if (pread_all(fd, buf, len) == -1)
		log_warn("signer: key set of generation %llu",
		    (unsigned long long)gen);
	else if (signer_keys_load(S.keys, buf, len, why, sizeof(why)) == -1)
		log_warnx("signer: key set of generation %llu: %s",
		    (unsigned long long)gen, why);
	else {
		S.gen = gen;
		log_info("signer: %zu keys of generation %llu loaded",
		    signer_keys_count(S.keys, 0), (unsigned long long)gen);
	}
	explicit_bzero(buf, len);
	munmap(buf, len);
}

static void
channel_set(uint64_t idx, int fd)
{
	if (idx >= SIGNER_CHANNELS_MAX) {
		log_warnx("signer: channel %llu out of range",
		    (unsigned long long)idx);
		close(fd);
		return;
	}
	if (S.ch[idx] != -1)
		close(S.ch[idx]);
	if (util_set_nonblock(fd) == -1) {
		log_warn("signer: channel %llu", (unsigned long long)idx);
		close(fd);
		S.ch[idx] = -1;
		return;
	}
	S.ch[idx] = fd;
}

/* Every message from the master waiting; exits on DRAIN or EOF. */
static void
control_read_all(void)
{
	struct control_msg m;
	int rc;

	while ((rc = control_recv(WORKER_FD_CONTROL, &m)) == 1) {
		switch (m.type) {
		case CONTROL_SIGNER_KEYS:
			/* The configuration's log settings come with it. */
			if ((m.pid & 0xff) <= LOG_LEVEL_DEBUG &&
			    (m.pid >> 8) <= LOG_FORMAT_JSON)
				log_configure((enum log_level)(m.pid & 0xff),
				    (enum log_format)(m.pid >> 8));
			keys_from(m.fd, m.gen);
			close(m.fd);
			break;
		case CONTROL_SIGNER_CHANNEL:
			channel_set(m.gen, m.fd);
			break;
		case CONTROL_REOPEN_LOG:
			log_reopen(m.fd);
			break;
		case CONTROL_DRAIN:
			log_info("signer: exiting (master asked)");
			exit(0);
		default:
			fatalx("control: unexpected message %d", m.type);
		}
	}
	if (rc == 0) {
		log_info("signer: exiting (master exited)");
		exit(0);
	}
	if (errno == EPROTO)
		fatalx("control: protocol violation");
}

/*
 * Answer what channel i has, a batch at most.  A record longer than any
 * request is read as truncated (MSG_TRUNC gives its real length) and
 * refused like any malformed one.
 */
static void
channel_serve(size_t i, short revents)
{
	unsigned char req[SIGNPROTO_REQ_MAX + 1], ans[SIGNPROTO_ANS_MAX];
	uint32_t status;
	size_t alen;
	ssize_t n;
	int k, fd = S.ch[i];

	for (k = 0; k < SIGNER_BATCH; k++) {
		n = recv(S.ch[i], req, sizeof(req), MSG_DONTWAIT | MSG_TRUNC);
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n == -1 || (n == 0 && (revents & (POLLHUP | POLLERR)))) {
			/* Its child is gone; the master has a new one. */
			close(S.ch[i]);
			S.ch[i] = -1;
			return;
		}
		if ((size_t)n > SIGNPROTO_REQ_MAX)
			n = SIGNPROTO_REQ_MAX + 1;	/* malformed */
		alen = answer(S.keys, req, (size_t)n, ans, &status);
		/* A key the master just sent: read it, try again. */
		if (status == SIGNPROTO_E_NOKEY) {
			control_read_all();
			alen = answer(S.keys, req, (size_t)n, ans, &status);
		}
		/* A child that does not read its answers loses them. */
		if (alen > 0)
			(void)send(fd, ans, alen, MSG_DONTWAIT | MSG_NOSIGNAL);
		explicit_bzero(ans, sizeof(ans));
		if (S.ch[i] != fd)
			return;		/* replaced meanwhile */
	}
}

void
signer_main(void)
{
	struct pollfd pfd[1 + SIGNER_CHANNELS_MAX];
	size_t idx[1 + SIGNER_CHANNELS_MAX];
	enum sandbox_mode sb = sandbox_mode_from_env();
	size_t i, n;
	int rc;

	log_init("signer", -1);
	(void)log_journal_detect();	/* before the sandbox (log.h) */
	control_child_check(WORKER_FD_CONTROL, WORKER_FD_REPORT, SIGNER_ENV);
	unsetenv(SIGNER_ENV);
	if (privs_worker_drop(true) == -1)
		fatal("cannot drop privileges");
	signal(SIGPIPE, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGUSR1, SIG_IGN);
	if ((S.keys = signer_keys_new()) == NULL)
		fatal("calloc");
	for (i = 0; i < SIGNER_CHANNELS_MAX; i++)
		S.ch[i] = -1;
	if (sandbox_apply(SANDBOX_SIGNER, sb) == -1)
		fatal("cannot install the sandbox");
	report_ready();
	log_debug("signer: ready");

	for (;;) {
		pfd[0].fd = WORKER_FD_CONTROL;
		pfd[0].events = POLLIN;
		pfd[0].revents = 0;
		for (i = 0, n = 1; i < SIGNER_CHANNELS_MAX; i++) {
			if (S.ch[i] == -1)
				continue;
			pfd[n].fd = S.ch[i];
			pfd[n].events = POLLIN;
			pfd[n].revents = 0;
			idx[n++] = i;
		}
		do
			rc = poll(pfd, n, -1);
		while (rc == -1 && errno == EINTR);
		if (rc == -1)
			fatal("poll");
		/* The master first: keys and channels before requests. */
		if (pfd[0].revents != 0)
			control_read_all();
		for (i = 1; i < n; i++)
			if (pfd[i].revents != 0 && S.ch[idx[i]] == pfd[i].fd)
				channel_serve(idx[i], pfd[i].revents);
	}
}
