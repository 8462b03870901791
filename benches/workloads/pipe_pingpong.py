import multiprocessing as mp
import time


def echo(b):
    v = b.recv()
    while v >= 0:
        b.send(v + 1)
        v = b.recv()


if __name__ == "__main__":
    ctx = mp.get_context("fork")
    a, b = ctx.Pipe()
    n = 20000
    t0 = time.monotonic()
    p = ctx.Process(target=echo, args=(b,))
    p.start()
    x = 0
    for i in range(n):
        a.send(x)
        x = a.recv()
    a.send(-1)
    p.join()
    print("elapsed", time.monotonic() - t0)
    print("checksum", x)
