#!/usr/bin/env python3
# batch_interop.py - the kafka-python side of test_batch's interoperability tests.
#
# kafka-python's record code is what its consumers run on fetched bytes, so it is an independent check that
# mqlog's stored batches are what a Kafka client expects. Run by tests/unit/test_batch.c:
#
#   batch_interop.py build SPEC OUT   build one batch from SPEC with DefaultRecordBatchBuilder, write it to OUT
#   batch_interop.py dump IN          decode the batches in IN as a consumer does (MemoryRecords), print them
#   batch_interop.py varints IN       print kafka-python's zig-zag varint encoding of each number in IN
#
# Record lines (SPEC input and dump output) are "TS KEY VALUE NHEADERS [HKEY HVALUE]...", where each byte
# field is "-" for null or "x" followed by its bytes in hex ("x" alone is empty). dump prefixes record lines
# with the record's offset and writes one "batch ..." line of header fields before each batch's records.
import sys

from kafka.record.default_records import DefaultRecordBatchBuilder
from kafka.record.memory_records import MemoryRecords
from kafka.record.util import encode_varint


def field_in(tok):
    if tok == "-":
        return None
    if not tok.startswith("x"):
        raise ValueError("bad field %r" % tok)
    return bytes.fromhex(tok[1:])


def field_out(b):
    return "-" if b is None else "x" + bytes(b).hex()


def build(spec_path, out_path):
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=0, producer_id=-1,
                                        producer_epoch=-1, base_sequence=-1, batch_size=1 << 30)
    with open(spec_path) as f:
        for offset_delta, line in enumerate(f):
            tok = line.split()
            ts, key, value, nh = int(tok[0]), field_in(tok[1]), field_in(tok[2]), int(tok[3])
            headers = [(field_in(tok[4 + 2 * i]).decode("utf-8"), field_in(tok[5 + 2 * i])) for i in range(nh)]
            if builder.append(offset_delta, timestamp=ts, key=key, value=value, headers=headers) is None:
                raise RuntimeError("record %d did not fit" % offset_delta)
    with open(out_path, "wb") as f:
        f.write(builder.build())


def dump(in_path):
    with open(in_path, "rb") as f:
        records = MemoryRecords(f.read())
    out = []
    while records.has_next():
        batch = records.next_batch()
        h = batch._header_data  # the raw header tuple: only some fields have public properties
        crc_ok = batch.validate_crc()  # must precede iteration
        out.append("batch base_offset=%d length=%d epoch=%d magic=%d crc_ok=%d attributes=%d "
                   "last_offset_delta=%d first_ts=%d max_ts=%d producer_id=%d producer_epoch=%d "
                   "base_sequence=%d count=%d" % (h[0], h[1], h[2], h[3], int(crc_ok), h[5], h[6], h[7], h[8],
                                                  h[9], h[10], h[11], h[12]))
        for r in batch:
            fields = [str(r.offset), str(r.timestamp), field_out(r.key), field_out(r.value), str(len(r.headers))]
            for hk, hv in r.headers:
                fields += [field_out(hk.encode("utf-8")), field_out(hv)]
            out.append(" ".join(fields))
    if records.valid_bytes() != records.size_in_bytes():
        out.append("trailing %d bytes" % (records.size_in_bytes() - records.valid_bytes()))
    sys.stdout.write("\n".join(out) + "\n")


def varints(in_path):
    with open(in_path) as f:
        for line in f:
            buf = bytearray()
            encode_varint(int(line), buf.append)
            print(buf.hex())


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "build":
        build(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "dump":
        dump(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "varints":
        varints(sys.argv[2])
    else:
        sys.exit("usage: batch_interop.py build SPEC OUT | dump IN | varints IN")


if __name__ == "__main__":
    main()
