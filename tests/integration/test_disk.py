# SPDX-License-Identifier: MIT
"""Disk trouble: a full spool filesystem answers 4xx and leaves nothing partial."""
import subprocess

import pytest

from conftest import wait_for
from conftest import queued_id, send_raw


@pytest.fixture
def small_fs(workdir):
    """A 2 MiB tmpfs for the spool (CI runs as root; mounting is part of the test)."""
    mnt = workdir / "small"
    mnt.mkdir()
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(mnt)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {out.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_gives_452_and_recovers_when_space_returns(daemon_factory, small_fs):
    d = daemon_factory({"spool": {"dir": str(small_fs / "spool"), "min_free_disk": "0"}})
    filler = small_fs / "filler"
    filler.write_bytes(b"\0" * (1536 * 1024))
    big = b"Subject: too big for the disk\r\n\r\n" + (b"z" * 998 + b"\r\n") * 800  # ~800 KB
    c = send_raw(d, big + b".\r\n")
    assert c.reply() == ["452 4.3.1 Insufficient system storage"]
    # The session goes on; nothing partial is left anywhere.
    assert c.cmd("NOOP") == ["250 2.0.0 Ok"]
    wait_for(lambda: list((small_fs / "spool" / "tmp").iterdir()) == [], what="tmp cleanup")
    assert list((small_fs / "spool" / "queue").iterdir()) == []
    assert "event=spool_error" in d.log()
    filler.unlink()
    assert c.cmd("MAIL FROM:<a@example.com>") == ["250 2.1.0 Ok"]
    assert c.cmd("RCPT TO:<b@example.com>") == ["250 2.1.5 Ok"]
    assert c.cmd("DATA")[0].startswith("354")
    c.send(big + b".\r\n")
    msg_id = queued_id(c.reply()[0])
    assert [e["id"] for e in d.queue()] == [msg_id]
