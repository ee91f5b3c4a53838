# SPDX-License-Identifier: MIT
"""Per-device identity (issue 15): a device is known by its login or by a
network named in `devices`; its name is in the log, the spool record,
`queue list` and the metrics, and its sender policy is enforced (550 5.7.1)."""
import json
import re
import smtplib
import subprocess
import urllib.request

from conftest import BIN, free_port

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
