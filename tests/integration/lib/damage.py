"""damage.py - small, independent ways to damage a COPY of a stopped mqlog data directory, for the tests of
what mqlog does with local damage (issue 11). Each function changes one thing and says in its docstring
what; none of them knows about the others. Segment layout facts (RecordBatch v2: BaseOffset int64 at 0,
Length int32 at 8, big-endian) are in docs and REFERENCE.md.
"""
import os
import shutil
import struct

BATCH_HEADER = 61  # bytes before the first record of a RecordBatch v2


def copy_data_dir(src, dst):
    """Copies the data directory src to dst (which must not exist), keeping file sizes and modes."""
    shutil.copytree(src, dst, symlinks=True)
    return dst


def segments(part_dir):
    """The segment files (*.log) of a partition directory, oldest first, as full paths."""
    names = sorted(n for n in os.listdir(part_dir) if n.endswith(".log") and len(n) == 24)
    return [os.path.join(part_dir, n) for n in names]


def batches(seg_path):
    """[(position, base_offset, length, last_offset_delta, records)] of the batches of a segment file, read
    from their headers (stops at the first header that does not fit in the file)."""
    out = []
    with open(seg_path, "rb") as f:
        data = f.read()
    pos = 0
    while pos + BATCH_HEADER <= len(data):
        base, length = struct.unpack_from(">qi", data, pos)
        (delta,) = struct.unpack_from(">i", data, pos + 23)
        (count,) = struct.unpack_from(">i", data, pos + 57)
        if length < BATCH_HEADER - 12 or pos + 12 + length > len(data):
            break
        out.append((pos, base, length, delta, count))
        pos += 12 + length
    return out


def flip_length_byte(seg_path, index, mask=0x10):
    """XORs the lowest byte of the Length field of batch `index` with mask. Returns the batch's
    (position, base_offset, length, last_offset_delta, records) as it was."""
    b = batches(seg_path)[index]
    with open(seg_path, "r+b") as f:
        f.seek(b[0] + 11)
        byte = f.read(1)[0]
        f.seek(b[0] + 11)
        f.write(bytes([byte ^ mask]))
    return b


def set_base_offset(seg_path, index, value):
    """Writes value into the BaseOffset field of batch `index` (a field the CRC does not cover). Returns the
    batch as it was."""
    b = batches(seg_path)[index]
    with open(seg_path, "r+b") as f:
        f.seek(b[0])
        f.write(struct.pack(">q", value))
    return b


def empty_file(path):
    """Truncates path to 0 bytes (an emptied file)."""
    with open(path, "r+b") as f:
        f.truncate(0)


def remove_sqlite(path):
    """Removes an SQLite database and its -wal and -shm companions (a deleted catalog.db)."""
    for p in (path, path + "-wal", path + "-shm"):
        if os.path.exists(p):
            os.unlink(p)


def empty_sqlite(path):
    """Empties an SQLite database: the file truncated to 0 bytes, its -wal and -shm removed (a WAL left
    beside an empty file would be replayed into it)."""
    empty_file(path)
    for p in (path + "-wal", path + "-shm"):
        if os.path.exists(p):
            os.unlink(p)


# ---- damage to segments in the middle of a partition (what readers do with it: test_store_damage.py) ----


def base_offset(seg_path):
    """The base offset of a segment, from its file name."""
    return int(os.path.basename(seg_path)[:20])


def offsets(seg_path):
    """The offsets a segment file holds, as a set (from its batch headers)."""
    return {o for _, base, _, delta, _ in batches(seg_path) for o in range(base, base + delta + 1)}


def cut(seg_path):
    """Truncates a segment in the middle of its middle batch. Returns the offsets that became unreadable
    (that batch's and every later one's in the file)."""
    bs = batches(seg_path)
    pos, _, length, _, _ = bs[len(bs) // 2]
    os.truncate(seg_path, pos + (12 + length) // 2)
    return {o for p, base, _, delta, _ in bs if p >= pos for o in range(base, base + delta + 1)}


def remove_segment(seg_path):
    """Deletes a segment file with its index files."""
    for p in (seg_path, seg_path[:-4] + ".index", seg_path[:-4] + ".timeindex"):
        if os.path.exists(p):
            os.unlink(p)


def flip_record_byte(seg_path, index=None):
    """Flips one byte in the records of batch `index` (default: the middle one), where its CRC covers it.
    Returns (position of the batch, the set of its offsets)."""
    bs = batches(seg_path)
    pos, base, length, delta, _ = bs[len(bs) // 2 if index is None else index]
    at = pos + BATCH_HEADER + (12 + length - BATCH_HEADER) // 2
    with open(seg_path, "r+b") as f:
        f.seek(at)
        byte = f.read(1)[0]
        f.seek(at)
        f.write(bytes([byte ^ 0xFF]))
    return pos, set(range(base, base + delta + 1))


def replace_by_dir(path):
    """Replaces a file (or nothing) by an empty directory of the same name."""
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.unlink(path)
    os.mkdir(path)
