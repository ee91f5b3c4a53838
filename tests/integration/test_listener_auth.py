# SPDX-License-Identifier: MIT
"""AUTH on the listener (issue 15): devices in a users_file written by
`spoolgate passwd` (argon2id), PLAIN and LOGIN from swaks and smtplib, only
after STARTTLS unless plaintext is allowed, failed logins delayed, counted
and locked out, and the file reloaded."""
import os
import re
import smtplib
import ssl
import stat
import subprocess
import sys
import threading
import urllib.request

from conftest import BIN, PASSWORD, USER, daemon_upstream_settings, free_port, upstream_config

SECRET = "pr1nter-s3cret"


def passwd(d, name, secret, *args):
    return subprocess.run([BIN, "passwd", *args, "-c", str(d.config), name], input=secret + "\n",
                          capture_output=True, text=True, timeout=60)


def auth_relay(daemon_factory, sink_factory, pki, workdir, tls="starttls", auth="required", start=True, **extra):
    cert, key = pki.leaf("relay")
    users = workdir / "devices.users"
    listen = {"address": "127.0.0.1:0", "auth": auth, "users_file": str(users), **extra}
    if tls != "none":
        listen.update({"tls": tls, "cert_file": cert, "key_file": key})
    sink = sink_factory(user=USER, password=PASSWORD)
    mport = free_port()
    settings = daemon_upstream_settings([upstream_config(sink, pki, workdir)], metrics={"listen": f"127.0.0.1:{mport}"})
    settings["listen"] = [listen]
    d = daemon_factory(settings, start=False)
    d.metrics_port = mport
    return d, sink, users


def swaks(port, *args):
    return subprocess.run(["swaks", "--server", f"127.0.0.1:{port}", "--from", "printer@lan", "--to",
                           "ops@example.com", "--timeout", "30", *args], capture_output=True, text=True, timeout=90)


def test_passwd_then_login_and_login_plain_over_starttls(daemon_factory, sink_factory, pki, workdir):
    d, sink, users = auth_relay(daemon_factory, sink_factory, pki, workdir)
    d.spool.mkdir()
    r = passwd(d, "printer-3f", SECRET)
    assert r.returncode == 0, r.stdout
    assert "device printer-3f added to" in r.stdout and "no daemon answered" in r.stdout
    text = users.read_text()
    assert re.fullmatch(r"printer-3f:\$argon2id\$v=19\$m=19456,t=2,p=1\$\S+\n", text), text
    assert SECRET not in text and stat.S_IMODE(os.stat(users).st_mode) == 0o640
    d.start()
    for mech in ("LOGIN", "PLAIN"):
        r = swaks(d.port, "--tls", "--auth", mech, "--auth-user", "printer-3f", "--auth-password", SECRET)
        assert r.returncode == 0 and "235 2.7.0" in r.stdout, r.stdout + r.stderr
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
        s.starttls(context=ssl.create_default_context(cafile=pki.ca_file))
        s.login("printer-3f", SECRET)
        s.sendmail("printer@lan", ["ops@example.com"], b"Subject: scan\r\n\r\nhi\r\n")
    msgs = sink.wait_messages(3)
    assert all(b"(authenticated as printer-3f)" in m["content"] for m in msgs)
    log = d.log()
    assert len(re.findall(r"event=auth session=\S+ client=127\.0\.0\.1 device=printer-3f user=printer-3f "
                          r"mechanism=(LOGIN|PLAIN)",
                          log)) == 3, log
    assert re.search(r"event=queued .* user=printer-3f", log), log
    assert SECRET not in log


def test_auth_required_means_no_mail_without_a_login(daemon_factory, sink_factory, pki, workdir):
    """(AUTH before STARTTLS from a LAN address: see
    test_auth_waits_for_starttls_for_a_lan_client_unless_its_network_may_skip_it.)"""
    d, sink, users = auth_relay(daemon_factory, sink_factory, pki, workdir)
    users.write_text("")
    d.start()
    r = swaks(d.port, "--tls")
    assert r.returncode != 0 and "530 5.7.0 Authentication required" in r.stdout, r.stdout
    assert "event=users_file_empty" in d.log()


LAN_CLIENT = """
import base64, smtplib, ssl, sys
host, port, user, secret = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = smtplib.SMTP(host, port, timeout=30)
s.ehlo("printer")
print("before-tls-offered", s.has_extn("auth"))
print("before-tls-auth", s.docmd("AUTH", "PLAIN " + base64.b64encode(f"\\0{user}\\0{secret}".encode()).decode())[0])
if s.has_extn("starttls"):
    s.starttls(context=ssl._create_unverified_context())  # the test CA's name is localhost
    s.ehlo("printer")
    print("after-tls-offered", s.has_extn("auth"))
s.login(user, secret)
s.sendmail("printer@lan", ["ops@example.com"], b"Subject: from-the-lan\\r\\n\\r\\nscan\\r\\n")
s.quit()
print("sent")
"""


def test_auth_waits_for_starttls_for_a_lan_client_unless_its_network_may_skip_it(daemon_factory, sink_factory, pki,
                                                                                workdir, lan):
    """A client that is not loopback (a device in a network namespace of the
    test's own): on a STARTTLS listener AUTH is not offered before TLS, AUTH
    sent anyway gets 538 (logged with the mechanism), and after STARTTLS it is
    offered and works; on a plaintext listener whose auth_plaintext_networks
    list that LAN, the same device logs in without TLS."""
    d, sink, users = auth_relay(daemon_factory, sink_factory, pki, workdir, start=False)
    cert, key = pki.leaf("relay")
    settings = daemon_upstream_settings([upstream_config(sink, pki, workdir)])
    common = {"auth": "required", "users_file": str(users), "allow_networks": [lan.network]}
    settings["listen"] = [{"address": f"{lan.host_ip}:0", "tls": "starttls", "cert_file": cert, "key_file": key,
                           **common},
                          {"address": f"{lan.host_ip}:0", "auth_plaintext_networks": [lan.network], **common}]
    d.write_config(settings)
    d.spool.mkdir()
    assert passwd(d, "printer-3f", SECRET).returncode == 0
    d.start()
    starttls_port, plain_port = [int(a.rsplit(":", 1)[1]) for a in d.addresses]

    r = lan.run([sys.executable, "-c", LAN_CLIENT, lan.host_ip, str(starttls_port), "printer-3f", SECRET],
                capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.split("\n")[:4] == ["before-tls-offered False", "before-tls-auth 538", "after-tls-offered True",
                                        "sent"], r.stdout
    assert re.search(r'event=auth_refused session=\S+ client=%s mechanism=PLAIN '
                     r'reply="538 5\.7\.11 Encryption required' % re.escape(lan.client_ip), d.log()), d.log()
    assert re.search(r"event=auth session=\S+ client=%s device=printer-3f" % re.escape(lan.client_ip), d.log())

    r = lan.run([sys.executable, "-c", LAN_CLIENT, lan.host_ip, str(plain_port), "printer-3f", SECRET],
                capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.split("\n")[:3] == ["before-tls-offered True", "before-tls-auth 235", "sent"], r.stdout
    sink.wait_messages(2)
    assert SECRET not in d.log()
    d.stop()


def test_plaintext_auth_from_loopback_and_the_file_reloaded_by_passwd(daemon_factory, sink_factory, pki, workdir):
    d, sink, users = auth_relay(daemon_factory, sink_factory, pki, workdir, tls="none")
    d.spool.mkdir()
    assert passwd(d, "ups", "first").returncode == 0
    d.start()
    r = swaks(d.port, "--auth", "PLAIN", "--auth-user", "ups", "--auth-password", "first")
    assert r.returncode == 0, r.stdout
    # A device that asks for a mechanism we do not have: refused, and the log says which.
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
        s.ehlo("ups")
        assert s.docmd("AUTH", "CRAM-MD5")[0] == 504
    assert re.search(r'event=auth_refused session=\S+ client=127\.0\.0\.1 mechanism=CRAM-MD5 '
                     r'reply="504 5\.5\.4 Unrecognized authentication type"', d.log()), d.log()
    r = passwd(d, "ups", "second")
    assert r.returncode == 0 and "device ups updated in" in r.stdout, r.stdout
    assert "the running daemon reloaded" in r.stdout, r.stdout
    assert swaks(d.port, "--auth", "PLAIN", "--auth-user", "ups", "--auth-password", "first").returncode != 0
    assert swaks(d.port, "--auth", "LOGIN", "--auth-user", "ups", "--auth-password", "second").returncode == 0
    sink.wait_messages(2)


def test_failed_logins_are_delayed_counted_and_locked_out(daemon_factory, sink_factory, pki, workdir):
    d, sink, users = auth_relay(daemon_factory, sink_factory, pki, workdir, tls="none")
    d.spool.mkdir()
    assert passwd(d, "nas", "right").returncode == 0
    d.start()
    codes = []

    def attempt():
        with smtplib.SMTP("127.0.0.1", d.port, timeout=60) as s:
            s.ehlo("nas")
            s.user, s.password = "nas", "wrong"
            try:
                s.auth("PLAIN", s.auth_plain)  # one try per session (login() would go on to LOGIN)
            except smtplib.SMTPAuthenticationError as e:
                codes.append(e.smtp_code)
            except smtplib.SMTPServerDisconnected:
                codes.append(421)

    threads = [threading.Thread(target=attempt) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [535] * 10, codes
    # The eleventh try from this address is turned away, even with the right password.
    with smtplib.SMTP("127.0.0.1", d.port, timeout=60) as s:
        s.ehlo("nas")
        try:
            s.login("nas", "right")
            raise AssertionError("logged in while locked out")
        except (smtplib.SMTPServerDisconnected, smtplib.SMTPAuthenticationError) as e:
            assert "421" in str(e) or isinstance(e, smtplib.SMTPServerDisconnected), e
    log = d.log()
    assert "recent_failures=10" in log and "event=auth_locked" in log, log
    assert "wrong" not in re.sub(r"event=\S+", "", log).replace("wrong password", "")
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{d.metrics_port}/metrics", timeout=10).read().decode()
    assert 'spoolgate_inbound_auth_total{result="failed"} 10' in metrics, metrics


def test_auth_settings_and_users_files_are_checked_at_load(daemon_factory, sink_factory, pki, workdir):
    cert, key = pki.leaf("relay")
    users = workdir / "bad.users"
    users.write_text("# devices\nprinter:plain-text-password\n")
    cases = [
        ({"address": "127.0.0.1:0", "auth": "required"}, "users_file: required with auth: required"),
        ({"address": "127.0.0.1:0", "users_file": str(users)}, "need auth: optional or required"),
        ({"address": "127.0.0.1:0", "auth": "required", "users_file": str(users)},
         f"{users}:2: expected an argon2id hash"),
        ({"address": "127.0.0.1:0", "auth": "required", "users_file": str(workdir / "missing.users")},
         "missing.users"),
        ({"address": "0.0.0.0:0", "auth": "required", "users_file": str(users), "allow_networks": ["10.0.0.0/8"]},
         "no client could log in"),
    ]
    for listen, expect in cases:
        d = daemon_factory({"listen": [listen]}, start=False)
        r = subprocess.run([BIN, "check-config", "-c", str(d.config)], capture_output=True, text=True)
        assert r.returncode != 0 and expect in r.stdout + r.stderr, (listen, r.stdout, r.stderr)
