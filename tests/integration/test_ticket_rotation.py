"""Session-ticket key rotation (issue 19): the master makes a new ticket key
every session-ticket-rotation seconds and on "rotate-ticket-keys", keeps
the one before for decryption only, and drops the one before that.

A session is saved and reused across processes with openssl s_client
(-sess_out / -sess_in), which says "Reused" or "New": a ticket of the
current or the previous key resumes (TLS 1.2 ticket and TLS 1.3 PSK), one
two rotations old does not (a full handshake, the request still served).
Rotation is a generation of its own and drops no request; a reload keeps
the keys; the timer rotates; the option is validated.  A TLS 1.3 session
resumed with a ticket of the previous key gets its new ticket under that
key (GnuTLS has one key a session), which ends with it."""

import re
import subprocess
import threading
import time

import pytest

from conftest import BINARY, https_get, start_proxy
from proxyutil_ops import get_request, s_client

VERSIONS = ["-tls1_2", "-tls1_3"]


@pytest.fixture
def rproxy(make_proxy, upstream):
    return start_proxy(make_proxy, upstream, workers=2)


def connect(p, version, sess_in=None, sess_out=None):
    """One connection and one request: "New" or "Reused"."""
    args = [version, "-ign_eof"]
    if sess_in is not None:
        args += ["-sess_in", str(sess_in)]
    if sess_out is not None:
        args += ["-sess_out", str(sess_out)]
    rc, out = s_client(p.https_port, *args, stdin=get_request())
    assert "HTTP/1.1 200 OK" in out, out[-3000:]
    m = re.search(r"^(New|Reused), TLSv1\.[23]", out, re.M)
    assert m, out[-3000:]
    return m.group(1)


def new_session(p, version, path):
    assert connect(p, version, sess_out=path) == "New"
    assert path.exists() and path.stat().st_size > 0
    return path


def rotate(p, want):
    rc, reply = p.ctl("rotate-ticket-keys")
    assert rc == 0, reply
    assert reply["status"] == "ok" and reply["rotations"] == want, reply
    assert reply["ticket_keys"] == 2
    return reply


@pytest.mark.parametrize("version", VERSIONS)
def test_previous_key_resumes_older_does_not(rproxy, tmp_path, version):
    p = rproxy
    t0 = new_session(p, version, tmp_path / "t0.pem")
    assert connect(p, version, sess_in=t0) == "Reused"

    gen = p.ctl("status")[1]["generation"]
    reply = rotate(p, 1)
    assert reply["generation"] == gen + 1
    # Made under the key before: still resumes, on either worker.
    for _ in range(3):
        assert connect(p, version, sess_in=t0) == "Reused"
    # Made after the rotation: under the new key.
    t1 = new_session(p, version, tmp_path / "t1.pem")
    assert connect(p, version, sess_in=t1) == "Reused"

    rotate(p, 2)
    # t1's key is now the previous one: it resumes; t0's is gone.
    assert connect(p, version, sess_in=t1) == "Reused"
    assert connect(p, version, sess_in=t0) == "New"
    rotate(p, 3)
    assert connect(p, version, sess_in=t1) == "New"


def test_control_without_rotation(rproxy, tmp_path):
    """The control of the test above: with no rotation, an old ticket goes
    on resuming however often it is used (so "New" above is the
    rotation's doing)."""
    p = rproxy
    t0 = new_session(p, "-tls1_3", tmp_path / "t0.pem")
    for _ in range(4):
        assert connect(p, "-tls1_3", sess_in=t0) == "Reused"
    p.ctl("reload")
    assert connect(p, "-tls1_3", sess_in=t0) == "Reused"


@pytest.mark.parametrize("version", VERSIONS)
def test_reload_keeps_both_keys(rproxy, tmp_path, version):
    p = rproxy
    t0 = new_session(p, version, tmp_path / "t0.pem")
    rotate(p, 1)
    t1 = new_session(p, version, tmp_path / "t1.pem")
    rc, reply = p.ctl("reload")
    assert rc == 0, reply
    assert connect(p, version, sess_in=t0) == "Reused"
    assert connect(p, version, sess_in=t1) == "Reused"
    # The reload rotated nothing: the next rotation is the second.
    rotate(p, 2)


def test_admin_command_answers_json(rproxy):
    p = rproxy
    raw = p.admin_raw(b"rotate-ticket-keys\n").decode()
    assert re.fullmatch(r'\{"status":"ok","rotations":1,"generation":\d+,'
                        r'"ticket_keys":2\}\n', raw), raw
    raw = p.admin_raw(b"rotate-ticket-keys now\n").decode()
    assert raw.startswith('{"status":"error","message":"unknown command'), \
        raw
    assert "rotate-ticket-keys" in raw
    rc, reply = p.ctl("rotate-ticket-keys")
    assert rc == 0 and reply["rotations"] == 2
    p.wait_log(r"session-ticket keys rotated \(rotation 2, generation \d+\)")
    r = subprocess.run([str(BINARY), "ctl", "--socket", str(p.admin_path),
                        "rotate-ticket-key"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 1 and "rotate-ticket-keys" in r.stderr


def test_rotation_under_load_drops_nothing(rproxy):
    p = rproxy
    stop = threading.Event()
    results = []

    def load():
        while not stop.is_set():
            try:
                status = https_get(p.https_port, "/")[0]
            except Exception as e:      # noqa: BLE001 - any failure counts
                status = repr(e)
            results.append(status)

    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for i in range(1, 6):
            rotate(p, i)
            time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert len(results) > 20, results
    bad = [r for r in results if r != 200]
    assert not bad, bad[:10]
    assert not re.search(r"worker \d+ \(pid \d+\) (exited|killed)", p.log())


def test_timer_rotates(make_proxy, upstream, tmp_path):
    p = start_proxy(make_proxy, upstream, workers=1,
                    **{"session-ticket-rotation": 2})
    t0 = new_session(p, "-tls1_3", tmp_path / "t0.pem")
    done = len(re.findall(r"session-ticket keys rotated", p.log()))
    assert done <= 1
    # Two rotations after the ticket was made, by the timer alone.
    p.wait_log(r"session-ticket keys rotated \(rotation \d+,",
               timeout=15, count=done + 2)
    assert connect(p, "-tls1_3", sess_in=t0) == "New"


@pytest.mark.parametrize("value,why", [
    ("0", "'session-ticket-rotation' must be between 1 and 86400, not 0"),
    ("86401", "'session-ticket-rotation' must be between 1 and 86400"),
    ("\"daily\"", "session-ticket-rotation"),
])
def test_option_validated(make_proxy, value, why):
    p = make_proxy()
    text = p.conf_path.read_text()
    text = text.replace('workers = 2\n',
                        f'workers = 2\nsession-ticket-rotation = {value}\n')
    p.conf_path.write_text(text)
    line = text.splitlines().index(f"session-ticket-rotation = {value}") + 1
    r = subprocess.run([str(BINARY), "--validate", "-c", str(p.conf_path)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert re.search(rf"^{re.escape(str(p.conf_path))}:{line}: "
                     rf".*{re.escape(why)}", r.stderr, re.M), r.stderr


def test_resumed_on_previous_key_ends_with_it(rproxy, tmp_path):
    """A TLS 1.3 session resumed with a ticket of the previous key leaves
    with a new ticket of that key (GnuTLS has one key a session): it dies
    with that key at the next rotation, as the one it came with does.
    (TLS 1.2 sends no new ticket on resumption.)"""
    p = rproxy
    version = "-tls1_3"
    t0 = new_session(p, version, tmp_path / "t0.pem")
    rotate(p, 1)
    again = tmp_path / "again.pem"
    assert connect(p, version, sess_in=t0, sess_out=again) == "Reused"
    assert connect(p, version, sess_in=again) == "Reused"
    rotate(p, 2)
    assert connect(p, version, sess_in=again) == "New"
