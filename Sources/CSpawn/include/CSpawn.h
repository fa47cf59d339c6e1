// Starting a child process with its standard streams on pipes, for Craft's runtime plugins
// (CraftPlugins). Glibc's pipe2 and posix_spawn_file_actions_addchdir_np are not visible to Swift.
#ifndef CRAFT_SPAWN_H
#define CRAFT_SPAWN_H

/// Starts the executable `path` (argv `[path]`, the parent's environment) with its stdin, stdout and
/// stderr on new pipes and its working directory `directory` (NULL keeps the parent's); SIGPIPE has
/// its default action in the child, which leads a new process group (its id is `pid`). The parent's ends are close-on-exec from the start, so no other
/// child started meanwhile inherits them. Returns 0 and sets `pid`, `input` (write end of the child's
/// stdin), `output` and `error` (read ends), or returns an errno value.
int craft_spawn(const char *path, const char *directory, int *pid, int *input, int *output, int *error);

#endif
