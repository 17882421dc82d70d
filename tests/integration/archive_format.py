"""archive_format.py - an independent reader of docs/archive-format.md, for
the tests: it walks the gzip members by MSIZE (or reads the zstd seek
table), reads the index object with nothing but the page's tables (zstd
blocks through the `zstd` tool), and checks both against the archive and
against the tar read by Python's tarfile.

Usage: python3 archive_format.py ARCHIVE [INDEX]
Prints "members N entries M" and exits 0, or names the first problem.
"""
import gzip, io, os, struct, subprocess, sys, tarfile, zlib


def fail(msg):
    sys.exit("archive_format: " + msg)


def gzip_members(data):
    """(coff, clen, uoff, ulen) of every member, walked by MSIZE; each
    member must decompress alone (zlib) to what its UOFF says."""
    out, at, uoff = [], 0, 0
    while at < len(data) or not out:
        h = data[at:at + 28]
        if h[:4] != b"\x1f\x8b\x08\x04" or h[10:16] != b"\x10\x00VF\x0c\x00":
            fail("member %d at byte %d: not a VF member" % (len(out), at))
        msize, moff = struct.unpack("<IQ", h[16:28])
        if moff != uoff:
            fail("member %d: UOFF %d, expected %d" % (len(out), moff, uoff))
        d = zlib.decompressobj(wbits=31)
        plain = d.decompress(data[at:at + msize])
        if not d.eof or d.unused_data:
            fail("member %d: MSIZE %d is not the member" % (len(out), msize))
        out.append((at, msize, uoff, len(plain)))
        at += msize
        uoff += len(plain)
    return out


def zstd_members(data):
    """The seek table, per the contrib seekable format."""
    frames, desc, magic = struct.unpack("<IBI", data[-9:])
    if magic != 0x8F92EAB1:
        fail("no seek table footer")
    size = 8 * frames + 9
    start = len(data) - size - 8
    smagic, fsize = struct.unpack("<II", data[start:start + 8])
    if smagic != 0x184D2A5E or fsize != size:
        fail("bad seek table skippable frame")
    out, coff, uoff = [], 0, 0
    for i in range(frames):
        c, u = struct.unpack("<II", data[start + 8 + 8 * i:start + 16 + 8 * i])
        out.append((coff, c, uoff, u))
        coff += c
        uoff += u
    if coff != start:
        fail("the frames end at %d, the seek table starts at %d" % (coff, start))
    return out


def crc(b):
    return zlib.crc32(b) & 0xffffffff


def block(idx, off):
    method, plen, rlen, c = struct.unpack("<B3xIII", idx[off:off + 16])
    payload = idx[off + 16:off + 16 + plen]
    if method == 0:
        raw = payload
    elif method == 1:
        raw = subprocess.run(["zstd", "-dcq"], input=payload, check=True,
                             stdout=subprocess.PIPE).stdout
    elif method == 2:
        raw = zlib.decompress(payload, wbits=-15)
    else:
        fail("block at %d: method %d" % (off, method))
    if len(raw) != rlen or crc(raw) != c:
        fail("block at %d: size or CRC-32 wrong" % off)
    return raw, 16 + plen


class Cur:
    def __init__(self, b):
        self.b, self.p = b, 0

    def varint(self):
        v, s = 0, 0
        while True:
            x = self.b[self.p]
            self.p += 1
            v |= (x & 0x7f) << s
            s += 7
            if not x & 0x80:
                return v

    def bytes(self):
        n = self.varint()
        self.p += n
        return self.b[self.p - n:self.p]

    def byte(self):
        self.p += 1
        return self.b[self.p - 1]


def read_index(idx):
    h = idx[:128]
    if h[:8] != b"VFSINDEX" or crc(h[:124]) != struct.unpack("<I", h[124:])[0]:
        fail("index header: magic or CRC-32")
    (ver, hlen, kind, codec, asize, ssize, nmem, nent, ndir, moff, doff,
     boff, nblk) = struct.unpack("<IIBB6xQQQQQQQQQ", h[8:96])
    if ver != 1 or hlen != 128:
        fail("index version %d" % ver)
    raw, _ = block(idx, moff)
    members = [struct.unpack("<QQQQ", raw[i:i + 32]) for i in range(0, len(raw), 32)]
    if len(members) != nmem:
        fail("member table: %d rows, header says %d" % (len(members), nmem))
    entries = []
    if kind == 1:
        raw, _ = block(idx, doff)
        c, dirs, prev = Cur(raw), [], b""
        for _ in range(ndir):
            shared = c.varint()
            path = prev[:shared] + c.bytes()
            dirs.append((path, c.varint()))
            prev = path
        raw, _ = block(idx, boff)
        rows = [struct.unpack("<QQII", raw[i:i + 24]) for i in range(0, len(raw), 24)]
        if len(rows) != nblk:
            fail("block table: %d rows, header says %d" % (len(rows), nblk))
        flat = []
        for off, first, size, n in rows:
            b, framed = block(idx, off)
            if framed != size or first != len(flat):
                fail("entry block at %d out of place" % off)
            c = Cur(b)
            for _ in range(n):
                e = {"name": c.bytes(), "type": chr(c.byte()), "flags": c.byte(),
                     "mode": c.varint(), "uid": c.varint(), "gid": c.varint(),
                     "size": c.varint(), "stored": c.varint()}
                z = c.varint()
                e["mtime"] = (z >> 1) ^ -(z & 1)
                e["nsec"] = c.varint()
                e["header_off"] = c.varint()
                e["data_off"] = e["header_off"] + c.varint()
                e["link"], e["uname"], e["gname"] = c.bytes(), c.bytes(), c.bytes()
                e["devmajor"], e["devminor"] = c.varint(), c.varint()
                flat.append(e)
            if c.p != len(b):
                fail("entry block at %d: bytes after its entries" % off)
        at = 0
        for path, n in dirs:
            for e in flat[at:at + n]:
                e["path"] = path + b"/" + e["name"] if path else e["name"]
            keys = [(path, e["name"]) for e in flat[at:at + n]]
            if keys != sorted(keys):
                fail("directory %r: not sorted by name" % path)
            at += n
        if at != nent or len(flat) != nent:
            fail("%d entries, the header says %d" % (len(flat), nent))
        if [p for p, _ in dirs] != sorted(p for p, _ in dirs):
            fail("directories not sorted")
        entries = flat
    return kind, asize, ssize, members, entries


def norm(name):
    b = os.fsencode(name)
    while b.startswith(b"./") or b.startswith(b"/"):
        b = b[2:] if b.startswith(b"./") else b[1:]
    if b == b".":
        b = b""
    return b.rstrip(b"/")


def main():
    arc = open(sys.argv[1], "rb").read()
    zst = arc[:4] == b"\x28\xb5\x2f\xfd"
    members = zstd_members(arc) if zst else gzip_members(arc)
    if len(sys.argv) < 3:
        print("members %d" % len(members))
        return
    kind, asize, ssize, imembers, entries = read_index(open(sys.argv[2], "rb").read())
    if asize != len(arc):
        fail("index: archive size %d, the archive has %d" % (asize, len(arc)))
    if [tuple(m) for m in imembers] != members:
        fail("index: the member table is not the archive's members")
    if not zst:
        plain = gzip.decompress(arc)
    else:
        plain = subprocess.run(["zstd", "-dcq"], input=arc, check=True,
                               stdout=subprocess.PIPE).stdout
    if ssize != len(plain):
        fail("index: stream size %d, the stream has %d" % (ssize, len(plain)))
    seen = 0
    if kind == 1:
        f = io.BytesIO(plain)
        for e in entries:
            f.seek(e["header_off"])
            t = tarfile.open(fileobj=f, mode="r:")
            ti = t.next()
            if ti is None or norm(ti.name) != e["path"]:
                fail("entry %r: the tar at %d holds %r" % (e["path"], e["header_off"],
                                                          ti and ti.name))
            if ti.issparse():
                # GNU sparse 1.0: the data begins with the map, which
                # tarfile reads and steps over; the index points at the map
                if not e["flags"] & 1 or ti.size != e["size"]:
                    fail("entry %r: not marked sparse, or not its real size" % e["path"])
                if e["data_off"] >= ti.offset_data or (ti.offset_data - e["data_off"]) % 512:
                    fail("entry %r: the sparse map is not at %d" % (e["path"], e["data_off"]))
            elif ti.offset_data != e["data_off"]:
                fail("entry %r: data at %d, the index says %d" % (e["path"], ti.offset_data, e["data_off"]))
            if (ti.mode, ti.uid, ti.gid, int(ti.mtime)) != (e["mode"], e["uid"], e["gid"], e["mtime"]):
                fail("entry %r: mode/uid/gid/mtime differ" % e["path"])
            if ti.islnk() and norm(ti.linkname) != e["link"]:
                fail("entry %r: hard link target differs" % e["path"])
            if (ti.ischr() or ti.isblk()) and (ti.devmajor, ti.devminor) != (e["devmajor"], e["devminor"]):
                fail("entry %r: device numbers differ" % e["path"])
            if ti.isreg() and not ti.issparse() and ti.size != e["stored"]:
                fail("entry %r: size %d, the index says %d" % (e["path"], ti.size, e["stored"]))
            if ti.issym() and os.fsencode(ti.linkname) != e["link"]:
                fail("entry %r: link differs" % e["path"])
            seen += 1
        t = tarfile.open(fileobj=io.BytesIO(plain), mode="r:")
        if seen != len(t.getmembers()):
            fail("%d entries in the index, %d in the tar" % (seen, len(t.getmembers())))
    print("members %d entries %d" % (len(members), seen))


main()
