import multiprocessing as mp
import time


def work(v, n):
    for i in range(n):
        with v.get_lock():
            v.value += 1


if __name__ == "__main__":
    ctx = mp.get_context("fork")
    n = 20000
    v = ctx.Value("q", 0)
    t0 = time.monotonic()
    ps = [ctx.Process(target=work, args=(v, n)) for _ in range(2)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    print("elapsed", time.monotonic() - t0)
    print("checksum", v.value)
