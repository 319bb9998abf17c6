#!/usr/bin/env python3
"""The socket ends of tests/policy_nft.rs, run inside the test's network
namespaces: `python3 firewall_probe.py client|server|receiver|sender ARGS`.
"""

import errno
import json
import select
import socket
import struct
import sys
import time


def client(args):
    """Opens every socket of a round at once and reports, per flow, whether the TCP
    handshake completed or the UDP datagram was answered (through the router both
    ways)."""
    flows = json.load(sys.stdin)
    poller, socks, res = select.poll(), {}, [""] * len(flows)
    def udp_send(s, dst, port):
        try:
            s.sendto(b"portmatrix policy probe", (dst, port))
        except OSError as e:
            return errno.errorcode.get(e.errno, str(e.errno))
        return ""
    for i, (fam, proto, src, dst, port) in enumerate(flows):
        af = socket.AF_INET6 if fam == 6 else socket.AF_INET
        kind = socket.SOCK_STREAM if proto == "TCP" else socket.SOCK_DGRAM
        s = socket.socket(af, kind)
        s.setblocking(False)
        s.bind((src, 0))
        if proto == "TCP":
            err = s.connect_ex((dst, port))
            if err not in (0, errno.EINPROGRESS):
                res[i] = errno.errorcode.get(err, str(err))
                continue
            poller.register(s, select.POLLOUT)
        else:
            res[i] = udp_send(s, dst, port)
            poller.register(s, select.POLLIN)
        socks[s.fileno()] = (i, s, proto, dst, port)
    start = time.monotonic()
    deadline, resent = start + float(args[0]), False
    while socks and time.monotonic() < deadline:
        if not resent and time.monotonic() > start + 0.7:
            resent = True
            for (i, s, proto, dst, port) in socks.values():
                if proto == "UDP":
                    udp_send(s, dst, port)
        for fd, ev in poller.poll(50):
            i, s, proto, _, _ = socks.pop(fd)
            poller.unregister(fd)
            if proto == "TCP":
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                res[i] = "passed" if err == 0 else errno.errorcode.get(err, str(err))
            else:
                try:
                    s.recv(100)
                    res[i] = "passed"
                except OSError as e:
                    res[i] = errno.errorcode.get(e.errno, str(e.errno))
    print(json.dumps([r or "timeout" for r in res]))


def server(args):
    """Listens on every (family, transport, address, port) given: accepts and closes
    TCP connections (on all addresses), echoes UDP datagrams from the address they
    were sent to (so the reply is the flow's, for conntrack)."""
    poller, socks = select.poll(), {}
    for fam, proto, addr, port in json.load(open(args[0])):
        af = socket.AF_INET6 if fam == 6 else socket.AF_INET
        s = socket.socket(af, socket.SOCK_STREAM if proto == "TCP" else socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == 6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((addr, port))
        if proto == "TCP":
            s.listen(256)
        s.setblocking(False)
        poller.register(s, select.POLLIN)
        socks[s.fileno()] = (s, proto)
    print("ready", flush=True)
    while True:
        for fd, ev in poller.poll(1000):
            s, proto = socks[fd]
            try:
                if proto == "TCP":
                    conn, _ = s.accept()
                    conn.close()
                else:
                    data, addr = s.recvfrom(2048)
                    s.sendto(data, addr)
            except OSError:
                pass


def receiver(args):
    """Joins each multicast group on the interface and counts the datagrams per
    (sender, group, port) until stdin closes."""
    joins = json.load(open(args[0]))
    ifindex = socket.if_nametoindex(args[1])
    poller, socks, counts = select.poll(), {}, {}
    for group, port in joins:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((group, port))
        mreq = struct.pack("4s4si", socket.inet_aton(group), socket.inet_aton("0.0.0.0"), ifindex)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        s.setblocking(False)
        poller.register(s, select.POLLIN)
        socks[s.fileno()] = (s, group, port)
    poller.register(sys.stdin, select.POLLIN | select.POLLHUP)
    print("ready", flush=True)
    while True:
        events = poller.poll(1000)
        if any(fd == sys.stdin.fileno() for fd, _ in events):
            break
        for fd, ev in events:
            s, group, port = socks[fd]
            data, (src, _) = s.recvfrom(2048)
            key = "%s %s %d" % (src, group, port)
            counts[key] = counts.get(key, 0) + 1
    print(json.dumps(counts), flush=True)


def sender(args):
    """Sends a few datagrams from each source address to each (group, port)."""
    for src, group, port in json.load(sys.stdin):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((src, 0))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(src))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 4)
        for _ in range(3):
            s.sendto(b"rsm statistics", (group, port))
            time.sleep(0.01)


if __name__ == "__main__":
    {"client": client, "server": server, "receiver": receiver, "sender": sender}[sys.argv[1]](sys.argv[2:])
