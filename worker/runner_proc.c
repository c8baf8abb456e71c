//  runner_proc: one scenario subprocess.
//
//  The runner is multi-threaded (czmq actors), so between fork and exec the child may only
//  make async-signal-safe calls: everything that allocates — the environment array, the log
//  files — is prepared in the parent first. The child is made with clone(CLONE_VM |
//  CLONE_VFORK) on a stack of its own, as glibc's posix_spawn does (which cannot set
//  PR_SET_PDEATHSIG): no copy of the runner's page tables and no copy-on-write faults
//  afterwards, which a perf profile showed to be most of a short job's cost (bench/README).
//  The child writes nothing but its own locals; signals stay blocked in the parent until it
//  has exec'd, so no handler of ours runs on the child's stack. The child reports a failed chdir or
//  exec as {step, errno} on a close-on-exec pipe; the parent reads until EOF, which means exec
//  succeeded, so runner_proc_start knows the outcome before it returns.
#include "runner_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct _runner_proc_t {
    pid_t pid; //  also the process group id: the child calls setsid
    int exit_fd;
    bool exited;
    int exit_code;
    int term_signal;
    char description[96];
    struct timespec started;
    struct timespec ended;
};

//  What the child failed to do, sent to the parent before _exit.
typedef enum { S_STEP_SETSID = 1, S_STEP_CHDIR, S_STEP_EXEC } s_step_t;

typedef struct {
    int step;
    int errnum;
} s_report_t;

static double s_seconds_between(const struct timespec *from, const struct timespec *to)
{
    return (double)(to->tv_sec - from->tv_sec) + (double)(to->tv_nsec - from->tv_nsec) / 1e9;
}

//  Move fd above 0..2 so that dup2 onto stdin/stdout/stderr in the child can never clobber
//  it (possible when the runner was started with a standard stream closed). Keeps CLOEXEC.
static int s_fd_above_stdio(int fd)
{
    if (fd < 0 || fd > STDERR_FILENO)
        return fd;
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
    int saved = errno;
    close(fd);
    errno = saved;
    return moved;
}

static int s_open_log(const char *path, lynx_err_t *err)
{
    int fd = s_fd_above_stdio(open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644));
    if (fd < 0)
        lynx_err_set(err, LYNX_EINTERNAL, "", "open %s: %s", path, strerror(errno));
    return fd;
}

static bool s_same_key(const char *a, const char *b)
{
    size_t len = strcspn(a, "=");
    return strncmp(a, b, len) == 0 && b[len] == '=';
}

//  environ with extra_env laid over it: an array of borrowed strings, owned by the caller.
//  Later extra_env entries win over earlier ones with the same key.
static char **s_build_env(const char *const *extra_env, lynx_err_t *err)
{
    size_t base_count = 0, extra_count = 0;
    while (environ && environ[base_count])
        base_count++;
    while (extra_env && extra_env[extra_count]) {
        if (!strchr(extra_env[extra_count], '=') || extra_env[extra_count][0] == '=') {
            lynx_err_set(err, LYNX_EINVALID, "extra_env", "extra_env: %s: expected KEY=VALUE",
                         extra_env[extra_count]);
            return NULL;
        }
        extra_count++;
    }
    char **envp = calloc(base_count + extra_count + 1, sizeof *envp);
    if (!envp) {
        lynx_err_set(err, LYNX_EINTERNAL, "", "out of memory");
        return NULL;
    }
    size_t count = 0;
    for (size_t index = 0; index < base_count; index++) {
        bool overridden = false;
        for (size_t extra = 0; !overridden && extra < extra_count; extra++)
            overridden = s_same_key(extra_env[extra], environ[index]);
        if (!overridden)
            envp[count++] = environ[index];
    }
    for (size_t index = 0; index < extra_count; index++) {
        bool superseded = false;
        for (size_t later = index + 1; !superseded && later < extra_count; later++)
            superseded = s_same_key(extra_env[later], extra_env[index]);
        if (!superseded)
            envp[count++] = (char *)extra_env[index];
    }
    return envp;
}

//  Runs in the child between clone and exec: async-signal-safe calls only. Never returns.
//  Not instrumented: it runs on a stack the sanitizers know nothing of.
__attribute__((no_sanitize("address", "undefined"))) static void
s_child(pid_t parent, const runner_proc_spec_t *spec, char **envp, int stdin_fd, int stdout_fd,
        int stderr_fd, int report_fd)
{
    //  Handlers are reset by exec but ignored dispositions and the signal mask survive it:
    //  a scenario must not start with SIGPIPE ignored or SIGTERM blocked because we have.
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = SIG_DFL;
    sigemptyset(&action.sa_mask);
    for (int signum = 1; signum < NSIG; signum++)
        if (signum != SIGKILL && signum != SIGSTOP)
            sigaction(signum, &action, NULL); //  EINVAL for libc-reserved signals: fine
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    s_report_t report = {0, 0};
    //  A scenario must not outlive a runner that was killed (kill -9 gives the runner no chance
    //  to kill it): the kernel sends it SIGKILL when the runner's thread that started it dies.
    //  If the runner already died in between, exit now.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    if (setsid() < 0)
        report = (s_report_t){S_STEP_SETSID, errno};
    else if (spec->working_directory && chdir(spec->working_directory) != 0)
        report = (s_report_t){S_STEP_CHDIR, errno};
    else {
        //  dup2 clears close-on-exec on the copies; the originals close at exec.
        dup2(stdin_fd, STDIN_FILENO);
        dup2(stdout_fd, STDOUT_FILENO);
        dup2(stderr_fd, STDERR_FILENO);
        //  Do not leak the runner's sockets and files into scenarios (or their grandchildren).
        close_range(STDERR_FILENO + 1, ~0U, CLOSE_RANGE_CLOEXEC);
        execvpe(spec->argv[0], (char *const *)spec->argv, envp);
        report = (s_report_t){S_STEP_EXEC, errno};
    }
    ssize_t written = write(report_fd, &report, sizeof report);
    (void)written;
    _exit(127);
}

#define S_CHILD_STACK_BYTES (256 * 1024)

typedef struct {
    pid_t parent;
    const runner_proc_spec_t *spec;
    char **envp;
    int stdin_fd, stdout_fd, stderr_fd, report_fd;
} s_child_args_t;

__attribute__((no_sanitize("address", "undefined"))) static int s_child_main(void *arg)
{
    const s_child_args_t *args = (const s_child_args_t *)arg;
    s_child(args->parent, args->spec, args->envp, args->stdin_fd, args->stdout_fd, args->stderr_fd,
            args->report_fd);
    return 127;
}

//  Start the child; its pid, or -1 with errno. Returns once it has exec'd or exited.
static pid_t s_spawn(s_child_args_t *args)
{
    void *stack = mmap(NULL, S_CHILD_STACK_BYTES, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED)
        return -1;
    sigset_t all, saved;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved);
    pid_t pid = clone(s_child_main, (char *)stack + S_CHILD_STACK_BYTES,
                      CLONE_VM | CLONE_VFORK | SIGCHLD, args);
    int clone_errno = errno;
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    munmap(stack, S_CHILD_STACK_BYTES);
    errno = clone_errno;
    return pid;
}

//  Read the child's report; 0 when the pipe closed empty (exec succeeded).
static int s_read_report(int report_fd, s_report_t *report)
{
    size_t got = 0;
    while (got < sizeof *report) {
        ssize_t rc = read(report_fd, (char *)report + got, sizeof *report - got);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            break;
        got += (size_t)rc;
    }
    return got == sizeof *report ? -1 : 0;
}

static int s_pidfd_open(pid_t pid)
{
#ifdef SYS_pidfd_open
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    return fd < 0 ? -1 : fd; //  ENOSYS on old kernels: callers fall back to polling
#else
    (void)pid;
    return -1;
#endif
}

static void s_record_exit(runner_proc_t *self, int status)
{
    self->exited = true;
    clock_gettime(CLOCK_MONOTONIC, &self->ended);
    if (WIFEXITED(status)) {
        self->exit_code = WEXITSTATUS(status);
        self->term_signal = 0;
        snprintf(self->description, sizeof self->description, "exit status %d", self->exit_code);
    } else if (WIFSIGNALED(status)) {
        self->exit_code = -1;
        self->term_signal = WTERMSIG(status);
        snprintf(self->description, sizeof self->description, "killed by signal %d (%s)",
                 self->term_signal, strsignal(self->term_signal));
    } else {
        self->exit_code = -1;
        self->term_signal = 0;
        snprintf(self->description, sizeof self->description, "unknown wait status %d", status);
    }
}

static pid_t s_waitpid(pid_t pid, int *status, int options)
{
    pid_t rc;
    do
        rc = waitpid(pid, status, options);
    while (rc < 0 && errno == EINTR);
    return rc;
}

runner_proc_t *runner_proc_start(const runner_proc_spec_t *spec, lynx_err_t *err)
{
    lynx_err_clear(err);
    if (!spec || !spec->argv || !spec->argv[0] || !spec->stdout_path || !spec->stderr_path) {
        lynx_err_set(err, LYNX_EINVALID, "", "runner_proc_start: argv and log paths required");
        return NULL;
    }
    runner_proc_t *self = calloc(1, sizeof *self);
    if (!self) {
        lynx_err_set(err, LYNX_EINTERNAL, "", "out of memory");
        return NULL;
    }
    self->exit_fd = -1;
    self->exit_code = -1;
    snprintf(self->description, sizeof self->description, "running");

    int stdin_fd = -1, stdout_fd = -1, stderr_fd = -1, report[2] = {-1, -1};
    char **envp = s_build_env(spec->extra_env, err);
    if (!envp)
        goto failed;
    //  Log paths are opened here, relative to our directory rather than the child's.
    if ((stdout_fd = s_open_log(spec->stdout_path, err)) < 0 ||
        (stderr_fd = s_open_log(spec->stderr_path, err)) < 0)
        goto failed;
    //  A scenario that reads stdin must see EOF, not steal the runner's terminal.
    stdin_fd = s_fd_above_stdio(open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (stdin_fd < 0) {
        lynx_err_set(err, LYNX_EINTERNAL, "", "open /dev/null: %s", strerror(errno));
        goto failed;
    }
    if (pipe2(report, O_CLOEXEC) != 0 || (report[0] = s_fd_above_stdio(report[0])) < 0 ||
        (report[1] = s_fd_above_stdio(report[1])) < 0) {
        lynx_err_set(err, LYNX_EINTERNAL, "", "pipe: %s", strerror(errno));
        goto failed;
    }

    clock_gettime(CLOCK_MONOTONIC, &self->started);
    s_child_args_t child = {getpid(), spec, envp, stdin_fd, stdout_fd, stderr_fd, report[1]};
    self->pid = s_spawn(&child);
    if (self->pid < 0) {
        lynx_err_set(err, LYNX_EINTERNAL, "", "clone %s: %s", spec->argv[0], strerror(errno));
        goto failed;
    }

    close(report[1]);
    report[1] = -1;
    s_report_t child_report;
    if (s_read_report(report[0], &child_report) != 0) {
        int status;
        s_waitpid(self->pid, &status, 0);
        const char *cause = strerror(child_report.errnum);
        if (child_report.step == S_STEP_CHDIR)
            lynx_err_set(err, LYNX_EINTERNAL, "", "chdir %s: %s", spec->working_directory, cause);
        else if (child_report.step == S_STEP_SETSID)
            lynx_err_set(err, LYNX_EINTERNAL, "", "setsid: %s", cause);
        else
            lynx_err_set(err, LYNX_EINTERNAL, "", "exec %s: %s", spec->argv[0], cause);
        goto failed;
    }
    self->exit_fd = s_pidfd_open(self->pid);

    close(report[0]);
    close(stdin_fd);
    close(stdout_fd);
    close(stderr_fd);
    free(envp);
    return self;

failed:
    for (int index = 0; index < 2; index++)
        if (report[index] >= 0)
            close(report[index]);
    if (stdin_fd >= 0)
        close(stdin_fd);
    if (stdout_fd >= 0)
        close(stdout_fd);
    if (stderr_fd >= 0)
        close(stderr_fd);
    free(envp);
    free(self);
    return NULL;
}

void runner_proc_destroy(runner_proc_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    runner_proc_t *self = *self_p;
    if (!runner_proc_reap(self)) {
        //  Until reaped the leader holds the group id, so this cannot hit a stranger's group.
        kill(-self->pid, SIGKILL);
        int status;
        if (s_waitpid(self->pid, &status, 0) == self->pid)
            s_record_exit(self, status);
    }
    if (self->exit_fd >= 0)
        close(self->exit_fd);
    free(self);
    *self_p = NULL;
}

pid_t runner_proc_pid(const runner_proc_t *self)
{
    return self->pid;
}

int runner_proc_exit_fd(const runner_proc_t *self)
{
    return self->exit_fd;
}

//  Someone else reaped the process (SIGCHLD set to SIG_IGN, or a stray waitpid(-1)).
static void s_record_lost_exit(runner_proc_t *self)
{
    self->exited = true;
    clock_gettime(CLOCK_MONOTONIC, &self->ended);
    snprintf(self->description, sizeof self->description, "exit status unknown");
}

bool runner_proc_reap(runner_proc_t *self)
{
    if (self->exited)
        return true;
    //  Look without reaping (WNOWAIT): while the leader is our unreaped zombie its pid, which
    //  is also the group id, cannot be reused, so the kill below cannot reach a stranger.
    siginfo_t info;
    memset(&info, 0, sizeof info); //  si_pid stays 0 when nothing has exited
    int rc;
    do
        rc = waitid(P_PID, (id_t)self->pid, &info, WEXITED | WNOHANG | WNOWAIT);
    while (rc < 0 && errno == EINTR);
    if (rc < 0 && errno == ECHILD)
        s_record_lost_exit(self);
    if (rc < 0 || info.si_pid == 0)
        return self->exited;

    //  A scenario that exits leaves nothing behind: `sleep 1000 &` must not outlive the job.
    //  ESRCH (no one left in the group) is the ordinary case and needs nothing.
    kill(-self->pid, SIGKILL);
    int status;
    pid_t reaped = s_waitpid(self->pid, &status, 0); //  a zombie: returns at once
    if (reaped == self->pid)
        s_record_exit(self, status);
    else if (reaped < 0 && errno == ECHILD)
        s_record_lost_exit(self);
    return self->exited;
}

int runner_proc_exit_code(const runner_proc_t *self)
{
    return self->exit_code;
}

int runner_proc_term_signal(const runner_proc_t *self)
{
    return self->term_signal;
}

const char *runner_proc_exit_description(const runner_proc_t *self)
{
    return self->description;
}

double runner_proc_elapsed_secs(const runner_proc_t *self)
{
    struct timespec now;
    if (self->exited)
        now = self->ended;
    else
        clock_gettime(CLOCK_MONOTONIC, &now);
    return s_seconds_between(&self->started, &now);
}

int runner_proc_signal(runner_proc_t *self, int signal)
{
    //  Once reaped the group id may be reused, so the group is out of reach.
    if (self->exited) {
        errno = ESRCH;
        return -1;
    }
    return kill(-self->pid, signal) == 0 ? 0 : -1;
}

char *runner_proc_file_tail(const char *path, int max_lines, size_t max_bytes)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat info;
    if (fd < 0 || fstat(fd, &info) != 0 || !S_ISREG(info.st_mode) || max_lines <= 0 ||
        max_bytes == 0) {
        if (fd >= 0)
            close(fd);
        return strdup("");
    }
    //  Read only the last max_bytes: a scenario's stderr can be gigabytes.
    off_t size = info.st_size;
    off_t start = (uintmax_t)size > max_bytes ? size - (off_t)max_bytes : 0;
    size_t want = (size_t)(size - start);
    char *buffer = malloc(want + 1);
    size_t got = 0;
    while (buffer && got < want) {
        ssize_t rc = pread(fd, buffer + got, want - got, start + (off_t)got);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            break;
        got += (size_t)rc;
    }
    close(fd);
    if (!buffer)
        return NULL;

    //  Walk back over max_lines newlines; a final newline does not start another line.
    size_t from = 0;
    int lines = 0;
    size_t cursor = got;
    if (cursor > 0 && buffer[cursor - 1] == '\n')
        cursor--;
    while (cursor > 0) {
        if (buffer[cursor - 1] == '\n' && ++lines == max_lines) {
            from = cursor;
            break;
        }
        cursor--;
    }
    //  A byte cut may land inside a UTF-8 sequence; JSON encoders refuse the broken start.
    if (from == 0 && start > 0)
        while (from < got && from < 3 && ((unsigned char)buffer[from] & 0xC0) == 0x80)
            from++;
    memmove(buffer, buffer + from, got - from);
    buffer[got - from] = '\0';
    return buffer;
}
