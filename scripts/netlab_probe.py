#!/usr/bin/python3
"""netlab_probe.py: measurements on the network lab of scripts/netlab.sh (standard
library only, so it runs in any lab namespace).

  netlab_probe.py echo-server ADDR PORT
      accepts one TCP connection and echoes what it reads until EOF (20 s bound)
  netlab_probe.py rtt ADDR PORT [COUNT]
      connects to an echo server (retrying for 5 s), makes COUNT (default 200)
      1-byte round trips with TCP_NODELAY after 20 unrecorded ones, prints
      "rtt_median_s=... rtt_min_s=..." on stdout
  netlab_probe.py exchange BYTES [SECONDS]
      run as every rank of `netlab.sh ... -- netlab_probe.py exchange BYTES`: ranks 0
      and 1 each send BYTES to the other at the same time over one TCP connection
      (the lab's addresses come from NETLAB_ADDRS, the rank from OMPI_COMM_WORLD_RANK),
      then make 50 1-byte round trips; each prints one line
      "rank=R sent_bytes=... send_s=... recv_bytes=... recv_s=... rtt_median_s=..."
      where send_s/recv_s run from the common start (a 1-byte handshake) to the last
      byte acknowledged by the peer (sender) or received (receiver). Other ranks idle.
      SECONDS bounds the whole exchange (default 60).
"""
import os
import socket
import statistics
import sys
import threading
import time

PORT = 5201


def connect(addr, port, deadline):
    while True:
        try:
            s = socket.create_connection((addr, port), timeout=5)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return s
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def listen(addr, port):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((addr, port))
    srv.listen(1)
    return srv


def recv_exact(s, n):
    got = bytearray()
    while len(got) < n:
        b = s.recv(min(n - len(got), 1 << 20))
        if not b:
            raise OSError("peer closed after %d of %d bytes" % (len(got), n))
        got += b
    return got


def pingpong(s, count, leader):
    times = []
    for i in range(count + 20):
        t0 = time.perf_counter()
        if leader:
            s.sendall(b"p")
            recv_exact(s, 1)
        else:
            recv_exact(s, 1)
            s.sendall(b"p")
        if i >= 20:
            times.append(time.perf_counter() - t0)
    return times


def echo_server(addr, port):
    srv = listen(addr, port)
    srv.settimeout(20)
    c, _ = srv.accept()
    c.settimeout(20)
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        b = c.recv(65536)
        if not b:
            break
        c.sendall(b)
    c.close()
    srv.close()


def rtt(addr, port, count):
    s = connect(addr, port, time.monotonic() + 5)
    s.settimeout(20)
    t = pingpong(s, count, True)
    s.close()
    print("rtt_median_s=%.9f rtt_min_s=%.9f" % (statistics.median(t), min(t)))


def exchange(nbytes, seconds):
    rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", "-1"))
    addrs = os.environ.get("NETLAB_ADDRS", "").split()
    if rank < 0 or len(addrs) < 2:
        sys.exit("netlab_probe: exchange needs OMPI_COMM_WORLD_RANK and NETLAB_ADDRS "
                 "with 2 or more addresses (run it under scripts/netlab.sh --ranks 2+)")
    if rank > 1:
        return
    if rank == 0:
        srv = listen(addrs[0], PORT)
        srv.settimeout(seconds)
        s, _ = srv.accept()
        srv.close()
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    else:
        s = connect(addrs[0], PORT, time.monotonic() + seconds)
    s.settimeout(seconds)
    pingpong(s, 0, rank == 1)  # handshake: both sides start together (+- RTT/2)
    out = {}
    payload = bytes(1 << 20)

    def sender():
        left = nbytes
        while left > 0:
            m = min(left, len(payload))
            s.sendall(payload[:m])
            left -= m
        recv_exact(s_ack, 1)  # the peer has all of it
        out["send_s"] = time.perf_counter() - t0

    # a second connection carries the receiver's "got everything" byte so that it
    # does not queue behind the bulk data of the other direction
    if rank == 0:
        srv = listen(addrs[0], PORT + 1)
        srv.settimeout(seconds)
        s_ack, _ = srv.accept()
        srv.close()
    else:
        s_ack = connect(addrs[0], PORT + 1, time.monotonic() + seconds)
    s_ack.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s_ack.settimeout(seconds)
    pingpong(s_ack, 0, rank == 1)
    t0 = time.perf_counter()
    th = threading.Thread(target=sender)
    th.start()
    got = 0
    while got < nbytes:
        b = s.recv(min(nbytes - got, 1 << 20))
        if not b:
            sys.exit("netlab_probe: peer closed after %d of %d bytes" % (got, nbytes))
        got += len(b)
    recv_s = time.perf_counter() - t0
    s_ack.sendall(b"d")
    th.join(seconds)
    if "send_s" not in out:
        sys.exit("netlab_probe: rank %d: the send did not complete in %g s" % (rank, seconds))
    t = pingpong(s_ack, 50, rank == 1)
    s.close()
    s_ack.close()
    print("rank=%d sent_bytes=%d send_s=%.6f recv_bytes=%d recv_s=%.6f rtt_median_s=%.9f"
          % (rank, nbytes, out["send_s"], got, recv_s, statistics.median(t)), flush=True)


def main(argv):
    if len(argv) >= 4 and argv[1] == "echo-server":
        echo_server(argv[2], int(argv[3]))
    elif len(argv) >= 4 and argv[1] == "rtt":
        rtt(argv[2], int(argv[3]), int(argv[4]) if len(argv) > 4 else 200)
    elif len(argv) >= 3 and argv[1] == "exchange":
        exchange(int(argv[2]), float(argv[3]) if len(argv) > 3 else 60.0)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
