//  runner_proc: one scenario subprocess, started in its own process group with its stdout
//  and stderr in files, watched without blocking, killed as a whole group.
#ifndef RUNNER_PROC_H_INCLUDED
#define RUNNER_PROC_H_INCLUDED

#include <stdbool.h>
#include <sys/types.h>

#include "lynx_err.h"
#include "lynx_value.h"

typedef struct {
    const char *const *argv;       //  argv[0] is the executable (PATH is searched), NULL-ended
    const char *working_directory; //  chdir here before exec
    const char *stdout_path;       //  created/truncated; receives the child's stdout
    const char *stderr_path;       //  created/truncated; receives the child's stderr
    const char *const *extra_env;  //  "KEY=VALUE" added to (or overriding) our environment,
                                   //  NULL-ended; may be NULL
} runner_proc_spec_t;

typedef struct _runner_proc_t runner_proc_t;

//  Fork and exec the spec in a new session/process group. Fails (NULL, err names the
//  executable and errno text) when the executable cannot be run, the working directory is
//  missing or the log files cannot be opened: exec errors are reported back through a
//  close-on-exec pipe, never as a mysterious exit code.
runner_proc_t *runner_proc_start(const runner_proc_spec_t *spec, lynx_err_t *err);

//  Kill the group with SIGKILL if still running, reap, free; sets *self_p to NULL. NULL-safe.
void runner_proc_destroy(runner_proc_t **self_p);

pid_t runner_proc_pid(const runner_proc_t *self);
//  A file descriptor that becomes readable when the process exits (a pidfd), for zloop
//  pollers; -1 when the kernel has none (then poll runner_proc_reap on a timer).
int runner_proc_exit_fd(const runner_proc_t *self);
//  Reap without blocking. Returns true once the process has exited (and stays true). When
//  the process exits, the rest of its process group is killed (SIGKILL) before it is reaped,
//  so nothing the scenario left running in the background outlives the job.
bool runner_proc_reap(runner_proc_t *self);
//  After exit: the exit status (0..255), or -1 when killed by a signal.
int runner_proc_exit_code(const runner_proc_t *self);
//  After exit: the terminating signal, or 0.
int runner_proc_term_signal(const runner_proc_t *self);
//  After exit: "exit status 3" or "killed by signal 9 (Killed)". Borrowed.
const char *runner_proc_exit_description(const runner_proc_t *self);
//  Seconds since start (until exit once exited).
double runner_proc_elapsed_secs(const runner_proc_t *self);
//  Send signal to the whole process group. Returns 0, or -1 if already gone.
int runner_proc_signal(runner_proc_t *self, int signal);

//  The last max_lines lines (at most max_bytes bytes) of a text file, owned by the caller;
//  "" when the file is empty or missing.
char *runner_proc_file_tail(const char *path, int max_lines, size_t max_bytes);

#endif
