# SPDX-License-Identifier: MIT
"""Per-device identity (issue 15): a device is known by its login or by a
network named in `devices`; its name is in the log, the spool record,
`queue list` and the metrics, and its sender policy is enforced (550 5.7.1)."""
import json
import os
import re
import signal
import smtplib
import subprocess
import urllib.request

from conftest import BIN, daemon_upstream_settings, free_port, upstream_config, wait_for

DEVICES = [{"name": "scanner", "networks": ["127.0.0.1/32"], "senders": ["scanner@lan.example"]},
           {"name": "printer-3f", "senders": ["@print.example"], "rewrite_from": "printer@print.example",
            "rate_limit": 2}]


def test_devices_by_address_and_by_login(daemon_factory, workdir):
    users = workdir / "devices.users"
    users.write_text("")
    mport = free_port()
    d = daemon_factory({"listen": [{"address": "127.0.0.1:0", "auth": "optional", "users_file": str(users)}],
                        "devices": DEVICES, "metrics": {"listen": f"127.0.0.1:{mport}"}}, start=False)
    d.spool.mkdir()
    r = subprocess.run([BIN, "passwd", "-c", str(d.config), "printer-3f"], input="pw-3f\n", capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout
    d.start()
    # From 127.0.0.1 without a login: the scanner, with its sender policy.
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
        s.ehlo("scanner")
        code, msg = s.mail("boss@example.com")
        assert (code, msg.decode()) == (550, "5.7.1 Sender address rejected: not allowed for scanner")
        s.rset()
        s.sendmail("scanner@lan.example", ["ops@example.com"], b"Subject: scan\r\n\r\nscan\r\n")
    # The same address logged in as the printer: the printer's policy.
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
        s.login("printer-3f", "pw-3f")
        s.sendmail("queue@print.example", ["ops@example.com"], b"From: queue@print.example\r\n\r\npage\r\n")
    # Its rate_limit is 2 a minute: one more goes, the next is told to wait.
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
        s.login("printer-3f", "pw-3f")
        s.sendmail("queue@print.example", ["ops@example.com"], b"\r\npage 2\r\n")
        code, msg = s.mail("queue@print.example")
        assert (code, msg.decode()) == (450, "4.7.1 Error: too much mail from printer-3f, try again later")
    listed = json.loads(subprocess.run([BIN, "queue", "list", "--json", "-c", str(d.config)], capture_output=True,
                                       text=True).stdout)
    assert sorted(m["device"] for m in listed) == ["printer-3f", "printer-3f", "scanner"], listed
    assert all(m["sender"] == "printer@print.example" for m in listed if m["device"] == "printer-3f")  # rewrite_from
    text = subprocess.run([BIN, "queue", "list", "-c", str(d.config)], capture_output=True, text=True).stdout
    assert "[scanner]" in text and "[printer-3f]" in text, text
    log = d.log()
    assert re.search(r"event=connect session=\S+ client=127\.0\.0\.1 device=scanner", log), log
    assert re.search(r"event=queued .* device=scanner", log) and re.search(r"event=queued .* device=printer-3f", log)
    assert re.search(r"event=disconnect .* device=printer-3f", log), log
    # Every line of the session from the moment the device is known.
    assert re.search(r"event=auth session=\S+ client=127\.0\.0\.1 device=printer-3f user=printer-3f", log), log
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=10).read().decode()
    for name, n in (("scanner", 1), ("printer-3f", 2)):
        assert f'spoolgate_messages_received_by_device_total{{device="{name}"}} {n}' in metrics, metrics
    # After a restart the records still say who sent them.
    d.stop()
    listed = json.loads(subprocess.run([BIN, "queue", "list", "--json", "-c", str(d.config)], capture_output=True,
                                       text=True).stdout)
    assert sorted(m["device"] for m in listed) == ["printer-3f", "printer-3f", "scanner"]


def test_devices_are_checked_at_load(daemon_factory):
    for devices, expect in (([{"name": "bad name"}], "devices[0].name"),
                            ([{"name": "a"}, {"name": "a"}], "'a' is listed twice"),
                            ([{"name": "a", "senders": ["nobody"]}], "expected an address"),
                            ([{"name": "a", "colour": "red"}], "unknown key")):
        d = daemon_factory({"devices": devices}, start=False)
        r = subprocess.run([BIN, "check-config", "-c", str(d.config)], capture_output=True, text=True)
        assert r.returncode != 0 and expect in r.stdout + r.stderr, (devices, r.stdout, r.stderr)


def routed_relay(daemon_factory, sink_factory, pki, workdir, lab_port=None, printer_upstream="lab"):
    """Two named upstreams, main and lab (a sink, or a port nothing listens
    on), and two devices: the printer (its login) bound to lab, the scanner
    (its address) with no upstream of its own."""
    main = sink_factory(name="main", user="relay@example.com", password="s3cret")
    lab = None if lab_port else sink_factory(name="lab", user="relay@example.com", password="s3cret")
    ups = [dict(upstream_config(main, pki, workdir, user="relay@example.com", password="s3cret"), name="main"),
           dict(upstream_config(lab or main, pki, workdir, user="relay@example.com", password="s3cret"), name="lab")]
    if lab_port:
        ups[1]["url"] = f"smtps://localhost:{lab_port}"
    users = workdir / "devices.users"
    users.write_text("")
    devices = [{"name": "scanner", "networks": ["127.0.0.1/32"]},
               {"name": "printer-3f", "upstream": printer_upstream}]
    settings = daemon_upstream_settings(ups, devices=devices,
                                        listen=[{"address": "127.0.0.1:0", "auth": "optional",
                                                 "users_file": str(users)}])
    d = daemon_factory(settings, start=False)
    d.spool.mkdir()
    r = subprocess.run([BIN, "passwd", "-c", str(d.config), "printer-3f"], input="pw-3f\n", capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout
    d.start()
    return d, main, lab, settings


def send_as(d, subject, login=None):
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
        if login:
            s.login(login, "pw-3f")
        s.sendmail("dev@lan.example", ["ops@example.com"], f"Subject: {subject}\r\n\r\nbody\r\n".encode())


def subjects(sink):
    return sorted(re.search(rb"Subject: (\S+)", m["content"]).group(1).decode() for m in sink.messages())


def test_a_device_s_mail_goes_through_the_upstream_it_names(daemon_factory, sink_factory, pki, workdir):
    """devices[].upstream names the upstream a device's mail goes through;
    mail of other devices (and of none) takes the upstreams in order."""
    d, main, lab, _ = routed_relay(daemon_factory, sink_factory, pki, workdir)
    send_as(d, "from-the-printer", login="printer-3f")
    send_as(d, "from-the-scanner")
    send_as(d, "printer-again", login="printer-3f")
    lab.wait_messages(2)
    main.wait_messages(1)
    assert subjects(lab) == ["from-the-printer", "printer-again"]
    assert subjects(main) == ["from-the-scanner"]
    r = subprocess.run([BIN, "check-config", "-c", str(d.config)], capture_output=True, text=True)
    assert r.returncode == 0 and 'upstream: ["lab"]' in r.stdout, r.stdout
    d.stop()


def test_a_device_s_mail_waits_for_its_upstream_and_a_reload_reroutes_it(daemon_factory, sink_factory, pki,
                                                                          workdir):
    """The printer's only upstream is down: its mail is deferred (never sent
    through another account), the scanner's goes on through main meanwhile.
    A reload gives the printer the group [lab, main] (failover in order): the
    mail that waited goes through main."""
    d, main, _, settings = routed_relay(daemon_factory, sink_factory, pki, workdir, lab_port=free_port())
    send_as(d, "from-the-printer", login="printer-3f")
    wait_for(lambda: re.search(r"event=deferred .* upstream=smtps://localhost:\d+ reason=", d.log()),
             what="the printer's message deferred")
    send_as(d, "from-the-scanner")
    main.wait_messages(1)
    assert subjects(main) == ["from-the-scanner"]
    assert [m["device"] for m in d.queue()] == ["printer-3f"]
    settings["devices"][1]["upstream"] = ["lab", "main"]
    d.write_config(settings)
    os.kill(d.pid, signal.SIGHUP)
    wait_for(lambda: "event=reloaded" in d.log(), what="reloaded")
    r = subprocess.run([BIN, "queue", "flush", "-c", str(d.config)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    main.wait_messages(2)
    assert subjects(main) == ["from-the-printer", "from-the-scanner"]
    wait_for(lambda: not d.queue(), what="an empty queue")
    d.stop()


def test_device_upstreams_are_checked_at_load(daemon_factory, sink_factory, pki, workdir):
    sink = sink_factory()
    named = [dict(upstream_config(sink, pki, workdir), name="main")]
    for ups, devices, expect in (
            (named, [{"name": "a", "upstream": "nope"}], "devices[0].upstream: no upstream is named 'nope'"),
            (named, [{"name": "a", "upstream": ["main", "main"]}], "'main' is listed twice"),
            (named * 2, [], "'main' names two upstreams"),
            ([dict(named[0], name="bad name")], [], "upstreams[0].name: an upstream name is")):
        d = daemon_factory({"upstreams": ups, "devices": devices}, start=False)
        r = subprocess.run([BIN, "check-config", "-c", str(d.config)], capture_output=True, text=True)
        assert r.returncode != 0 and expect in r.stdout + r.stderr, (devices, r.stdout, r.stderr)
