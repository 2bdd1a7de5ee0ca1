"""Damaged and hostile variants of models/submodules.pt, for bertq's archive checks.

Called by generate.py (build(dir, source)). Each file is small and deterministic; what each
one tests is in HOSTILE below and in testdata/README.md. LibTorch 1.13.1 itself loads most of
them without a word (it checks no CRC-32 and trusts the pickle's element counts).
"""
import io
import json
import os
import struct
import zipfile
import zlib

PFX = "submodules/"

# name -> what bertq must say (a substring of its message); the tests use this table too.
HOSTILE = {
    "code_crc.pt": "record code/__torch__/testmodels.py is corrupted (its CRC-32 does not match)",
    "code_bitflip.pt": "record code/__torch__/testmodels.py is corrupted",
    "data_crc.pt": "record data/0 is corrupted (its CRC-32 does not match)",
    "short_tensor.pt": "tensor record data/0 holds 2032 bytes, but its storage needs 2048",
    "empty_tensor.pt": "tensor record data/0 holds 0 bytes, but its storage needs 2048",
    "missing_tensor.pt": "refers to tensor record data/0, which the archive does not hold",
    "numel_lie.pt": "tensor record data/0 holds 2048 bytes, but its storage needs 16384",
    "offset_lie.pt": "reaches element 767 of storage 0, which has 512",
    "version_huge.pt": "has a corrupted version record (\"99999999999999999999",
    "version_text.pt": "has a corrupted version record (\"3x",
    "version_new.pt": "file format version 99 is not one this LibTorch",
    "all_deflated.pt": "tensor record data/0 is compressed",
    "bomb_declared.pt": "would inflate to more than 256 MiB",
    "bomb_lying.pt": "inflates to more than the 100 bytes it declares",
    "newline_flood.pt": "code/__torch__/testmodels.py",
    "memo_jump.pt": "skips memo ids",
    "encrypted.pt": "is encrypted",
}


def _records(src):
    z = zipfile.ZipFile(src)
    return [(i.filename, z.read(i.filename), i.compress_type) for i in z.infolist()]


def _write(path, records):
    with zipfile.ZipFile(path, "w") as z:
        for name, data, method in records:
            zi = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            zi.compress_type = method
            zi.create_system = 0
            z.writestr(zi, data)


def _entries(buf):
    """name -> (local header offset, central directory entry offset)."""
    eocd = buf.rfind(b"PK\x05\x06")
    cd = struct.unpack_from("<I", buf, eocd + 16)[0]
    out = {}
    p = cd
    while buf[p:p + 4] == b"PK\x01\x02":
        nl, el, cl = struct.unpack_from("<HHH", buf, p + 28)
        local = struct.unpack_from("<I", buf, p + 42)[0]
        out[bytes(buf[p + 46:p + 46 + nl]).decode()] = (local, p)
        p += 46 + nl + el + cl
    return out


def _patch(path, fn):
    with open(path, "rb") as f:
        buf = bytearray(f.read())
    fn(buf, _entries(buf))
    with open(path, "wb") as f:
        f.write(bytes(buf))


def _variant(out, recs, replace=None, drop=(), method=None, add=()):
    rs = []
    for n, d, m in recs:
        if n in drop:
            continue
        rs.append((n, (replace or {}).get(n, d), method(n, m) if method else m))
    rs.extend(add)
    _write(out, rs)


def build(outdir, src):
    os.makedirs(outdir, exist_ok=True)
    for f in os.listdir(outdir):
        os.remove(os.path.join(outdir, f))
    recs = _records(src)
    orig = {n: d for n, d, _ in recs}
    code, d0, d1, pkl = PFX + "code/__torch__/testmodels.py", PFX + "data/0", PFX + "data/1", PFX + "data.pkl"
    path = lambda n: os.path.join(outdir, n)  # noqa: E731

    # One changed line of code, with the original CRC-32 (LibTorch runs the changed code).
    changed = orig[code].replace(b"return (fc).forward((sub).forward(x, ), )",
                                 b"return torch.neg((fc).forward((sub).forward(x, ), ))")
    assert changed != orig[code]
    _variant(path("code_crc.pt"), recs, replace={code: changed})

    def set_crc(name, crc):
        def fn(buf, ent):
            local, central = ent[name]
            struct.pack_into("<I", buf, local + 14, crc)
            struct.pack_into("<I", buf, central + 16, crc)
        return fn
    _patch(path("code_crc.pt"), set_crc(code, zlib.crc32(orig[code])))

    # One bit flipped inside the deflated code (sizes and CRC-32 as written).
    _variant(path("code_bitflip.pt"), recs)

    def flip(buf, ent):
        local, _ = ent[code]
        nl, el = struct.unpack_from("<HH", buf, local + 26)
        buf[local + 30 + nl + el + 40] ^= 0x08
    _patch(path("code_bitflip.pt"), flip)

    # A flipped sign bit in a weight, with the original CRC-32.
    flipped = bytearray(orig[d0])
    flipped[1003] ^= 0x80
    _variant(path("data_crc.pt"), recs, replace={d0: bytes(flipped)})
    _patch(path("data_crc.pt"), set_crc(d0, zlib.crc32(orig[d0])))

    # A tensor record shorter than its tensor, another padded so the sizes add up.
    _variant(path("short_tensor.pt"), recs, replace={d0: orig[d0][:-16], d1: orig[d1] + orig[d0][-16:]})
    _variant(path("empty_tensor.pt"), recs, replace={d0: b""})
    _variant(path("missing_tensor.pt"), recs, drop=(d0,))

    # data.pkl lies about the first storage's element count, or the first tensor's offset.
    p = orig[pkl]
    numel = b"X\x01\x00\x00\x000q"  # the storage key "0" and its memo
    i = p.index(numel)
    # ('storage', FloatStorage, '0', 'cpu', 512): after the key come 'cpu' and the count.
    j = p.index(b"M\x00\x02", i)  # BININT2 512
    _variant(path("numel_lie.pt"), recs, replace={pkl: p[:j] + b"M\x00\x10" + p[j + 3:]})
    k = p.index(b"K\x00", j)  # BININT1 0: the tensor's storage offset
    _variant(path("offset_lie.pt"), recs, replace={pkl: p[:k] + b"K\xff" + p[k + 2:]})

    vname = PFX + "version"
    assert vname in orig
    _variant(path("version_huge.pt"), recs, replace={vname: b"99999999999999999999\n"})
    _variant(path("version_text.pt"), recs, replace={vname: b"3x\n"})
    _variant(path("version_new.pt"), recs, replace={vname: b"99\n"})

    # Every record deflated, as a zip tool would repack it (LibTorch loads it).
    _variant(path("all_deflated.pt"), recs, method=lambda n, m: zipfile.ZIP_DEFLATED)

    # A record that declares 1 GiB (its data is small: the check is on the declared size).
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    small = bomb.compress(bytes(1000)) + bomb.flush()
    _variant(path("bomb_declared.pt"), recs, add=[(PFX + "extra/bomb", bytes(1000), zipfile.ZIP_DEFLATED)])

    def declare(name, size):
        def fn(buf, ent):
            local, central = ent[name]
            struct.pack_into("<I", buf, local + 22, size)
            struct.pack_into("<I", buf, central + 24, size)
        return fn
    _patch(path("bomb_declared.pt"), declare(PFX + "extra/bomb", 1 << 30))
    # ... and one that declares 100 bytes but inflates to 1 MB.
    _variant(path("bomb_lying.pt"), recs, add=[(PFX + "extra/bomb", bytes(1 << 20), zipfile.ZIP_DEFLATED)])
    _patch(path("bomb_lying.pt"), declare(PFX + "extra/bomb", 100))
    assert small  # (kept for the record: 1000 zeros deflate to a few bytes)

    # 40000 blank lines at the end of the code: LibTorch 1.13's parser overflows its stack.
    _variant(path("newline_flood.pt"), recs, replace={code: orig[code] + b"\n" * 40000})

    # A memo id far beyond the last: LibTorch would allocate every entry up to it.
    q = orig[pkl]
    m = q.index(b"q\x00")  # the first BINPUT
    _variant(path("memo_jump.pt"), recs, replace={pkl: q[:m] + b"r\xff\xff\xff\x0f" + q[m + 2:]})

    # The encryption flag on one record.
    _variant(path("encrypted.pt"), recs)

    def encrypt(buf, ent):
        local, central = ent[d1]
        struct.pack_into("<H", buf, local + 6, 1)
        struct.pack_into("<H", buf, central + 8, 1)
    _patch(path("encrypted.pt"), encrypt)

    for name in HOSTILE:
        assert os.path.exists(path(name)), name

    # Models that say bertq wrote them with another LibTorch (the pipeline's
    # provenance check, after the archive checks): one from a newer LibTorch,
    # and a prepared one from another release line.
    def manifest(version, mode):
        return json.dumps({
            "schema": "bertq-manifest/2", "bertq_version": "0.2.0", "libtorch_version": version,
            "libtorch_package": "", "engine": "onednn", "mode": mode, "input_sha256": "0" * 64,
            "options": {}, "modules": []}, indent=1).encode()
    for name, version, mode in (("manifest_newer.pt", "99.0.0", "quantize"),
                                ("manifest_prepared_old.pt", "1.0.0", "prepare")):
        _variant(os.path.join(outdir, "..", name), recs,
                 add=[(PFX + "extra/bertq_manifest.json", manifest(version, mode), zipfile.ZIP_STORED)])
