#!/usr/bin/env python3
"""mqtt_probe.py - a raw-socket MQTT 3.1.1 / 5 client (standard library only) for measuring what a broker
does, packet by packet: it acknowledges nothing by itself. A test (or a person) decides for each incoming
PUBLISH whether to answer PUBACK, PUBREC or nothing, and for each PUBREL whether to answer PUBCOMP, so that a
session can be left with exactly the unacknowledged state to study (a redelivery after a crash of the
subscriber, a broker restart, a QoS 2 exchange stopped half-way). abort() closes the socket without
DISCONNECT, which is what the broker sees when the subscriber is killed with SIGKILL.

As a module: Probe(port, client_id, version=4|5, ...).connect(), .subscribe(), .publish(), .recv(),
.puback(pid) / .pubrec(pid) / .pubcomp(pid), .abort(). Packets come back as Packet objects with the fields
a redelivery study needs (type, packet id, DUP, QoS, topic, payload).

As a command, it subscribes and prints one line per packet received, acknowledging as told:
  mqtt_probe.py -p PORT -i ID [-V 4|5] [--clean] [--expiry S] [--receive-max N] [--ack none|puback|pubrec|all]
                [--idle SECONDS] sub TOPIC QOS
  mqtt_probe.py -p PORT [-V 4|5] [-q QOS] pub TOPIC COUNT [--first K]   (payloads "msg-K", K = first, ...)
"""
import argparse
import select
import socket
import struct
import sys
import time

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 10, 11, 12, 13, 14
NAMES = {CONNACK: "CONNACK", PUBLISH: "PUBLISH", PUBACK: "PUBACK", PUBREC: "PUBREC", PUBREL: "PUBREL",
         PUBCOMP: "PUBCOMP", SUBACK: "SUBACK", UNSUBACK: "UNSUBACK", PINGRESP: "PINGRESP",
         DISCONNECT: "DISCONNECT"}


class ProbeError(Exception):
    pass


def _varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


def _packet(first, body):
    return bytes([first]) + _varint(len(body)) + body


class Packet:
    """One packet from the broker. For PUBLISH: qos, dup, retain, topic, pid (None at QoS 0), payload; for the
    acknowledgements: pid (and reason, MQTT 5); for CONNACK: session_present, rc; for SUBACK: pid, codes."""

    def __init__(self, ptype, flags, body, version):
        self.type = ptype
        self.flags = flags
        self.pid = None
        self.dup = False
        self.qos = 0
        self.retain = False
        self.topic = None
        self.payload = None
        self.reason = 0
        if ptype == PUBLISH:
            self.dup = bool(flags & 8)
            self.qos = (flags >> 1) & 3
            self.retain = bool(flags & 1)
            (tlen,) = struct.unpack_from("!H", body, 0)
            self.topic = body[2:2 + tlen].decode(errors="replace")
            off = 2 + tlen
            if self.qos:
                (self.pid,) = struct.unpack_from("!H", body, off)
                off += 2
            if version == 5:
                plen, off = _read_varint(body, off)
                off += plen
            self.payload = body[off:]
        elif ptype in (PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK):
            (self.pid,) = struct.unpack_from("!H", body, 0)
            if len(body) > 2:
                self.reason = body[2]
        elif ptype == CONNACK:
            self.session_present = bool(body[0] & 1)
            self.rc = body[1]
        elif ptype == SUBACK:
            (self.pid,) = struct.unpack_from("!H", body, 0)
            off = 2
            if version == 5:
                plen, off = _read_varint(body, off)
                off += plen
            self.codes = list(body[off:])

    def __str__(self):
        name = NAMES.get(self.type, "type%d" % self.type)
        if self.type == PUBLISH:
            return "PUBLISH pid=%s qos=%d dup=%d retain=%d topic=%s payload=%s" % (
                self.pid, self.qos, self.dup, self.retain, self.topic, self.payload.decode(errors="replace"))
        if self.type == CONNACK:
            return "CONNACK session_present=%d rc=%d" % (self.session_present, self.rc)
        if self.type == SUBACK:
            return "SUBACK pid=%d codes=%s" % (self.pid, self.codes)
        return "%s pid=%s reason=%d" % (name, self.pid, self.reason)


def _read_varint(buf, off):
    n, mult = 0, 1
    while True:
        b = buf[off]
        off += 1
        n += (b & 0x7F) * mult
        if not b & 0x80:
            return n, off
        mult *= 128


class Probe:
    """One MQTT connection. version is the protocol level (4 = MQTT 3.1.1, 5 = MQTT 5). clean is the clean
    session (3.1.1) or clean start (5) flag; expiry is MQTT 5's session expiry interval in seconds (None: not
    sent, i.e. 0); receive_max is MQTT 5's receive maximum (None: not sent, i.e. 65535)."""

    def __init__(self, port, client_id, version=4, clean=False, expiry=None, receive_max=None, keepalive=60,
                 host="127.0.0.1"):
        self.port, self.host = port, host
        self.client_id = client_id
        self.version = version
        self.clean = clean
        self.expiry = expiry
        self.receive_max = receive_max
        self.keepalive = keepalive
        self.sock = None
        self.buf = b""
        self.next_pid = 1
        self.session_present = None

    # --- connection -------------------------------------------------------------------------------------
    def connect(self, timeout=10):
        """Sends CONNECT and waits for CONNACK; returns session present. Raises ProbeError on a refusal."""
        self.sock = socket.create_connection((self.host, self.port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        flags = 0x02 if self.clean else 0
        body = _str("MQTT") + bytes([self.version, flags]) + struct.pack("!H", self.keepalive)
        if self.version == 5:
            props = b""
            if self.expiry is not None:
                props += b"\x11" + struct.pack("!I", self.expiry)
            if self.receive_max is not None:
                props += b"\x21" + struct.pack("!H", self.receive_max)
            body += _varint(len(props)) + props
        body += _str(self.client_id)
        self.sock.sendall(_packet(CONNECT << 4, body))
        p = self.recv(timeout)
        if p is None or p.type != CONNACK:
            raise ProbeError("no CONNACK (got %s)" % p)
        if p.rc != 0:
            raise ProbeError("CONNACK refused the connection: rc %d" % p.rc)
        self.session_present = p.session_present
        return p.session_present

    def disconnect(self):
        """A clean DISCONNECT (MQTT 5: reason 0, session kept for its expiry interval), then close."""
        self.sock.sendall(_packet(DISCONNECT << 4, b""))
        self.sock.close()
        self.sock = None

    def abort(self):
        """Closes the socket without DISCONNECT, as the kernel does for a process killed with SIGKILL."""
        if self.sock:
            self.sock.close()
            self.sock = None

    # --- sending ----------------------------------------------------------------------------------------
    def _pid(self):
        pid = self.next_pid
        self.next_pid = pid % 65535 + 1
        return pid

    def subscribe(self, topic, qos, timeout=10):
        """Subscribes; returns the granted QoS (or the failure code, 0x80 and above)."""
        pid = self._pid()
        body = struct.pack("!H", pid) + (b"\x00" if self.version == 5 else b"") + _str(topic) + bytes([qos])
        self.sock.sendall(_packet((SUBSCRIBE << 4) | 2, body))
        p = self.expect(SUBACK, timeout)
        return p.codes[0]

    def publish(self, topic, payload, qos=1, wait=True, timeout=10):
        """Publishes one message; with wait, completes the QoS 1/2 exchange before returning."""
        payload = payload.encode() if isinstance(payload, str) else payload
        body = _str(topic)
        pid = None
        if qos:
            pid = self._pid()
            body += struct.pack("!H", pid)
        if self.version == 5:
            body += b"\x00"
        self.sock.sendall(_packet((PUBLISH << 4) | (qos << 1), body + payload))
        if wait and qos == 1:
            self.expect(PUBACK, timeout)
        elif wait and qos == 2:
            self.expect(PUBREC, timeout)
            self._ack(PUBREL, pid)
            self.expect(PUBCOMP, timeout)
        return pid

    def _ack(self, ptype, pid):
        first = (ptype << 4) | (2 if ptype == PUBREL else 0)
        self.sock.sendall(_packet(first, struct.pack("!H", pid)))

    def puback(self, pid):
        self._ack(PUBACK, pid)

    def pubrec(self, pid):
        self._ack(PUBREC, pid)

    def pubrel(self, pid):
        self._ack(PUBREL, pid)

    def pubcomp(self, pid):
        self._ack(PUBCOMP, pid)

    # --- receiving --------------------------------------------------------------------------------------
    def _parse(self):
        """One complete packet from the buffer, or None."""
        if len(self.buf) < 2:
            return None
        n, mult, off = 0, 1, 1
        while True:
            if off >= len(self.buf):
                return None
            b = self.buf[off]
            off += 1
            n += (b & 0x7F) * mult
            if not b & 0x80:
                break
            mult *= 128
        if len(self.buf) < off + n:
            return None
        first, body = self.buf[0], self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return Packet(first >> 4, first & 0x0F, body, self.version)

    def recv(self, timeout):
        """The next packet, or None if none arrives within timeout seconds. Raises ProbeError when the broker
        closes the connection."""
        deadline = time.monotonic() + timeout
        while True:
            p = self._parse()
            if p is not None:
                return p
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                return None
            data = self.sock.recv(65536)
            if not data:
                raise ProbeError("the broker closed the connection")
            self.buf += data

    def expect(self, ptype, timeout):
        """Waits for a packet of type ptype; other packets in between are an error (the probe is used where the
        exchange is known)."""
        p = self.recv(timeout)
        if p is None:
            raise ProbeError("timed out waiting for %s" % NAMES.get(ptype, ptype))
        if p.type != ptype:
            raise ProbeError("expected %s, got %s" % (NAMES.get(ptype, ptype), p))
        return p

    def collect(self, idle, limit=None, on_packet=None):
        """Packets received until none arrives for idle seconds (or limit packets have arrived); on_packet(p),
        if given, runs for each one as it arrives (to acknowledge it, for example)."""
        out = []
        while limit is None or len(out) < limit:
            p = self.recv(idle)
            if p is None:
                break
            out.append(p)
            if on_packet:
                on_packet(p)
        return out


def _ack_policy(probe, policy):
    """The on_packet callback of the command line's --ack: none, puback (QoS 1), pubrec (QoS 2's first half
    only) or all (complete every exchange)."""

    def on_packet(p):
        if p.type == PUBLISH and p.qos == 1 and policy in ("puback", "all"):
            probe.puback(p.pid)
        elif p.type == PUBLISH and p.qos == 2 and policy in ("pubrec", "all"):
            probe.pubrec(p.pid)
        elif p.type == PUBREL and policy == "all":
            probe.pubcomp(p.pid)

    return on_packet


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-p", "--port", type=int, required=True)
    ap.add_argument("-H", "--host", default="127.0.0.1")
    ap.add_argument("-i", "--id", default="mqtt-probe")
    ap.add_argument("-V", "--version", type=int, choices=(4, 5), default=4)
    ap.add_argument("--clean", action="store_true", help="clean session (3.1.1) / clean start (5)")
    ap.add_argument("--expiry", type=int, help="MQTT 5 session expiry interval, seconds")
    ap.add_argument("--receive-max", type=int, help="MQTT 5 receive maximum")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sub")
    s.add_argument("topic")
    s.add_argument("qos", type=int, choices=(0, 1, 2))
    s.add_argument("--ack", choices=("none", "puback", "pubrec", "all"), default="none")
    s.add_argument("--idle", type=float, default=2.0, help="stop after this many seconds without a packet")
    s.add_argument("--no-subscribe", action="store_true", help="only resume the session")
    p = sub.add_parser("pub")
    p.add_argument("topic")
    p.add_argument("count", type=int)
    p.add_argument("-q", "--qos", type=int, choices=(0, 1, 2), default=1)
    p.add_argument("--first", type=int, default=0)
    a = ap.parse_args(argv)

    probe = Probe(a.port, a.id, a.version, a.clean, a.expiry, a.receive_max, host=a.host)
    print("CONNACK session_present=%d" % probe.connect(), flush=True)
    if a.cmd == "pub":
        for k in range(a.first, a.first + a.count):
            probe.publish(a.topic, "msg-%d" % k, a.qos)
        probe.disconnect()
        return 0
    if not a.no_subscribe:
        print("SUBACK granted=%d" % probe.subscribe(a.topic, a.qos), flush=True)
    probe.collect(a.idle, on_packet=lambda pk: (print(pk, flush=True), _ack_policy(probe, a.ack)(pk)))
    probe.abort()
    return 0


if __name__ == "__main__":
    sys.exit(main())
