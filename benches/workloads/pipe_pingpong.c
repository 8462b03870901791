/* 20,000 round trips parent <-> child over two pipes, 8 bytes each way. */
#include <stdint.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(void) {
    enum { N = 20000 };
    int down[2], up[2];
    if (pipe(down) != 0 || pipe(up) != 0) return 1;
    double t0 = now();
    pid_t pid = fork();
    if (pid == 0) {
        close(down[1]);
        close(up[0]);
        int64_t v;
        while (read(down[0], &v, sizeof v) == sizeof v && v >= 0) {
            v += 1;
            if (write(up[1], &v, sizeof v) != sizeof v) _exit(1);
        }
        _exit(0);
    }
    close(down[0]);
    close(up[1]);
    int64_t x = 0, stop = -1;
    for (int i = 0; i < N; i++) {
        if (write(down[1], &x, sizeof x) != sizeof x) return 1;
        if (read(up[0], &x, sizeof x) != sizeof x) return 1;
    }
    if (write(down[1], &stop, sizeof stop) != sizeof stop) return 1;
    waitpid(pid, NULL, 0);
    double t = now() - t0;
    printf("elapsed %.9f\nchecksum %lld\n", t, (long long)x);
    return 0;
}
