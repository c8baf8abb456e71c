//  runner_artifacts: the scan of an output directory (what is offered, what is skipped and
//  why, the collect patterns and size limits) and the serving of offered files chunk by chunk
//  with their SHA-256, refusing anything not offered, out of order, or changed underneath.
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lynx_digest.h"
#include "lynx_json.h"
#include "runner_artifacts.h"

static char s_dir[PATH_MAX];

static void s_write(const char *name, const char *content, size_t size)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%s", s_dir, name);
    FILE *file = fopen(path, "wb");
    assert_non_null(file);
    assert_int_equal(fwrite(content, 1, size, file), size);
    fclose(file);
}

//  s_dir/name, in one of four buffers so a call may take two paths.
static char *s_path(const char *name)
{
    static char paths[4][PATH_MAX * 2];
    static unsigned next;
    char *path = paths[next++ % 4];
    snprintf(path, sizeof paths[0], "%s/%s", s_dir, name);
    return path;
}

//  An output dir with two files, a nested one, a link out, a FIFO and a socket.
static int s_setup(void **state)
{
    (void)state;
    char template[] = "/tmp/runner_artifacts_test.XXXXXX";
    if (!mkdtemp(template))
        return -1;
    snprintf(s_dir, sizeof s_dir, "%s", template);
    s_write("summary.json", "{\"ok\": true}\n", 13);
    s_write("trajectory.csv", "t,x\n0,1\n1,2\n", 12);
    if (mkdir(s_path("plots"), 0755) != 0)
        return -1;
    s_write("plots/orbit.png", "\x89PNG....", 8);
    if (symlink("/etc/passwd", s_path("passwd")) != 0 || mkfifo(s_path("pipe"), 0644) != 0)
        return -1;
    int sock = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    snprintf(address.sun_path, sizeof address.sun_path, "%s", s_path("sock"));
    if (sock < 0 || bind(sock, (struct sockaddr *)&address, sizeof address) != 0)
        return -1;
    close(sock);
    return 0;
}

static int s_teardown(void **state)
{
    (void)state;
    char command[PATH_MAX + 16];
    snprintf(command, sizeof command, "rm -rf '%s'", s_dir);
    return system(command) == 0 ? 0 : -1;
}

static lynx_value_t *s_json(const char *text)
{
    lynx_err_t err;
    lynx_value_t *value = lynx_json_parse(text, strlen(text), &err);
    assert_non_null(value);
    return value;
}

//  "name=size,name=size" of the offered files; "name: reason" lines of the skipped.
static void s_describe(const lynx_value_t *scan, char *files, char *skipped, size_t size)
{
    files[0] = skipped[0] = '\0';
    const lynx_value_t *list = lynx_value_get(scan, "files");
    for (size_t i = 0; i < lynx_value_size(list); i++) {
        const lynx_value_t *file = lynx_value_at(list, i);
        size_t used = strlen(files);
        snprintf(files + used, size - used, "%s%s=%lld", i ? "," : "",
                 lynx_value_get_string(file, "name", "?"),
                 (long long)lynx_value_get_int(file, "size", -1));
    }
    list = lynx_value_get(scan, "skipped");
    for (size_t i = 0; i < lynx_value_size(list); i++) {
        const lynx_value_t *entry = lynx_value_at(list, i);
        size_t used = strlen(skipped);
        snprintf(skipped + used, size - used, "%s: %s\n", lynx_value_get_string(entry, "name", "?"),
                 lynx_value_get_string(entry, "reason", "?"));
    }
}

static void test_scan_offers_regular_files_and_names_what_it_skips(void **state)
{
    (void)state;
    lynx_value_t *scan = runner_artifacts_scan(s_dir, NULL);
    assert_non_null(scan);
    char files[1024], skipped[1024];
    s_describe(scan, files, skipped, sizeof files);
    assert_string_equal(files, "plots/orbit.png=8,summary.json=13,trajectory.csv=12");
    assert_string_equal(skipped, "passwd: symbolic link (not followed)\n"
                                 "pipe: not a regular file (device, socket or FIFO)\n"
                                 "sock: not a regular file (device, socket or FIFO)\n");
    //  output_files: the documented absolute paths of every regular file.
    const lynx_value_t *output_files = lynx_value_get(scan, "output_files");
    assert_int_equal(lynx_value_size(output_files), 3);
    assert_string_equal(lynx_value_as_string(lynx_value_at(output_files, 1)),
                        s_path("summary.json"));
    lynx_value_destroy(&scan);

    scan = runner_artifacts_scan("/nonexistent/lynx/output", NULL);
    assert_int_equal(lynx_value_size(lynx_value_get(scan, "files")), 0);
    assert_int_equal(lynx_value_size(lynx_value_get(scan, "skipped")), 0);
    lynx_value_destroy(&scan);
}

static void test_scan_applies_collect_patterns_and_limits(void **state)
{
    (void)state;
    char files[1024], skipped[1024];
    struct {
        const char *policy, *files, *skipped;
    } cases[] = {
        {"{\"collect\": \"none\"}", "",
         "passwd: symbolic link (not followed)\n"
         "pipe: not a regular file (device, socket or FIFO)\n"
         "sock: not a regular file (device, socket or FIFO)\n"},
        //  Without '/', a pattern matches base names at any depth; with '/', whole names.
        {"{\"collect\": [\"*.png\", \"summary.*\"]}", "plots/orbit.png=8,summary.json=13", NULL},
        {"{\"collect\": [\"plots/*\"]}", "plots/orbit.png=8", NULL},
        {"{\"collect\": [\"*/orbit.png\", \"nothing\"]}", "plots/orbit.png=8", NULL},
        {"{\"max_file_bytes\": 12}", "plots/orbit.png=8,trajectory.csv=12", NULL},
        {"{\"max_job_bytes\": 21}", "plots/orbit.png=8,summary.json=13", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lynx_value_t *policy = s_json(cases[i].policy);
        lynx_value_t *scan = runner_artifacts_scan(s_dir, policy);
        s_describe(scan, files, skipped, sizeof files);
        assert_string_equal(files, cases[i].files);
        if (cases[i].skipped)
            assert_string_equal(skipped, cases[i].skipped);
        lynx_value_destroy(&scan);
        lynx_value_destroy(&policy);
    }
    lynx_value_t *policy = s_json("{\"max_file_bytes\": 12, \"max_job_bytes\": 15}");
    lynx_value_t *scan = runner_artifacts_scan(s_dir, policy);
    s_describe(scan, files, skipped, sizeof files);
    assert_non_null(strstr(skipped, "summary.json: larger than max_file_bytes: 13 > 12\n"));
    assert_non_null(strstr(skipped, "trajectory.csv: max_job_bytes reached: 15 bytes\n"));
    lynx_value_destroy(&scan);
    lynx_value_destroy(&policy);
}

static lynx_value_t *s_fetch(const char *name, int64_t offset, int64_t length)
{
    lynx_value_t *fetch = lynx_value_map();
    lynx_value_set_string(fetch, "job_id", "job-1");
    lynx_value_set_int(fetch, "attempt", 2);
    lynx_value_set_string(fetch, "name", name);
    lynx_value_set_int(fetch, "offset", offset);
    lynx_value_set_int(fetch, "length", length);
    return fetch;
}

//  Read one chunk; returns the CHUNK body (the caller destroys it).
static lynx_value_t *s_read(runner_artifacts_t *artifacts, const char *name, int64_t offset,
                            int64_t length)
{
    lynx_value_t *fetch = s_fetch(name, offset, length);
    lynx_value_t *chunk = runner_artifacts_read(artifacts, fetch);
    lynx_value_destroy(&fetch);
    assert_non_null(chunk);
    return chunk;
}

static runner_artifacts_t *s_offered(void)
{
    runner_artifacts_t *artifacts = runner_artifacts_new();
    assert_non_null(artifacts);
    lynx_value_t *scan = runner_artifacts_scan(s_dir, NULL);
    assert_int_equal(
        runner_artifacts_offer(artifacts, "job-1", 2, s_dir, lynx_value_get(scan, "files")), 0);
    lynx_value_destroy(&scan);
    return artifacts;
}

static void test_chunks_carry_the_file_and_its_sha256(void **state)
{
    (void)state;
    runner_artifacts_t *artifacts = s_offered();
    char got[64] = "";
    size_t have = 0;
    const char *sha256 = NULL;
    lynx_value_t *chunk = NULL;
    for (int64_t offset = 0; offset < 12; offset += 5) {
        lynx_value_destroy(&chunk);
        chunk = s_read(artifacts, "trajectory.csv", offset, 5);
        assert_null(lynx_value_get(chunk, "error"));
        assert_int_equal(lynx_value_get_int(chunk, "offset", -1), offset);
        const lynx_value_t *data = lynx_value_get(chunk, "data");
        memcpy(got + have, lynx_value_as_string(data), lynx_value_string_len(data));
        have += lynx_value_string_len(data);
        assert_int_equal(lynx_value_get_bool(chunk, "eof", false), offset + 5 >= 12);
        sha256 = lynx_value_get_string(chunk, "sha256", NULL);
    }
    assert_int_equal(have, 12);
    assert_memory_equal(got, "t,x\n0,1\n1,2\n", 12);
    lynx_digest_t digest;
    char expected[LYNX_DIGEST_HEX_SIZE];
    lynx_digest_init(&digest);
    lynx_digest_update(&digest, "t,x\n0,1\n1,2\n", 12);
    lynx_digest_final_hex(&digest, expected);
    assert_non_null(sha256);
    assert_string_equal(sha256, expected);
    lynx_value_destroy(&chunk);

    //  A fetch from 0 starts over: the digest is of the whole file again.
    chunk = s_read(artifacts, "trajectory.csv", 0, RUNNER_ARTIFACTS_CHUNK_MAX);
    assert_true(lynx_value_get_bool(chunk, "eof", false));
    assert_string_equal(lynx_value_get_string(chunk, "sha256", ""), expected);
    lynx_value_destroy(&chunk);
    runner_artifacts_destroy(&artifacts);
}

static void test_refuses_what_is_not_offered_or_out_of_order(void **state)
{
    (void)state;
    runner_artifacts_t *artifacts = s_offered();
    struct {
        const char *name;
        int64_t offset, length;
        const char *error;
    } cases[] = {
        {"passwd", 0, 10, "passwd: not an offered file"},
        {"../../etc/passwd", 0, 10, "../../etc/passwd: not an offered file"},
        {"/etc/shadow", 0, 10, "/etc/shadow: not an offered file"},
        {"summary.json", 5, 5, "summary.json: out of order: fetch from offset 0, in order"},
        {"summary.json", 0, RUNNER_ARTIFACTS_CHUNK_MAX + 1, "summary.json: bad range"},
        {"summary.json", 14, 1, "summary.json: bad range"},
        {"summary.json", -1, 1, "summary.json: bad range"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lynx_value_t *chunk = s_read(artifacts, cases[i].name, cases[i].offset, cases[i].length);
        const char *error = lynx_value_get_string(chunk, "error", "");
        assert_true(strncmp(error, cases[i].error, strlen(cases[i].error)) == 0);
        assert_null(lynx_value_get(chunk, "data"));
        lynx_value_destroy(&chunk);
    }
    lynx_value_t *other = lynx_value_map();
    lynx_value_set_string(other, "job_id", "job-1");
    lynx_value_set_int(other, "attempt", 1); //  not the offered attempt
    lynx_value_set_string(other, "name", "summary.json");
    lynx_value_set_int(other, "offset", 0);
    lynx_value_set_int(other, "length", 5);
    lynx_value_t *chunk = runner_artifacts_read(artifacts, other);
    assert_string_equal(lynx_value_get_string(chunk, "error", ""),
                        "attempt 1 of job job-1 is not offered");
    lynx_value_destroy(&chunk);
    lynx_value_destroy(&other);
    runner_artifacts_destroy(&artifacts);
}

//  A file swapped for a link, or rewritten to another size, after the scan is not served.
static void test_refuses_files_changed_after_the_scan(void **state)
{
    (void)state;
    runner_artifacts_t *artifacts = s_offered();
    assert_int_equal(unlink(s_path("summary.json")), 0);
    assert_int_equal(symlink("/etc/passwd", s_path("summary.json")), 0);
    lynx_value_t *chunk = s_read(artifacts, "summary.json", 0, 100);
    assert_non_null(strstr(lynx_value_get_string(chunk, "error", ""), "cannot open"));
    lynx_value_destroy(&chunk);
    //  Nor a file under a directory swapped for a link.
    assert_int_equal(rename(s_path("plots"), s_path("plots.real")), 0);
    assert_int_equal(symlink(s_path("plots.real"), s_path("plots")), 0);
    chunk = s_read(artifacts, "plots/orbit.png", 0, 100);
    assert_non_null(strstr(lynx_value_get_string(chunk, "error", ""), "cannot open"));
    lynx_value_destroy(&chunk);
    s_write("trajectory.csv", "longer than it was\n", 19);
    chunk = s_read(artifacts, "trajectory.csv", 0, 100);
    assert_non_null(strstr(lynx_value_get_string(chunk, "error", ""), "changed since"));
    lynx_value_destroy(&chunk);
    runner_artifacts_destroy(&artifacts);
}

static void test_forget_stops_serving_and_may_remove_the_directory(void **state)
{
    (void)state;
    runner_artifacts_t *artifacts = s_offered();
    assert_int_equal(runner_artifacts_count(artifacts), 1);
    runner_artifacts_forget(artifacts, "job-1", 2, true);
    assert_int_equal(runner_artifacts_count(artifacts), 0);
    struct stat info;
    assert_int_not_equal(lstat(s_dir, &info), 0);
    lynx_value_t *chunk = s_read(artifacts, "summary.json", 0, 5);
    assert_non_null(lynx_value_get(chunk, "error"));
    lynx_value_destroy(&chunk);
    runner_artifacts_destroy(&artifacts);
    assert_int_equal(mkdir(s_dir, 0755), 0); //  for the teardown
}

//  --- output_files (moved from runner_proc_test: the scan is the one walker now) -------------

static void s_write_file(const char *path, const char *content)
{
    FILE *file = fopen(path, "w");
    assert_non_null(file);
    fputs(content, file);
    fclose(file);
}

static void test_list_files_is_recursive_sorted_and_absolute(void **state)
{
    (void)state;
    char dir[PATH_MAX * 2];
    snprintf(dir, sizeof dir, "%s", s_path("listing"));
    assert_int_equal(mkdir(dir, 0755), 0);
    char path[PATH_MAX * 3];
    const char *files[] = {"summary.json", "b/trajectory.csv", "b/deep/er/x.bin", "a.png",
                           ".hidden"};
    snprintf(path, sizeof path, "%s/b", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/b/deep", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/b/deep/er", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/empty", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    for (size_t index = 0; index < sizeof files / sizeof files[0]; index++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[index]);
        s_write_file(path, "x");
    }
    //  Not regular files: left out.
    snprintf(path, sizeof path, "%s/link-to-summary", dir);
    assert_int_equal(symlink("summary.json", path), 0);
    snprintf(path, sizeof path, "%s/fifo", dir);
    assert_int_equal(mkfifo(path, 0600), 0);

    //  A roundabout spelling of the directory still gives canonical paths.
    char roundabout[PATH_MAX * 3];
    snprintf(roundabout, sizeof roundabout, "%s/b/../.", dir);
    lynx_value_t *scan = runner_artifacts_scan(roundabout, NULL);
    assert_non_null(scan);
    const lynx_value_t *list = lynx_value_get(scan, "output_files");
    const char *expected[] = {".hidden", "a.png", "b/deep/er/x.bin", "b/trajectory.csv",
                              "summary.json"};
    assert_int_equal(lynx_value_size(list), 5);
    for (size_t index = 0; index < 5; index++) {
        snprintf(path, sizeof path, "%s/%s", dir, expected[index]);
        assert_string_equal(lynx_value_as_string(lynx_value_at(list, index)), path);
    }
    lynx_value_destroy(&scan);
}

static void test_list_files_of_missing_dir_is_empty(void **state)
{
    (void)state;
    lynx_value_t *scan = runner_artifacts_scan("/no/such/dir", NULL);
    const lynx_value_t *list = lynx_value_get(scan, "output_files");
    assert_non_null(list);
    assert_int_equal(lynx_value_type(list), LYNX_VALUE_ARRAY);
    assert_int_equal(lynx_value_size(list), 0);
    lynx_value_destroy(&scan);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define S_TEST(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)
        S_TEST(test_scan_offers_regular_files_and_names_what_it_skips),
        S_TEST(test_scan_applies_collect_patterns_and_limits),
        S_TEST(test_chunks_carry_the_file_and_its_sha256),
        S_TEST(test_refuses_what_is_not_offered_or_out_of_order),
        S_TEST(test_refuses_files_changed_after_the_scan),
        S_TEST(test_forget_stops_serving_and_may_remove_the_directory),
        S_TEST(test_list_files_is_recursive_sorted_and_absolute),
        S_TEST(test_list_files_of_missing_dir_is_empty),
#undef S_TEST
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
