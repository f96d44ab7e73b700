"""Private keys never in a worker (issue 19): the signer.

Every private key is held by one process, the signer; workers terminate
TLS with keys they do not have and ask the signer for each handshake's
signature.  These tests attack that claim the way a memory disclosure
would: they read every worker's whole memory (/proc/PID/maps and
/proc/PID/mem, as root) and look for any site's private key, as PEM text,
as DER and as its raw secret numbers (an ECDSA or EdDSA scalar, an RSA
private exponent and prime), in the byte order of the key file and in
the reversed order a bignum library keeps them in; and the same search
over the signer's memory must find them (else the search proves
nothing).  Handshakes work for every site with RSA, ECDSA and Ed25519
keys, TLS 1.2 and 1.3 (RSA-PSS and PKCS#1 v1.5 signatures both); a reload
that changes a key serves the new one and leaves no key in the workers;
a signer killed with SIGKILL is respawned and handshakes recover."""

import base64
import os
import re
import signal
import subprocess

import pytest

from conftest import argv0_of, start_proxy, wait_until
from proxyutil_ops import get_request, rsa_cert, s_client, s_client_cipher


def _openssl(*args):
    return subprocess.run(["openssl", *map(str, args)], check=True,
                          capture_output=True).stdout


def ed25519_cert(directory, name):
    d = directory
    d.mkdir(parents=True, exist_ok=True)
    cert, key = d / f"{name}.ed.crt", d / f"{name}.ed.key"
    _openssl("req", "-x509", "-newkey", "ed25519", "-nodes", "-keyout", key,
             "-out", cert, "-days", "30", "-subj", f"/CN={name}",
             "-addext", f"subjectAltName=DNS:{name}")
    os.chmod(key, 0o600)
    return cert, key


def key_secrets(key_path):
    """Byte strings that only a holder of the key has: its secret numbers
    (an EC or EdDSA scalar, an RSA private exponent and first prime; the
    last 24 bytes of each, as written and reversed: GMP keeps limbs
    little-endian) and, for the first, 16 characters of the key file's
    base64 text that encode nothing but it (a whole line would not do:
    an RSA key's first lines are its modulus, which the certificate has
    too, at the same offset modulo 3)."""
    pem = key_path.read_text()
    body = [l for l in pem.splitlines() if l and not l.startswith("-----")]
    b64 = "".join(body)
    der = base64.b64decode(b64)
    text = _openssl("pkey", "-in", key_path, "-noout", "-text").decode()
    numbers = []
    for label in ("priv", "privateExponent", "prime1"):
        m = re.search(rf"^{label}:\s*\n((?:\s+[0-9a-f:]+\n)+)", text, re.M)
        if m:
            numbers.append(bytes.fromhex(re.sub(r"[\s:]", "", m.group(1)))
                           .lstrip(b"\0"))
    assert numbers, text
    found = {}
    off = der.find(numbers[0])
    assert off > 0, (key_path, text)
    first, last = -(-off // 3), (off + len(numbers[0])) // 3
    for c in range(4 * first, 4 * last - 16 + 1):
        if c // 64 == (c + 15) // 64:    # within one line of the file
            found["pem"] = b64[c:c + 16].encode()
            break
    assert "pem" in found, key_path
    for i, n in enumerate(numbers):
        found[f"number{i}"] = n[-24:]
        found[f"number{i}-reversed"] = n[-24:][::-1]
    return found


# Mappings larger than this are not read: the sanitizers' shadow memory
# and allocator reservations (terabytes, nearly all never touched).  A
# worker's own heap and stacks are far smaller.
MAPPING_MAX = 1 << 30


def memory_has(pid, needles):
    """Which of needles (name -> bytes) are anywhere in pid's readable
    memory.  The shared state part is left out: only workers write it
    (counters), and reading its untouched 64 MiB would fill it in."""
    hits = set()
    longest = max(len(n) for n in needles.values())
    with open(f"/proc/{pid}/maps") as maps, \
            open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            name = fields[5] if len(fields) > 5 else ""
            if "r" not in fields[1] or "portcullis-state" in name or \
                    name in ("[vvar]", "[vsyscall]") or \
                    hi - lo > MAPPING_MAX:
                continue
            tail = b""
            off = lo
            while off < hi:
                n = min(hi - off, 8 << 20)
                try:
                    mem.seek(off)
                    chunk = mem.read(n)
                except (OSError, ValueError):
                    break
                data = tail + chunk
                for k, v in needles.items():
                    if k not in hits and v in data:
                        hits.add(k)
                tail = data[-longest:]
                off += n
    return hits


def assert_keys_only_in_signer(p, keys):
    """No key of keys (paths) in any worker; every one in the signer."""
    needles = {}
    for path in keys:
        for what, v in key_secrets(path).items():
            needles[f"{path.name}:{what}"] = v
    workers = p.workers()
    assert workers
    for w in workers:
        hits = memory_has(w, needles)
        assert not hits, \
            f"{argv0_of(w)} {w} holds key material: {sorted(hits)}"
    signer = p.signer()
    assert signer is not None
    hits = memory_has(signer, needles)
    # The proof that the search finds keys: each key's secret numbers are
    # in the signer in one byte order or the other.
    for path in keys:
        assert any(h.startswith(f"{path.name}:number") for h in hits), \
            (path, sorted(hits))


@pytest.fixture
def keyed(make_proxy, upstream, tmp_path):
    """Three sites: the listener's ECDSA P-256 certificate (localhost),
    an RSA-2048 site and an Ed25519 site, two workers."""
    rsa = rsa_cert(tmp_path / "rsa", "rsa.example.test")
    ed = ed25519_cert(tmp_path / "ed", "ed.example.test")

    def configure(p):
        p.listener["site"].append(("rsa.example.test", {
            "upstream": upstream.addr, "cert": str(rsa[0]),
            "key": str(rsa[1])}))
        p.listener["site"].append(("ed.example.test", {
            "upstream": upstream.addr, "cert": str(ed[0]),
            "key": str(ed[1])}))
    p = start_proxy(make_proxy, upstream, workers=2, configure=configure)
    p.keys = {"ecdsa": p.listener["tls"]["key"], "rsa": rsa[1],
              "ed25519": ed[1]}
    from pathlib import Path
    p.keys = {k: Path(v) for k, v in p.keys.items()}
    return p


SNI = {"ecdsa": "localhost", "rsa": "rsa.example.test",
       "ed25519": "ed.example.test"}


def handshake(p, kind, version, *extra):
    rc, out = s_client(p.https_port, version, "-ign_eof", *extra,
                       stdin=get_request(SNI[kind]), sni=SNI[kind])
    return out


def assert_served(out, kind):
    assert "HTTP/1.1 200 OK" in out, out[-3000:]
    # The certificate's key type (s_client checked the handshake's
    # signature with it: a 200 means the signer signed right).
    key_line = {"ecdsa": "a:PKEY: id-ecPublicKey, 256 (bit)",
                "rsa": "a:PKEY: rsaEncryption, 2048 (bit)",
                "ed25519": "a:PKEY: ED25519"}[kind]
    assert key_line in out, out[-3000:]


def test_worker_memory_has_no_key(keyed):
    # Handshakes first: a worker that ever held a key would have it now.
    for kind in SNI:
        for version in ("-tls1_2", "-tls1_3"):
            assert_served(handshake(keyed, kind, version), kind)
    assert_keys_only_in_signer(keyed, keyed.keys.values())


@pytest.mark.parametrize("kind", ["ecdsa", "rsa", "ed25519"])
@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_handshakes_every_key_and_version(keyed, kind, version):
    out = handshake(keyed, kind, version)
    assert s_client_cipher(out)[0] == {"-tls1_2": "TLSv1.2",
                                       "-tls1_3": "TLSv1.3"}[version], out
    assert_served(out, kind)
    if kind == "rsa":
        # RSA keys sign with RSA-PSS (TLS 1.3 allows nothing else).
        assert re.search(r"^Peer signature type: RSA-PSS", out, re.M), out


@pytest.mark.parametrize("sigalgs,kind,want", [
    ("RSA+SHA256", "rsa", "RSA"),          # PKCS#1 v1.5: a DigestInfo
    ("RSA+SHA512", "rsa", "RSA"),
    ("RSA-PSS+SHA384", "rsa", "RSA-PSS"),
    ("ECDSA+SHA384", "ecdsa", "ECDSA"),
])
def test_tls12_signature_algorithms(keyed, sigalgs, kind, want):
    """TLS 1.2 lets a client ask for each kind of signature: every one
    the key can make is made by the signer."""
    out = handshake(keyed, kind, "-tls1_2", "-sigalgs", sigalgs)
    assert_served(out, kind)
    assert re.search(rf"^Peer signature type: {want}$", out, re.M), out


def test_reload_changes_a_key(keyed, tmp_path):
    old_der = _openssl("x509", "-in", keyed.listener["site"][-2][1]["cert"],
                       "-outform", "DER")
    new = rsa_cert(tmp_path / "rsa2", "rsa.example.test")
    keyed.listener["site"][-2][1].update(cert=str(new[0]), key=str(new[1]))
    keyed.write_config()
    rc, reply = keyed.ctl("reload")
    assert rc == 0, reply
    out = handshake(keyed, "rsa", "-tls1_3", "-showcerts")
    assert_served(out, "rsa")
    served = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END "
                       r"CERTIFICATE-----", out, re.S).group(0)
    new_pem = new[0].read_text()
    assert served.split("\n")[1] in new_pem, out
    assert base64.b64encode(old_der)[:60].decode() not in out
    assert_keys_only_in_signer(keyed, [new[1], keyed.keys["ecdsa"]])
    # The old key is gone from the workers as well.
    needles = {k: v for k, v in key_secrets(keyed.keys["rsa"]).items()}
    for w in keyed.workers():
        assert not memory_has(w, needles)


def test_signer_killed_is_respawned(keyed):
    old = keyed.signer()
    assert old is not None
    os.kill(old, signal.SIGKILL)
    keyed.wait_log(rf"the signer \(pid {old}\) killed by signal 9")
    new = wait_until(lambda: (s := keyed.signer()) not in (None, old) and s,
                     15, what="a new signer")
    assert new != old

    def serves():
        out = handshake(keyed, "rsa", "-tls1_3")
        return "HTTP/1.1 200 OK" in out
    wait_until(serves, 15, interval=0.2, what="handshakes again")
    for kind in SNI:
        assert_served(handshake(keyed, kind, "-tls1_3"), kind)
    # The workers kept running: their channels outlived the signer.
    assert len(keyed.workers()) == 2


def test_handshake_fails_while_signer_stopped(keyed):
    """No signer, no handshake (the connection fails, not the worker);
    the same workers serve again once it runs."""
    s = keyed.signer()
    workers = keyed.workers()
    os.kill(s, signal.SIGSTOP)
    try:
        out = handshake(keyed, "ecdsa", "-tls1_3")
        assert "HTTP/1.1 200 OK" not in out, out
    finally:
        os.kill(s, signal.SIGCONT)
    wait_until(lambda: "HTTP/1.1 200 OK" in handshake(keyed, "ecdsa",
                                                      "-tls1_3"),
               10, interval=0.2, what="handshakes again")
    assert keyed.workers() == workers
