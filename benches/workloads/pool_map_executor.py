# The baseline for pool_map: concurrent.futures with an explicit chunksize.
import concurrent.futures as cf
import multiprocessing as mp
import time


def square(x):
    return x * x


if __name__ == "__main__":
    t0 = time.monotonic()
    with cf.ProcessPoolExecutor(2, mp_context=mp.get_context("fork")) as ex:
        r = list(ex.map(square, range(200000), chunksize=1000))
    print("elapsed", time.monotonic() - t0)
    print("checksum", len(r), sum(r))
