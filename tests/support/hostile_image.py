#!/usr/bin/env python3
"""Writes an OCI image layout whose one layer attacks the node that unpacks it.

Usage: hostile_image.py KIND LAYOUT_DIR [ESCAPE_PATH]

The layer is made by Python's tarfile (not by Driftless's own code), as an
attacker's tool would make it; the manifest, config and index follow the
OCI image specification, with correct digests and diff_id, so the only
thing wrong is what the layer holds:

  traversal  a file named ../../../<ESCAPE_PATH>, climbing out of the layer
  absolute   a file named /<ESCAPE_PATH>
  symlink    a symlink `out` to the folder of ESCAPE_PATH, then a file
             written through it (`out/<name>`)
  hardlink   a hard link `passwd` to ../../../../etc/passwd
  bomb       a gzip of about 1 MiB that unpacks to a 1 GiB file of zeros
  devices    a block device node for 8:0 and a set-uid root file
             (accepted: the device cgroup and no_new_privs neutralise them)
"""

import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

BOMB_BYTES = 1 << 30


class Zeros(io.RawIOBase):
    """A readable stream of `n` zero bytes, never held in memory."""

    def __init__(self, n):
        self.left = n

    def readable(self):
        return True

    def readinto(self, buffer):
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


class Hashing(io.RawIOBase):
    """A writable stream that hashes and counts what passes, then forwards it."""

    def __init__(self, inner):
        self.inner = inner
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self):
        return True

    def write(self, data):
        self.sha.update(data)
        self.size += len(data)
        return self.inner.write(data)


def entry(name, kind=tarfile.REGTYPE, size=0, mode=0o644, link=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    info.mode = mode
    info.linkname = link
    info.mtime = 1000
    return info


def write_layer(kind, escape, out):
    """Writes the layer tar, gzip-compressed, to `out`; returns the uncompressed digest."""
    compressed = Hashing(out)
    with gzip.GzipFile(fileobj=compressed, mode="wb", compresslevel=6, mtime=0) as gz:
        plain = Hashing(gz)
        with tarfile.open(fileobj=plain, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            tar.addfile(entry("etc/", tarfile.DIRTYPE, mode=0o755))
            tar.addfile(entry("etc/hostname", size=6), io.BytesIO(b"intra\n"))
            if kind == "traversal":
                body = b"escaped\n"
                tar.addfile(entry("../../../" + escape.lstrip("/"), size=len(body)), io.BytesIO(body))
            elif kind == "absolute":
                body = b"escaped\n"
                tar.addfile(entry("/" + escape.lstrip("/"), size=len(body)), io.BytesIO(body))
            elif kind == "symlink":
                folder, name = os.path.split(escape)
                tar.addfile(entry("out", tarfile.SYMTYPE, mode=0o777, link=folder))
                body = b"escaped\n"
                tar.addfile(entry("out/" + name, size=len(body)), io.BytesIO(body))
            elif kind == "hardlink":
                tar.addfile(entry("passwd", tarfile.LNKTYPE, link="../../../../etc/passwd"))
            elif kind == "bomb":
                tar.addfile(entry("zeros", size=BOMB_BYTES), Zeros(BOMB_BYTES))
            elif kind == "devices":
                disk = entry("disk", tarfile.BLKTYPE, mode=0o666)
                disk.devmajor, disk.devminor = 8, 0
                tar.addfile(disk)
                body = b"#!/bin/sh\nid -u\n"
                tar.addfile(entry("suid", size=len(body), mode=0o4755), io.BytesIO(body))
            else:
                raise SystemExit(f"unknown kind {kind!r}")
    return "sha256:" + plain.sha.hexdigest(), "sha256:" + compressed.sha.hexdigest(), compressed.size


def main():
    kind, layout = sys.argv[1], sys.argv[2]
    escape = sys.argv[3] if len(sys.argv) > 3 else "/tmp/driftless-escape"
    blobs = os.path.join(layout, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)

    def put(data):
        digest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, digest), "wb") as f:
            f.write(data)
        return "sha256:" + digest, len(data)

    staging = os.path.join(blobs, "layer.partial")
    with open(staging, "wb") as f:
        diff_id, layer_digest, layer_size = write_layer(kind, escape, f)
    os.rename(staging, os.path.join(blobs, layer_digest.split(":")[1]))

    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }
    config_digest, config_size = put(json.dumps(config).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer_size}],
    }
    manifest_digest, manifest_size = put(json.dumps(manifest).encode())
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": manifest_size,
                "annotations": {"org.opencontainers.image.ref.name": kind},
            }
        ],
    }
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump(index, f)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)


if __name__ == "__main__":
    main()
