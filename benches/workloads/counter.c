/* Two forked children each increment a counter in anonymous shared memory
   20,000 times under a process-shared pthread mutex. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct shared {
    pthread_mutex_t lock;
    int64_t value;
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(void) {
    enum { N = 20000 };
    struct shared *s = mmap(NULL, sizeof *s, PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (s == MAP_FAILED) return 1;
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(&s->lock, &attr);
    s->value = 0;
    double t0 = now();
    pid_t pids[2];
    for (int k = 0; k < 2; k++) {
        pids[k] = fork();
        if (pids[k] == 0) {
            for (int i = 0; i < N; i++) {
                pthread_mutex_lock(&s->lock);
                s->value += 1;
                pthread_mutex_unlock(&s->lock);
            }
            _exit(0);
        }
    }
    for (int k = 0; k < 2; k++) waitpid(pids[k], NULL, 0);
    double t = now() - t0;
    printf("elapsed %.9f\nchecksum %lld\n", t, (long long)s->value);
    return 0;
}
