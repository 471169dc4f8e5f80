#!/usr/bin/env python3
"""Captures the queries dig sends (the DNS fuzz target's seeds): a UDP
socket on 127.0.0.1 takes each query dig makes and answers it with its own
bytes flagged as a response, so dig returns at once.

Usage: bench/dns_queries.py OUT_DIR
"""
import os
import socket
import subprocess
import sys

QUERIES = [
    ["my-svc.my-namespace.svc.cluster.local", "A"],
    ["my-svc.my-namespace.svc.cluster.local", "AAAA"],
    ["_http._tcp.my-svc.my-namespace.svc.cluster.local", "SRV"],
    ["busybox-1.subdomain.default.svc.cluster.local", "A"],
    ["subdomain.default.svc.cluster.local", "ANY", "+noedns", "+notcp"],
    ["my-service.prod.svc.cluster.local", "CNAME", "+bufsize=4096"],
    ["5.0.244.10.in-addr.arpa", "PTR"],
    ["cluster.local", "SOA", "+dnssec"],
    ["nothing.default.svc.cluster.local", "TXT", "+nocookie"],
    ["example.org", "MX", "+norecurse"],
]


def main(out):
    os.makedirs(out, exist_ok=True)
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.settimeout(10)
    port = server.getsockname()[1]
    for i, query in enumerate(QUERIES):
        dig = subprocess.Popen(["dig", "@127.0.0.1", "-p", str(port), "+tries=1", "+time=2", *query],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        data, peer = server.recvfrom(4096)
        with open(os.path.join(out, f"dig{i}"), "wb") as f:
            f.write(data)
        server.sendto(data[:2] + bytes([data[2] | 0x80]) + data[3:], peer)
        dig.wait(10)


if __name__ == "__main__":
    main(sys.argv[1])
