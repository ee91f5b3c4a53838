# SPDX-License-Identifier: MIT
"""The golden SMTP transcripts of the unit tests (tests/unit/smtp/transcripts,
format in transcript_test.cc) replayed against the real binary over TCP: the
same replies, byte for byte, and the same stored messages once the queue id,
the client's address and the dates are put back to the transcript's fixed
values."""
import re
from pathlib import Path

import pytest

from conftest import wait_for

DIR = Path(__file__).resolve().parents[1] / "unit" / "smtp" / "transcripts"

# Transcript settings as daemon configuration. `accepting` (the spool
# watermark) and `max_header_bytes` (a compile-time bound) have no key: those
# transcripts stay unit tests (test_inbound.py covers the watermark).
SETTINGS = {
    "max_recipients": lambda v: {"limits": {"max_recipients": int(v)}},
    "max_message_size": lambda v: {"limits": {"max_message_size": f"{v}B"}},
    "max_bad_commands": lambda v: {"limits": {"max_bad_commands": int(v)}},
    "reject_bare_newlines": lambda v: {"bare_newlines": "reject" if v == "true" else "normalize"},
    "rewrite_from": lambda v: {"headers": {"rewrite_from": v}},
    "add_missing": lambda v: {"headers": {"add_missing": v == "true"}},
}
DATE = re.compile(rb"[A-Z][a-z]{2}, \d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}")


def unescape(s: str) -> bytes:
    out, i = bytearray(), 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            n = s[i + 1]
            if n == "x":
                out.append(int(s[i + 2:i + 4], 16))
                i += 4
                continue
            out += {"r": b"\r", "n": b"\n", "0": b"\0", "t": b"\t"}.get(n, n.encode())
            i += 2
            continue
        out += c.encode()
        i += 1
    return bytes(out)


def parse(path):
    settings, steps = {}, []
    for raw in path.read_text().splitlines():
        if raw.startswith("#") or not raw.strip():
            continue
        if raw.startswith("@ "):
            k, v = raw[2:].split("=", 1)
            settings[k] = v
        else:
            steps.append((raw[0], raw[3:] if len(raw) > 3 else ""))
    return settings, steps


def replayable():
    out = []
    for p in sorted(DIR.glob("*.txt")):
        settings, _ = parse(p)
        if set(settings) <= set(SETTINGS):
            out.append(p)
    return out


def config_for(settings):
    cfg = {}
    for k, v in settings.items():
        for section, value in SETTINGS[k](v).items():
            if isinstance(value, dict):
                cfg.setdefault(section, {}).update(value)
            else:
                cfg[section] = value
    return cfg


def normalised(content: bytes, msg_id: str, sent: bytes) -> bytes:
    """Our id, address and dates as the transcript's; a date the client sent stays."""
    content = content.replace(msg_id.encode(), b"QID0000000000001")
    content = content.replace(b"([127.0.0.1])", b"([192.0.2.1])")
    content = DATE.sub(lambda m: m[0] if m[0] in sent else b"Wed, 18 Nov 2026 12:00:00 +0000", content)
    return re.sub(rb"<QID0000000000001\.\d+@relay\.test>", b"<QID0000000000001.1795003200@relay.test>", content)


@pytest.mark.parametrize("path", replayable(), ids=lambda p: p.stem)
def test_transcript_against_the_binary(daemon_factory, path):
    settings, steps = parse(path)
    d = daemon_factory(config_for(settings))
    wire = d.connect(timeout=15)
    pending, sent, expected_message, last_id = b"", b"", [], None

    def check_message():
        if expected_message:
            assert last_id, "M lines without a queued message"
            got = normalised(d.content(last_id), last_id, sent)
            assert got == b"".join(unescape(m) + b"\r\n" for m in expected_message), path.name

    for kind, text in steps:
        if kind in "CR":
            check_message()
            expected_message = []
            pending += (text.encode() + b"\r\n") if kind == "C" else unescape(text)
            continue
        if pending:
            wire.send(pending)
            sent, pending = sent + pending, b""
        if kind == "S":
            got = wire.line()
            if text.endswith("*"):
                assert got.startswith(text[:-1]), (path.name, text, got)
            else:
                m = re.fullmatch(r"(250 2\.0\.0 Ok: queued as )QID0000000000001", text)
                if m:
                    assert re.fullmatch(m.group(1) + r"[0-9A-Z]{16}", got), (path.name, text, got)
                    last_id = got.rsplit(" ", 1)[1]
                else:
                    assert got == text, (path.name, got)
        elif kind == "M":
            expected_message.append(text)
        elif kind == "E":
            check_message()
            expected_message = []
            assert wire.closed(), path.name
    if pending:
        wire.send(pending)
    check_message()
    wire.close()
    # The daemon logged every queued message as well (nothing left half-done).
    if last_id:
        wait_for(lambda: f"msg={last_id}" in d.log(), what="queued log line")
