# SPDX-License-Identifier: MIT
# bench/instructions's workload: AB_N messages through a TLS sink, with the
# daemon started by SG_BIN (a wrapper that runs it under callgrind). Not
# collected by the suite: the file name does not start with test_.
import os
from conftest import make_pair, send, wait_for

N = int(os.environ.get("AB_N", "1000"))


def test_workload(daemon_factory, sink_factory, pki, workdir):
    d, sink = make_pair(daemon_factory, sink_factory, pki, workdir, hold="2s")
    for _ in range(N):
        send(d)
    wait_for(lambda: d.queue() == [], what="all delivered", timeout=600)
