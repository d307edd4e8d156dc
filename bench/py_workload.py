"""Allocation-heavy pure Python, for running under PYTHONMALLOC=malloc.

With PYTHONMALLOC=malloc every object goes through malloc/free, so this is
a realistic mix of tiny objects (ints, tuples, short strings), dict and
list growth (realloc), and a few larger buffers.  It prints only a
checksum that does not depend on the allocator or on hash randomisation.
"""
import sys
import zlib

SCALE = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0


def rng(seed):
    x = seed
    while True:
        x = (x * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        yield x >> 33


def words(r, n):
    out = []
    for _ in range(n):
        v = next(r)
        out.append("w%x_%s" % (v & 0xFFFF, "x" * (v % 24)))
    return out


def main():
    r = rng(12345)
    crc = 0
    rounds = max(1, int(3 * SCALE))
    for rnd in range(rounds):
        # dict of records, built and queried
        table = {}
        for i, w in enumerate(words(r, 60000)):
            rec = table.get(w)
            if rec is None:
                table[w] = {"name": w, "count": 1, "refs": [i]}
            else:
                rec["count"] += 1
                rec["refs"].append(i)
        # string building and splitting
        parts = []
        for w, rec in table.items():
            parts.append("%s=%d:%s" % (w, rec["count"], ",".join(map(str, rec["refs"][:4]))))
        blob = ";".join(parts)
        crc = zlib.crc32(blob.encode(), crc)
        fields = [p.split("=") for p in blob.split(";")]
        crc = zlib.crc32(str(len(fields)).encode(), crc)
        # lists of tuples, sorted, sliced, discarded
        pairs = [(next(r) % 1000, str(i)) for i in range(80000)]
        pairs.sort()
        crc = zlib.crc32(repr(pairs[::997]).encode(), crc)
        # nested short-lived containers
        acc = 0
        for i in range(40000):
            obj = {"a": [i, i + 1, i + 2], "b": (str(i), i * 2.5), "c": {"d": i}}
            acc += len(obj["a"]) + obj["c"]["d"] + len(obj["b"][0])
        crc = zlib.crc32(str(acc + rnd).encode(), crc)
        # bytearray growth
        buf = bytearray()
        for i in range(20000):
            buf += b"%d," % i
        crc = zlib.crc32(bytes(buf), crc)
        del table, parts, blob, fields, pairs, buf
    print("%08x" % crc)


main()
