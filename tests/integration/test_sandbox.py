"""The sandbox (issue 19): every child of the master (the workers, the
prober, the ACME process) runs under a seccomp filter of its own and
never dumps core, whatever core limit the master was started with; a
child that dies of SIGSYS is said to be the sandbox's and is respawned;
seccomp = "off" installs nothing; the option is checked and static.

That a forbidden call kills is tests/unit/sandbox_test.c's job (the
production binary has no "do something forbidden" command): here the
kill comes from outside (kill -SYS), which the master cannot tell from a
real violation.  That the allow-lists are enough is the whole suite's,
which runs with the filter on.
"""

import os
import re
import resource
import signal
import subprocess
from pathlib import Path

from acmeutil import (acme, acme_base, make_pebble,  # noqa: F401
                      pebble_tls, wait_acme)
from conftest import (BINARY, http_get, proc_status, start_proxy, status_of,
                      wait_until)


def kind_of(pid):
    """"worker", "prober" or "acme", from the child's argv[0]."""
    argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    return argv0.decode().removeprefix("portcullis-")


def core_limit(pid):
    """(soft, hard) of "Max core file size" in /proc/PID/limits."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max core file size"):
            soft, hard = line.split()[4:6]
            return soft, hard
    raise AssertionError(f"no core limit for {pid}")


def raised_core_limit():
    """preexec_fn: the master starts with an unlimited core limit."""
    resource.setrlimit(resource.RLIMIT_CORE,
                       (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


KINDS = ("worker", "prober", "acme")


def children_by_kind(p, kinds):
    """{kind: [pids]} once every kind in kinds has a child (and every
    child is executed as its kind)."""
    def found():
        out = {}
        for pid in p.workers():
            try:
                out.setdefault(kind_of(pid), []).append(pid)
            except OSError:
                return None
        if any(k not in KINDS for k in out):
            return None
        return out if all(k in out for k in kinds) else None
    return wait_until(found, timeout=15, what=f"children {kinds}")


def settled(pid, seccomp):
    """Wait until the child is initialised: its filter ("2") or none
    ("0"), and its core limit 0; a child that never gets there fails."""
    def ok():
        st = proc_status(pid)
        return (st["Seccomp"] == seccomp and core_limit(pid) == ("0", "0")
                and st)
    return wait_until(ok, timeout=10, what=f"pid {pid}: Seccomp "
                      f"{seccomp}, core limit 0")


def health_site(p, upstream):
    """Every site of p goes to upstream and has a health-check: a prober
    is started."""
    for _, site in p.listener["site"]:
        site["upstream"] = upstream.addr
        site["health-check"] = {"path": "/hc", "interval": 1, "timeout": 1}


def test_every_child_is_sandboxed_and_dumps_no_core(acme, upstream):
    """Started with an unlimited core limit: every worker, the prober
    and the ACME process run with a filter and a core limit of 0; the
    master itself has no filter.  The ACME process gets its certificate
    through its filter (network, resolver, CA file, cache)."""
    p, pb, cache = acme.proxy(["a.test"])
    for _, site in p.listener["site"]:
        site["health-check"] = {"path": "/hc", "interval": 1, "timeout": 1}
    p.write_config()
    p.start(preexec=raised_core_limit)
    # (The sanitizer runtime lowers its own soft limit: the hard one
    # tells.)
    assert core_limit(p.pid)[1] == "unlimited"
    kids = children_by_kind(p, ("worker", "prober", "acme"))
    assert len(kids["worker"]) == 2
    wait_acme(p, "issued", "a.test")
    for kind, pids in kids.items():
        for pid in pids:
            st = settled(pid, "2")
            assert int(st["Seccomp_filters"]) >= 1, (kind, st)
    assert proc_status(p.pid)["Seccomp"] == "0"
    # Still alive, nothing killed by its filter on the way.
    assert sorted(sum(kids.values(), [])) == p.workers()
    assert "killed by the sandbox" not in p.log()
    assert "portcullis: sandbox:" not in p.log()


def test_seccomp_off_installs_nothing(make_proxy, upstream):
    """seccomp = "off": no filter, but still no core dumps."""
    p = make_proxy(workers=1, seccomp="off")
    health_site(p, upstream)
    p.write_config()
    p.start(preexec=raised_core_limit)
    kids = children_by_kind(p, ("worker", "prober"))
    wait_until(lambda: p.ctl("status")[1]["workers"] == 1, what="ready")
    for kind, pids in kids.items():
        for pid in pids:
            st = settled(pid, "0")
            assert st["Seccomp_filters"] == "0", kind
    assert status_of(http_get(p.health_port)) == 200


def test_seccomp_log_filters_and_serves(make_proxy):
    """"log" installs a filter too (one that lets everything through)."""
    p = make_proxy(seccomp="log").start()
    for pid in p.wait_workers(2):
        assert proc_status(pid)["Seccomp"] == "2"
    assert status_of(http_get(p.health_port)) == 200


def test_sigsys_is_the_sandbox_and_respawned(make_proxy, upstream):
    """A worker and the prober that die of SIGSYS are logged as killed
    by the sandbox, and replaced, as for any crash."""
    p = start_proxy(make_proxy, workers=2,
                    configure=lambda p: health_site(p, upstream))
    kids = children_by_kind(p, ("worker", "prober"))
    wait_until(lambda: p.ctl("status")[1]["workers"] == 2, what="ready")
    victim = kids["worker"][0]
    os.kill(victim, signal.SIGSYS)
    p.wait_log(rf"worker \d \(pid {victim}\) was killed by the sandbox "
               r"\(SIGSYS\): a system call outside its allow-list; run "
               r'with seccomp = \\?"log\\?" to find it')
    wait_until(lambda: (w := p.workers()) and victim not in w and
               len(w) == 3, what="respawned worker")
    wait_until(lambda: p.ctl("status")[1]["workers"] == 2, what="2 ready")
    assert status_of(http_get(p.health_port)) == 200
    (prober,) = kids["prober"]
    os.kill(prober, signal.SIGSYS)
    p.wait_log(rf"the prober \(pid {prober}\) was killed by the sandbox "
               r"\(SIGSYS\)")
    new = children_by_kind(p, ("prober",))["prober"]
    assert new != [prober]
    settled(new[0], "2")
    # Not a core: RLIMIT_CORE 0 and not dumpable.
    assert "core dumped" not in p.log()


def run(*args):
    return subprocess.run([str(BINARY), *args], capture_output=True,
                          text=True, timeout=20, stdin=subprocess.DEVNULL)


def test_seccomp_value_is_checked(make_proxy):
    """A bad value is FILE:LINE: reason; each good one validates."""
    p = make_proxy()
    good = p.conf_path.read_text()
    for value in ("kill", "log", "off"):
        p.conf_path.write_text(f'seccomp = "{value}"\n' + good)
        r = run("--validate", "-c", str(p.conf_path))
        assert r.returncode == 0, r.stderr
    for value in ("KILL", "", "trap", "on"):
        p.conf_path.write_text(good + f'seccomp = "{value}"\n')
        line = good.count("\n") + 1
        r = run("--validate", "-c", str(p.conf_path))
        assert r.returncode == 1
        assert re.search(rf"^{re.escape(str(p.conf_path))}:{line}: seccomp "
                         r"must be kill, log or off", r.stderr, re.M), \
            r.stderr


def test_seccomp_change_needs_a_restart(proxy):
    proxy.settings["seccomp"] = "off"
    proxy.write_config()
    rc, reply = proxy.ctl("reload")
    assert rc == 1
    assert "'seccomp' changed, which needs a restart" in reply["message"]
    assert proxy.ctl("status")[1]["generation"] == 1
    for pid in proxy.wait_workers(2):
        assert proc_status(pid)["Seccomp"] == "2"
