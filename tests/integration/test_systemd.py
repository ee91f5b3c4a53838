# SPDX-License-Identifier: MIT
"""spoolgate as a systemd service: the units, their installation, the notify
protocol and socket activation, with systemd's own tools where they run
without a service manager (there is none as PID 1 here)."""
import os
import re
import shutil
import signal
import smtplib
import socket
import subprocess
from pathlib import Path

import pytest

from conftest import BIN, wait_for

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(BIN).resolve().parent


@pytest.fixture(scope="module")
def units(tmp_path_factory):
    """The units as `cmake --install` writes them, ExecStart pointing at the
    binary under test, and the man pages their Documentation= names."""
    d = tmp_path_factory.mktemp("units")
    subprocess.run(["cmake", "-S", str(ROOT), "-B", str(d / "cfg"), "-G", "Ninja", "-DSPOOLGATE_TESTS=OFF",
                    f"-DCMAKE_INSTALL_SBINDIR={BUILD}"], check=True, capture_output=True)
    (d / "units").mkdir()
    shutil.copy(d / "cfg" / "systemd" / "spoolgate.service", d / "units")
    shutil.copy(ROOT / "systemd" / "spoolgate.socket", d / "units")
    for page, section in (("spoolgate.8", "man8"), ("spoolgate.yaml.5", "man5")):
        (d / "man" / section).mkdir(parents=True)
        shutil.copy(ROOT / "daemon" / "man" / page, d / "man" / section)
    return d


def test_units_pass_systemd_analyze_verify(units):
    r = subprocess.run(["systemd-analyze", "verify", str(units / "units" / "spoolgate.service"),
                        str(units / "units" / "spoolgate.socket")],
                       capture_output=True, text=True, env={**os.environ, "MANPATH": str(units / "man")})
    # verify exits 0 even on unknown keys; it must have nothing to say at all.
    assert (r.returncode, r.stdout + r.stderr) == (0, "")


def test_service_exposure_score(units):
    r = subprocess.run(["systemd-analyze", "security", "--offline=true", str(units / "units" / "spoolgate.service")],
                       capture_output=True, text=True)
    m = re.search(r"Overall exposure level for spoolgate.service: ([0-9.]+)", r.stdout + r.stderr)
    assert m, r.stdout + r.stderr
    print(f"\nsystemd-analyze security: exposure {m.group(1)}")
    assert float(m.group(1)) < 2.0


def test_cmake_install_puts_everything_in_its_place(tmp_path):
    dest = tmp_path / "root"
    install = ["cmake", "--install", str(BUILD), "--prefix", "/usr/local"]
    r = subprocess.run(install, env={**os.environ, "DESTDIR": str(dest)}, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    for f in ("usr/local/sbin/spoolgate", "usr/local/lib/systemd/system/spoolgate.service",
              "usr/local/lib/systemd/system/spoolgate.socket", "usr/local/lib/sysusers.d/spoolgate.conf",
              "usr/local/lib/tmpfiles.d/spoolgate.conf", "usr/local/share/man/man8/spoolgate.8",
              "usr/local/share/man/man5/spoolgate.yaml.5", "etc/spoolgate/spoolgate.yaml"):
        assert (dest / f).is_file(), f
    unit = (dest / "usr/local/lib/systemd/system/spoolgate.service").read_text()
    assert "ExecStart=/usr/local/sbin/spoolgate run --config /etc/spoolgate/spoolgate.yaml" in unit
    # A refused reload fails `systemctl reload` (the CLI waits for the answer);
    # no core file carries a secret.
    assert "ExecReload=/usr/local/sbin/spoolgate reload --config /etc/spoolgate/spoolgate.yaml" in unit
    assert "\nLimitCORE=0\n" in unit
    # The installed binary finds BoringSSL (the rpath survives installation).
    v = subprocess.run([str(dest / "usr/local/sbin/spoolgate"), "version"], capture_output=True, text=True)
    assert v.returncode == 0 and v.stdout.startswith("spoolgate "), v.stderr
    # The installed configuration is valid and spools where the unit expects.
    cfg = dest / "etc/spoolgate/spoolgate.yaml"
    c = subprocess.run([BIN, "check-config", "-c", str(cfg)], capture_output=True, text=True)
    assert c.returncode == 0, c.stderr
    assert "dir: \"/var/lib/spoolgate\"" in c.stdout
    assert "StateDirectory=spoolgate" in unit and "User=spoolgate" in unit
    assert (dest / "usr/local/lib/sysusers.d/spoolgate.conf").read_text().count("u spoolgate ") == 1
    # An operator's edited configuration survives a reinstall.
    cfg.write_text(cfg.read_text() + "# edited\n")
    subprocess.run(install, env={**os.environ, "DESTDIR": str(dest)}, check=True, capture_output=True)
    assert cfg.read_text().endswith("# edited\n")


def test_notify_ready_status_watchdog_reloading_stopping(daemon_factory, workdir):
    path = str(workdir / "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(10)
    d = daemon_factory(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"})
    got = []
    while sum(1 for m in got if m == "WATCHDOG=1") < 3:
        got.append(s.recv(4096).decode())
    assert got[0] == "READY=1"
    assert any(m.startswith("STATUS=queue 0 message(s)") for m in got)
    assert "store-only" in next(m for m in got if m.startswith("STATUS="))
    # SIGHUP: RELOADING=1, then READY=1 once the new configuration is in force.
    os.kill(d.pid, signal.SIGHUP)
    after = []
    while "READY=1" not in after:
        after.append(s.recv(4096).decode())
    assert "RELOADING=1" in after and after.index("RELOADING=1") < after.index("READY=1"), after
    assert "event=reloaded" in d.log()
    os.kill(d.pid, signal.SIGTERM)
    while True:
        m = s.recv(4096).decode()
        if m == "STOPPING=1":
            break
    assert d.proc.wait(timeout=60) == 0


# Puts the socket at fd 3 and sets LISTEN_PID/LISTEN_FDS as systemd does.
ACTIVATE = ("import os, sys; fd = int(os.environ.pop('SG_FD')); os.dup2(fd, 3); os.close(fd); "
            "os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS='1', LISTEN_FDNAMES='smtp'); "
            "os.execv(sys.argv[1], sys.argv[1:])")


def activated(daemon_factory, sock, settings=None, expect_ready=True):
    d = daemon_factory(settings, start=False)
    d.prefix = ["/usr/bin/python3", "-c", ACTIVATE]
    d.env = {"SG_FD": str(sock.fileno())}
    d.pass_fds = (sock.fileno(),)
    return d.start(expect_ready=expect_ready)


def test_socket_activation_serves_the_inherited_socket(daemon_factory):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    d = activated(daemon_factory, sock)
    sock.close()  # the daemon holds its own copy
    assert "event=socket_activation sockets=1" in d.log()
    # The inherited socket replaces `listen` (127.0.0.1:0 in the test config).
    assert d.addresses == [f"127.0.0.1:{port}"]
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        s.sendmail("dev@lan", ["ops@example.com"], b"Subject: activated\r\n\r\nhi\r\n")
    assert len(d.queue()) == 1
    # A reload keeps the inherited socket.
    os.kill(d.pid, signal.SIGHUP)
    wait_for(lambda: "event=reloaded" in d.log(), what="reload")
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
        assert s.noop()[0] == 250
    d.stop()
    # The environment is not passed on, and the socket closes with the daemon.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)


def test_inherited_non_loopback_socket_needs_allow_networks(daemon_factory):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("0.0.0.0", 0))
    sock.listen(16)
    d = activated(daemon_factory, sock, expect_ready=False)
    assert d.proc.wait(timeout=30) == 1
    assert "non-loopback address; set allow_networks explicitly" in d.log()
    sock.close()


def test_systemd_socket_activate_starts_the_daemon_on_first_connection(daemon_factory, workdir):
    path = workdir / "smtp.sock"
    d = daemon_factory(start=False)
    d.prefix = ["systemd-socket-activate", "-l", str(path)]
    d.start(expect_ready=False)
    wait_for(lambda: path.exists(), what="socket bound by systemd-socket-activate")
    # The first connection starts the daemon, which answers on that socket.
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(30)
    c.connect(str(path))
    assert c.recv(512).startswith(b"220 relay.test ESMTP")
    c.sendall(b"QUIT\r\n")
    assert c.recv(512).startswith(b"221")
    c.close()
    wait_for(lambda: "event=ready" in d.log(), what="ready")
    assert "event=socket_activation sockets=1" in d.log()
    assert f"listen=unix:{path}" in d.log()
