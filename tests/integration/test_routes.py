# SPDX-License-Identifier: MIT
"""Routes (issue 16): each recipient goes through the upstream (or group)
of the first rule that takes it, by envelope sender, recipient domain,
client network or device; a message whose recipients go different ways is
delivered part by part, each part once; a recipient no rule takes is
refused at RCPT; check-config prints the table and flags rules that can
never match."""
import re
import smtplib
import subprocess
from pathlib import Path

from conftest import BIN, daemon_upstream_settings, free_port, upstream_config, wait_for

PW = "s3cret"


def named(sink, name, pki, workdir, port=None):
    u = dict(upstream_config(sink, pki, workdir, user="relay@example.com", password=PW), name=name)
    if port:
        u["url"] = f"smtps://localhost:{port}"
    return u


def rcpts(sink):
    """The envelope recipients of each message the sink took, in order."""
    return [sorted(m["rcpt_tos"]) for m in sink.messages()]


def subjects(sink):
    return sorted(re.search(rb"Subject: (\S+)", m["content"]).group(1).decode() for m in sink.messages())


def send(d, sender, to, subject, login=None):
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
        if login:
            s.login(*login)
        s.sendmail(sender, to, f"Subject: {subject}\r\n\r\nbody\r\n".encode())


def three_accounts(sink_factory, pki, workdir):
    sinks = {n: sink_factory(name=n, user="relay@example.com", password=PW) for n in ("m365", "ses", "lab")}
    return sinks, [named(sinks[n], n, pki, workdir) for n in ("m365", "ses", "lab")]


def test_routing_by_sender_recipient_domain_network_and_device(daemon_factory, sink_factory, pki, workdir):
    sinks, ups = three_accounts(sink_factory, pki, workdir)
    users = workdir / "devices.users"
    users.write_text("")
    routes = [{"sender": "*@invoices.example.com", "upstream": "ses"},
              {"recipient_domain": ["partner.example", "*.partner.example"], "upstream": ["ses", "m365"]},
              {"device": "plc", "upstream": "lab"},
              {"client": "10.1.0.0/16", "upstream": "lab"},
              {"upstream": "m365"}]
    settings = daemon_upstream_settings(ups, routes=routes, devices=[{"name": "plc"}],
                                        listen=[{"address": "127.0.0.1:0", "auth": "optional",
                                                 "users_file": str(users)}], metrics={"listen": "127.0.0.1:0"})
    d = daemon_factory(settings, start=False)
    d.spool.mkdir()
    r = subprocess.run([BIN, "passwd", "-c", str(d.config), "plc"], input="pw-plc\n", capture_output=True, text=True)
    assert r.returncode == 0, r.stdout
    d.start()
    send(d, "billing@invoices.example.com", ["cfo@example.com"], "by-sender")
    send(d, "ops@example.com", ["buyer@eu.partner.example"], "by-recipient-domain")
    send(d, "ops@example.com", ["ops@example.com"], "by-device", login=("plc", "pw-plc"))
    send(d, "ops@example.com", ["ops@example.com"], "by-default")
    # A client on the lab's network (another loopback address stands for it).
    routes[3]["client"] = "127.0.0.2/32"
    d.write_config(settings)
    subprocess.run([BIN, "reload", "-c", str(d.config)], check=True, capture_output=True, timeout=30)
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30, source_address=("127.0.0.2", 0)) as s:
        s.sendmail("ops@example.com", ["ops@example.com"], b"Subject: by-network\r\n\r\nbody\r\n")
    sinks["ses"].wait_messages(2)
    sinks["lab"].wait_messages(2)
    sinks["m365"].wait_messages(1)
    assert subjects(sinks["ses"]) == ["by-recipient-domain", "by-sender"]
    assert subjects(sinks["lab"]) == ["by-device", "by-network"]
    assert subjects(sinks["m365"]) == ["by-default"]
    wait_for(lambda: not d.queue(), what="an empty queue")
    log = d.log()
    assert re.search(r"event=delivered .* upstream=smtps://localhost:%d rcpt=buyer@eu.partner.example"
                     % sinks["ses"].port, log), log
    from test_observability import get, samples
    m = samples(get(d, "/metrics")[2])
    assert m['spoolgate_route_messages_total{route="ses"}'] == 1, m
    assert m['spoolgate_route_messages_total{route="ses,m365"}'] == 1, m
    assert m['spoolgate_route_messages_total{route="lab"}'] == 2, m
    assert m['spoolgate_route_messages_total{route="m365"}'] == 1, m
    d.stop()


def test_a_split_message_delivers_each_part_once_and_retries_only_the_part_that_failed(
        daemon_factory, sink_factory, pki, workdir):
    """One message, two recipients on two routes. The partner's upstream is
    down: the other part is delivered at once, the partner's part is
    deferred and retried alone. kill -9 in between; after the restart (the
    partner's upstream back) the partner gets its part, and nobody gets a
    second copy."""
    main = sink_factory(name="main", user="relay@example.com", password=PW)
    partner = sink_factory(name="partner", user="relay@example.com", password=PW)
    down = free_port()
    ups = [named(main, "main", pki, workdir), named(partner, "partner", pki, workdir, port=down)]
    routes = [{"recipient_domain": "partner.example", "upstream": "partner"}, {"upstream": "main"}]
    settings = daemon_upstream_settings(ups, routes=routes)
    d = daemon_factory(settings)
    send(d, "ops@example.com", ["ops@example.com", "buyer@partner.example", "boss@example.com"], "split")
    main.wait_messages(1)
    assert rcpts(main) == [["boss@example.com", "ops@example.com"]]
    # The partner's part waits, retried alone (the second deferral is a retry).
    wait_for(lambda: len(re.findall(r"event=deferred .* upstream=smtps://localhost:%d " % down, d.log())) >= 2,
             what="the partner's part deferred twice")
    [queued] = d.queue()
    assert queued["pending"] == ["buyer@partner.example"] and queued["route"] == "partner", queued
    assert len(main.messages()) == 1 and [e for e in main.events() if e.startswith("RCPT")] == [
        "RCPT ops@example.com", "RCPT boss@example.com"], main.events()
    d.kill9()
    ups[1] = named(partner, "partner", pki, workdir)
    d.write_config(dict(settings, upstreams=ups))
    d.start()
    partner.wait_messages(1)
    assert rcpts(partner) == [["buyer@partner.example"]]
    wait_for(lambda: not d.queue(), what="an empty queue")
    assert len(main.messages()) == 1, rcpts(main)
    assert len([e for e in main.events() if e.startswith("RCPT")]) == 2, main.events()
    d.stop()


def test_a_recipient_no_route_takes_is_refused_at_rcpt(daemon_factory, sink_factory, pki, workdir):
    sinks, ups = three_accounts(sink_factory, pki, workdir)
    routes = [{"sender": "*@invoices.example.com", "upstream": "ses"},
              {"recipient_domain": "example.com", "upstream": "m365"}]
    d = daemon_factory(daemon_upstream_settings(ups, routes=routes))
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
        s.ehlo("printer")
        assert s.mail("scanner@lan.example")[0] == 250
        code, msg = s.rcpt("someone@elsewhere.example")
        assert code == 550 and msg.decode().startswith("5.7.1 <someone@elsewhere.example>: Recipient address "
                                                       "rejected: no route"), msg
        assert s.rcpt("ops@example.com")[0] == 250
        s.data(b"Subject: half\r\n\r\nbody\r\n")
        # The sender's rule takes any recipient.
        s.sendmail("billing@invoices.example.com", ["someone@elsewhere.example"], b"Subject: bill\r\n\r\nx\r\n")
    sinks["m365"].wait_messages(1)
    sinks["ses"].wait_messages(1)
    assert rcpts(sinks["m365"]) == [["ops@example.com"]]
    assert rcpts(sinks["ses"]) == [["someone@elsewhere.example"]]
    d.stop()


def test_check_config_prints_the_route_table_and_flags_rules_that_never_match(daemon_factory, sink_factory, pki,
                                                                               workdir):
    sinks, ups = three_accounts(sink_factory, pki, workdir)
    routes = [{"sender": "*@example.com", "upstream": "m365"},
              {"sender": "alerts@example.com", "upstream": "ses"},
              {"client": "10.1.0.0/16", "recipient_domain": "lab.example", "upstream": ["lab", "m365"]},
              {"upstream": "m365"},
              {"recipient_domain": "partner.example", "upstream": "ses"}]
    d = daemon_factory(daemon_upstream_settings(ups, routes=routes), start=False)
    r = subprocess.run([BIN, "check-config", "-c", str(d.config)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "#   1. sender *@example.com -> m365   (routes[0])" in out, out
    assert "#   3. recipient domain lab.example and client 10.1.0.0/16 -> lab,m365   (routes[2])" in out, out
    assert "#   4. any mail -> m365   (routes[3])" in out, out
    flagged = re.findall(r"#   (\d)\. .*\n#      never used: (\S+) before it", out)
    assert flagged == [("2", "routes[0]"), ("5", "routes[3]")], out
    d.start()
    assert re.search(r"event=route_unused reason=\"?routes\[1\] is never used: routes\[0\]", d.log()), d.log()
    d.stop()
    for bad, expect in (([{"upstream": "nope"}], "routes[0].upstream: no upstream is named 'nope'"),
                        ([{"sender": "*@x.example"}], "routes[0].upstream: every route names an upstream"),
                        ([{"device": "ghost", "upstream": "ses"}], "routes[0].device: no device is named 'ghost'")):
        d.write_config(daemon_upstream_settings(ups, routes=bad))
        r = subprocess.run([BIN, "check-config", "-c", str(d.config)], capture_output=True, text=True)
        assert r.returncode != 0 and expect in r.stdout + r.stderr, (bad, r.stdout, r.stderr)


def test_the_multi_account_recipe_routes_as_it_says(daemon_factory, sink_factory, pki, workdir):
    """conf/examples/multi-account-routing.yaml with its providers replaced
    by local sinks (and the lab's network by loopback): each rule's mail
    reaches its account."""
    import yaml
    recipe = yaml.safe_load((Path(__file__).resolve().parents[2] / "conf/examples/multi-account-routing.yaml").read_text())
    sinks, _ = three_accounts(sink_factory, pki, workdir)
    sinks["uni"] = sinks.pop("lab")
    for u in recipe["upstreams"]:
        u.update(named(sinks[u["name"]], u["name"], pki, workdir))
    settings = daemon_upstream_settings(recipe["upstreams"], devices=recipe["devices"], routes=recipe["routes"])
    d = daemon_factory(settings)
    r = subprocess.run([BIN, "check-config", "-c", str(d.config)], capture_output=True, text=True)
    assert "-> ses,m365   (routes[2])" in r.stdout and "never used" not in r.stdout, r.stdout
    send(d, "billing@invoices.example.com", ["cfo@example.com"], "invoice")
    send(d, "ops@example.com", ["buyer@partner.example"], "partner")
    send(d, "ops@example.com", ["ops@example.com"], "other")
    # The PLC, known by its network (loopback here, as the test client is).
    recipe["devices"][0]["networks"] = ["127.0.0.1/32"]
    d.write_config(dict(settings, devices=recipe["devices"]))
    d.stop()
    d.start()
    send(d, "ops@example.com", ["ops@example.com"], "from-the-plc")
    sinks["ses"].wait_messages(2)
    sinks["m365"].wait_messages(1)
    sinks["uni"].wait_messages(1)
    assert subjects(sinks["ses"]) == ["invoice", "partner"]
    assert subjects(sinks["m365"]) == ["other"]
    assert subjects(sinks["uni"]) == ["from-the-plc"]
    d.stop()


def test_each_upstream_s_sender_policy(daemon_factory, sink_factory, pki, workdir):
    """upstreams[].send_as and rewrite_from: at the m365 account a sender it
    may not send as goes out as the account (`rewrite_from: account`: the
    envelope and From:, the original From: kept as Reply-To:), one it may is
    kept; the strict account, with no rewrite, has mail from other senders
    refused at RCPT, so the device hears it."""
    m365 = sink_factory(name="m365", user="relay@example.com", password=PW)
    strict = sink_factory(name="strict", user="relay@example.com", password=PW)
    ups = [dict(named(m365, "m365", pki, workdir), send_as=["@example.com"], rewrite_from="account"),
           dict(named(strict, "strict", pki, workdir), send_as=["alerts@example.com"])]
    routes = [{"recipient_domain": "strict.example", "upstream": "strict"}, {"upstream": "m365"}]
    d = daemon_factory(daemon_upstream_settings(ups, routes=routes))
    for sender in ("scanner@lan.example", "ops@example.com"):
        with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
            s.sendmail(sender, ["boss@example.net"],
                       f"From: Scanner <{sender}>\r\nSubject: s-{sender}\r\n\r\nbody\r\n".encode())
    m365.wait_messages(2)
    by_subject = {re.search(rb"Subject: (\S+)", m["content"]).group(1).decode(): m for m in m365.messages()}
    rewritten = by_subject["s-scanner@lan.example"]
    assert rewritten["mail_from"] == "relay@example.com", rewritten
    assert b"\r\nFrom: Scanner <relay@example.com>\r\n" in rewritten["content"], rewritten["content"]
    assert b"Reply-To: Scanner <scanner@lan.example>\r\n" in rewritten["content"], rewritten["content"]
    kept = by_subject["s-ops@example.com"]
    assert kept["mail_from"] == "ops@example.com" and b"From: Scanner <ops@example.com>" in kept["content"]
    with smtplib.SMTP("127.0.0.1", d.port, timeout=30) as s:
        s.ehlo("printer")
        assert s.mail("scanner@lan.example")[0] == 250
        code, msg = s.rcpt("x@strict.example")
        assert code == 550 and b"no route" in msg, msg
        assert s.rcpt("y@example.net")[0] == 250  # m365 rewrites instead
        s.rset()
        s.sendmail("alerts@example.com", ["x@strict.example"], b"Subject: alert\r\n\r\nbody\r\n")
    strict.wait_messages(1)
    assert strict.messages()[0]["mail_from"] == "alerts@example.com"
    d.stop()
    for bad, expect in (({"rewrite_from": "nobody"}, "upstreams[0].rewrite_from: expected an address"),
                        ({"send_as": ["x"]}, "upstreams[0].send_as: expected an address")):
        d.write_config(daemon_upstream_settings([dict(ups[0], **bad)]))
        r = subprocess.run([BIN, "check-config", "-c", str(d.config)], capture_output=True, text=True)
        assert r.returncode != 0 and expect in r.stdout + r.stderr, (bad, r.stdout, r.stderr)
