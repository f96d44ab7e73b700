"""tls { mode = "acme" } against a real ACME server (pebble, acmeutil.py):
both challenge types, several names, the cache, renewal on demand,
nonce rejections, the CA down at start, a failing name, EAB, reloads,
ctl status and --validate.

Every test gets its own pebble, whose httpPort and tlsPort are that
test's proxy ports; every certificate served is checked up to pebble's
root.  The proxy's ACME log lines are matched loosely (a line with
"ACME", the event's word and the name), the exact wording being the
implementation's.
"""

import os
import re
import socket
import stat
import struct
import subprocess
import time
from pathlib import Path

import pytest

from acmeutil import (EAB_KEYS, acme, acme_base,  # noqa: F401
                      acme_lines, check_acme_cert, ctl, leaf_key,
                      make_pebble, nobody_uid, pebble_tls, restart, served,
                      status_cert, status_certs, to_epoch, wait_acme,
                      wait_cert)
from conftest import (BINARY, SLOWDOWN, children_of, http_get,
                      parse_response, proc_status, read_all, status_of,
                      tls_connect)
from h1util import parse_one


# ---- the fixture itself ---------------------------------------------------

def dns_a(port, name):
    """The A records a DNS server on 127.0.0.1:port gives for name."""
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    query = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + qname + \
        b"\0" + struct.pack(">HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(query, ("127.0.0.1", port))
        data = s.recv(4096)
    ident, flags, qd, an = struct.unpack(">HHHH", data[:8])
    assert ident == 0x1234 and flags & 0x8000
    i = 12 + len(qname) + 1 + 4
    out = []
    for _ in range(an):
        i += 2 if data[i] & 0xC0 == 0xC0 else data.index(b"\0", i) + 1 - i
        rtype, _, _, rdlen = struct.unpack(">HHIH", data[i:i + 10])
        i += 10
        if rtype == 1:
            out.append(socket.inet_ntoa(data[i:i + rdlen]))
        i += rdlen
    return out


def test_pebble_fixture(acme_base, make_pebble, pebble_tls):
    """The harness's ACME server works before the proxy does: pebble
    answers over HTTPS with the CA the proxy will be given, hands out
    nonces, gives its root and intermediate, and resolves names through
    challtestsrv."""
    pb = make_pebble((1, 2))
    curl = ["curl", "-sS", "--max-time", "5", "--cacert", str(pebble_tls.ca)]
    r = subprocess.run(curl + [pb.directory], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert '"newNonce"' in r.stdout and '"newOrder"' in r.stdout
    nonce_url = pb.dir_doc["newNonce"]
    r = subprocess.run(curl + ["-I", nonce_url], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert re.search(r"^replay-nonce: \S+", r.stdout, re.M | re.I), r.stdout
    # A signed POST is what pebble wants there: anything else is refused
    # with a problem document (and still a fresh nonce).
    r = subprocess.run(curl + ["-i", "-X", "POST", "-H",
                               "Content-Type: application/jose+json",
                               "-d", "{}", nonce_url],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert re.search(r"^replay-nonce: \S+", r.stdout, re.M | re.I), r.stdout
    # Without our CA, pebble's certificate is not trusted.
    r = subprocess.run(["curl", "-sS", "--max-time", "5", pb.directory],
                       capture_output=True, text=True)
    assert r.returncode == 60, (r.returncode, r.stderr)
    # The issuing chain of this launch.
    r = subprocess.run(["openssl", "verify", "-CAfile", str(pb.root),
                        str(pb.intermediate)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    # challtestsrv: 127.0.0.1 for any name, or what add_a says.
    assert dns_a(pb.dns_port, "a.test") == ["127.0.0.1"]
    pb.add_a("bad.test", ["127.0.0.2"])
    assert dns_a(pb.dns_port, "bad.test") == ["127.0.0.2"]
    pb.clear_a("bad.test")
    assert dns_a(pb.dns_port, "bad.test") == ["127.0.0.1"]
    assert "Disabling random VA sleeps" in pb.log()
    # A stopped pebble starts again, with a new root.
    old_root = pb.root.read_bytes()
    pb.stop()
    pb.start()
    assert pb.root.read_bytes() != old_root


def test_pebble_crash_fails_the_test(acme_base, pebble_tls):
    """A pebble that dies on its own is reported, not ignored."""
    from acmeutil import Pebble
    pb = Pebble(acme_base / "crash", pebble_tls, 1, 2)
    try:
        pb.start()
        pb.proc.kill()
        pb.proc.wait(5)
        pb.stop()
        assert pb.crashed and "pebble exited with -9" in pb.crashed[0]
    finally:
        pb.close()


# ---- helpers ------------------------------------------------------------

def https_get_name(p, name, path="/"):
    raw = (f"GET {path} HTTP/1.1\r\nHost: {name}\r\n"
           f"Connection: close\r\n\r\n").encode()
    with tls_connect(p.https_port, sni=name) as s:
        s.sendall(raw)
        return parse_response(read_all(s))


def acme_child(p):
    """The ACME process: the master's child started with
    PORTCULLIS_ACME=1."""
    found = []
    for pid in children_of(p.pid):
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"PORTCULLIS_ACME=1" in env:
            found.append(pid)
    return found


def check_cache(cache, name, s):
    """certs/NAME/ holds the certificate served (0644) and its key (0600),
    both the service user's; the account key is 0600 too."""
    nobody = nobody_uid()
    d = cache / "certs" / name
    key, chain = d / "key.pem", d / "fullchain.pem"
    for f, mode in ((key, 0o600), (chain, 0o644)):
        st = os.stat(f)
        assert stat.S_IMODE(st.st_mode) == mode, (f, oct(st.st_mode))
        assert st.st_uid == nobody, (f, st.st_uid)
    assert s.pem.strip() in chain.read_text()
    accounts = list(cache.glob("account-*/key.pem"))
    assert len(accounts) == 1, accounts
    assert re.fullmatch(r"account-[0-9a-f]{16}", accounts[0].parent.name)
    st = os.stat(accounts[0])
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == nobody
    assert (accounts[0].parent / "url").read_text().startswith("https://")
    # No temporary file left behind.
    leftovers = [f for f in cache.rglob("*") if f.is_file()
                 and f.name not in ("key.pem", "fullchain.pem", "url")]
    assert not leftovers, leftovers


def check_issue_lines(p, name, s):
    """One ACME line per event for name: ordered, challenge, validated,
    issued (with the not-after date)."""
    log = p.log()
    for word in ("ordered", "challenge", "validated", "issued"):
        assert acme_lines(log, word, name), f"no ACME {word} line for " \
            f"{name}:\n" + "\n".join(acme_lines(log))
    year = time.strftime("%Y", time.gmtime(s.not_after))
    assert any(year in line for line in acme_lines(log, "issued", name)), \
        acme_lines(log, "issued", name)


# ---- issuance ------------------------------------------------------------

def test_tls_alpn_01_two_names(acme):
    """Two names on one listener, tls-alpn-01 (no http-port at all): each
    gets a certificate of its own, with an ECDSA P-256 key of its own,
    chaining to pebble's root, served by SNI and used for requests."""
    p, pb, cache = acme.proxy(["a.test", "b.test"], http_port=False)
    p.start()
    certs = {}
    for name in ("a.test", "b.test"):
        certs[name] = wait_cert(p.https_port, name, pb, proxy=p)
        check_acme_cert(certs[name], name, pb)
        check_cache(cache, name, certs[name])
        wait_acme(p, "issued", name)
        check_issue_lines(p, name, certs[name])
    assert certs["a.test"].serial != certs["b.test"].serial
    assert leaf_key(certs["a.test"]) != leaf_key(certs["b.test"])
    assert pb.http01_validations() == []
    assert pb.new_orders() == 2
    for name in ("a.test", "b.test"):
        status, _, body, _ = https_get_name(p, name)
        assert status == 200 and f'"{name}"'.encode() in body, body
    # The ACME process: one, the service user's, without privilege.
    (pid,) = acme_child(p)
    st = proc_status(pid)
    assert st["Uid"].split() == [str(nobody_uid())] * 4
    assert int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0
    assert st["NoNewPrivs"] == "1"


def test_http_01(acme):
    """http-01: pebble fetches the token from the proxy's http-port; what
    is not a pending token there is answered as before (a redirect)."""
    p, pb, cache = acme.proxy(["a.test"], challenge="http-01")
    p.start()
    s = wait_cert(p.https_port, "a.test", pb, proxy=p)
    check_acme_cert(s, "a.test", pb)
    check_cache(cache, "a.test", s)
    wait_acme(p, "issued", "a.test")
    check_issue_lines(p, "a.test", s)
    urls = pb.http01_validations()
    assert urls and all(
        u.startswith(f"http://a.test:{p.http_port}/.well-known/"
                     "acme-challenge/") for u in urls), urls
    reply = http_get(p.http_port, raw=(
        b"GET /.well-known/acme-challenge/not-a-token HTTP/1.1\r\n"
        b"Host: a.test\r\nConnection: close\r\n\r\n"))
    assert status_of(reply) == 301, reply
    assert b"Location: https://a.test:" in reply, reply


def test_acme_domains_limits_what_is_ordered(acme):
    """acme-domains names what is ordered; a site not in it gets no
    certificate (its handshakes fail), the others are unaffected."""
    p, pb, _ = acme.proxy(["a.test", "b.test"],
                          **{"acme-domains": ("a.test",)})
    p.start()
    check_acme_cert(wait_cert(p.https_port, "a.test", pb, proxy=p),
                    "a.test", pb)
    time.sleep(1.0 * SLOWDOWN)
    assert pb.new_orders() == 1
    b = served(p.https_port, "b.test", pb)
    assert b is None or not b.verified
    assert not acme_lines(p.log(), "ordered", "b.test")


# ---- the cache -------------------------------------------------------------

def test_restart_reuses_the_cache(acme):
    """A restart serves the cached certificate at once and orders
    nothing."""
    p, pb, cache = acme.proxy(["a.test"])
    p.start()
    first = wait_cert(p.https_port, "a.test", pb, proxy=p)
    wait_acme(p, "issued", "a.test")
    orders = pb.new_orders()
    issued = pb.issued_serials()
    offset = len(p.log())
    restart(p)
    again = served(p.https_port, "a.test", pb)   # right after READY=1
    assert again is not None and again.verified, \
        again.out if again else p.all_logs()
    assert again.serial == first.serial
    # Time for the ACME process to look at the cache and (wrongly) order.
    time.sleep(2.0 * SLOWDOWN)
    assert (acme_child(p) and p.proc.poll() is None), p.all_logs()
    assert pb.new_orders() == orders
    assert pb.issued_serials() == issued
    assert not acme_lines(p.log()[offset:], "ordered"), p.log()[offset:]
    assert served(p.https_port, "a.test", pb).serial == first.serial
    e = status_cert(p, "a.test")
    assert to_epoch(e["not_after"]) == first.not_after


# ---- ctl renew and ctl status -------------------------------------------

def peer_serial(sock):
    der = sock.getpeercert(binary_form=True)
    out = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout",
                          "-serial"], input=der, capture_output=True,
                         check=True).stdout.decode()
    return int(out.strip().split("=")[1], 16)


def keepalive_get(sock, name):
    sock.sendall(f"GET / HTTP/1.1\r\nHost: {name}\r\n\r\n".encode())
    data = b""
    while True:
        chunk = sock.recv(65536)
        assert chunk, "connection closed"
        data += chunk
        r, _ = parse_one(data, eof=False)
        if r.complete:
            return r.status


def test_ctl_renew(acme):
    """ctl renew renews every name now and answers when done; ctl renew
    NAME only that one; the new certificates go live without a restart
    while an open connection keeps its own."""
    p, pb, _ = acme.proxy(["a.test", "b.test"])
    p.start()
    a1 = wait_cert(p.https_port, "a.test", pb, proxy=p)
    b1 = wait_cert(p.https_port, "b.test", pb, proxy=p)
    old = tls_connect(p.https_port, sni="a.test")
    try:
        assert keepalive_get(old, "a.test") == 200
        assert peer_serial(old) == a1.serial
        rc, reply, err = ctl(p, "renew")
        assert rc == 0 and reply["status"] == "ok", (rc, reply, err)
        a2 = wait_cert(p.https_port, "a.test", pb, other_than=a1.serial,
                       timeout=10 * SLOWDOWN)
        b2 = wait_cert(p.https_port, "b.test", pb, other_than=b1.serial,
                       timeout=10 * SLOWDOWN)
        check_acme_cert(a2, "a.test", pb)
        check_acme_cert(b2, "b.test", pb)
        assert acme_child(p), p.all_logs()
        # The connection made before still works, with its certificate.
        assert keepalive_get(old, "a.test") == 200
        assert peer_serial(old) == a1.serial
    finally:
        old.close()
    orders = pb.new_orders()
    rc, reply, err = ctl(p, "renew", "a.test")
    assert rc == 0 and reply["status"] == "ok", (rc, reply, err)
    a3 = wait_cert(p.https_port, "a.test", pb, other_than=a2.serial,
                   timeout=10 * SLOWDOWN)
    check_acme_cert(a3, "a.test", pb)
    assert served(p.https_port, "b.test", pb).serial == b2.serial
    assert pb.new_orders() == orders + 1
    e = status_cert(p, "a.test")
    assert to_epoch(e["not_after"]) == a3.not_after
    # A name no ACME listener has is an error.
    rc, reply, err = ctl(p, "renew", "nope.test")
    assert rc == 1 and reply and reply["status"] == "error", (reply, err)
    assert "nope.test" in reply["message"]


def test_renewal_when_due(acme):
    """No command: a certificate that lives 90 s is due when a third of
    its life is left (acme-renew-days not set), and the ACME process
    renews it by itself (not sooner than a minute after the last order);
    the status says when."""
    p, pb, _ = acme.proxy(["a.test"], start_pebble=False)
    pb.validity = 90
    pb.start()
    p.start()
    a1 = wait_cert(p.https_port, "a.test", pb, proxy=p)
    assert a1.not_after - a1.not_before <= 90, (a1.not_before, a1.not_after)
    wait_acme(p, "issued", "a.test")
    due = to_epoch(status_cert(p, "a.test")["next_renewal"])
    # A third of 90 s before the end, or a minute after the order if that
    # is later (a few seconds).
    assert due is not None and time.time() < due <= a1.not_after - 20, \
        (due, a1.not_after)
    assert pb.new_orders() == 1
    a2 = wait_cert(p.https_port, "a.test", pb, proxy=p, other_than=a1.serial,
                   timeout=90 * SLOWDOWN)
    check_acme_cert(a2, "a.test", pb)
    assert a2.not_after > a1.not_after
    assert pb.new_orders() == 2
    assert len(wait_acme(p, "issued", "a.test", count=2)) == 2
    assert not acme_lines(p.log(), "failed"), p.log()


def test_ctl_status_lists_certificates(acme, certs):
    """ctl status lists every certificate: name, source, not-after, next
    renewal, last error."""
    mcert, mkey = certs.get("manual.test")
    p, pb, _ = acme.proxy(["a.test"],
                          manual_sites=[("manual.test", mcert, mkey)])
    p.start()
    a = wait_cert(p.https_port, "a.test", pb, proxy=p)
    wait_acme(p, "issued", "a.test")
    e = status_cert(p, "a.test")
    assert to_epoch(e["not_after"]) == a.not_after
    nxt = to_epoch(e["next_renewal"])
    assert nxt is not None and time.time() < nxt < a.not_after, e
    assert e["last_error"] in ("", None), e
    m = status_cert(p, "manual.test", source="manual")
    want = served(p.https_port, "manual.test")
    assert to_epoch(m["not_after"]) == want.not_after, m
    assert to_epoch(m["next_renewal"]) is None, m
    assert set(status_certs(p)) >= {"a.test", "manual.test"}


# ---- nonces, the CA down, failures, EAB ----------------------------------

def test_many_bad_nonces(acme):
    """pebble rejecting 60% of good nonces: badNonce retries get the
    certificate all the same."""
    p, pb, _ = acme.proxy(["a.test", "b.test"],
                          pebble_env={"PEBBLE_WFE_NONCEREJECT": "60"})
    assert "reject 60% of good nonces" in pb.log()
    p.start()
    for name in ("a.test", "b.test"):
        check_acme_cert(wait_cert(p.https_port, name, pb, proxy=p), name,
                        pb)


def test_acme_server_down_at_start(acme, certs):
    """The CA unreachable at start: the proxy starts, serves the site with
    a certificate of its own, says why the other has none, retries, and
    gets its certificate once the CA is up."""
    mcert, mkey = certs.get("manual.test")
    p, pb, _ = acme.proxy(["a.test"], start_pebble=False,
                          manual_sites=[("manual.test", mcert, mkey)])
    pb.start_dns()
    p.start()
    m = served(p.https_port, "manual.test")
    assert m is not None and m.sans == ["manual.test"]
    status, _, _, _ = https_get_name(p, "manual.test")
    assert status == 200
    failed = wait_acme(p, "failed", timeout=20 * SLOWDOWN)
    wait_acme(p, "next attempt", timeout=5 * SLOWDOWN)
    a = served(p.https_port, "a.test")
    assert a is None, "a.test has a certificate before any CA answered"
    e = status_cert(p, "a.test")
    assert e["last_error"], e
    assert to_epoch(e["not_after"]) is None, e
    time.sleep(0.5)
    pb.start()
    s = wait_cert(p.https_port, "a.test", pb, proxy=p,
                  timeout=60 * SLOWDOWN)
    check_acme_cert(s, "a.test", pb)
    assert served(p.https_port, "manual.test").serial == m.serial
    assert status_cert(p, "a.test")["last_error"] in ("", None)
    assert failed


def test_failed_validation(acme):
    """A name whose validation fails: a clear ACME line with the CA's
    problem type, the other name unaffected, and the failing name's
    earlier certificate kept."""
    p, pb, _ = acme.proxy(["good.test", "bad.test"])
    # Nothing listens on 127.0.0.2: pebble's connection is refused.
    pb.add_a("bad.test", ["127.0.0.2"])
    p.start()
    check_acme_cert(wait_cert(p.https_port, "good.test", pb, proxy=p),
                    "good.test", pb)
    (line,) = wait_acme(p, "failed", "bad.test")[:1]
    # The CA's problem type and detail (pebble 2.4 says unauthorized,
    # "Failed to connect to 127.0.0.2:PORT for the tls-alpn-01 challenge").
    assert "problem=urn:ietf:params:acme:error:" in line, line
    assert "failed to connect" in line.lower(), line
    wait_acme(p, "next attempt", "bad.test", timeout=5 * SLOWDOWN)
    assert served(p.https_port, "bad.test") is None
    assert status_cert(p, "bad.test")["last_error"]
    assert status_cert(p, "good.test")["last_error"] in ("", None)
    # Fixed, it gets a certificate ...
    pb.clear_a("bad.test")
    rc, reply, err = ctl(p, "renew", "bad.test")
    assert rc == 0, (reply, err)
    first = wait_cert(p.https_port, "bad.test", pb, timeout=10 * SLOWDOWN)
    check_acme_cert(first, "bad.test", pb)
    # ... that it keeps serving when the next renewal fails.
    pb.add_a("bad.test", ["127.0.0.2"])
    offset = len(p.log())
    rc, reply, err = ctl(p, "renew", "bad.test")
    assert rc == 1 and reply["status"] == "error", (reply, err)
    assert "bad.test" in reply["message"]
    lines = wait_acme(p, "failed", "bad.test", start=offset)
    assert "problem=urn:ietf:params:acme:error:" in lines[0], lines
    assert "failed to connect" in lines[0].lower(), lines
    assert served(p.https_port, "bad.test", pb).serial == first.serial
    e = status_cert(p, "bad.test")
    assert e["last_error"] and to_epoch(e["not_after"]) == first.not_after
    assert served(p.https_port, "good.test", pb).verified


def test_eab(acme):
    """A CA that requires External Account Binding: with the keys the
    account is made and the certificate issued."""
    p, pb, _ = acme.proxy(["a.test"], eab=True, **{
        "acme-eab-kid": "kid-1", "acme-eab-hmac-key": EAB_KEYS["kid-1"]})
    p.start()
    check_acme_cert(wait_cert(p.https_port, "a.test", pb, proxy=p),
                    "a.test", pb)


def test_eab_required_but_not_given(acme):
    """Without acme-eab-*, such a CA says externalAccountRequired, and
    the log says so."""
    p, pb, _ = acme.proxy(["a.test"], eab=True)
    p.start()
    (line,) = wait_acme(p, "failed")[:1]
    assert "externalAccountRequired" in line, line
    assert served(p.https_port, "a.test") is None
    assert pb.new_orders() == 0


# ---- reload ----------------------------------------------------------------

def test_reload_adds_and_removes_a_domain(acme):
    """A reload adding a site orders its certificate and leaves the other
    alone; one removing it stops renewing it."""
    p, pb, _ = acme.proxy(["a.test"])
    p.start()
    a = wait_cert(p.https_port, "a.test", pb, proxy=p)
    assert pb.new_orders() == 1
    p.listener["site"].append(("b.test", {"upstream": acme.upstream.addr}))
    p.write_config()
    rc, reply = p.ctl("reload")
    assert rc == 0, reply
    b = wait_cert(p.https_port, "b.test", pb, proxy=p)
    check_acme_cert(b, "b.test", pb)
    assert served(p.https_port, "a.test", pb).serial == a.serial
    assert pb.new_orders() == 2
    # b.test gone: renewing everything orders a.test only.
    p.listener["site"].pop()
    p.write_config()
    rc, reply = p.ctl("reload")
    assert rc == 0, reply
    rc, reply, err = ctl(p, "renew")
    assert rc == 0, (reply, err)
    wait_cert(p.https_port, "a.test", pb, other_than=a.serial,
              timeout=10 * SLOWDOWN)
    assert pb.new_orders() == 3
    assert "b.test" not in status_certs(p)


# ---- --validate -------------------------------------------------------------

VALID = """\
user = "nobody"
listener {
  bind = "127.0.0.1"
  https-port = 8443
  http-port = 8080
  tls {
    mode = "acme"
    acme-directory = "https://127.0.0.1:14000/dir"
    acme-challenge = "tls-alpn-01"
    acme-cache-dir = "CACHE"
    acme-domains = { "a.test", "b.test" }
    acme-renew-days = 20
  }
  site "a.test" { upstream = "127.0.0.1:1" }
  site "b.test" { upstream = "127.0.0.1:1" }
}
"""
MODE_LINE = 7


def validate(tmp_path, text):
    """--validate on text (its cache directory one that exists, so that
    only what the test changes can be wrong)."""
    cache = tmp_path / "cache"
    cache.mkdir(exist_ok=True)
    text = text.replace('"CACHE"', f'"{cache}"')
    conf = tmp_path / "acme.conf"
    conf.write_text(text)
    r = subprocess.run([str(BINARY), "--validate", "-c", str(conf)],
                       capture_output=True, text=True, timeout=30)
    return conf, r


def with_line(line_no, new):
    lines = VALID.splitlines(keepends=True)
    lines[line_no - 1] = new + "\n"
    return "".join(lines)


@pytest.mark.parametrize("directory", [
    "https://127.0.0.1:14000/dir", "production", "staging"])
def test_validate_accepts_acme(tmp_path, directory):
    conf, r = validate(tmp_path, with_line(
        8, f'    acme-directory = "{directory}"'))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "configuration OK\n" and r.stderr == ""


def test_validate_accepts_http_01_and_eab(tmp_path):
    text = with_line(9, '    acme-challenge = "http-01"\n'
                        '    acme-eab-kid = "kid-1"\n'
                        f'    acme-eab-hmac-key = "{EAB_KEYS["kid-1"]}"\n'
                        '    acme-contact = "mailto:admin@a.test"\n'
                        '    acme-ca-file = "/etc/ssl/certs/ca-certificates'
                        '.crt"')
    conf, r = validate(tmp_path, text)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "configuration OK\n"


BAD = [
    ("wildcard", 11, '    acme-domains = { "a.test", "*.b.test" }',
     ("wildcard", "*.b.test")),
    ("http-url", 8, '    acme-directory = "http://127.0.0.1:14000/dir"',
     ("https",)),
    ("relative-cache", 10, '    acme-cache-dir = "var/acme"',
     ("absolute",)),
    ("eab-kid-only", 12, '    acme-eab-kid = "kid-1"', ("acme-eab",)),
    ("eab-key-only", 12, f'    acme-eab-hmac-key = "{EAB_KEYS["kid-1"]}"',
     ("acme-eab",)),
    ("http-01-no-port", 9, '    acme-challenge = "http-01"',
     ("http-port",)),
    ("bad-challenge", 9, '    acme-challenge = "dns-01"',
     ("acme-challenge",)),
]


@pytest.mark.parametrize("name,line_no,new,fragments", BAD,
                         ids=[b[0] for b in BAD])
def test_validate_rejects_bad_acme(tmp_path, name, line_no, new, fragments):
    """Each bad setting is reported as FILE:LINE: reason, at its own line
    (or, for settings that only make sense together, the line of
    mode)."""
    text = with_line(line_no, new)
    if name == "http-01-no-port":
        text = text.replace("  http-port = 8080\n", "  http-port = 0\n")
    conf, r = validate(tmp_path, text)
    assert r.returncode == 1, r.stdout
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert lines, "no error"
    for line in lines:
        assert re.match(rf"{re.escape(str(conf))}:\d+: \S", line), line
    ok_lines = {line_no, MODE_LINE}
    if name == "http-01-no-port":
        ok_lines.add(5)
    hits = [l for l in lines
            if int(l[len(str(conf)) + 1:].split(":")[0]) in ok_lines
            and any(f in l for f in fragments)]
    assert hits, f"no line {sorted(ok_lines)} saying {fragments}:\n" \
        f"{r.stderr}"
