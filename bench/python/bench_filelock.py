"""Python peer for dotlock's bench (cmd/bench drives it): filelock's
SoftFileLock (O_EXCL file, polled) and FileLock (flock with LOCK_NB,
polled), looping in their own process. Run with /usr/bin/python3 (Debian's
python3-filelock). The protocol is the Go worker's:

  bench_filelock.py uncontended KIND LOCK BATCHES OPS           -> "ns <per op>" per batch
  bench_filelock.py contend KIND LOCK COUNTER ID OUT POLL_S     -> "ready"; stdin "go END_NS"; loop; "done N"
  bench_filelock.py hold KIND LOCK                              -> "held"; then sleeps until killed
  bench_filelock.py wait KIND LOCK TIMEOUT_S POLL_S             -> "ready"; "acquired MONO_NS" or "timeout"

KIND is "soft" or "flock". Times are CLOCK_MONOTONIC nanoseconds
(time.monotonic_ns), as in the Go and Node workers.
"""

import sys
import time

import filelock

mono = time.monotonic_ns


def make(kind, path):
    if kind == "soft":
        return filelock.SoftFileLock(path)
    if kind == "flock":
        return filelock.FileLock(path)
    raise SystemExit("unknown kind " + kind)


def uncontended(kind, path, batches, ops):
    lock = make(kind, path)
    for _ in range(50):
        lock.acquire()
        lock.release()
    for _ in range(batches):
        t0 = mono()
        for _ in range(ops):
            lock.acquire()
            lock.release()
        print("ns %f" % ((mono() - t0) / ops), flush=True)


def contend(kind, path, counter, ident, out, poll):
    lock = make(kind, path)
    print("ready", flush=True)
    end = int(sys.stdin.readline().split()[1])
    recs = []
    while mono() < end:
        lock.acquire(timeout=-1, poll_interval=poll)
        acq = mono()
        with open(counter) as f:
            n = int(f.read().split()[0])
        seq = n + 1
        # In place, fixed width, no truncation (see writeCounter in worker.go).
        with open(counter, "r+") as f:
            f.write("%020d %-8s\n" % (seq, ident))
        rel = mono()
        lock.release()
        recs.append("%d %d %d\n" % (seq, acq, rel))
    with open(out, "w") as f:
        f.writelines(recs)
    print("done %d" % len(recs), flush=True)


def hold(kind, path):
    lock = make(kind, path)
    lock.acquire()
    print("held", flush=True)
    while True:
        time.sleep(3600)


def wait(kind, path, timeout, poll):
    lock = make(kind, path)
    print("ready", flush=True)
    try:
        lock.acquire(timeout=timeout, poll_interval=poll)
    except filelock.Timeout:
        print("timeout", flush=True)
        return
    print("acquired %d" % mono(), flush=True)
    lock.release()


def main(argv):
    mode, a = argv[1], argv[2:]
    if mode == "uncontended":
        uncontended(a[0], a[1], int(a[2]), int(a[3]))
    elif mode == "contend":
        contend(a[0], a[1], a[2], a[3], a[4], float(a[5]))
    elif mode == "hold":
        hold(a[0], a[1])
    elif mode == "wait":
        wait(a[0], a[1], float(a[2]), float(a[3]))
    else:
        raise SystemExit("unknown mode " + mode)


if __name__ == "__main__":
    main(sys.argv)
