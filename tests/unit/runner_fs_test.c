//  runner_fs: mkdir -p that tolerates racers, emptying a reused output directory, and the
//  writability probe of the runner's start-up checks.
//
//  The race test is the one a shared output root hits: several processes create the same
//  fresh parents at the same moment, and every one of them must succeed.
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runner_fs.h"

#define S_RACERS 8
#define S_RACE_ROUNDS 40

static char s_scratch[PATH_MAX];

static int s_setup(void **state)
{
    (void)state;
    char template[] = "/tmp/runner_fs_test.XXXXXX";
    if (!mkdtemp(template))
        return -1;
    snprintf(s_scratch, sizeof s_scratch, "%s", template);
    return 0;
}

static int s_teardown(void **state)
{
    (void)state;
    char command[PATH_MAX + 16];
    snprintf(command, sizeof command, "rm -rf '%s'", s_scratch);
    return system(command) == 0 ? 0 : -1;
}

static bool s_is_dir(const char *path)
{
    struct stat info;
    return stat(path, &info) == 0 && S_ISDIR(info.st_mode);
}

static void s_write_file(const char *path)
{
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    fputs("x\n", file);
    fclose(file);
}

static void test_mkdir_p_creates_every_parent_and_accepts_existing(void **state)
{
    (void)state;
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/a/b//c/d/", s_scratch);
    lynx_err_t err;
    assert_int_equal(runner_fs_mkdir_p(path, 0755, &err), 0);
    snprintf(path, sizeof path, "%s/a/b/c/d", s_scratch);
    assert_true(s_is_dir(path));
    //  Again: everything exists, still success.
    assert_int_equal(runner_fs_mkdir_p(path, 0755, &err), 0);
}

static void test_mkdir_p_names_a_file_in_the_way(void **state)
{
    (void)state;
    char file[PATH_MAX + 64], path[PATH_MAX + 64];
    snprintf(file, sizeof file, "%s/plain", s_scratch);
    s_write_file(file);
    snprintf(path, sizeof path, "%s/plain/job-1", s_scratch);
    lynx_err_t err;
    lynx_err_clear(&err);
    assert_int_equal(runner_fs_mkdir_p(path, 0755, &err), -1);
    assert_non_null(strstr(err.message, file));
    assert_non_null(strstr(err.message, "not a directory"));
    assert_int_equal(runner_fs_mkdir_p("", 0755, &err), -1);
}

//  S_RACERS processes released together create sibling job dirs under the same fresh parents.
static void test_mkdir_p_survives_racing_processes(void **state)
{
    (void)state;
    for (int round = 0; round < S_RACE_ROUNDS; round++) {
        int gate[2];
        assert_int_equal(pipe(gate), 0);
        pid_t children[S_RACERS];
        for (int racer = 0; racer < S_RACERS; racer++) {
            children[racer] = fork();
            assert_true(children[racer] >= 0);
            if (children[racer] == 0) {
                close(gate[1]);
                char byte;
                //  Blocks until the parent closes the write end: all start at once.
                if (read(gate[0], &byte, 1) < 0)
                    _exit(3);
                char path[PATH_MAX + 128];
                snprintf(path, sizeof path, "%s/round-%d/runs/shared/deep/runner-%d/job-%d",
                         s_scratch, round, racer, racer);
                lynx_err_t err;
                if (runner_fs_mkdir_p(path, 0755, &err)) {
                    fprintf(stderr, "racer %d: %s\n", racer, err.message);
                    _exit(1);
                }
                _exit(s_is_dir(path) ? 0 : 2);
            }
        }
        close(gate[0]);
        close(gate[1]);
        for (int racer = 0; racer < S_RACERS; racer++) {
            int status = 0;
            assert_int_equal(waitpid(children[racer], &status, 0), children[racer]);
            assert_true(WIFEXITED(status));
            assert_int_equal(WEXITSTATUS(status), 0);
        }
    }
}

static void test_empty_dir_removes_nested_entries_and_keeps_the_dir(void **state)
{
    (void)state;
    char dir[PATH_MAX + 64], path[PATH_MAX + 128];
    snprintf(dir, sizeof dir, "%s/out", s_scratch);
    snprintf(path, sizeof path, "%s/sub/deeper", dir);
    lynx_err_t err;
    assert_int_equal(runner_fs_mkdir_p(path, 0755, &err), 0);
    snprintf(path, sizeof path, "%s/sub/deeper/data.csv", dir);
    s_write_file(path);
    snprintf(path, sizeof path, "%s/top.txt", dir);
    s_write_file(path);
    snprintf(path, sizeof path, "%s/link", dir);
    assert_int_equal(symlink("/", path), 0); //  removed as a link, never followed
    assert_int_equal(runner_fs_empty_dir(dir, &err), 0);
    assert_true(s_is_dir(dir));
    char command[PATH_MAX + 256];
    snprintf(command, sizeof command, "test -z \"$(ls -A '%s')\"", dir);
    assert_int_equal(system(command), 0);
    snprintf(path, sizeof path, "%s/missing", s_scratch);
    assert_int_equal(runner_fs_empty_dir(path, &err), -1);
    assert_non_null(strstr(err.message, path));
}

static void test_check_writable_creates_and_names_the_failure(void **state)
{
    (void)state;
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/fresh/root", s_scratch);
    lynx_err_t err;
    assert_int_equal(runner_fs_check_writable(path, &err), 0);
    assert_true(s_is_dir(path));
    char command[PATH_MAX + 256];
    snprintf(command, sizeof command, "test -z \"$(ls -A '%s')\"", path);
    assert_int_equal(system(command), 0); //  the probe is gone
    //  Root ignores permission bits, so the failure used here is a file where a dir should be.
    char file[PATH_MAX + 64];
    snprintf(file, sizeof file, "%s/a-file", s_scratch);
    s_write_file(file);
    snprintf(path, sizeof path, "%s/a-file/root", s_scratch);
    assert_int_equal(runner_fs_check_writable(path, &err), -1);
    assert_non_null(strstr(err.message, file));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define S_TEST(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)
        S_TEST(test_mkdir_p_creates_every_parent_and_accepts_existing),
        S_TEST(test_mkdir_p_names_a_file_in_the_way),
        S_TEST(test_mkdir_p_survives_racing_processes),
        S_TEST(test_empty_dir_removes_nested_entries_and_keeps_the_dir),
        S_TEST(test_check_writable_creates_and_names_the_failure),
#undef S_TEST
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
