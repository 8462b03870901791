import multiprocessing as mp
import time


def square(x):
    return x * x


if __name__ == "__main__":
    ctx = mp.get_context("fork")
    t0 = time.monotonic()
    with ctx.Pool(2) as p:
        r = p.map(square, range(200000))
        p.close()
        p.join()
    print("elapsed", time.monotonic() - t0)
    print("checksum", len(r), sum(r))
