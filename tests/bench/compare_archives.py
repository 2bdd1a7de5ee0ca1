"""Says whether two TorchScript archives hold the same records (tensors and code).

The archive's root folder is named after the file it was saved to, so records
are compared by their names below it. bertq's manifest (extra/bertq_manifest.json,
which Python's torch.jit.load ignores) is left out, and so is PyTorch 2.x's
.data/serialization_id, a hash of all record names and CRC-32s, which therefore
differs whenever the manifest is there. Exit 0 if identical, 1 if not.
"""
import sys
import zipfile


def records(path):
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        root = names[0].split("/")[0] + "/"
        recs = {n[len(root):]: z.read(n) for n in names}
    recs.pop("extra/bertq_manifest.json", None)
    recs.pop(".data/serialization_id", None)
    return recs


def main():
    a, b = records(sys.argv[1]), records(sys.argv[2])
    if sorted(a) != sorted(b):
        print("different record names:", sorted(set(a) ^ set(b)))
        return 1
    differ = [k for k in sorted(a) if a[k] != b[k]]
    if differ:
        print("records differ:", ", ".join(differ))
        return 1
    print("identical: %d records" % len(a))
    return 0


if __name__ == "__main__":
    sys.exit(main())
