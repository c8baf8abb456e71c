//  runner_proc: start a scenario, wait for it on its exit fd, read its logs and outputs.
//
//  Each test gets a fresh temporary directory. Waits poll the exit fd (or the process table)
//  with a deadline; nothing sleeps for a fixed time.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runner_proc.h"

#define S_TIMEOUT_MS 10000

//  --- helpers --------------------------------------------------------------------------------

typedef struct {
    char dir[PATH_MAX]; //  the test's temporary directory (canonical)
    char stdout_path[PATH_MAX + 32];
    char stderr_path[PATH_MAX + 32];
} s_fixture_t;

static int s_setup(void **state)
{
    s_fixture_t *fixture = calloc(1, sizeof *fixture);
    assert_non_null(fixture);
    char template[] = "/tmp/runner_proc_test.XXXXXX";
    assert_non_null(mkdtemp(template));
    assert_non_null(realpath(template, fixture->dir));
    snprintf(fixture->stdout_path, sizeof fixture->stdout_path, "%s/stdout.log", fixture->dir);
    snprintf(fixture->stderr_path, sizeof fixture->stderr_path, "%s/stderr.log", fixture->dir);
    *state = fixture;
    return 0;
}

static int s_remove_entry(const char *path, const struct stat *info, int flag, struct FTW *ftw)
{
    (void)info;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int s_teardown(void **state)
{
    s_fixture_t *fixture = *state;
    nftw(fixture->dir, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(fixture);
    return 0;
}

static int64_t s_now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

//  Wait until the process has exited and been reaped: sleep in poll() on the exit fd, or
//  re-check every 10 ms when the kernel has no pidfd. Returns false at the deadline.
static bool s_wait_exit(runner_proc_t *proc, int timeout_ms)
{
    int64_t deadline = s_now_ms() + timeout_ms;
    while (!runner_proc_reap(proc)) {
        int64_t left = deadline - s_now_ms();
        if (left <= 0)
            return false;
        struct pollfd item = {.fd = runner_proc_exit_fd(proc), .events = POLLIN};
        poll(&item, item.fd >= 0 ? 1 : 0, item.fd >= 0 ? (int)left : 10);
    }
    return true;
}

//  A process we do not own (a grandchild) is gone once kill(pid, 0) says ESRCH. We are the
//  subreaper during these tests, so we reap it ourselves when it turns into our zombie.
static bool s_wait_gone(pid_t pid, int timeout_ms)
{
    int64_t deadline = s_now_ms() + timeout_ms;
    while (s_now_ms() < deadline) {
        waitpid(pid, NULL, WNOHANG);
        if (kill(pid, 0) != 0 && errno == ESRCH)
            return true;
        poll(NULL, 0, 10);
    }
    return false;
}

//  Whole file as an owned string ("" when missing).
static char *s_read_file(const char *path)
{
    FILE *file = fopen(path, "r");
    if (!file)
        return strdup("");
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    int byte;
    while ((byte = fgetc(file)) != EOF)
        fputc(byte, out);
    fclose(file);
    fclose(out);
    return text;
}

static void s_write_file(const char *path, const char *text)
{
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    fputs(text, file);
    fclose(file);
}

//  Start `sh -c script` with logs in the fixture directory.
static runner_proc_t *s_start_sh(s_fixture_t *fixture, const char *script,
                                 const char *working_directory, const char *const *extra_env,
                                 lynx_err_t *err)
{
    const char *argv[] = {"sh", "-c", script, NULL};
    runner_proc_spec_t spec = {
        .argv = argv,
        .working_directory = working_directory,
        .stdout_path = fixture->stdout_path,
        .stderr_path = fixture->stderr_path,
        .extra_env = extra_env,
    };
    return runner_proc_start(&spec, err);
}

//  Read the PID a script echoed as its first stdout line, waiting for it to appear.
static pid_t s_wait_echoed_pid(const char *stdout_path, int timeout_ms)
{
    int64_t deadline = s_now_ms() + timeout_ms;
    while (s_now_ms() < deadline) {
        char *text = s_read_file(stdout_path);
        long pid = strchr(text, '\n') ? strtol(text, NULL, 10) : 0;
        free(text);
        if (pid > 0)
            return (pid_t)pid;
        poll(NULL, 0, 10);
    }
    return -1;
}

static void s_assert_no_children(void)
{
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

//  --- exit status and logs -------------------------------------------------------------------

static void test_exit_status_and_logs(void **state)
{
    s_fixture_t *fixture = *state;
    lynx_err_t err;
    runner_proc_t *proc = s_start_sh(fixture, "echo out; echo err >&2; exit 3", NULL, NULL, &err);
    assert_non_null(proc);
    assert_true(runner_proc_pid(proc) > 0);
    assert_string_equal(runner_proc_exit_description(proc), "running");

    assert_true(s_wait_exit(proc, S_TIMEOUT_MS));
    assert_int_equal(runner_proc_exit_code(proc), 3);
    assert_int_equal(runner_proc_term_signal(proc), 0);
    assert_string_equal(runner_proc_exit_description(proc), "exit status 3");
    double elapsed_secs = runner_proc_elapsed_secs(proc);
    assert_true(elapsed_secs >= 0 && elapsed_secs < S_TIMEOUT_MS / 1000.0);
    assert_true(runner_proc_elapsed_secs(proc) == elapsed_secs); //  frozen at exit
    assert_true(runner_proc_reap(proc));                         //  and stays reaped
    runner_proc_destroy(&proc);
    assert_null(proc);
    runner_proc_destroy(&proc);

    char *out = s_read_file(fixture->stdout_path);
    char *errors = s_read_file(fixture->stderr_path);
    assert_string_equal(out, "out\n");
    assert_string_equal(errors, "err\n");
    free(out);
    free(errors);
}

static void test_log_files_are_truncated_and_stdin_is_empty(void **state)
{
    s_fixture_t *fixture = *state;
    s_write_file(fixture->stdout_path, "stale output from an earlier attempt\n");
    lynx_err_t err;
    //  cat would block on an inherited terminal; with /dev/null it ends at once.
    runner_proc_t *proc = s_start_sh(fixture, "cat; echo done", NULL, NULL, &err);
    assert_non_null(proc);
    assert_true(s_wait_exit(proc, S_TIMEOUT_MS));
    assert_int_equal(runner_proc_exit_code(proc), 0);
    runner_proc_destroy(&proc);

    char *out = s_read_file(fixture->stdout_path);
    assert_string_equal(out, "done\n");
    free(out);
}

//  --- environment and working directory ------------------------------------------------------

static void test_extra_env_and_working_directory(void **state)
{
    s_fixture_t *fixture = *state;
    setenv("RUNNER_PROC_TEST_INHERITED", "from parent", 1);
    setenv("RUNNER_PROC_TEST_OVERRIDDEN", "old", 1);
    const char *extra_env[] = {"FOO=bar baz", "RUNNER_PROC_TEST_OVERRIDDEN=new", NULL};
    lynx_err_t err;
    runner_proc_t *proc = s_start_sh(fixture,
                                     "pwd -P; echo \"$FOO\"; echo \"$RUNNER_PROC_TEST_INHERITED\";"
                                     " env | grep '^RUNNER_PROC_TEST_OVERRIDDEN='",
                                     fixture->dir, extra_env, &err);
    assert_non_null(proc);
    assert_true(s_wait_exit(proc, S_TIMEOUT_MS));
    assert_string_equal(runner_proc_exit_description(proc), "exit status 0");
    runner_proc_destroy(&proc);

    char expected[PATH_MAX + 100];
    snprintf(expected, sizeof expected,
             "%s\nbar baz\nfrom parent\nRUNNER_PROC_TEST_OVERRIDDEN=new\n", fixture->dir);
    char *out = s_read_file(fixture->stdout_path);
    assert_string_equal(out, expected);
    free(out);
    unsetenv("RUNNER_PROC_TEST_INHERITED");
    unsetenv("RUNNER_PROC_TEST_OVERRIDDEN");
}

static void test_extra_env_entry_without_equals_is_refused(void **state)
{
    s_fixture_t *fixture = *state;
    const char *extra_env[] = {"NOEQUALS", NULL};
    lynx_err_t err;
    assert_null(s_start_sh(fixture, "exit 0", NULL, extra_env, &err));
    assert_int_equal(err.code, LYNX_EINVALID);
    assert_string_equal(err.message, "extra_env: NOEQUALS: expected KEY=VALUE");
}

//  --- signals --------------------------------------------------------------------------------

static void test_killed_by_signal_is_described(void **state)
{
    s_fixture_t *fixture = *state;
    lynx_err_t err;
    runner_proc_t *proc = s_start_sh(fixture, "kill -TERM $$", NULL, NULL, &err);
    assert_non_null(proc);
    assert_true(s_wait_exit(proc, S_TIMEOUT_MS));
    assert_int_equal(runner_proc_exit_code(proc), -1);
    assert_int_equal(runner_proc_term_signal(proc), SIGTERM);
    assert_string_equal(runner_proc_exit_description(proc), "killed by signal 15 (Terminated)");
    runner_proc_destroy(&proc);
}

//  The runner ignores SIGPIPE and its threads block signals; a scenario must not inherit that.
static void test_child_starts_with_default_signal_state(void **state)
{
    s_fixture_t *fixture = *state;
    sigset_t term, saved_mask;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, &saved_mask);
    struct sigaction ignore = {.sa_handler = SIG_IGN}, saved_action;
    sigaction(SIGTERM, &ignore, &saved_action);

    lynx_err_t err;
    runner_proc_t *proc = s_start_sh(fixture, "kill -TERM $$; exit 0", NULL, NULL, &err);
    sigaction(SIGTERM, &saved_action, NULL);
    sigprocmask(SIG_SETMASK, &saved_mask, NULL);

    assert_non_null(proc);
    assert_true(s_wait_exit(proc, S_TIMEOUT_MS));
    assert_int_equal(runner_proc_term_signal(proc), SIGTERM);
    runner_proc_destroy(&proc);
}

//  `sleep 100 &` stays in the script's process group; killing the group must take it too.
static void test_signal_kills_the_whole_group(void **state)
{
    s_fixture_t *fixture = *state;
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    lynx_err_t err;
    runner_proc_t *proc = s_start_sh(fixture, "sleep 100 & echo $!; wait", NULL, NULL, &err);
    assert_non_null(proc);
    pid_t grandchild = s_wait_echoed_pid(fixture->stdout_path, S_TIMEOUT_MS);
    assert_true(grandchild > 0);
    assert_int_equal(kill(grandchild, 0), 0);

    assert_int_equal(runner_proc_signal(proc, SIGKILL), 0);
    assert_true(s_wait_exit(proc, S_TIMEOUT_MS));
    assert_string_equal(runner_proc_exit_description(proc), "killed by signal 9 (Killed)");
    assert_true(s_wait_gone(grandchild, S_TIMEOUT_MS));
    //  Reaped: the group id may belong to someone else now, so signalling is refused.
    assert_int_equal(runner_proc_signal(proc, SIGKILL), -1);
    runner_proc_destroy(&proc);
    prctl(PR_SET_CHILD_SUBREAPER, 0);
}

static void test_destroy_kills_a_running_group(void **state)
{
    s_fixture_t *fixture = *state;
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    lynx_err_t err;
    runner_proc_t *proc = s_start_sh(fixture, "sleep 100 & echo $!; wait", NULL, NULL, &err);
    assert_non_null(proc);
    pid_t grandchild = s_wait_echoed_pid(fixture->stdout_path, S_TIMEOUT_MS);
    assert_true(grandchild > 0);
    pid_t pid = runner_proc_pid(proc);

    runner_proc_destroy(&proc);
    assert_int_equal(kill(pid, 0), -1); //  reaped by destroy
    assert_true(s_wait_gone(grandchild, S_TIMEOUT_MS));
    prctl(PR_SET_CHILD_SUBREAPER, 0);
}

//  A scenario that backgrounds work and exits must not leave it running after the job: reap
//  kills what is left of the group before it reaps the leader.
static void test_reap_kills_what_the_scenario_left_behind(void **state)
{
    s_fixture_t *fixture = *state;
    prctl(PR_SET_CHILD_SUBREAPER, 1); //  so the orphan becomes our zombie, which we reap
    char pid_path[PATH_MAX + 32];
    snprintf(pid_path, sizeof pid_path, "%s/background.pid", fixture->dir);
    char script[PATH_MAX + 128];
    snprintf(script, sizeof script, "sleep 1000 & echo $! > '%s'; exit 0", pid_path);
    lynx_err_t err;
    runner_proc_t *proc = s_start_sh(fixture, script, NULL, NULL, &err);
    assert_non_null(proc);

    assert_true(s_wait_exit(proc, S_TIMEOUT_MS));
    assert_string_equal(runner_proc_exit_description(proc), "exit status 0");
    char *text = s_read_file(pid_path); //  written before the exit, so complete by now
    pid_t orphan = (pid_t)strtol(text, NULL, 10);
    free(text);
    assert_true(orphan > 0);
    assert_true(s_wait_gone(orphan, S_TIMEOUT_MS));
    runner_proc_destroy(&proc);
    prctl(PR_SET_CHILD_SUBREAPER, 0);
}

//  --- start failures -------------------------------------------------------------------------

static void test_exec_of_missing_program_fails_clearly(void **state)
{
    s_fixture_t *fixture = *state;
    const char *absolute[] = {"/no/such/python3", "scenario.py", NULL};
    runner_proc_spec_t spec = {
        .argv = absolute,
        .stdout_path = fixture->stdout_path,
        .stderr_path = fixture->stderr_path,
    };
    lynx_err_t err;
    assert_null(runner_proc_start(&spec, &err));
    assert_string_equal(err.message, "exec /no/such/python3: No such file or directory");

    const char *searched[] = {"lynx-no-such-program", NULL};
    spec.argv = searched;
    assert_null(runner_proc_start(&spec, &err));
    assert_string_equal(err.message, "exec lynx-no-such-program: No such file or directory");

    char not_executable[PATH_MAX + 20];
    snprintf(not_executable, sizeof not_executable, "%s/data.txt", fixture->dir);
    s_write_file(not_executable, "not a program\n");
    const char *denied[] = {not_executable, NULL};
    spec.argv = denied;
    assert_null(runner_proc_start(&spec, &err));
    char expected[PATH_MAX + 100];
    snprintf(expected, sizeof expected, "exec %s: Permission denied", not_executable);
    assert_string_equal(err.message, expected);

    s_assert_no_children(); //  the failed children were reaped
}

static void test_missing_working_directory_fails_clearly(void **state)
{
    s_fixture_t *fixture = *state;
    lynx_err_t err;
    assert_null(s_start_sh(fixture, "exit 0", "/no/such/dir", NULL, &err));
    assert_string_equal(err.message, "chdir /no/such/dir: No such file or directory");
    s_assert_no_children();
}

static void test_unwritable_log_fails_clearly(void **state)
{
    s_fixture_t *fixture = *state;
    snprintf(fixture->stderr_path, sizeof fixture->stderr_path, "/no/such/dir/stderr.log");
    lynx_err_t err;
    assert_null(s_start_sh(fixture, "exit 0", NULL, NULL, &err));
    assert_string_equal(err.message, "open /no/such/dir/stderr.log: No such file or directory");
    s_assert_no_children();
}

//  --- file tails -----------------------------------------------------------------------------

//  Tail of a file holding text, compared with expected.
static void s_assert_tail(const char *path, const char *text, int max_lines, size_t max_bytes,
                          const char *expected)
{
    s_write_file(path, text);
    char *tail = runner_proc_file_tail(path, max_lines, max_bytes);
    assert_non_null(tail);
    assert_string_equal(tail, expected);
    free(tail);
}

static void test_file_tail_small_files(void **state)
{
    s_fixture_t *fixture = *state;
    const char *path = fixture->stderr_path;
    s_assert_tail(path, "one\ntwo\nthree\n", 2, 4096, "two\nthree\n");
    s_assert_tail(path, "one\ntwo\nthree\n", 10, 4096, "one\ntwo\nthree\n"); //  fewer lines
    s_assert_tail(path, "one\ntwo\nthree", 1, 4096, "three");                //  no final newline
    s_assert_tail(path, "one\n\n\n", 2, 4096, "\n\n");                       //  blank lines count
    s_assert_tail(path, "", 5, 4096, "");
    s_assert_tail(path, "one\ntwo\n", 0, 4096, "");
    s_assert_tail(path, "aé\n", 5, 2, "\n"); //  the cut half of é is dropped

    char *tail = runner_proc_file_tail("/no/such/file", 5, 4096);
    assert_string_equal(tail, "");
    free(tail);
}

static void test_file_tail_large_file_reads_only_the_end(void **state)
{
    s_fixture_t *fixture = *state;
    FILE *file = fopen(fixture->stderr_path, "w");
    assert_non_null(file);
    for (int line = 0; line < 100000; line++)
        fprintf(file, "line %06d\n", line); //  12 bytes a line, 1.2 MB in all
    fclose(file);

    char *tail = runner_proc_file_tail(fixture->stderr_path, 3, 4096);
    assert_string_equal(tail, "line 099997\nline 099998\nline 099999\n");
    free(tail);

    //  The byte limit wins over the line count: 100 bytes is 8 lines and a part.
    tail = runner_proc_file_tail(fixture->stderr_path, 1000, 100);
    assert_int_equal(strlen(tail), 100);
    assert_string_equal(tail + 100 - 24, "line 099998\nline 099999\n");
    free(tail);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define S_TEST(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)
        S_TEST(test_exit_status_and_logs),
        S_TEST(test_log_files_are_truncated_and_stdin_is_empty),
        S_TEST(test_extra_env_and_working_directory),
        S_TEST(test_extra_env_entry_without_equals_is_refused),
        S_TEST(test_killed_by_signal_is_described),
        S_TEST(test_child_starts_with_default_signal_state),
        S_TEST(test_signal_kills_the_whole_group),
        S_TEST(test_destroy_kills_a_running_group),
        S_TEST(test_reap_kills_what_the_scenario_left_behind),
        S_TEST(test_exec_of_missing_program_fails_clearly),
        S_TEST(test_missing_working_directory_fails_clearly),
        S_TEST(test_unwritable_log_fails_clearly),
        S_TEST(test_file_tail_small_files),
        S_TEST(test_file_tail_large_file_reads_only_the_end),
#undef S_TEST
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
