/* One producer child writes 200,000 8-byte ints, one write(2) each, into a
   pipe; the parent reads them back one read(2) each. */
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
    enum { N = 200000 };
    double t0 = now();
    int fd[2];
    if (pipe(fd) != 0) return 1;
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        for (int64_t i = 0; i < N; i++)
            if (write(fd[1], &i, sizeof i) != sizeof i) _exit(1);
        _exit(0);
    }
    close(fd[1]);
    int64_t s = 0, x;
    for (int i = 0; i < N; i++) {
        if (read(fd[0], &x, sizeof x) != sizeof x) return 1;
        s += x;
    }
    waitpid(pid, NULL, 0);
    double t = now() - t0;
    printf("elapsed %.9f\nchecksum %lld\n", t, (long long)s);
    return 0;
}
