import multiprocessing as mp
import time


def produce(q, n):
    for i in range(n):
        q.put(i)


if __name__ == "__main__":
    ctx = mp.get_context("fork")
    n = 200000
    t0 = time.monotonic()
    q = ctx.Queue()
    p = ctx.Process(target=produce, args=(q, n))
    p.start()
    s = 0
    for i in range(n):
        s += q.get()
    p.join()
    print("elapsed", time.monotonic() - t0)
    print("checksum", s)
