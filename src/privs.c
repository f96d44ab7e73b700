/*
 * privs.c - user switch, capabilities and no_new_privs (see privs.h).
 */
#include "autoconf.h"

#include <sys/prctl.h>
#include <sys/resource.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

#include <sys/capability.h>

#include "log.h"
#include "privs.h"
#include "util.h"

static const cap_value_t master_caps[] = {
	CAP_SETUID, CAP_SETGID, CAP_KILL, CAP_DAC_READ_SEARCH
};

int
privs_lookup_user(const char *name, struct privs_user *u)
{
	struct passwd *pw;

	memset(u, 0, sizeof(*u));
	u->switch_user = geteuid() == 0;
	if (!u->switch_user)
		return 0;
	errno = 0;
	if ((pw = getpwnam(name)) == NULL) {
		if (errno == 0)
			errno = ENOENT;
		return -1;
	}
	if (pw->pw_uid == 0) {
		errno = EPERM;
		return -1;
	}
	u->uid = pw->pw_uid;
	u->gid = pw->pw_gid;
	return 0;
}

/*
 * Drop what is not in keep from the bounding set (best effort: it needs
 * CAP_SETPCAP) and clear the ambient set, so that nothing executed later
 * can regain a capability.
 */
static void
shrink_bounding_set(const cap_value_t *keep, size_t nkeep)
{
	cap_value_t c;
	size_t i;

	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (!CAP_IS_SUPPORTED(CAP_SETPCAP))
		return;
	for (c = 0; c <= CAP_LAST_CAP; c++) {
		bool kept = false;

		for (i = 0; i < nkeep; i++)
			kept = kept || keep[i] == c;
		if (!kept && CAP_IS_SUPPORTED(c))
			(void)cap_drop_bound(c);
	}
}

/* Set effective and permitted to exactly keep; inheritable empty. */
static int
set_caps(const cap_value_t *keep, size_t nkeep)
{
	cap_t caps;
	int rc = -1;

	if ((caps = cap_init()) == NULL)
		return -1;
	if (nkeep > 0 &&
	    (cap_set_flag(caps, CAP_EFFECTIVE, (int)nkeep, keep, CAP_SET) ||
	    cap_set_flag(caps, CAP_PERMITTED, (int)nkeep, keep, CAP_SET)))
		goto out;
	rc = cap_set_proc(caps);
out:
	cap_free(caps);
	return rc;
}

/*
 * Not dumpable: no core with keys in it, no ptrace by other processes of
 * the same user.  (LeakSanitizer needs to ptrace its own process, so
 * sanitizer builds leave this out.)
 */
static int
not_dumpable(void)
{
	return UTIL_ASAN ? 0 : prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

static int
harden_process(void)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		return -1;
	return not_dumpable();
}

/* The capabilities of want that this process holds in its permitted set. */
static size_t
held_caps(const cap_value_t *want, size_t nwant, cap_value_t *out)
{
	cap_t caps = cap_get_proc();
	cap_flag_value_t v;
	size_t i, n = 0;

	if (caps == NULL)
		return 0;
	for (i = 0; i < nwant; i++)
		if (cap_get_flag(caps, want[i], CAP_PERMITTED, &v) == 0 &&
		    v == CAP_SET)
			out[n++] = want[i];
	cap_free(caps);
	return n;
}

int
privs_master_restrict(bool root)
{
	cap_value_t keep[nitems(master_caps)] = { 0 };
	/* A bounding set may already lack some: keep what is there. */
	size_t nkeep = root ? held_caps(master_caps, nitems(master_caps),
	    keep) : 0;

	shrink_bounding_set(keep, nkeep);
	if (set_caps(keep, nkeep) == -1)
		return -1;
	return harden_process();
}

int
privs_switch_user(const struct privs_user *u)
{
	if (!u->switch_user)
		return 0;
	if (setgroups(1, &u->gid) == -1 ||
	    setresgid(u->gid, u->gid, u->gid) == -1 ||
	    setresuid(u->uid, u->uid, u->uid) == -1)
		return -1;
	return 0;
}

bool
privs_have_any_capability(void)
{
	cap_t caps = cap_get_proc();
	cap_flag_value_t v;
	bool any = false;
	cap_value_t c;

	if (caps == NULL)
		return true;	/* cannot tell: assume the worst */
	for (c = 0; c <= CAP_LAST_CAP && !any; c++) {
		if (!CAP_IS_SUPPORTED(c))
			continue;
		if ((cap_get_flag(caps, c, CAP_EFFECTIVE, &v) == 0 &&
		    v == CAP_SET) ||
		    (cap_get_flag(caps, c, CAP_PERMITTED, &v) == 0 &&
		    v == CAP_SET))
			any = true;
	}
	cap_free(caps);
	return any;
}

int
privs_no_core(void)
{
	struct rlimit rl = { 0, 0 };

	/* Both limits: nothing in the process can raise it again. */
	if (setrlimit(RLIMIT_CORE, &rl) == -1)
		return -1;
	return not_dumpable();
}

int
privs_worker_drop(bool expect_nonroot)
{
	uid_t ruid, euid, suid;
	gid_t rgid, egid, sgid;

	shrink_bounding_set(NULL, 0);
	if (set_caps(NULL, 0) == -1 || harden_process() == -1 ||
	    privs_no_core() == -1)
		return -1;
	if (privs_have_any_capability() ||
	    prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1) {
		errno = EPERM;
		return -1;
	}
	if (expect_nonroot) {
		if (getresuid(&ruid, &euid, &suid) == -1 ||
		    getresgid(&rgid, &egid, &sgid) == -1)
			return -1;
		if (ruid == 0 || euid == 0 || suid == 0 || rgid == 0 ||
		    egid == 0 || sgid == 0) {
			errno = EPERM;
			return -1;
		}
	}
	return 0;
}
