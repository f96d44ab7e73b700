"""The command line: --version, --help, --validate and its messages."""

import re
import subprocess

from conftest import BINARY, render_config


def run(*args, **kw):
    return subprocess.run([str(BINARY), *args], capture_output=True,
                          text=True, timeout=30, **kw)


def test_version():
    r = run("--version")
    assert r.returncode == 0
    assert re.fullmatch(r"portcullis \d+\.\d+\.\d+\n", r.stdout)
    assert run("-V").stdout == r.stdout


def test_help_lists_every_option():
    r = run("--help")
    assert r.returncode == 0
    for opt in ("--config", "--validate", "--allow-wildcard-bind",
                "--version", "--help", "ctl"):
        assert opt in r.stdout
    assert run("-h").stdout == r.stdout


def test_unknown_option_is_an_error():
    r = run("--frobnicate")
    assert r.returncode == 1
    assert "usage:" in r.stderr


def test_stray_argument_is_an_error():
    r = run("extra")
    assert r.returncode == 1
    assert "usage:" in r.stderr


def test_validate_ok(make_proxy):
    p = make_proxy()
    r = run("--validate", "-c", str(p.conf_path))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "configuration OK\n"
    assert r.stderr == ""
    r = run("--config", str(p.conf_path), "--validate")
    assert r.returncode == 0


def test_validate_binds_nothing(make_proxy):
    """--validate must not bind, fork or create anything."""
    p = make_proxy()
    r = run("--validate", "-c", str(p.conf_path))
    assert r.returncode == 0
    assert not p.admin_path.exists()
    assert not p.log_path.exists()
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", p.https_port))   # still free


def test_missing_file(tmp_path):
    r = run("--validate", "-c", str(tmp_path / "nope.conf"))
    assert r.returncode == 1
    assert re.match(rf"{re.escape(str(tmp_path))}/nope\.conf:\d+: cannot "
                    r"read configuration: No such file or directory", r.stderr)


def expect_errors(path, *fragments):
    """--validate fails and reports each fragment as FILE:LINE: reason."""
    r = run("--validate", "-c", str(path))
    assert r.returncode == 1, r.stdout
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    for line in lines:
        assert re.match(rf"{re.escape(str(path))}:\d+: \S", line), line
    for line_no, fragment in fragments:
        want = f"{path}:{line_no}: "
        assert any(l.startswith(want) and fragment in l for l in lines), \
            f"no {want!r}...{fragment!r} in:\n{r.stderr}"
    return lines


def test_every_problem_is_reported_with_its_line(tmp_path, certs):
    cert, key = certs.get("localhost")
    other_cert, other_key = certs.get("other.test")
    conf = tmp_path / "bad.conf"
    conf.write_text(f"""\
user = "no-such-user-here"
workers = 300
health-check-port = 70000
listener {{
  bind = "0.0.0.0"
  https-port = 8443
  http-port = 8443
  tls {{ mode = "manual" cert = "{cert}" key = "{other_key}" }}
  site "Example.com" {{ upstream = "127.0.0.1" }}
  site "example.com." {{ upstream = "::1:80" }}
  site "bad_name" {{ upstream = "a..b:80" }}
  site "ok.test" {{
    upstream = "127.0.0.1:0"
    connect-timeout = 0
  }}
}}
listener {{
  bind = "localhost"
  tls {{ cert = "{tmp_path}/missing.pem" key = "{key}" }}
  site "x.test" {{ upstream = "127.0.0.1:80" upstream-scheme = "ftp" }}
}}
""")
    lines = expect_errors(
        conf,
        (1, 'user "no-such-user-here" does not exist'),
        (2, "'workers' must be between 0 and 256, not 300"),
        (3, "'health-check-port' must be between 0 and 65535, not 70000"),
        (5, 'bind "0.0.0.0" listens on every address'),
        (7, "http-port 0.0.0.0:8443 clashes with https-port 0.0.0.0:8443"),
        (8, "private key does not match the certificate"),
        (9, 'upstream "127.0.0.1" is not host:port'),
        (10, "IPv6 address goes in brackets"),
        (10, 'duplicate site "example.com" (first on line 9)'),
        (11, 'site "bad_name": not a valid DNS name'),
        (11, 'upstream "a..b:80" is not host:port'),
        (13, 'upstream "127.0.0.1:0" is not host:port'),
        (14, "'connect-timeout' must be between 1 and 3600, not 0"),
        (18, 'bind "localhost" is not an IPv4 or IPv6 address'),
        (19, "cannot read certificate"),
        (20, 'upstream-scheme must be "http"'),
    )
    # Sorted by line.
    nums = [int(l.split(":")[1]) for l in lines]
    assert nums == sorted(nums)


def test_unknown_option_and_bad_type(tmp_path):
    conf = tmp_path / "a.conf"
    conf.write_text('workers = 2\nbogus-option = 3\n')
    expect_errors(conf, (2, "no such option 'bogus-option'"))
    conf.write_text('user = "nobody"\n\nworkers = "many"\n')
    expect_errors(conf, (3, "invalid integer value for option 'workers'"))
    conf.write_text('allow-wildcard-bind = perhaps\n')
    expect_errors(conf, (1, "allow-wildcard-bind"))


def test_syntax_error_line(tmp_path):
    conf = tmp_path / "a.conf"
    conf.write_text('workers = 2\nlistener {\n  bind = "127.0.0.1"\n')
    r = run("--validate", "-c", str(conf))
    assert r.returncode == 1
    assert re.match(rf"{re.escape(str(conf))}:\d+: ", r.stderr)


def test_option_set_twice(tmp_path, certs):
    cert, key = certs.get("localhost")
    conf = tmp_path / "a.conf"
    conf.write_text(render_config({
        "user": "nobody",
        "listener": [(None, {
            "bind": "127.0.0.1", "https-port": 8443, "http-port": 0,
            "tls": {"cert": str(cert), "key": str(key)},
            "site": [("a.test", {"upstream": "127.0.0.1:1"})]})]})
        .replace('upstream = "127.0.0.1:1"',
                 'upstream = "127.0.0.1:1"\n    upstream = "127.0.0.1:2"'))
    expect_errors(conf, (12, "'upstream' set twice (first on line 11)"))


def test_no_listener(tmp_path):
    conf = tmp_path / "a.conf"
    conf.write_text('user = "nobody"\nworkers = 1\n')
    expect_errors(conf, (2, "at least one listener"))


def test_wildcard_bind_needs_permission(make_proxy):
    p = make_proxy(**{"health-check-port": 0})
    p.listener["bind"] = "::"
    p.write_config()
    r = run("--validate", "-c", str(p.conf_path))
    assert r.returncode == 1 and 'bind "::" listens on every address' in r.stderr
    r = run("--validate", "--allow-wildcard-bind", "-c", str(p.conf_path))
    assert r.returncode == 0, r.stderr
    p.settings["allow-wildcard-bind"] = True
    p.write_config()
    r = run("--validate", "-c", str(p.conf_path))
    assert r.returncode == 0, r.stderr


def test_two_listeners_same_address(make_proxy):
    p = make_proxy()
    second = dict(p.listener)
    second["http-port"] = 0
    p.settings["listener"].append((None, second))
    p.write_config()
    r = run("--validate", "-c", str(p.conf_path))
    assert r.returncode == 1
    assert "clashes with https-port 127.0.0.1:" in r.stderr


def test_health_port_clash(make_proxy):
    p = make_proxy()
    p.settings["health-check-port"] = p.https_port
    p.write_config()
    r = run("--validate", "-c", str(p.conf_path))
    assert r.returncode == 1
    assert "health-check-port 127.0.0.1:" in r.stderr


def test_nul_byte_in_config(tmp_path):
    conf = tmp_path / "a.conf"
    conf.write_bytes(b'workers = 1\nuser = "no\0body"\n')
    expect_errors(conf, (2, "NUL byte"))


def test_config_too_large(tmp_path):
    conf = tmp_path / "a.conf"
    conf.write_text("# x\n" * 300000)
    r = run("--validate", "-c", str(conf))
    assert r.returncode == 1
    assert "larger than" in r.stderr


def test_config_is_a_directory(tmp_path):
    r = run("--validate", "-c", str(tmp_path))
    assert r.returncode == 1
    assert "not a regular file" in r.stderr


def test_start_fails_cleanly_on_bad_config(tmp_path):
    conf = tmp_path / "a.conf"
    conf.write_text("workers = -1\n")
    r = run("-c", str(conf))
    assert r.returncode == 1
    assert f"{conf}:1: 'workers' must be between" in r.stderr


def test_start_fails_when_port_taken(make_proxy):
    import socket
    p = make_proxy()
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", p.https_port))
        s.listen()
        r = run("-c", str(p.conf_path))
    assert r.returncode == 1
    log = p.log() + r.stderr
    assert f"cannot listen on 127.0.0.1:{p.https_port}" in log
    assert "Address already in use" in log


def missing_user_config(base, certs):
    """A valid configuration everyone can read, for a user that does not
    exist; the user is on line 1."""
    import os
    import shutil
    os.chmod(base, 0o755)
    c0, k0 = certs.get("localhost")
    cert, key = base / "c.pem", base / "k.pem"
    shutil.copy(c0, cert)
    shutil.copy(k0, key)
    os.chmod(key, 0o644)
    conf = base / "a.conf"
    conf.write_text(render_config({
        "user": "no-such-user-here",
        "listener": [(None, {
            "bind": "127.0.0.1", "https-port": 8443, "http-port": 0,
            "tls": {"cert": str(cert), "key": str(key)},
            "site": [("a.test", {"upstream": "127.0.0.1:1"})]})]}))
    os.chmod(conf, 0o644)
    return conf


def test_missing_user_only_warns_when_not_root(certs):
    """Started by anyone but root, portcullis never switches user, so a
    user missing on this machine is said, as a warning, and --validate
    still succeeds."""
    import os
    import shutil
    import tempfile
    from pathlib import Path
    base = Path(tempfile.mkdtemp(prefix="portcullis-cli-"))
    try:
        conf = missing_user_config(base, certs)
        cmd = [str(BINARY), "--validate", "-c", str(conf)]
        if os.geteuid() == 0:
            cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup",
                   "--clear-groups", *cmd]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        assert r.stdout == "configuration OK\n"
        assert r.stderr == (
            f'{conf}:1: warning: user "no-such-user-here" does not exist: '
            "a start as root would fail (started as this user, portcullis "
            "keeps its uid and does not need it)\n")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_missing_user_is_an_error_as_root(tmp_path, certs):
    """As root the workers would run as that user: an error, as before."""
    import os
    import pytest
    if os.geteuid() != 0:
        pytest.skip("needs root: as anyone else it is only a warning")
    conf = missing_user_config(tmp_path, certs)
    r = run("--validate", "-c", str(conf))
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr == f'{conf}:1: user "no-such-user-here" does not exist\n'
