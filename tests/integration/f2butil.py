"""A real fail2ban server for the tests (test_ratelimit.py, the file
jails; test_journal.py, the journal's)."""

import os
import re
import subprocess

from conftest import SRCDIR, wait_until

FILTER = SRCDIR / "deploy/fail2ban/filter.d/portcullis.conf"
PROBE_FILTER = SRCDIR / "deploy/fail2ban/filter.d/portcullis-probe.conf"
JAIL = SRCDIR / "deploy/fail2ban/jail.d/portcullis.conf"
JOURNAL_JAIL = SRCDIR / "deploy/fail2ban/jail.d/portcullis-journal.conf"


class Fail2ban:
    """A real fail2ban server in its own directory, with the shipped
    filters and jails; only the jail's source (logpath and backend, or
    what local, {section: {option: value}}, sets in a jail.d/zz-test.local)
    and the action are the test's: an action that records every address
    or network it is asked to ban."""

    def __init__(self, d, jail="portcullis-ratelimit", local=None):
        self.d = d
        self.jail = jail
        conf = d / "conf"
        for sub in ("filter.d", "jail.d", "action.d"):
            (conf / sub).mkdir(parents=True)
        (conf / "filter.d/portcullis.conf").write_text(FILTER.read_text())
        (conf / "filter.d/portcullis-probe.conf").write_text(
            PROBE_FILTER.read_text())
        (conf / "jail.d/portcullis.conf").write_text(JAIL.read_text())
        (conf / "jail.d/portcullis-journal.conf").write_text(
            JOURNAL_JAIL.read_text())
        self.log = d / "access.log"
        self.log.touch()
        self.bans = d / "bans"
        (conf / "fail2ban.conf").write_text(
            f"[Definition]\nloglevel = INFO\nlogtarget = {d}/fail2ban.log\n"
            f"socket = {d}/sock\npidfile = {d}/pid\ndbfile = :memory:\n")
        (conf / "jail.conf").write_text(
            "[DEFAULT]\nignoreself = false\nignoreip =\n")
        if local is None:
            local = {jail: {"logpath": str(self.log), "backend": "polling"}}
        local.setdefault(jail, {})["action"] = "record"
        (conf / "jail.d/zz-test.local").write_text("".join(
            f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in opts.items())
            for name, opts in local.items()))
        (conf / "action.d/record.conf").write_text(
            "[Definition]\nactionstart =\nactionstop =\nactioncheck =\n"
            f"actionban = printf '%%s\\n' '<ip>' >> {self.bans}\n"
            "actionunban =\n")
        self.args = ["fail2ban-client", "-c", str(conf), "-s", str(d / "sock"),
                     "-p", str(d / "pid")]
        env = dict(os.environ, TZ="UTC")    # the log's times are UTC
        self.proc = subprocess.Popen(self.args + ["-f", "start"],
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, env=env)
        wait_until(lambda: self.client("ping")[0] == 0,
                   what="fail2ban-server up")

    def client(self, *cmd):
        r = subprocess.run(self.args + list(cmd), capture_output=True,
                           text=True, timeout=30)
        return r.returncode, r.stdout

    def status(self):
        rc, out = self.client("status", self.jail)
        assert rc == 0, out
        return {k.strip(): v.strip() for k, v in
                re.findall(r"^[|`\s-]*([A-Za-z ]+):\t?(.*)$", out, re.M)}

    def append(self, lines):
        with open(self.log, "a") as f:
            f.write("".join(l + "\n" for l in lines))

    def banned(self):
        return (self.bans.read_text().split() if self.bans.exists()
                else [])

    def stop(self):
        try:
            self.client("stop")
            self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()

    def text(self):
        p = self.d / "fail2ban.log"
        return p.read_text(errors="replace") if p.exists() else ""
