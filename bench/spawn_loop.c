/* N runs of a program (default /bin/true) with at most P in flight, each
 * started with posix_spawn: the floor jobfile's command spawn is held to. */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>

extern char **environ;

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 2000;
    long p = argc > 2 ? atol(argv[2]) : 2;
    char *prog = argc > 3 ? argv[3] : "/bin/true";
    char *args[] = {prog, NULL};
    long started = 0, done = 0, running = 0;
    while (done < n) {
        while (running < p && started < n) {
            pid_t pid;
            int rc = posix_spawn(&pid, prog, NULL, NULL, args, environ);
            if (rc != 0) { fprintf(stderr, "posix_spawn: %d\n", rc); return 1; }
            started++; running++;
        }
        int status;
        if (wait(&status) < 0) { perror("wait"); return 1; }
        running--; done++;
    }
    return 0;
}
