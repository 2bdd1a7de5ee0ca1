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
    # What bertq checks must be what LibTorch reads: one folder, one record per name (LibTorch
    # looks names up without regard to case), one central directory.
    "dup_record.pt": "it holds two records named data/1",
    "case_twin.pt": "which LibTorch's lookup (without regard to case) cannot tell apart",
    "other_root.pt": "entry big/data/0 is outside the archive's folder submodules",
    "decoy_root.pt": "entry submodules/data/0 is outside the archive's folder x",
    "code_upper_flood.pt": "its code record CODE/__torch__/testmodels.py holds more than 4096 blank lines",
    "zip64_disagree.pt": "its zip64 end record and its end record describe different central directories",
    "nested_tuples.pt": "nests values more than 1000 deep",
    "self_holding.pt": "builds a value that holds itself",
    # A bertq manifest of 200,000 nested arrays (nlohmann's recursive copy overflowed).
    "manifest_nested.pt": "nested more than 16 levels deep",
}
# Refused when the model is loaded or its manifest read, after the archive checks passed.
AFTER_ARCHIVE_CHECK = ["manifest_nested.pt", "version_new.pt"]
# Needs a quantized model (build's `quantized` argument).
HOSTILE_QUANTIZED = {
    "short_scales.pt": "is quantized per channel with 32 channels, but holds 16 scales and 16 zero points",
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


def _zip64_disagree(out, src):
    """A clean archive whose zip64 end record (reached through a locator, as LibTorch's reader
    follows it) points to a second central directory, while the classic end record points to
    the first: one directory for a checker that reads the classic record, another for LibTorch."""
    with open(src, "rb") as f:
        buf = f.read()
    eocd = buf.rfind(b"PK\x05\x06")
    count, cd_size, cd_off = struct.unpack_from("<HII", buf, eocd + 10)
    cd = buf[cd_off:cd_off + cd_size]
    body = buf[:eocd]
    second = len(body)
    rec_pos = second + len(cd)
    rec = struct.pack("<IQHHIIQQQQ", 0x06064b50, 44, 45, 45, 0, 0, count, count, len(cd), second)
    loc = struct.pack("<IIQI", 0x07064b50, 0, rec_pos, 1)
    with open(out, "wb") as f:
        f.write(body + cd + rec + loc + buf[eocd:])


def _nested_pickle(depth):
    """A pickle of `depth` nested 1-tuples around None: tiny once deflated."""
    return b"\x80\x02N" + b"\x85" * depth + b"."


def build(outdir, src, quantized=None):
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

    # Duplicate names, a case twin, a record outside the folder, a decoy folder first.
    _variant(path("dup_record.pt"), recs, add=[(d1, bytes(len(orig[d1])), zipfile.ZIP_STORED)])
    _variant(path("case_twin.pt"), recs, add=[(PFX + "DATA/0", orig[d0][:4], zipfile.ZIP_STORED)])
    _variant(path("other_root.pt"), recs, add=[("big/data/0", orig[d0][:4], zipfile.ZIP_STORED)])
    _write(path("decoy_root.pt"), [("x/data.pkl", orig[pkl], zipfile.ZIP_STORED)] + recs)
    # The code record under another case (LibTorch still finds it), holding a blank-line flood.
    _variant(path("code_upper_flood.pt"), recs, drop=(code,),
             add=[(PFX + "CODE/__torch__/testmodels.py", orig[code] + b"\n" * 40000, zipfile.ZIP_DEFLATED)])
    _zip64_disagree(path("zip64_disagree.pt"), src)
    # data.pkl nesting 200,000 tuples (LibTorch's recursive destruction overflows its stack),
    # and one holding itself (a list appended to itself through the memo).
    _variant(path("nested_tuples.pt"), recs, replace={pkl: _nested_pickle(200000)},
             method=lambda n, m: zipfile.ZIP_DEFLATED if n == pkl else m)
    _variant(path("self_holding.pt"), recs, replace={pkl: b"\x80\x02]q\x00h\x00a."})
    _variant(path("manifest_nested.pt"), recs,
             add=[(PFX + "extra/bertq_manifest.json", b"[" * 200000 + b"]" * 200000, zipfile.ZIP_DEFLATED)])

    # A quantized Linear whose per-channel scales and zero points are half as long as its
    # channels: the pickle's tensors fit their storages, but a prepack reads 32 of each.
    if quantized is not None:
        qrecs = _records(quantized)
        qpfx = qrecs[0][0].split("/")[0] + "/"
        qpkl = dict((n, d) for n, d, _ in qrecs)[qpfx + "data.pkl"]
        # The first per-channel scales: _rebuild_tensor_v2(storage, 0, (32,), (1,), ...) of a
        # DoubleStorage; its size tuple is MARK, BININT1 32, TUPLE. Halve it, and the zero points'
        # (a LongStorage). The storages keep their 32 elements: every extent check passes.
        patched = bytearray(qpkl)
        for storage in (b"DoubleStorage", b"LongStorage"):
            i = patched.index(storage)
            j = patched.index(b"(K\x20t", i)
            patched[j + 2] = 16
        _variant(path("short_scales.pt"), qrecs, replace={qpfx + "data.pkl": bytes(patched)})

    for name in list(HOSTILE) + (list(HOSTILE_QUANTIZED) if quantized else []):
        assert os.path.exists(path(name)), name
    # The table the C++ tests read (tests/archive/test_archive.cpp, tests/cli/test_archive.cpp).
    with open(path("expected.json"), "w") as f:
        json.dump({"cases": dict(HOSTILE, **(HOSTILE_QUANTIZED if quantized else {})),
                   "refused_after_archive_check": AFTER_ARCHIVE_CHECK}, f, indent=1, sort_keys=True)
        f.write("\n")

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
