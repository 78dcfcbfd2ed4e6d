"""Writes a synthetic Go module cache (GOMODCACHE layout) for the doctor
benchmark: MODULES module versions, each a zip in cache/download with its
.ziphash, .info and .mod, and its extracted tree, about TOTAL_MB in all
(half zips, half trees; random, incompressible contents)."""
import base64, hashlib, io, json, os, sys, zipfile

root, total_mb, modules = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
per_module = (total_mb << 20) // 2 // modules
files_per_module = 8
file_size = max(1, per_module // files_per_module)
rnd = os.urandom(1 << 20)


def content(seed, size):
    out = bytearray()
    i = seed
    while len(out) < size:
        chunk = rnd[(i * 7919) % len(rnd):][: size - len(out)]
        out += chunk
        i += 1
    return bytes(out)


for m in range(modules):
    path, version = f"bench.example/m{m}", "v1.0.0"
    prefix = f"{path}@{version}/"
    files = {"go.mod": f"module {path}\n".encode()}
    for f in range(files_per_module):
        files[f"f{f}.bin"] = content(m * 31 + f, file_size)
    dl = os.path.join(root, "cache/download", path, "@v")
    os.makedirs(dl, exist_ok=True)
    with zipfile.ZipFile(os.path.join(dl, version + ".zip"), "w", zipfile.ZIP_STORED) as z:
        for name, data in files.items():
            z.writestr(prefix + name, data)
    summary = "".join(
        f"{hashlib.sha256(files[n]).hexdigest()}  {prefix}{n}\n" for n in sorted(files)
    )
    h1 = "h1:" + base64.b64encode(hashlib.sha256(summary.encode()).digest()).decode()
    open(os.path.join(dl, version + ".ziphash"), "w").write(h1)
    open(os.path.join(dl, version + ".info"), "w").write(json.dumps({"Version": version}))
    open(os.path.join(dl, version + ".mod"), "wb").write(files["go.mod"])
    tree = os.path.join(root, f"{path}@{version}")
    os.makedirs(tree, exist_ok=True)
    for name, data in files.items():
        open(os.path.join(tree, name), "wb").write(data)
