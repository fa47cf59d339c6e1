// Child processes on pipes; the contract is in include/CSpawn.h.
#define _GNU_SOURCE
#include "CSpawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

extern char **environ;

int craft_spawn(const char *path, const char *directory, int *pid, int *input, int *output, int *error) {
    int in[2], out[2], err[2];
    if (pipe2(in, O_CLOEXEC) != 0) return errno;
    if (pipe2(out, O_CLOEXEC) != 0) {
        int saved = errno;
        close(in[0]); close(in[1]);
        return saved;
    }
    if (pipe2(err, O_CLOEXEC) != 0) {
        int saved = errno;
        close(in[0]); close(in[1]); close(out[0]); close(out[1]);
        return saved;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    // dup2 clears close-on-exec on the child's 0, 1 and 2.
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    if (directory) posix_spawn_file_actions_addchdir_np(&actions, directory);
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    sigset_t defaults;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    posix_spawnattr_setsigdefault(&attributes, &defaults);
    // Its own process group, so stopping it stops whatever it started too.
    posix_spawnattr_setpgroup(&attributes, 0);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    char *argv[] = {(char *)path, NULL};
    pid_t child = 0;
    int status = posix_spawn(&child, path, &actions, &attributes, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    close(in[0]);
    close(out[1]);
    close(err[1]);
    if (status != 0) {
        close(in[1]); close(out[0]); close(err[0]);
        return status;
    }
    *pid = child;
    *input = in[1];
    *output = out[0];
    *error = err[0];
    return 0;
}
