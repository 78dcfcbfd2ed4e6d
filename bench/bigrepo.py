"""Writes a git repository with a long history for the direct-mode
benchmark, through `git fast-import`: COMMITS commits of a module
github.com/bench/big, a tag v1.N.0 every TAG_EVERY commits, and BLOBS
large random files (BLOB_MB each) added early and deleted later, so the
history weighs far more than any one version."""
import os, subprocess, sys

path, commits, tag_every, blobs, blob_mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
subprocess.run(["git", "init", "--quiet", "--bare", path], check=True)
imp = subprocess.Popen(["git", "fast-import", "--quiet"], cwd=path, stdin=subprocess.PIPE)
w = imp.stdin


def data(b):
    w.write(b"data %d\n" % len(b))
    w.write(b)
    w.write(b"\n")


ts = 1_600_000_000
tags = 0
for n in range(1, commits + 1):
    w.write(b"commit refs/heads/main\n")
    w.write(b"mark :%d\n" % n)
    w.write(b"committer Bench <bench@example.com> %d +0000\n" % (ts + n * 60))
    data(b"change %d" % n)
    if n > 1:
        w.write(b"from :%d\n" % (n - 1))
    if n == 1:
        w.write(b"M 100644 inline go.mod\n")
        data(b"module github.com/bench/big\n\ngo 1.21\n")
    w.write(b"M 100644 inline big.go\n")
    data(b"package big\n\nconst N = %d\n" % n)
    if n <= blobs:
        w.write(b"M 100644 inline assets/blob%d.bin\n" % n)
        data(os.urandom(blob_mb << 20))
    if n == blobs + 1:
        w.write(b"D assets\n")
    if n % tag_every == 0:
        w.write(b"reset refs/tags/v1.%d.0\nfrom :%d\n\n" % (tags, n))
        tags += 1
w.close()
if imp.wait() != 0:
    sys.exit("git fast-import failed")
print(f"{commits} commits, {tags} tags (v1.0.0 … v1.{tags - 1}.0)")
