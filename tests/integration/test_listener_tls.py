# SPDX-License-Identifier: MIT
"""TLS on the listener (issue 15): STARTTLS and implicit TLS with real
clients (Python's smtplib and ssl, swaks, openssl s_client), the STARTTLS
injection, old TLS versions only where a listener allows them, the
certificate checked at load and replaced by a reload while a session is
open."""
import re
import shutil
import smtplib
import socket
import ssl
import subprocess
import urllib.request
from pathlib import Path

import pytest

from conftest import BIN, Client, PASSWORD, USER, daemon_upstream_settings, free_port, upstream_config, wait_for


def tls_listen(pki, tls="starttls", leaf="relay", **extra):
    cert, key = pki.leaf(leaf)
    return {"address": "127.0.0.1:0", "tls": tls, "cert_file": cert, "key_file": key, **extra}


def relay(daemon_factory, sink_factory, pki, workdir, listen, **extra):
    sink = sink_factory(user=USER, password=PASSWORD)
    settings = daemon_upstream_settings([upstream_config(sink, pki, workdir)], **extra)
    settings["listen"] = listen
    return daemon_factory(settings), sink


def trusting(pki):
    ctx = ssl.create_default_context(cafile=pki.ca_file)
    return ctx


MESSAGE = b"From: scanner@lan\r\nTo: ops@example.com\r\nSubject: scan\r\n\r\nthe scan\r\n"


def test_starttls_with_smtplib_forgets_the_session_before_it_and_stamps_received(daemon_factory, sink_factory, pki,
                                                                                  workdir):
    d, sink = relay(daemon_factory, sink_factory, pki, workdir, [tls_listen(pki)])
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
        code, caps = s.ehlo("scanner")
        assert code == 250 and "STARTTLS" in caps.decode()
        code, _ = s.starttls(context=trusting(pki))
        assert code == 220
        code, caps = s.ehlo("scanner")
        assert "STARTTLS" not in caps.decode(), "offered again under TLS"
        assert s.sock.version() in ("TLSv1.3", "TLSv1.2")
        s.sendmail("scanner@lan", ["ops@example.com"], MESSAGE)
    [m] = sink.wait_messages(1)
    received = m["content"].split(b"\r\n\r\n")[0].decode()
    assert re.search(r"\(using TLSv1\.[23] \S+\)", received), received
    assert "with ESMTPS id" in received, received
    assert re.search(r"event=tls session=\S+ client=127\.0\.0\.1 version=TLSv1\.[23] cipher=\S+ mode=starttls",
                     d.log()), d.log()


def test_implicit_tls_with_smtplib_and_the_greeting_after_the_handshake(daemon_factory, sink_factory, pki, workdir):
    d, sink = relay(daemon_factory, sink_factory, pki, workdir, [tls_listen(pki, tls="implicit")])
    with smtplib.SMTP_SSL("127.0.0.1", d.port, timeout=30, context=trusting(pki)) as s:
        code, caps = s.ehlo("scanner")
        assert code == 250 and "STARTTLS" not in caps.decode()
        s.sendmail("scanner@lan", ["ops@example.com"], MESSAGE)
    sink.wait_messages(1)
    assert "mode=implicit" in d.log()
    # Plaintext on the TLS port: the handshake fails, logged with why, and
    # the connection closes without a word of SMTP.
    c = socket.create_connection(("127.0.0.1", d.port), timeout=10)
    c.sendall(b"EHLO scanner\r\n")
    try:
        answer = c.recv(100)
    except ConnectionResetError:
        answer = b""
    assert answer == b"" or answer[0] == 0x15, answer  # nothing, or a TLS alert record
    c.close()
    wait_for(lambda: "event=tls_failed" in d.log(), what="the failed handshake logged")


def test_swaks_starttls_and_tls_on_connect(daemon_factory, sink_factory, pki, workdir):
    d, sink = relay(daemon_factory, sink_factory, pki, workdir,
                    [tls_listen(pki), tls_listen(pki, tls="implicit", leaf="relay2")])
    ports = [int(a.rsplit(":", 1)[1]) for a in d.addresses]
    for port, flag in ((ports[0], "--tls"), (ports[1], "--tls-on-connect")):
        r = subprocess.run(["swaks", "--server", f"127.0.0.1:{port}", flag, "--from", "ups@lan", "--to",
                            "ops@example.com", "--timeout", "20"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "queued as" in r.stdout
    sink.wait_messages(2)


def test_commands_pipelined_behind_starttls_are_discarded(daemon_factory, sink_factory, pki, workdir):
    d, sink = relay(daemon_factory, sink_factory, pki, workdir, [tls_listen(pki)])
    c = d.connect()
    assert c.code() == 220
    assert "250-STARTTLS" in c.cmd("EHLO scanner")
    # A man in the middle appends commands to the client's STARTTLS.
    injected = b"MAIL FROM:<evil@x>\r\nRCPT TO:<victim@example.com>\r\n"
    c.send(b"STARTTLS\r\n" + injected)
    assert c.reply() == ["220 2.0.0 Ready to start TLS"]
    assert c.buf == b""
    t = Client(trusting(pki).wrap_socket(c.sock, server_hostname="localhost"))
    assert t.cmd("MAIL FROM:<scanner@lan>")[0].startswith("503 5.5.1"), "the EHLO before TLS was not forgotten"
    assert "250-STARTTLS" not in t.cmd("EHLO scanner")
    assert t.cmd("MAIL FROM:<scanner@lan>")[0].startswith("250"), "an injected MAIL ran (this would be a nested MAIL)"
    t.cmd("QUIT")
    wait_for(lambda: "event=starttls_pipelined" in d.log(), what="the injection logged")
    assert re.search(r"event=starttls_pipelined session=\S+ client=\S+ bytes=%d " % len(injected), d.log()), d.log()


def s_client(port, *args, starttls=True, stdin=b"EHLO legacy\r\nQUIT\r\n"):
    cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-ign_eof", *args]
    if starttls:
        cmd += ["-starttls", "smtp"]
    return subprocess.run(cmd, input=stdin, capture_output=True, timeout=60)


@pytest.mark.skipif(not shutil.which("openssl"), reason="openssl is installed by scripts/bootstrap")
def test_old_tls_only_on_the_listener_that_allows_it(daemon_factory, sink_factory, pki, workdir):
    legacy = tls_listen(pki, leaf="legacy", tls_min_version="1.0", allow_networks=["127.0.0.0/8"])
    mport = free_port()
    d, _ = relay(daemon_factory, sink_factory, pki, workdir, [tls_listen(pki), legacy],
                 metrics={"listen": f"127.0.0.1:{mport}"})
    modern, old = [int(a.rsplit(":", 1)[1]) for a in d.addresses]
    weak = ["-cipher", "DEFAULT:@SECLEVEL=0"]
    for version, name in (("-tls1", "TLSv1"), ("-tls1_1", "TLSv1.1")):
        r = s_client(modern, version, *weak)
        assert b"250 " not in r.stdout, f"{name} accepted on a modern listener"
        r = s_client(old, version, *weak)
        assert b"250 SMTPUTF8" in r.stdout, r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
        wait_for(lambda: f"version={name} " in d.log(), what=f"{name} logged")
        # The modern listener's refusal says what the device offered.
        assert re.search(r"event=tls_failed session=\S+ client=127\.0\.0\.1 offered=%s reason=.*UNSUPPORTED_PROTOCOL"
                         % re.escape(name), d.log()), d.log()
    r = s_client(modern, "-tls1_2")
    assert b"250 SMTPUTF8" in r.stdout
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=10).read().decode()
    for name in ("TLSv1", "TLSv1.1", "TLSv1.2"):
        assert f'spoolgate_inbound_tls_sessions_total{{version="{name}"}} 1' in metrics, metrics
    assert re.search(r"^spoolgate_inbound_tls_failures_total [2-9]", metrics, re.M), metrics
    # Both certificates' days left, by the address each listener is bound to
    # (the test PKI's leaves are valid for 90 days).
    for address in d.addresses:
        m = re.search(r'^spoolgate_listener_certificate_expiry_seconds\{listen="%s"\} (\d+)$' % re.escape(address),
                      metrics, re.M)
        assert m and 89 * 86400 < int(m.group(1)) <= 90 * 86400, metrics


def check_config(d):
    return subprocess.run([BIN, "check-config", "-c", str(d.config)], capture_output=True, text=True)


def test_listener_tls_settings_are_checked_at_load(daemon_factory, pki, workdir):
    cert, key = pki.leaf("good")
    other_cert, other_key = pki.leaf("other")
    expired_cert, expired_key = pki.leaf("expired", not_after=__import__("datetime").datetime(2020, 1, 1),
                                          not_before=__import__("datetime").datetime(2019, 1, 1))
    cases = [
        ({"address": "127.0.0.1:0", "tls": "starttls"}, "needs cert_file and key_file"),
        ({"address": "127.0.0.1:0", "cert_file": cert, "key_file": key}, "used with tls: starttls or implicit"),
        ({"address": "127.0.0.1:0", "tls": "sometimes", "cert_file": cert, "key_file": key}, "listen[0].tls"),
        ({"address": "127.0.0.1:0", "tls": "starttls", "cert_file": cert, "key_file": key, "tls_min_version": "1.0"},
         "only for old devices on a LAN"),
        ({"address": "0.0.0.0:0", "tls": "starttls", "cert_file": cert, "key_file": key, "tls_min_version": "1.1",
          "allow_networks": ["0.0.0.0/0"]}, "only for old devices on a LAN"),
        ({"address": "127.0.0.1:0", "tls": "starttls", "cert_file": cert, "key_file": other_key},
         "does not match certificate"),
        ({"address": "127.0.0.1:0", "tls": "implicit", "cert_file": expired_cert, "key_file": expired_key},
         "has expired"),
        ({"address": "127.0.0.1:0", "tls": "starttls", "cert_file": "/nonexistent.crt", "key_file": key},
         "cannot load certificate /nonexistent.crt"),
        ({"address": "127.0.0.1:0", "tls": "starttls", "cert_file": cert, "key_file": key, "nosuch": 1},
         "unknown key"),
    ]
    for listen, expect in cases:
        d = daemon_factory({"listen": [listen]}, start=False)
        r = check_config(d)
        assert r.returncode != 0 and expect in r.stdout + r.stderr, (listen, r.stdout, r.stderr)
        d.start(expect_ready=False)
        assert d.proc.wait(timeout=30) != 0
        assert expect in d.log() or "configuration" in d.log(), d.log()
    d = daemon_factory({"listen": ["127.0.0.1:0", {"address": "127.0.0.1:0", "tls": "starttls", "cert_file": cert,
                                                   "key_file": key}]}, start=False)
    r = check_config(d)
    assert r.returncode == 0, r.stderr
    assert 'listen: ["127.0.0.1:0", {address: "127.0.0.1:0", tls: starttls' in r.stdout, r.stdout
    assert re.search(r"# 127\.0\.0\.1:0: tls starttls, TLS 1\.2 and up, certificate /CN=localhost, \d+ days left",
                     r.stdout), r.stdout


def test_a_new_certificate_by_reload_while_a_session_is_open(daemon_factory, sink_factory, pki, workdir):
    first_cert, first_key = pki.leaf("first")
    listen = {"address": "127.0.0.1:0", "tls": "starttls", "cert_file": str(workdir / "relay.crt"),
              "key_file": str(workdir / "relay.key")}
    shutil.copy(first_cert, workdir / "relay.crt")
    shutil.copy(first_key, workdir / "relay.key")
    d, sink = relay(daemon_factory, sink_factory, pki, workdir, [listen])

    def presented():
        with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
            s.starttls(context=trusting(pki))
            return s.sock.getpeercert(binary_form=True)

    before = presented()
    open_session = smtplib.SMTP("127.0.0.1", d.port, timeout=30)
    open_session.starttls(context=trusting(pki))
    second_cert, second_key = pki.leaf("second")
    shutil.copy(second_cert, workdir / "relay.crt")
    shutil.copy(second_key, workdir / "relay.key")
    r = subprocess.run([BIN, "reload", "-c", str(d.config)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    after = presented()
    assert before != after, "the reload did not pick up the new certificate"
    # The session opened before the reload goes on with its own.
    open_session.sendmail("scanner@lan", ["ops@example.com"], MESSAGE)
    open_session.quit()
    sink.wait_messages(1)
    # A broken certificate on disk: the reload is refused, the old one stays.
    (workdir / "relay.key").write_text("not a key\n")
    r = subprocess.run([BIN, "reload", "-c", str(d.config)], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "cannot load key" in r.stdout + r.stderr, r.stdout + r.stderr
    assert presented() == after


def readme_block(name):
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    return text.split(f"<!-- recipe: {name} -->\n```", 1)[1].split("\n", 1)[1].split("```", 1)[0]


def readme_recipe(name, pki, leaf, workdir):
    """A recipe's YAML from the README, with the test's certificate, files and
    loopback in place of /etc/spoolgate and the LAN addresses."""
    import yaml
    block = readme_block(name)
    cert, key = pki.leaf(leaf)
    block = (block.replace("/etc/spoolgate/relay.crt", cert).replace("/etc/spoolgate/relay.key", key)
             .replace("/etc/spoolgate/devices.users", str(workdir / "devices.users"))
             .replace("0.0.0.0:587", "127.0.0.1:0").replace("0.0.0.0:465", "127.0.0.1:0")
             .replace("192.168.10.0/24", "127.0.0.0/8").replace("192.168.10.50/32", "127.0.0.1/32"))
    return yaml.safe_load(block)["listen"]


def test_the_readme_device_recipes_word_for_word(daemon_factory, sink_factory, pki, workdir):
    printer = readme_recipe("printer-starttls", pki, "recipe1", workdir)
    scanner = readme_recipe("scanner-tls10", pki, "recipe2", workdir)
    (workdir / "devices.users").write_text("")
    d, sink = relay(daemon_factory, sink_factory, pki, workdir, printer + scanner)
    # The README's passwd line, with the test's config file, the password on stdin.
    [cmd] = [l for l in readme_block("printer-passwd").splitlines() if l.strip()]
    argv = cmd.replace("spoolgate", BIN, 1).replace("/etc/spoolgate/spoolgate.yaml", str(d.config)).split()
    r = subprocess.run(argv, input="printer-s3cret\n", capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "the running daemon reloaded" in r.stdout, r.stdout
    plain, printer_port, scanner_port = [int(a.rsplit(":", 1)[1]) for a in d.addresses]
    with smtplib.SMTP("127.0.0.1", printer_port, timeout=30) as s:
        s.starttls(context=trusting(pki))
        s.login("printer-3f", "printer-s3cret")
        s.sendmail("printer@lan", ["ops@example.com"], MESSAGE)
    with smtplib.SMTP("127.0.0.1", plain, timeout=30) as s:
        assert "STARTTLS" not in s.ehlo("cron")[1].decode()
    r = s_client(scanner_port, "-tls1", "-cipher", "DEFAULT:@SECLEVEL=0", starttls=False,
                 stdin=b"EHLO scanner\r\nMAIL FROM:<scanner@lan>\r\nRCPT TO:<ops@example.com>\r\nDATA\r\n"
                       b"Subject: scan\r\n\r\nthe scan\r\n.\r\nQUIT\r\n")
    assert b"queued as" in r.stdout, r.stdout.decode(errors="replace")
    sink.wait_messages(2)
    assert re.search(r"event=tls .*version=TLSv1 .*mode=implicit", d.log()), d.log()
    r = check_config(d)
    assert r.returncode == 0 and r.stdout.count("days left") == 2, r.stdout + r.stderr
    assert "auth required, 1 device(s) in" in r.stdout
