# SPDX-License-Identifier: MIT
"""End to end with a real MTA: Debian's Postfix receives over TLS with SASL
AUTH, and the bytes it stores are the bytes the device sent."""
import smtplib
import sys

import pytest

from conftest import SUPPORT, daemon_upstream_settings, free_port, wait_for

sys.path.insert(0, str(SUPPORT))
from postfix_instance import tls_receiver  # noqa: E402

DEVICE_MESSAGE = (b"From: UPS <ups@device.lan>\r\nTo: ops@example.com\r\nSubject: on battery\r\n"
                  b"Date: Sun, 22 Nov 2026 10:00:00 +0000\r\nMessage-ID: <ups-1@device.lan>\r\n\r\n"
                  b"Power lost at 10:00.\r\n.leading dot survives\r\n..two dots\r\n\r\nend\r\n")


@pytest.mark.parametrize("wrapper,scheme", [(True, "smtps"), (False, "smtp+starttls")], ids=["smtps", "starttls"])
def test_postfix_receives_what_the_device_sent(daemon_factory, pki, workdir, wrapper, scheme):
    import os
    os.chmod(workdir, 0o755)  # Postfix's daemons run as the postfix user
    cert, key = pki.leaf("mx")
    port = free_port()
    pf = tls_receiver(workdir / "postfix", port, cert, key, "relay@example.com", "pf-s3cret", wrapper=wrapper)
    pf.start()
    try:
        pw = workdir / "pf-password"
        pw.write_text("pf-s3cret\n")
        up = {"url": f"{scheme}://relay%40example.com@localhost:{port}", "ca_file": pki.ca_file, "password_file": str(pw)}
        d = daemon_factory(daemon_upstream_settings([up]))
        with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
            s.sendmail("ups@device.lan", ["ops@example.com"], DEVICE_MESSAGE)
        wait_for(lambda: d.queue() == [], timeout=60, what="delivered")
        inbox = workdir / "postfix" / "mail" / "inbox" / "new"
        [stored] = wait_for(lambda: list(inbox.iterdir()) if inbox.exists() else [], timeout=30, what="maildir file")
        data = stored.read_bytes()
        # Maildir holds LF lines; Postfix adds its own trace fields on top.
        expected = DEVICE_MESSAGE.replace(b"\r\n", b"\n")
        assert data.endswith(expected), data
        assert b"\tby relay.test (spoolgate) with ESMTP id " in data
        log = pf.read_log()
        assert "sasl_method=PLAIN, sasl_username=relay@example.com" in log or "sasl_method=LOGIN" in log
        assert "status=sent (delivered to maildir)" in log
    finally:
        pf.stop()
