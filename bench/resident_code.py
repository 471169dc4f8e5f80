#!/usr/bin/env python3
"""Which code of a running process is resident, by crate (issue 21).

Usage (root): bench/resident_code.py PID [TOP]

Reads the executable mappings of the process's own binary from
/proc/PID/maps, which of their pages are present from /proc/PID/pagemap
(bit 63), and the binary's function symbols from `nm -S -C`; each
function's bytes on present pages are summed by the crate its demangled
name starts with. Prints the mapping's size, what is resident, and the TOP
crates (default 25). A page counts in RSS whether the code on it ran or was
mapped around a page that did (the kernel's fault-around), so this says
where resident code sits, not what ran.
"""

import collections
import re
import struct
import subprocess
import sys

PAGE = 4096


def executable_ranges(pid):
    binary = None
    ranges = []
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            fields = line.split()
            if len(fields) < 6 or "x" not in fields[1]:
                continue
            path = fields[5]
            if binary is None and path.startswith("/") and not path.startswith(("/usr/lib", "/lib")):
                binary = path
            if path != binary:
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            offset = int(fields[2], 16)
            ranges.append((start, end, offset))
    if binary is None:
        sys.exit(f"no executable mapping of a binary in /proc/{pid}/maps")
    return binary, ranges


def present_pages(pid, start, end):
    present = set()
    with open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        pagemap.seek(start // PAGE * 8)
        data = pagemap.read((end - start) // PAGE * 8)
    for index in range(len(data) // 8):
        (entry,) = struct.unpack_from("<Q", data, index * 8)
        if entry >> 63:
            present.add(start + index * PAGE)
    return present


def crate_of(name):
    name = re.sub(r"^(<|_<|&mut |&)+", "", name)
    match = re.match(r"([A-Za-z_][A-Za-z0-9_]*)::", name)
    return match.group(1) if match else "(other)"


def main():
    pid = int(sys.argv[1])
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    binary, ranges = executable_ranges(pid)
    # A present page's place in the file is its offset in the mapping plus
    # the mapping's file offset; its address as `nm` gives addresses is
    # that plus the load segment's (virtual address - file offset).
    segments = []
    for line in subprocess.run(["readelf", "-lW", binary], capture_output=True, text=True, check=True).stdout.splitlines():
        fields = line.split()
        if fields[:1] == ["LOAD"]:
            offset, vaddr, size = int(fields[1], 16), int(fields[2], 16), int(fields[4], 16)
            segments.append((offset, offset + size, vaddr - offset))
    present = set()
    mapped = 0
    for start, end, offset in ranges:
        mapped += end - start
        for page in present_pages(pid, start, end):
            in_file = page - start + offset
            shift = next((s for lo, hi, s in segments if lo <= in_file + PAGE - 1 and in_file < hi), 0)
            present.add(in_file + shift)
    by_crate = collections.Counter()
    symbols = subprocess.run(["nm", "-S", "-C", "--defined-only", binary], capture_output=True, text=True, check=True).stdout
    for line in symbols.splitlines():
        fields = line.split(None, 3)
        if len(fields) < 4 or fields[2] not in "tTwW":
            continue
        address, size = int(fields[0], 16), int(fields[1], 16)
        page = address // PAGE * PAGE
        while page < address + size:
            if page in present:
                lo, hi = max(address, page), min(address + size, page + PAGE)
                by_crate[crate_of(fields[3])] += hi - lo
            page += PAGE
    resident = len(present) * PAGE
    print(f"{binary}: executable mappings {mapped / 2**20:.1f} MiB, resident {resident / 2**20:.1f} MiB")
    print(f"| crate | resident code |")
    print(f"|---|---|")
    for crate, size in by_crate.most_common(top):
        print(f"| {crate} | {size / 2**20:.2f} MiB |")


if __name__ == "__main__":
    main()
