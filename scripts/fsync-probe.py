#!/usr/bin/env python3
"""What one durable append costs on this disk: the floor under the edge's commit latency.

Writes N records of SIZE bytes to a pre-zeroed file in DIR (as the edge's redo journal does
after its first use), each followed by fdatasync, 0.5 ms apart, and prints the latency
percentiles. Run it twice: idle, and with --background (another file gets 1 MiB every 0.3 s
and an fdatasync every 0.6 s, like sled's background segment writes).

    python3 scripts/fsync-probe.py [--dir target] [--records 4000] [--size 2000] [--background]
"""
import argparse
import os
import threading
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="target")
    ap.add_argument("--records", type=int, default=4000)
    ap.add_argument("--size", type=int, default=2000)
    ap.add_argument("--background", action="store_true")
    a = ap.parse_args()
    path = os.path.join(a.dir, "fsync-probe.bin")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC)
    os.write(fd, b"\0" * (a.records * a.size + 4096))
    os.fsync(fd)
    os.lseek(fd, 0, 0)
    stop = threading.Event()

    def background() -> None:
        bg = os.open(path + ".bg", os.O_RDWR | os.O_CREAT | os.O_TRUNC)
        buf, i = b"y" * (1 << 20), 0
        while not stop.is_set():
            os.pwrite(bg, buf, (i % 64) << 20)
            i += 1
            if i % 2 == 0:
                os.fdatasync(bg)
            time.sleep(0.3)
        os.close(bg)
        os.unlink(path + ".bg")

    t = threading.Thread(target=background) if a.background else None
    if t:
        t.start()
    record, took = b"x" * a.size, []
    for _ in range(a.records):
        start = time.perf_counter()
        os.write(fd, record)
        os.fdatasync(fd)
        took.append(time.perf_counter() - start)
        time.sleep(0.0005)
    stop.set()
    if t:
        t.join()
    os.close(fd)
    os.unlink(path)
    took.sort()
    n = len(took)
    ms = lambda q: took[min(n - 1, int(n * q))] * 1e3  # noqa: E731
    print(
        f"{'with background writes' if a.background else 'idle'}: {n} x {a.size} B write + fdatasync: "
        f"p50 {ms(0.5):.3f} ms, p99 {ms(0.99):.3f} ms, p99.9 {ms(0.999):.3f} ms, max {took[-1] * 1e3:.3f} ms; "
        f"over 2 ms: {sum(1 for x in took if x > 0.002)}"
    )


if __name__ == "__main__":
    main()
