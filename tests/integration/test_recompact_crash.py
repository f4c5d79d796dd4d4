"""test_recompact_crash.py MQLOG WRITER - the recompaction crash test (issue 13).

WRITER (tests/tools/mq_recompact_writer.c) appends numbered records to topic rc in 64 KiB segments while a
thread of it recompacts each segment as soon as it is closed. The test kills it with SIGKILL at random
moments, KILLS times, restarting it each time (its open recovers the partition and finishes or drops the
swap a kill interrupted), then lets a last run stop cleanly. Meanwhile one `mqlog consume -f` reads the
partition from the beginning in another process, across every kill and swap.

Checked: the kills did land inside rewrites (leftover .cleaned or .swap files seen after some of them);
nothing a writer reported durable is lost; `mqlog verify` is clean; offsets 0..end-1 are all there, each
record the one its offset names (value r<offset>, key k<offset % 17>), read by the follower and by a
fresh `mqlog consume` from the start and from the middle (through the rewritten indexes); and most of the
log was rewritten (it is much smaller than the records written as they were). About 15 s.
"""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

MQLOG, WRITER = sys.argv[1], sys.argv[2]
KILLS = 12
FINAL = 60000  # the last run stops cleanly once this many records are durable


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def leftovers(pdir):
    return sorted(f for f in os.listdir(pdir) if f.endswith(".cleaned") or f.endswith(".swap"))


class Follower:
    """mqlog consume -f over rc-0, its lines gathered by a thread."""

    def __init__(self, data):
        self.p = subprocess.Popen([MQLOG, "consume", "-d", data, "rc", "-p", "0", "-f", "--format", "%o %k %s\n"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.records = []
        self.t = threading.Thread(target=self.read, daemon=True)
        self.t.start()

    def read(self):
        for line in self.p.stdout:
            self.records.append(line.split())

    def wait_for(self, count, timeout):
        deadline = time.monotonic() + timeout
        while len(self.records) < count and time.monotonic() < deadline and self.p.poll() is None:
            time.sleep(0.05)  # polling the reader thread's progress, under the deadline
        return len(self.records) >= count

    def stop(self):
        self.p.send_signal(signal.SIGINT)
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.t.join(timeout=10)
        return self.p.returncode, self.p.stderr.read()


def check_records(records, first, end, who):
    if len(records) != end - first:
        # where the sequence first goes wrong: a repeat, a gap, or a record of another offset
        at = next((i for i, r in enumerate(records) if not r or r[0] != str(first + i)), len(records))
        fail("%s: %d records, expected %d (offsets %d..%d); from line %d: %r" %
             (who, len(records), end - first, first, end - 1, at, [r[:1] for r in records[max(0, at - 3):at + 5]]))
    for i, r in enumerate(records):
        o = first + i
        if r != [str(o), "k%d" % (o % 17), "r%d" % o]:
            fail("%s: record %d is %r" % (who, o, r))


def run_writer(data, errpath, until=None):
    """The writer, its log lines in errpath (a file: a pipe nobody reads would stall it)."""
    args = [WRITER, data] + ([str(until)] if until is not None else [])
    with open(errpath, "w") as err:
        return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err, text=True)


def read(path):
    with open(path) as f:
        return f.read()


def main():
    random.seed(os.environ.get("MQ_TEST_SEED", str(time.time())))
    tmp = tempfile.mkdtemp(prefix="mqlog-rccrash-")
    data = os.path.join(tmp, "data")
    pdir = os.path.join(data, "rc-0")
    t0 = time.monotonic()
    follower = None
    durable, rewrites, interrupted, completed = 0, 0, 0, 0
    try:
        # A first short run creates rc-0; the writer drives the log alone, without the catalog mqlogd keeps,
        # so `mqlog verify --repair` adds the topic's row, which mqlog consume looks the topic up in.
        w = run_writer(data, os.path.join(tmp, "writer-first.log"), 1)
        w.communicate(timeout=60)
        check(w.returncode == 0, "the first writer exited %d" % w.returncode)
        p = subprocess.run([MQLOG, "verify", "--repair", "-d", data], capture_output=True, text=True)
        check(p.returncode == 0, "mqlog verify --repair exited %d: %s%s" % (p.returncode, p.stdout, p.stderr))
        follower = Follower(data)
        k = 0
        while k < KILLS or (interrupted == 0 and k < 3 * KILLS):  # more kills while none hit a rewrite
            errpath = os.path.join(tmp, "writer-%d.log" % k)
            w = run_writer(data, errpath)
            # Run until this process has rewritten a segment or two, then kill it at a random moment.
            want = random.randint(1, 3)
            deadline = time.monotonic() + 30
            f = None
            for line in w.stdout:
                f = line.split()
                check(int(f[1]) >= durable, "run %d: durable end %s below the %d reported before" % (k, f[1], durable))
                durable = int(f[1])
                if int(f[3]) >= want or time.monotonic() > deadline:
                    break
            check(f is not None, "run %d: the writer printed nothing: %s" % (k, read(errpath)))
            check(int(f[3]) >= 1, "run %d: no segment rewritten in 30 s" % k)
            rewrites += int(f[3])
            time.sleep(random.uniform(0, 0.05))  # the random moment of the kill
            w.kill()
            w.wait()
            completed += read(errpath).count("completed its recompaction")
            left = leftovers(pdir)
            if left:
                interrupted += 1
            print("kill %d: durable %d, %s" % (k, durable, ", ".join(left) or "no swap in progress"), flush=True)
            k += 1
        errpath = os.path.join(tmp, "writer-last.log")
        w = run_writer(data, errpath, FINAL)
        out, _ = w.communicate(timeout=120)
        err = read(errpath)
        check(w.returncode == 0, "the last writer exited %d: %s" % (w.returncode, err))
        completed += err.count("completed its recompaction")
        end = int(out.split()[-3])
        check(end >= FINAL and end >= durable, "end %d after the last run" % end)
        check(not leftovers(pdir), "leftovers after a clean stop: %s" % leftovers(pdir))
        print("%d kills, %d inside a rewrite (%d swaps completed at open), %d segments rewritten, end %d" %
              (k, interrupted, completed, rewrites, end), flush=True)
        check(interrupted >= 1, "no kill landed inside a rewrite")

        p = subprocess.run([MQLOG, "verify", "-d", data], capture_output=True, text=True)
        check(p.returncode == 0, "mqlog verify exited %d: %s%s" % (p.returncode, p.stdout, p.stderr))

        if not follower.wait_for(end, 60):
            rc, ferr = follower.stop()
            fail("the follower read %d of %d records (exit %s): %s" % (len(follower.records), end, rc, ferr))
        rc, ferr = follower.stop()
        check("CRC" not in ferr and "missing" not in ferr and "cannot be read" not in ferr,
              "the follower reported damage: %s" % ferr)
        check_records(follower.records, 0, end, "mqlog consume -f")

        for first in (0, end // 2 + 7):
            p = subprocess.run([MQLOG, "consume", "-d", data, "rc", "-p", "0", "-o", str(first), "--format",
                                "%o %k %s\n"], capture_output=True, text=True, timeout=120)
            check(p.returncode == 0, "mqlog consume -o %d exited %d: %s" % (first, p.returncode, p.stderr))
            check_records([l.split() for l in p.stdout.splitlines()], first, end, "mqlog consume -o %d" % first)

        size = sum(os.path.getsize(os.path.join(pdir, f)) for f in os.listdir(pdir) if f.endswith(".log"))
        print("rc-0: %d bytes for %d records (%.1f bytes/record)" % (size, end, size / end), flush=True)
        check(size < end * 40, "the log was hardly rewritten: %d bytes for %d records" % (size, end))
        print("PASS in %.1f s" % (time.monotonic() - t0), flush=True)
    finally:
        if follower and follower.p.poll() is None:
            follower.p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


main()
