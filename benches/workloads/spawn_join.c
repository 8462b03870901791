/* fork 300 children that _exit(0) at once, then waitpid each. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long peak_rss_kb(void) {
    char line[256];
    long kb = -1;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0) kb = strtol(line + 6, NULL, 10);
    if (f) fclose(f);
    return kb;
}

int main(void) {
    enum { N = 300 };
    pid_t pids[N];
    double t0 = now();
    for (int i = 0; i < N; i++) {
        pids[i] = fork();
        if (pids[i] == 0) _exit(0);
    }
    int ok = 0;
    for (int i = 0; i < N; i++) {
        int st;
        waitpid(pids[i], &st, 0);
        ok += WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }
    double t = now() - t0;
    printf("elapsed %.9f\n", t);
    fflush(stdout);
    pid_t r = fork();
    if (r == 0) {
        printf("child_rss_kb %ld\n", peak_rss_kb());
        fflush(stdout);
        _exit(0);
    }
    waitpid(r, NULL, 0);
    printf("checksum %d\n", ok);
    return 0;
}
