#!/usr/bin/env python3
"""Writes the benchmarks' GOPROXY tree into the directory given: 2000 small
modules (example.com/mN: .info, .mod) and zips of random bytes
(example.com/big): 16 KiB, 256 KiB, 1, 1.5, 3, 8, 20, 50 and 100 MiB."""
import os
import sys

root = sys.argv[1]
for i in range(2000):
    d = os.path.join(root, f"example.com/m{i}/@v")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "v1.0.0.info"), "w") as f:
        f.write('{"Version":"v1.0.0","Time":"2024-01-01T00:00:00Z"}')
    with open(os.path.join(d, "v1.0.0.mod"), "w") as f:
        f.write(f"module example.com/m{i}\n\ngo 1.21\n")
d = os.path.join(root, "example.com/big/@v")
os.makedirs(d, exist_ok=True)
ZIPS = (
    ("v0.1.0.zip", 16 << 10),
    ("v0.2.0.zip", 256 << 10),
    ("v1.0.0.zip", 1 << 20),
    ("v1.1.0.zip", 3 << 19),
    ("v1.2.0.zip", 3 << 20),
    ("v1.3.0.zip", 8 << 20),
    ("v1.4.0.zip", 20 << 20),
    ("v50.0.0+incompatible.zip", 50 << 20),
    ("v1.5.0.zip", 100 << 20),
)
for name, size in ZIPS:
    with open(os.path.join(d, name), "wb") as f:
        f.write(os.urandom(size))
