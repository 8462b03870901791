/* posix_spawn /bin/true 2,000 times with stdout and stderr on pipes (what
   proc's run() does by default), drain both to EOF, waitpid. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int run_true(void) {
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) return 0;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    char *argv[] = {"/bin/true", NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, "/bin/true", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    close(err[1]);
    if (rc != 0) return 0;
    struct pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    int open_fds = 2;
    char buf[4096];
    while (open_fds > 0 && poll(fds, 2, -1) > 0) {
        for (int k = 0; k < 2; k++) {
            if (fds[k].fd >= 0 && fds[k].revents) {
                if (read(fds[k].fd, buf, sizeof buf) <= 0) {
                    close(fds[k].fd);
                    fds[k].fd = -1;
                    open_fds--;
                }
            }
        }
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int main(void) {
    enum { N = 2000 };
    double t0 = now();
    int ok = 0;
    for (int i = 0; i < N; i++) ok += run_true();
    double t = now() - t0;
    printf("elapsed %.9f\nchecksum %d\n", t, ok);
    return 0;
}
