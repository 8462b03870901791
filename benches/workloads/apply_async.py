import multiprocessing as mp
import time


def inc(x):
    return x + 1


if __name__ == "__main__":
    ctx = mp.get_context("fork")
    n = 10000
    t0 = time.monotonic()
    s = 0
    with ctx.Pool(2) as p:
        fs = [p.apply_async(inc, args=(i,)) for i in range(n)]
        for f in fs:
            s += f.get()
        p.close()
        p.join()
    print("elapsed", time.monotonic() - t0)
    print("checksum", s)
