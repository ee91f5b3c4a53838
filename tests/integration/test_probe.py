# SPDX-License-Identifier: MIT
"""spoolgate probe: what delivery would see, without sending mail."""
import re
import subprocess

import pytest

from conftest import BIN, daemon_upstream_settings, upstream_config


def probe(d, *extra):
    return subprocess.run([BIN, "probe", "-c", str(d.config), *extra], capture_output=True, text=True, timeout=60)


def test_probe_reports_tls_chain_pins_capabilities_and_auth(daemon_factory, sink_factory, pki, workdir):
    sink = sink_factory(tls="starttls", user="relay@example.com", password="s3cret-pw")
    d = daemon_factory(daemon_upstream_settings([upstream_config(sink, pki, workdir, scheme="smtp+starttls")]),
                       start=False)
    out = probe(d, "--auth")
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    assert "connected: 127.0.0.1 port" in text or "connected: ::1 port" in text
    assert "starttls: offered and accepted" in text
    assert "tls: TLSv1.3" in text
    assert "[0] subject: /CN=localhost" in text and "[1] subject: /CN=spoolgate test intermediate" in text
    assert f"pin:     {pki.spki_pin(pki.inter)}" in text
    assert "issuer:  /CN=spoolgate test intermediate" in text
    assert re.search(r"valid:   \d{4}-\d\d-\d\dT\S+ \.\. \d{4}-\d\d-\d\dT\S+ \(\d+ days left\)", text), text
    assert "verification: ok" in text
    assert "ehlo (after TLS):" in text and "AUTH LOGIN OAUTHBEARER PLAIN XOAUTH2" in text
    assert "auth: ok as relay@example.com" in text
    assert text.rstrip().endswith("result: ok")
    assert not any(e.startswith(("MAIL", "RCPT", "DATA")) for e in sink.events())


def test_probe_shows_why_verification_fails(daemon_factory, sink_factory, pki, workdir):
    sink = sink_factory(tls="implicit")
    up = upstream_config(sink, pki, workdir, user=None)
    up["ca_file"] = pki.other_ca_file
    d = daemon_factory(daemon_upstream_settings([up]), start=False)
    out = probe(d)
    assert out.returncode == 1
    assert "verification: FAILED: unable to get local issuer certificate" in out.stdout
    assert "result: FAILED" in out.stdout


def test_probe_upstream_n_picks_one_of_several(daemon_factory, sink_factory, pki, workdir):
    sink = sink_factory(tls="implicit")
    bad = upstream_config(sink, pki, workdir, user=None)
    bad["ca_file"] = pki.other_ca_file
    good = upstream_config(sink, pki, workdir, user=None)
    d = daemon_factory(daemon_upstream_settings([bad, good]), start=False)
    assert probe(d).returncode == 1  # the first one by default
    out = probe(d, "--upstream", "1")
    assert out.returncode == 0 and "verification: ok" in out.stdout, out.stdout + out.stderr
    out = probe(d, "--upstream", "2")
    assert out.returncode != 0 and "no upstream 2 (there are 2, counted from 0)" in out.stdout + out.stderr


def test_probe_gives_up_at_the_connect_timeout(daemon_factory, blackhole, pki, workdir):
    # The connect hangs; the probe reports the timeout and exits instead of
    # waiting for the kernel to give up on the handshake (minutes).
    settings = daemon_upstream_settings([upstream_config(blackhole, pki, workdir, host="127.0.0.1")])
    settings["delivery"]["timeouts"]["connect"] = "1s"
    d = daemon_factory(settings, start=False)
    out = probe(d)
    assert out.returncode == 1
    assert f"result: FAILED: connect to 127.0.0.1:{blackhole.port} timed out" in out.stdout, out.stdout


@pytest.mark.parametrize("scenario,reason", [
    ("greeting-none", "timeout waiting for the server at greeting"),
    ("hang-ehlo", "timeout waiting for the server at command"),
])
def test_probe_waits_each_stage_as_delivery_does(daemon_factory, sink_factory, pki, workdir, scenario, reason):
    # The probe and delivery connect through one link: the same stage
    # timeouts, and the same reason as a deferral would record
    # (test_faults.py::test_server_faults_defer).
    cert, key = pki.leaf("fake")
    f = sink_factory(name=f"fake-{scenario}", scenario=scenario, cert=cert, key=key)
    settings = daemon_upstream_settings([upstream_config(f, pki, workdir, scheme="smtp+starttls")])
    settings["delivery"]["timeouts"]["greeting"] = "500ms"
    settings["delivery"]["timeouts"]["mail"] = "500ms"
    d = daemon_factory(settings, start=False)
    out = probe(d, "--auth")
    assert out.returncode == 1
    assert f"result: FAILED: {reason}" in out.stdout, out.stdout


def test_probe_wrong_password(daemon_factory, sink_factory, pki, workdir):
    sink = sink_factory(tls="implicit", user="relay@example.com", password="s3cret-pw")
    d = daemon_factory(daemon_upstream_settings([upstream_config(sink, pki, workdir, password="nope")]),
                       start=False)
    out = probe(d, "--auth")
    assert out.returncode == 1
    assert "auth: FAILED: authentication failed: 535" in out.stdout
    assert "nope" not in out.stdout


def test_probe_states_the_provider_s_limits_and_sender_policy(daemon_factory, sink_factory, pki, workdir):
    """Issue 16: for a Microsoft 365 upstream the probe logs in (the account
    can authenticate) and says what the configuration will send as, and what
    Microsoft requires of it, still without sending mail."""
    sink = sink_factory(user="relay@example.com", password="s3cret-pw")
    up = dict(upstream_config(sink, pki, workdir), provider="microsoft365")
    d = daemon_factory(daemon_upstream_settings([up]), start=False)
    text = probe(d, "--auth").stdout
    assert ("provider: microsoft365 (limits kept: 3 sessions at once, 30 a minute, 10000 recipients a day, "
            "35MiB at most)") in text, text
    assert "sender policy: mail goes out with the sender and From: it came with" in text, text
    assert "check: Microsoft 365 takes a From: other than the mailbox relay@example.com only with Send As" in text
    assert "check: Microsoft 365 turns SMTP AUTH with a password off by default" in text
    assert "auth: ok as relay@example.com" in text and text.rstrip().endswith("result: ok")
    up["rewrite_from"] = "account"
    d.write_config(daemon_upstream_settings([up]))
    text = probe(d, "--auth").stdout
    assert "sender policy: every message goes out as relay@example.com (rewrite_from" in text, text
    assert "Send As" not in text, text
    assert not any(e.startswith(("MAIL", "RCPT", "DATA")) for e in sink.events())
