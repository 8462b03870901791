import multiprocessing as mp
import time


def noop(i):
    pass


def peak_rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                print("child_rss_kb", int(line.split()[1]), flush=True)


if __name__ == "__main__":
    ctx = mp.get_context("fork")
    n = 300
    t0 = time.monotonic()
    ps = [ctx.Process(target=noop, args=(i,)) for i in range(n)]
    for p in ps:
        p.start()
    ok = 0
    for p in ps:
        p.join()
        ok += p.exitcode == 0
    print("elapsed", time.monotonic() - t0)
    r = ctx.Process(target=peak_rss_kb)
    r.start()
    r.join()
    print("checksum", ok)
