#!/usr/bin/env python3
"""Builds a reproducible OCI image layout of busybox:1.35 from Debian's
busybox-static package.

Owns: the contents of the image (one gzip layer: /bin/busybox, a symlink per
applet, /etc/passwd, /etc/group, /www/index.html and the empty mount points)
and its OCI layout (oci-layout, index.json, blobs/sha256/...).
Must not touch: anything outside OUT_DIR and a sibling temporary folder; it
reads /bin/busybox (or $BUSYBOX) and installs nothing.

Usage: build.py OUT_DIR

The output is a pure function of the busybox binary and SOURCE_DATE_EPOCH
(default 0): entries are sorted, every mtime is the epoch, owners are 0:0
without names, the gzip header has no name and mtime 0, and JSON is written
with sorted keys and no whitespace, so two runs give byte-identical folders.
"""

import gzip
import hashlib
import io
import json
import os
import platform
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import time

TAG = "1.35"
BUSYBOX = os.environ.get("BUSYBOX", "/bin/busybox")
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"

PASSWD = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = b"root:x:0:\nnobody:x:65534:\n"
INDEX_HTML = b"""<!DOCTYPE html>
<html>
<head><title>Driftless</title></head>
<body><h1>It works</h1><p>Served by busybox httpd from a Driftless image.</p></body>
</html>
"""

# Mount points and empty folders, with their modes. /tmp is world-writable
# and sticky, /root private, as on any Debian system.
EMPTY_DIRS = {"dev": 0o755, "proc": 0o555, "sys": 0o555, "tmp": 0o1777, "root": 0o700}


def fail(message):
    print(f"build.py: {message}", file=sys.stderr)
    sys.exit(1)


def canonical_json(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def is_static_elf(data):
    """True when the ELF file has no PT_INTERP program header: a dynamic
    busybox (Debian's `busybox` package) would not run in an empty image."""
    if data[:4] != b"\x7fELF":
        return False
    is64 = data[4] == 2
    endian = "<" if data[5] == 1 else ">"
    if is64:
        phoff, = struct.unpack_from(endian + "Q", data, 0x20)
        phentsize, phnum = struct.unpack_from(endian + "HH", data, 0x36)
    else:
        phoff, = struct.unpack_from(endian + "I", data, 0x1C)
        phentsize, phnum = struct.unpack_from(endian + "HH", data, 0x2A)
    for i in range(phnum):
        p_type, = struct.unpack_from(endian + "I", data, phoff + i * phentsize)
        if p_type == 3:  # PT_INTERP
            return False
    return True


def oci_arch():
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(machine, machine)


def busybox_applets():
    out = subprocess.run([BUSYBOX, "--list-full"], check=True, capture_output=True, text=True).stdout
    # The list names the binary itself (bin/busybox); it is stored as a file.
    return sorted({line.strip() for line in out.splitlines() if line.strip() and line.strip() != "bin/busybox"})


def busybox_version():
    banner = subprocess.run([BUSYBOX, "--help"], capture_output=True, text=True).stdout
    first = banner.splitlines()[0] if banner else ""
    # "BusyBox v1.35.0 (Debian 1:1.35.0-4+deb12u1+b1) multi-call binary."
    return first.split()[1].lstrip("v") if first.startswith("BusyBox v") else ""


def layer_tar(epoch, binary, applets):
    """The layer as an uncompressed tar: every entry sorted by path, so the
    parents come before their children."""
    entries = {}  # path -> (type, mode, data or link target)

    def add_parents(path):
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            entries.setdefault("/".join(parts[:i]), (tarfile.DIRTYPE, 0o755, None))

    files = {
        "bin/busybox": (0o755, binary),
        "etc/passwd": (0o644, PASSWD),
        "etc/group": (0o644, GROUP),
        "www/index.html": (0o644, INDEX_HTML),
    }
    for path, (mode, data) in files.items():
        add_parents(path)
        entries[path] = (tarfile.REGTYPE, mode, data)
    for path, mode in EMPTY_DIRS.items():
        entries[path] = (tarfile.DIRTYPE, mode, None)
    for path in applets:
        add_parents(path)
        entries.setdefault(path, (tarfile.SYMTYPE, 0o777, "/bin/busybox"))

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for path in sorted(entries):
            kind, mode, payload = entries[path]
            info = tarfile.TarInfo(path)
            info.type, info.mode, info.mtime = kind, mode, epoch
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if kind == tarfile.REGTYPE:
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
            else:
                if kind == tarfile.SYMTYPE:
                    info.linkname = payload
                tar.addfile(info)
    return buf.getvalue()


def gzip_bytes(data):
    buf = io.BytesIO()
    # filename="" and mtime=0 keep the header free of anything run-specific.
    with gzip.GzipFile(filename="", fileobj=buf, mode="wb", compresslevel=9, mtime=0) as gz:
        gz.write(data)
    return buf.getvalue()


def build(out_dir, epoch):
    if not os.path.exists(BUSYBOX):
        fail(f"{BUSYBOX} not found: install Debian's busybox-static (scripts/build-images.sh does)")
    with open(BUSYBOX, "rb") as f:
        binary = f.read()
    if not is_static_elf(binary):
        fail(f"{BUSYBOX} is not a static ELF binary: install busybox-static, not busybox")
    version = busybox_version()
    if not version.startswith(TAG + "."):
        fail(f"{BUSYBOX} is busybox {version or 'of unknown version'}, not {TAG}")

    tar = layer_tar(epoch, binary, busybox_applets())
    layer = gzip_bytes(tar)
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
    config = canonical_json({
        "architecture": oci_arch(),
        "os": "linux",
        "created": created,
        "config": {"Env": [PATH_ENV], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256(tar)]},
        "history": [{"created": created, "created_by": "images/busybox/build.py (busybox-static " + version + ")"}],
    })
    manifest = canonical_json({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": MEDIA_LAYER_GZIP, "digest": sha256(layer), "size": len(layer)}],
    })
    index = canonical_json({
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [{
            "mediaType": MEDIA_MANIFEST,
            "digest": sha256(manifest),
            "size": len(manifest),
            "platform": {"architecture": oci_arch(), "os": "linux"},
            "annotations": {"org.opencontainers.image.ref.name": TAG},
        }],
    })

    # Built beside OUT_DIR and renamed into place, so OUT_DIR is either the
    # old layout or the whole new one, never half of it.
    out_dir = os.path.abspath(out_dir)
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".build-", dir=parent)
    try:
        blobs = os.path.join(staging, "blobs", "sha256")
        os.makedirs(blobs)
        for blob in (layer, config, manifest):
            with open(os.path.join(blobs, sha256(blob).split(":", 1)[1]), "wb") as f:
                f.write(blob)
        with open(os.path.join(staging, "oci-layout"), "wb") as f:
            f.write(canonical_json({"imageLayoutVersion": "1.0.0"}))
        with open(os.path.join(staging, "index.json"), "wb") as f:
            f.write(index)
        # mkdtemp makes the folder 0700; a layout is readable by all.
        for root, dirs, names in os.walk(staging):
            os.chmod(root, 0o755)
            for name in names:
                os.chmod(os.path.join(root, name), 0o644)
        if os.path.exists(out_dir):
            shutil.rmtree(out_dir)
        os.rename(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return sha256(manifest)


def main(argv):
    if len(argv) != 2 or argv[1].startswith("-"):
        print(__doc__.split("\n\n")[2], file=sys.stderr)
        return 2
    try:
        epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    except ValueError:
        fail("SOURCE_DATE_EPOCH must be an integer number of seconds")
    digest = build(argv[1], epoch)
    print(f"busybox:{TAG} {digest} -> {os.path.abspath(argv[1])}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
