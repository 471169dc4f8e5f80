#!/usr/bin/env python3
"""The daemon's code in the order it runs, for the linker (issue 21).

Usage: bench/link_order.py PERF_DATA BINARY > daemon/link-order.txt

Reads a `perf record --call-graph dwarf` profile of the daemon (made by
bench/link_order.sh) and prints one input section name per line,
`.text.<symbol>`, for every function of BINARY found in any sample or on
any sampled stack, the most sampled first. gold's
`--section-ordering-file` lays the functions out in that order, so the
code a running daemon uses sits together: the kernel maps a binary's code
64 KiB around each page fault, and spread over the whole 35 MB of `.text`
the code a round of pod churn touched kept nearly all of it resident
(docs/benchmarks.md). Functions the profile never saw keep the linker's
order after these. A stale list costs nothing but the gain: names no
longer in the binary are ignored.
"""

import collections
import os
import subprocess
import sys


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    data, binary = sys.argv[1], sys.argv[2]
    name = os.path.basename(binary)
    # Mangled names, as the sections are named; every frame of every stack.
    script = subprocess.run(
        ["perf", "script", "-i", data, "--no-demangle", "-F", "ip,sym,dso"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    counts = collections.Counter()
    for line in script.splitlines():
        fields = line.split()
        # "ADDRESS SYMBOL+OFF (DSO)"; unresolved frames have no symbol.
        if len(fields) < 3 or not fields[-1].startswith("(") or os.path.basename(fields[-1].strip("()")) != name:
            continue
        symbol = fields[1].split("+0x")[0]
        if symbol and symbol != "[unknown]":
            counts[symbol] += 1
    # Only names the binary defines as functions of its own.
    defined = set()
    nm = subprocess.run(["nm", "--defined-only", binary], check=True, capture_output=True, text=True).stdout
    for line in nm.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[1] in "tT":
            defined.add(fields[2])
    ordered = [s for s, _ in counts.most_common() if s in defined]
    for symbol in ordered:
        print(f".text.{symbol}")
    print(f"link_order: {len(ordered)} functions from {sum(counts.values())} frames", file=sys.stderr)


if __name__ == "__main__":
    main()
