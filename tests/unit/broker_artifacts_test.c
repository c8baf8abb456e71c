//  broker_artifacts: a FINISHED listing files becomes FETCHes under a credit window, CHUNKs are
//  checked (order, size, eof, SHA-256) and land under data_dir/artifacts/<batch>/<job>/a<N>/;
//  refused names and oversized files are skipped unfetched, bad chunks discard the transfer.
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
#include <unistd.h>

#include "broker_artifacts.h"
#include "lynx_digest.h"
#include "lynx_json.h"
#include "lynx_time.h"

static char s_dir[PATH_MAX];
static broker_artifacts_t *s_arts;
static lynx_value_t *s_fetches; //  every FETCH appended so far
static size_t s_answered;       //  how many of them were answered
static lynx_err_t s_err;        //  of the last s_begin or s_give

typedef struct {
    const char *name;
    const char *data;
    size_t size;
} s_blob_t;

static void s_reset_fetches(void)
{
    lynx_value_destroy(&s_fetches);
    s_fetches = lynx_value_array();
    s_answered = 0;
}

static int s_setup(void **state)
{
    (void)state;
    char template[] = "/tmp/broker_artifacts_test.XXXXXX";
    if (!mkdtemp(template))
        return -1;
    snprintf(s_dir, sizeof s_dir, "%s", template);
    lynx_err_t err;
    s_arts = broker_artifacts_new(s_dir, &err);
    s_reset_fetches();
    return s_arts && s_fetches ? 0 : -1;
}

static int s_teardown(void **state)
{
    (void)state;
    broker_artifacts_destroy(&s_arts);
    lynx_value_destroy(&s_fetches);
    char command[PATH_MAX + 16];
    snprintf(command, sizeof command, "rm -rf '%s'", s_dir);
    return system(command) == 0 ? 0 : -1;
}

//  s_dir/relative, in one of four buffers so a call may take two paths.
static char *s_path(const char *relative)
{
    static char paths[4][PATH_MAX * 2];
    static unsigned next;
    char *path = paths[next++ % 4];
    snprintf(path, sizeof paths[0], "%s/%s", s_dir, relative);
    return path;
}

static bool s_exists(const char *relative)
{
    struct stat info;
    return lstat(s_path(relative), &info) == 0;
}

//  Write s_dir/relative (parents made) with content.
static void s_put(const char *relative, const char *content)
{
    char *path = s_path(relative);
    for (char *slash = strchr(path + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        mkdir(path, 0755);
        *slash = '/';
    }
    FILE *file = fopen(path, "wb");
    assert_non_null(file);
    fputs(content, file);
    fclose(file);
}

//  The bytes of s_dir/relative equal data[0, size).
static void s_assert_file(const char *relative, const char *data, size_t size)
{
    FILE *file = fopen(s_path(relative), "rb");
    assert_non_null(file);
    char *read_back = malloc(size + 1);
    assert_non_null(read_back);
    size_t got = fread(read_back, 1, size + 1, file);
    fclose(file);
    assert_int_equal(got, size);
    assert_memory_equal(read_back, data, size);
    free(read_back);
}

//  True when no *.part directory or *.partial file is left anywhere under s_dir.
static bool s_no_leftovers(void)
{
    char command[PATH_MAX + 96];
    snprintf(command, sizeof command,
             "test -z \"$(find '%s' -name '*.part' -o -name '*.partial')\"", s_dir);
    return system(command) == 0;
}

static lynx_value_t *s_json(const char *text)
{
    lynx_err_t err;
    lynx_value_t *value = lynx_json_parse(text, strlen(text), &err);
    assert_non_null(value);
    return value;
}

static void s_sha(const char *data, size_t size, char hex[LYNX_DIGEST_HEX_SIZE])
{
    lynx_digest_t digest;
    lynx_digest_init(&digest);
    lynx_digest_update(&digest, data, size);
    lynx_digest_final_hex(&digest, hex);
}

//  A FINISHED of job_id/attempt whose artifacts list blobs by name and size.
static lynx_value_t *s_finished(const char *job_id, int64_t attempt, const s_blob_t *blobs,
                                size_t count)
{
    lynx_value_t *files = lynx_value_array();
    for (size_t i = 0; i < count; i++) {
        lynx_value_t *file = lynx_value_map();
        lynx_value_set_string(file, "name", blobs[i].name);
        lynx_value_set_int(file, "size", (int64_t)blobs[i].size);
        lynx_value_append_owned(files, file);
    }
    lynx_value_t *artifacts = lynx_value_map();
    lynx_value_set_owned(artifacts, "files", files);
    lynx_value_set_owned(artifacts, "skipped", lynx_value_array());
    lynx_value_t *finished = lynx_value_map();
    lynx_value_set_string(finished, "job_id", job_id);
    lynx_value_set_int(finished, "attempt", attempt);
    lynx_value_set_owned(finished, "artifacts", artifacts);
    lynx_value_set_owned(finished, "result", s_json("{\"exit_code\": 0}"));
    return finished;
}

//  The CHUNK a well-behaved runner sends for bytes [offset, offset + length) of blob.
static lynx_value_t *s_chunk(const char *job_id, int64_t attempt, const s_blob_t *blob,
                             size_t offset, size_t length)
{
    lynx_value_t *chunk = lynx_value_map();
    lynx_value_set_string(chunk, "job_id", job_id);
    lynx_value_set_int(chunk, "attempt", attempt);
    lynx_value_set_string(chunk, "name", blob->name);
    lynx_value_set_int(chunk, "offset", (int64_t)offset);
    lynx_value_set_owned(chunk, "data", lynx_value_stringn(blob->data + offset, length));
    if (offset + length == blob->size) {
        char hex[LYNX_DIGEST_HEX_SIZE];
        s_sha(blob->data, blob->size, hex);
        lynx_value_set_bool(chunk, "eof", true);
        lynx_value_set_string(chunk, "sha256", hex);
    }
    return chunk;
}

//  The answer to fetch, which must name one of blobs and ask for the next window of it.
static lynx_value_t *s_answer(const lynx_value_t *fetch, const s_blob_t *blobs, size_t count)
{
    const char *name = lynx_value_get_string(fetch, "name", "");
    const s_blob_t *blob = NULL;
    for (size_t i = 0; i < count && !blob; i++)
        if (strcmp(blobs[i].name, name) == 0)
            blob = &blobs[i];
    if (!blob)
        fail_msg("FETCH of a file not offered: \"%s\"", name);
    int64_t offset = lynx_value_get_int(fetch, "offset", -1);
    int64_t length = lynx_value_get_int(fetch, "length", -1);
    int64_t left = (int64_t)blob->size - offset;
    assert_true(offset >= 0 && left >= 0);
    assert_int_equal(length, left < BROKER_ARTIFACTS_CHUNK ? left : BROKER_ARTIFACTS_CHUNK);
    return s_chunk(lynx_value_get_string(fetch, "job_id", ""),
                   lynx_value_get_int(fetch, "attempt", -1), blob, (size_t)offset, (size_t)length);
}

//  The FINISHED of an attempt of batch "b" from runner_id; FETCHes go to s_fetches.
static broker_upload_rc_t s_begin(const char *runner_id, const lynx_value_t *finished,
                                  const lynx_value_t *policy, broker_upload_view_t *view)
{
    lynx_err_clear(&s_err);
    return broker_artifacts_begin(s_arts, runner_id, "b", finished, policy, s_fetches, view,
                                  &s_err);
}

static broker_chunk_rc_t s_give(const char *runner_id, const lynx_value_t *chunk,
                                broker_upload_view_t *view)
{
    lynx_err_clear(&s_err);
    return broker_artifacts_chunk(s_arts, runner_id, chunk, s_fetches, view, &s_err);
}

//  Answer s_fetches in order while the upload wants more; the last rc. *max_outstanding is the
//  most FETCHes seen unanswered at once.
static broker_chunk_rc_t s_drive(const char *runner_id, const s_blob_t *blobs, size_t count,
                                 broker_upload_view_t *view, size_t *max_outstanding)
{
    broker_chunk_rc_t rc = BROKER_CHUNK_MORE;
    while (rc == BROKER_CHUNK_MORE && s_answered < lynx_value_size(s_fetches)) {
        size_t outstanding = lynx_value_size(s_fetches) - s_answered;
        assert_true(outstanding <= BROKER_ARTIFACTS_CREDIT);
        if (max_outstanding && outstanding > *max_outstanding)
            *max_outstanding = outstanding;
        lynx_value_t *chunk = s_answer(lynx_value_at(s_fetches, s_answered++), blobs, count);
        rc = s_give(runner_id, chunk, view);
        lynx_value_destroy(&chunk);
    }
    return rc;
}

//  "name: reason" lines of view->skipped.
static void s_skipped(const broker_upload_view_t *view, char *out, size_t size)
{
    out[0] = '\0';
    for (size_t i = 0; i < lynx_value_size(view->skipped); i++) {
        const lynx_value_t *entry = lynx_value_at(view->skipped, i);
        size_t used = strlen(out);
        snprintf(out + used, size - used, "%s: %s\n", lynx_value_get_string(entry, "name", "?"),
                 lynx_value_get_string(entry, "reason", "?"));
    }
}

//  --------------------------------------------------------------------------------------------

static void test_happy_path_stores_every_file_under_credit(void **state)
{
    (void)state;
    size_t big_size = 10 * BROKER_ARTIFACTS_CHUNK + 1234; //  11 chunks: the credit matters
    char *big = malloc(big_size);
    assert_non_null(big);
    uint32_t seed = 12345;
    for (size_t i = 0; i < big_size; i++) {
        seed = seed * 1103515245u + 12345u;
        big[i] = i % 97 == 0 ? '\0' : (char)(seed >> 16);
    }
    const s_blob_t blobs[] = {
        {"plots/a.png", "\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16},
        {"trace.bin", big, big_size},
        {"empty.json", "", 0},
    };
    lynx_value_t *finished = s_finished("j1", 1, blobs, 3);
    broker_upload_view_t view;
    assert_int_equal(s_begin("r1", finished, NULL, &view), BROKER_UPLOAD_STARTED);
    assert_int_equal(lynx_value_size(s_fetches), BROKER_ARTIFACTS_CREDIT);
    assert_true(broker_artifacts_busy(s_arts, "j1"));
    assert_true(s_exists("artifacts/b/j1/a1.part"));
    size_t max_outstanding = 0;
    assert_int_equal(s_drive("r1", blobs, 3, &view, &max_outstanding), BROKER_CHUNK_DONE);
    assert_int_equal(max_outstanding, BROKER_ARTIFACTS_CREDIT);
    assert_int_equal(s_answered, lynx_value_size(s_fetches)); //  nothing asked for after DONE
    assert_int_equal(lynx_value_size(s_fetches), 1 + 11 + 1); //  one FETCH per chunk
    //  The FETCHes walk the files in order, each window right after the previous one.
    size_t next = 0;
    for (size_t f = 0; f < 3; f++) {
        size_t offset = 0;
        do {
            const lynx_value_t *fetch = lynx_value_at(s_fetches, next++);
            assert_string_equal(lynx_value_get_string(fetch, "name", ""), blobs[f].name);
            assert_string_equal(lynx_value_get_string(fetch, "job_id", ""), "j1");
            assert_int_equal(lynx_value_get_int(fetch, "attempt", -1), 1);
            assert_int_equal(lynx_value_get_int(fetch, "offset", -1), offset);
            offset += (size_t)lynx_value_get_int(fetch, "length", 0);
        } while (offset < blobs[f].size);
    }
    assert_false(broker_artifacts_busy(s_arts, "j1"));

    assert_string_equal(view.job_id, "j1");
    assert_int_equal(view.attempt, 1);
    assert_true(lynx_value_equal(view.finished, finished));
    assert_int_equal(lynx_value_size(view.skipped), 0);
    assert_int_equal(lynx_value_size(view.files), 3);
    const char *types[] = {"image/png", "application/octet-stream", "application/json"};
    for (size_t f = 0; f < 3; f++) {
        const lynx_value_t *file = lynx_value_at(view.files, f);
        char hex[LYNX_DIGEST_HEX_SIZE], path[256];
        s_sha(blobs[f].data, blobs[f].size, hex);
        snprintf(path, sizeof path, "artifacts/b/j1/a1/%s", blobs[f].name);
        assert_string_equal(lynx_value_get_string(file, "name", ""), blobs[f].name);
        assert_int_equal(lynx_value_get_int(file, "size", -1), blobs[f].size);
        assert_string_equal(lynx_value_get_string(file, "sha256", ""), hex);
        assert_string_equal(lynx_value_get_string(file, "content_type", ""), types[f]);
        assert_string_equal(lynx_value_get_string(file, "path", ""), path);
        s_assert_file(path, blobs[f].data, blobs[f].size);
    }
    assert_true(s_no_leftovers());
    broker_artifacts_done(s_arts, "j1", 1);
    s_assert_file("artifacts/b/j1/a1/trace.bin", big, big_size); //  done keeps the recorded set
    lynx_value_destroy(&finished);
    free(big);
}

static void test_refused_names_are_skipped_and_never_fetched(void **state)
{
    (void)state;
    char long_name[1026];
    memset(long_name, 'n', 1025);
    long_name[1025] = '\0';
    const char *refused[] = {
        "/etc/shadow", "a/../b",    "a//b",    "",      ".", "../../../../etc/passwd",
        "bad\x01name", "tab\tname", long_name, "ok.txt"};
    size_t n_refused = sizeof refused / sizeof refused[0];
    s_blob_t listed[16] = {{"ok.txt", "ok!", 3}};
    for (size_t i = 0; i < n_refused; i++)
        listed[1 + i] = (s_blob_t){refused[i], "xyz", 3};
    lynx_value_t *finished = s_finished("j1", 1, listed, 1 + n_refused);
    //  The runner's own skipped entries stay first; a name with a NUL byte is refused too.
    lynx_value_t *artifacts = lynx_value_get(finished, "artifacts");
    lynx_value_append_owned(lynx_value_get(artifacts, "skipped"),
                            s_json("{\"name\": \"link\", \"reason\": \"symbolic link\"}"));
    lynx_value_t *nul_file = lynx_value_map();
    lynx_value_set_owned(nul_file, "name", lynx_value_stringn("nul\0.txt", 8));
    lynx_value_set_int(nul_file, "size", 3);
    lynx_value_append_owned(lynx_value_get(artifacts, "files"), nul_file);

    broker_upload_view_t view;
    assert_int_equal(s_begin("r1", finished, NULL, &view), BROKER_UPLOAD_STARTED);
    assert_int_equal(s_drive("r1", listed, 1, &view, NULL), BROKER_CHUNK_DONE);
    assert_int_equal(lynx_value_size(s_fetches), 1); //  s_answer fails on any other name
    assert_string_equal(lynx_value_get_string(lynx_value_at(s_fetches, 0), "name", ""), "ok.txt");
    assert_int_equal(lynx_value_size(view.files), 1);
    assert_int_equal(lynx_value_size(view.skipped), 1 + n_refused + 1);
    const lynx_value_t *first = lynx_value_at(view.skipped, 0);
    assert_string_equal(lynx_value_get_string(first, "name", ""), "link");
    assert_string_equal(lynx_value_get_string(first, "reason", ""), "symbolic link");
    for (size_t i = 0; i < n_refused; i++) {
        const lynx_value_t *entry = lynx_value_at(view.skipped, 1 + i);
        assert_string_equal(lynx_value_get_string(entry, "name", "?"), refused[i]);
        const char *reason = lynx_value_get_string(entry, "reason", "");
        assert_non_null(strstr(reason, i + 1 == n_refused ? "listed twice" : "refused"));
    }
    const lynx_value_t *last = lynx_value_at(view.skipped, 1 + n_refused);
    assert_non_null(strstr(lynx_value_get_string(last, "reason", ""), "refused"));
    s_assert_file("artifacts/b/j1/a1/ok.txt", "ok!", 3);
    broker_artifacts_done(s_arts, "j1", 1);
    lynx_value_destroy(&finished);
}

static void test_size_limits_skip_files_without_fetching_them(void **state)
{
    (void)state;
    const s_blob_t blobs[] = {
        {"a.txt", "0123456789", 10}, {"b.txt", "0123456789x", 11}, {"c.txt", "ab", 2}};
    const struct {
        const char *policy, *fetched, *skipped;
    } cases[] = {
        {"{\"max_file_bytes\": 10}", "a.txt,c.txt", "b.txt: larger than max_file_bytes\n"},
        {"{\"max_job_bytes\": 12}", "a.txt,c.txt", "b.txt: max_job_bytes reached\n"},
        {"{\"max_job_bytes\": 9}", "c.txt",
         "a.txt: max_job_bytes reached\n"
         "b.txt: max_job_bytes reached\n"},
        {"{\"max_file_bytes\": 11, \"max_job_bytes\": 23}", "a.txt,b.txt,c.txt", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char job_id[16];
        snprintf(job_id, sizeof job_id, "j%zu", i);
        lynx_value_t *finished = s_finished(job_id, 1, blobs, 3);
        lynx_value_t *policy = s_json(cases[i].policy);
        s_reset_fetches();
        broker_upload_view_t view;
        assert_int_equal(s_begin("r1", finished, policy, &view), BROKER_UPLOAD_STARTED);
        assert_int_equal(s_drive("r1", blobs, 3, &view, NULL), BROKER_CHUNK_DONE);
        char fetched[64] = "", skipped[256];
        for (size_t f = 0; f < lynx_value_size(s_fetches); f++)
            snprintf(fetched + strlen(fetched), sizeof fetched - strlen(fetched), "%s%s",
                     f ? "," : "", lynx_value_get_string(lynx_value_at(s_fetches, f), "name", ""));
        assert_string_equal(fetched, cases[i].fetched);
        s_skipped(&view, skipped, sizeof skipped);
        assert_string_equal(skipped, cases[i].skipped);
        broker_artifacts_done(s_arts, job_id, 1);
        lynx_value_destroy(&policy);
        lynx_value_destroy(&finished);
    }
}

static void test_bad_chunks_discard_the_transfer(void **state)
{
    (void)state;
    size_t big_size = 2 * BROKER_ARTIFACTS_CHUNK + 5;
    char *big = calloc(1, big_size);
    assert_non_null(big);
    for (size_t i = 0; i < big_size; i++)
        big[i] = (char)(i * 7);
    const s_blob_t blobs[] = {{"first.txt", "hello", 5}, {"big.bin", big, big_size}};
    const struct {
        const char *how;
        size_t at; //  the chunk of big.bin that is bad (those before it are good)
        const char *message;
    } cases[] = {
        {"order", 0, "out of order"},  {"name", 1, "out of order"},
        {"more", 2, "more than"},      {"fewer", 0, "expected"},
        {"sha", 2, "sha256 mismatch"}, {"no eof", 2, "not marked eof"},
        {"early eof", 1, "eof at"},    {"error", 1, "EIO here"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char job_id[16], part[64], partial[64];
        snprintf(job_id, sizeof job_id, "j%zu", i);
        snprintf(part, sizeof part, "artifacts/b/%s/a1.part", job_id);
        snprintf(partial, sizeof partial, "artifacts/b/%s/a1.partial", job_id);
        lynx_value_t *finished = s_finished(job_id, 1, blobs, 2);
        s_reset_fetches();
        broker_upload_view_t view;
        assert_int_equal(s_begin("r1", finished, NULL, &view), BROKER_UPLOAD_STARTED);
        //  first.txt and the good chunks of big.bin go in.
        for (size_t c = 0; c < 1 + cases[i].at; c++) {
            lynx_value_t *good = s_answer(lynx_value_at(s_fetches, s_answered++), blobs, 2);
            assert_int_equal(s_give("r1", good, &view), BROKER_CHUNK_MORE);
            lynx_value_destroy(&good);
        }
        assert_true(s_exists(part));
        size_t offset = cases[i].at * BROKER_ARTIFACTS_CHUNK;
        size_t length = cases[i].at == 2 ? 5 : BROKER_ARTIFACTS_CHUNK;
        lynx_value_t *bad = s_chunk(job_id, 1, &blobs[1], offset, length);
        char hex[LYNX_DIGEST_HEX_SIZE];
        const char *how = cases[i].how;
        if (strcmp(how, "order") == 0) { //  the second window first
            lynx_value_destroy(&bad);
            bad = s_chunk(job_id, 1, &blobs[1], BROKER_ARTIFACTS_CHUNK, BROKER_ARTIFACTS_CHUNK);
        } else if (strcmp(how, "name") == 0)
            lynx_value_set_string(bad, "name", "other.bin");
        else if (strcmp(how, "more") == 0)
            lynx_value_set_owned(bad, "data", lynx_value_stringn(big + offset - 1, length + 1));
        else if (strcmp(how, "fewer") == 0)
            lynx_value_set_owned(bad, "data", lynx_value_stringn(big + offset, length - 1));
        else if (strcmp(how, "sha") == 0) {
            s_sha("not the file", 12, hex);
            lynx_value_set_string(bad, "sha256", hex);
        } else if (strcmp(how, "no eof") == 0)
            assert_int_equal(lynx_value_remove(bad, "eof"), 0);
        else if (strcmp(how, "early eof") == 0) {
            s_sha(big, offset + length, hex);
            lynx_value_set_bool(bad, "eof", true);
            lynx_value_set_string(bad, "sha256", hex);
        } else {
            lynx_value_remove(bad, "data");
            lynx_value_set_string(bad, "error", "EIO here");
        }
        assert_int_equal(s_give("r1", bad, &view), BROKER_CHUNK_FAILED);
        assert_int_equal(s_err.code, LYNX_EPROTOCOL);
        assert_non_null(strstr(s_err.message, cases[i].message));
        assert_false(s_exists(part));
        assert_false(s_exists(partial));
        assert_false(broker_artifacts_busy(s_arts, job_id));
        //  The transfer is gone: its next chunk is stray; the runner's new FINISHED starts over.
        lynx_value_t *late = s_answer(lynx_value_at(s_fetches, s_answered), blobs, 2);
        assert_int_equal(s_give("r1", late, &view), BROKER_CHUNK_STRAY);
        lynx_value_destroy(&late);
        s_reset_fetches();
        assert_int_equal(s_begin("r1", finished, NULL, &view), BROKER_UPLOAD_STARTED);
        assert_int_equal(s_drive("r1", blobs, 2, &view, NULL), BROKER_CHUNK_DONE);
        char stored[64];
        snprintf(stored, sizeof stored, "artifacts/b/%s/a1/big.bin", job_id);
        s_assert_file(stored, big, big_size);
        broker_artifacts_done(s_arts, job_id, 1);
        lynx_value_destroy(&bad);
        lynx_value_destroy(&finished);
    }
    assert_true(s_no_leftovers());
    free(big);
}

static void test_chunks_nobody_expects_are_stray(void **state)
{
    (void)state;
    const s_blob_t blob = {"out.csv", "t,x\n0,1\n", 8};
    lynx_value_t *finished = s_finished("j1", 1, &blob, 1);
    broker_upload_view_t view;
    assert_int_equal(s_begin("r1", finished, NULL, &view), BROKER_UPLOAD_STARTED);
    lynx_value_t *chunk = s_chunk("j1", 1, &blob, 0, 8);
    assert_int_equal(s_give("r2", chunk, &view), BROKER_CHUNK_STRAY);
    assert_int_equal(s_err.code, LYNX_EPROTOCOL);
    lynx_value_set_int(chunk, "attempt", 2);
    assert_int_equal(s_give("r1", chunk, &view), BROKER_CHUNK_STRAY);
    lynx_value_set_int(chunk, "attempt", 1);
    lynx_value_set_string(chunk, "job_id", "j9");
    assert_int_equal(s_give("r1", chunk, &view), BROKER_CHUNK_STRAY);
    lynx_value_set_string(chunk, "job_id", "j1");
    //  The strays changed nothing: the real chunk completes the upload.
    assert_true(broker_artifacts_busy(s_arts, "j1"));
    assert_int_equal(s_give("r1", chunk, &view), BROKER_CHUNK_DONE);
    assert_int_equal(lynx_value_size(s_fetches), 1);
    s_assert_file("artifacts/b/j1/a1/out.csv", blob.data, blob.size);
    assert_false(s_exists("artifacts/b/j1/a2"));
    assert_false(s_exists("artifacts/b/j9"));
    broker_artifacts_done(s_arts, "j1", 1);
    lynx_value_destroy(&chunk);
    lynx_value_destroy(&finished);
}

//  One runner-fault failure of job_id/attempt 1: begin, then a chunk carrying "error".
static void s_fail_once(const char *job_id, const s_blob_t *blobs, size_t count)
{
    lynx_value_t *finished = s_finished(job_id, 1, blobs, count);
    broker_upload_view_t view;
    s_reset_fetches();
    assert_int_equal(s_begin("r1", finished, NULL, &view), BROKER_UPLOAD_STARTED);
    lynx_value_t *chunk = s_answer(lynx_value_at(s_fetches, 0), blobs, count);
    lynx_value_set_string(chunk, "error", "file changed while read");
    assert_int_equal(s_give("r1", chunk, &view), BROKER_CHUNK_FAILED);
    lynx_value_destroy(&chunk);
    lynx_value_destroy(&finished);
}

static void test_repeated_failures_give_up_on_the_files(void **state)
{
    (void)state;
    const s_blob_t blobs[] = {{"a.json", "{}", 2}, {"b.txt", "bee", 3}};
    for (int i = 0; i < BROKER_ARTIFACTS_MAX_FAILURES; i++)
        s_fail_once("j1", blobs, 2);
    lynx_value_t *finished = s_finished("j1", 1, blobs, 2);
    broker_upload_view_t view;
    s_reset_fetches();
    assert_int_equal(s_begin("r1", finished, NULL, &view), BROKER_UPLOAD_NONE);
    assert_int_equal(lynx_value_size(s_fetches), 0);
    assert_int_equal(lynx_value_size(view.files), 0);
    assert_true(lynx_value_equal(view.finished, finished));
    assert_int_equal(lynx_value_size(view.skipped), 2);
    for (size_t i = 0; i < 2; i++) {
        const lynx_value_t *entry = lynx_value_at(view.skipped, i);
        assert_string_equal(lynx_value_get_string(entry, "name", ""), blobs[i].name);
        assert_non_null(strstr(lynx_value_get_string(entry, "reason", ""), "failed 3 times"));
    }
    assert_false(broker_artifacts_busy(s_arts, "j1"));
    broker_artifacts_done(s_arts, "j1", 1);
    //  The job's end was recorded: the count is forgotten with it.
    assert_int_equal(s_begin("r1", finished, NULL, &view), BROKER_UPLOAD_STARTED);
    assert_int_equal(s_drive("r1", blobs, 2, &view, NULL), BROKER_CHUNK_DONE);
    broker_artifacts_done(s_arts, "j1", 1);
    lynx_value_destroy(&finished);
}

static void test_failures_below_the_limit_or_not_the_runners_still_fetch(void **state)
{
    (void)state;
    const s_blob_t blobs[] = {{"a.json", "{}", 2}};
    for (int i = 0; i < BROKER_ARTIFACTS_MAX_FAILURES - 1; i++)
        s_fail_once("j1", blobs, 1);
    //  A runner that vanishes mid-transfer is not at fault: that does not count.
    lynx_value_t *finished = s_finished("j1", 1, blobs, 1);
    broker_upload_view_t view;
    s_reset_fetches();
    assert_int_equal(s_begin("r1", finished, NULL, &view), BROKER_UPLOAD_STARTED);
    broker_artifacts_drop_runner(s_arts, "r1");
    s_reset_fetches();
    assert_int_equal(s_begin("r1", finished, NULL, &view), BROKER_UPLOAD_STARTED);
    assert_int_equal(s_drive("r1", blobs, 1, &view, NULL), BROKER_CHUNK_DONE);
    assert_int_equal(lynx_value_size(view.files), 1);
    assert_int_equal(lynx_value_size(view.skipped), 0);
    broker_artifacts_done(s_arts, "j1", 1);
    lynx_value_destroy(&finished);
}

static void test_repeated_finished_is_busy_and_no_files_is_none(void **state)
{
    (void)state;
    const s_blob_t blob = {"log.txt", "line\n", 5};
    lynx_value_t *finished = s_finished("j1", 1, &blob, 1);
    broker_upload_view_t view;
    assert_int_equal(s_begin("r1", finished, NULL, &view), BROKER_UPLOAD_STARTED);
    assert_int_equal(lynx_value_size(s_fetches), 1);
    assert_int_equal(s_begin("r1", finished, NULL, &view), BROKER_UPLOAD_BUSY);
    assert_int_equal(lynx_value_size(s_fetches), 1); //  no second round of FETCHes
    assert_int_equal(s_drive("r1", &blob, 1, &view, NULL), BROKER_CHUNK_DONE);
    //  The end was not recorded (a store error): a repeated FINISHED fetches again over the set.
    s_reset_fetches();
    assert_int_equal(s_begin("r1", finished, NULL, &view), BROKER_UPLOAD_STARTED);
    assert_int_equal(s_drive("r1", &blob, 1, &view, NULL), BROKER_CHUNK_DONE);
    broker_artifacts_done(s_arts, "j1", 1);
    s_assert_file("artifacts/b/j1/a1/log.txt", blob.data, blob.size);
    //  Nothing listed (the runner skipped it all), or no "artifacts" at all: end now.
    const char *bodies[] = {
        "{\"job_id\": \"j2\", \"attempt\": 1, \"result\": {\"exit_code\": 3},"
        " \"artifacts\": {\"files\": [], \"skipped\": [{\"name\": \"huge\", \"reason\": \"r\"}]}}",
        "{\"job_id\": \"j3\", \"attempt\": 2, \"result\": {\"exit_code\": 0}}",
    };
    for (size_t i = 0; i < 2; i++) {
        lynx_value_t *none = s_json(bodies[i]);
        s_reset_fetches();
        assert_int_equal(s_begin("r1", none, NULL, &view), BROKER_UPLOAD_NONE);
        assert_int_equal(lynx_value_size(s_fetches), 0);
        assert_string_equal(view.job_id, i == 0 ? "j2" : "j3");
        assert_int_equal(view.attempt, i == 0 ? 1 : 2);
        assert_true(lynx_value_equal(view.finished, none));
        assert_int_equal(lynx_value_size(view.files), 0);
        char skipped[128];
        s_skipped(&view, skipped, sizeof skipped);
        assert_string_equal(skipped, i == 0 ? "huge: r\n" : "");
        assert_false(broker_artifacts_busy(s_arts, view.job_id));
        broker_artifacts_done(s_arts, view.job_id, view.attempt);
        lynx_value_destroy(&none);
    }
    lynx_value_destroy(&finished);
}

static void test_expire_and_drop_runner_discard_uploads(void **state)
{
    (void)state;
    const s_blob_t blob = {"x.txt", "xx", 2};
    broker_upload_view_t view;
    const char *jobs[][2] = {{"j1", "r1"}, {"j2", "r2"}, {"j3", "r2"}};
    for (size_t i = 0; i < 3; i++) {
        lynx_value_t *finished = s_finished(jobs[i][0], 1, &blob, 1);
        assert_int_equal(s_begin(jobs[i][1], finished, NULL, &view), BROKER_UPLOAD_STARTED);
        lynx_value_destroy(&finished);
        assert_true(broker_artifacts_busy(s_arts, jobs[i][0]));
    }
    broker_artifacts_drop_runner(s_arts, "r2");
    assert_true(broker_artifacts_busy(s_arts, "j1"));
    assert_false(broker_artifacts_busy(s_arts, "j2"));
    assert_false(broker_artifacts_busy(s_arts, "j3"));

    lynx_value_t *stalled = lynx_value_array();
    broker_artifacts_expire(s_arts, lynx_time_mono_ms(), stalled); //  not silent long enough
    assert_int_equal(lynx_value_size(stalled), 0);
    assert_true(broker_artifacts_busy(s_arts, "j1"));
    broker_artifacts_expire(s_arts, lynx_time_mono_ms() + BROKER_ARTIFACTS_STALL_MS + 1, stalled);
    assert_int_equal(lynx_value_size(stalled), 1);
    const lynx_value_t *entry = lynx_value_at(stalled, 0);
    assert_string_equal(lynx_value_get_string(entry, "runner_id", ""), "r1");
    assert_string_equal(lynx_value_get_string(entry, "job_id", ""), "j1");
    assert_int_equal(lynx_value_get_int(entry, "attempt", -1), 1);
    assert_true(strlen(lynx_value_get_string(entry, "reason", "")) > 0);
    assert_false(broker_artifacts_busy(s_arts, "j1"));
    //  A chunk that comes too late is stray.
    lynx_value_t *chunk = s_chunk("j1", 1, &blob, 0, 2);
    assert_int_equal(s_give("r1", chunk, &view), BROKER_CHUNK_STRAY);
    lynx_value_destroy(&chunk);
    lynx_value_destroy(&stalled);
    assert_true(s_no_leftovers());
}

static void test_new_sweeps_what_a_crash_left(void **state)
{
    (void)state;
    s_put("artifacts/b/j/a1.part/x", "half");
    s_put("artifacts/b/j/a1.part/deep/er", "half");
    s_put("artifacts/b/j/a1.partial", "half");
    s_put("artifacts/b/j/a2/y", "whole");
    s_put("artifacts/b/j/a2/model.part", "a user's file"); //  inside a complete set: kept
    s_put("artifacts/b/k/a3.partial", "half");
    lynx_err_t err;
    broker_artifacts_t *fresh = broker_artifacts_new(s_dir, &err);
    assert_non_null(fresh);
    assert_false(s_exists("artifacts/b/j/a1.part"));
    assert_false(s_exists("artifacts/b/j/a1.partial"));
    assert_false(s_exists("artifacts/b/k/a3.partial"));
    s_assert_file("artifacts/b/j/a2/y", "whole", 5);
    s_assert_file("artifacts/b/j/a2/model.part", "a user's file", 13);
    broker_artifacts_destroy(&fresh);
    //  A data_dir that cannot hold the artifacts directory is an error.
    s_put("blocked", "a file where a directory should be");
    assert_null(broker_artifacts_new(s_path("blocked"), &err));
    assert_int_not_equal(err.code, LYNX_OK);
}

static void test_done_keeps_only_the_recorded_attempt(void **state)
{
    (void)state;
    s_put("artifacts/b/j1/a1/old.txt", "attempt one");
    s_put("artifacts/b/j2/a1/other.txt", "another job");
    const s_blob_t blob = {"new.txt", "attempt two", 11};
    lynx_value_t *finished = s_finished("j1", 2, &blob, 1);
    broker_upload_view_t view;
    assert_int_equal(s_begin("r1", finished, NULL, &view), BROKER_UPLOAD_STARTED);
    assert_int_equal(s_drive("r1", &blob, 1, &view, NULL), BROKER_CHUNK_DONE);
    lynx_value_destroy(&finished);
    assert_string_equal(lynx_value_get_string(lynx_value_at(view.files, 0), "path", ""),
                        "artifacts/b/j1/a2/new.txt");
    assert_true(s_exists("artifacts/b/j1/a1/old.txt")); //  not before the end is recorded
    broker_artifacts_done(s_arts, "j1", 2);
    assert_false(s_exists("artifacts/b/j1/a1"));
    s_assert_file("artifacts/b/j1/a2/new.txt", "attempt two", 11);
    //  done of an attempt with no view is harmless.
    broker_artifacts_done(s_arts, "j2", 7);
    s_assert_file("artifacts/b/j2/a1/other.txt", "another job", 11);
    //  broker_artifacts_open: a stored path, never out of the root nor through a link.
    int fd = broker_artifacts_open(s_arts, "artifacts/b/j1/a2/new.txt");
    char bytes[16] = "";
    assert_true(fd >= 0);
    assert_int_equal(read(fd, bytes, sizeof bytes), 11);
    close(fd);
    assert_memory_equal(bytes, "attempt two", 11);
    assert_int_equal(symlink("new.txt", s_path("artifacts/b/j1/a2/ln")), 0);
    const char *refused[] = {"artifacts/b/j1/a2/ln", "artifacts/../artifacts/b/j1/a2/new.txt",
                             "b/j1/a2/new.txt", "artifacts/b/j1/a1/old.txt"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (broker_artifacts_open(s_arts, refused[i]) != -1)
            fail_msg("opened %s", refused[i]);
}

static void test_a_file_and_a_directory_of_the_same_name(void **state)
{
    (void)state;
    //  "x" and "x/y" cannot both be stored: the second is refused at begin.
    const s_blob_t blobs[] = {{"x", "file", 4}, {"x/y", "under", 5}};
    lynx_value_t *finished = s_finished("j1", 1, blobs, 2);
    broker_upload_view_t view;
    assert_int_equal(s_begin("r1", finished, NULL, &view), BROKER_UPLOAD_STARTED);
    assert_int_equal(s_drive("r1", blobs, 2, &view, NULL), BROKER_CHUNK_DONE);
    assert_int_equal(lynx_value_size(view.files), 1);
    assert_int_equal(lynx_value_size(view.skipped), 1);
    broker_artifacts_done(s_arts, "j1", 1);
    lynx_value_destroy(&finished);
}

static void test_name_ok_and_content_type_tables(void **state)
{
    (void)state;
    const char *good[] = {"out.json", "plots/a.png", "a/b/c/d", ".hidden", "..dots",
                          "a..b/c",   "caf\xc3\xa9", "sp ace",  "x.part"};
    const char *bad[] = {"",     "/abs", "a//b",   "a/",      ".",       "..",       "a/./b",
                         "../x", "x/..", "a/../b", "ctl\x01", "del\x7f", "new\nline"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!broker_artifacts_name_ok(good[i], strlen(good[i])))
            fail_msg("\"%s\" should be accepted", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (broker_artifacts_name_ok(bad[i], strlen(bad[i])))
            fail_msg("\"%s\" should be refused", bad[i]);
    assert_false(broker_artifacts_name_ok(NULL, 0));
    assert_false(broker_artifacts_name_ok("nul\0x", 5)); //  a NUL inside
    assert_false(broker_artifacts_name_ok("short", 9));  //  length beyond the string
    //  At most 1024 bytes (here in components of 200), and 255 a component.
    char name[1100];
    memset(name, 'n', sizeof name);
    for (size_t at = 200; at < sizeof name; at += 201)
        name[at] = '/';
    name[1025] = '\0';
    assert_false(broker_artifacts_name_ok(name, 1025));
    name[1024] = '\0';
    assert_true(broker_artifacts_name_ok(name, 1024));
    memset(name, 'c', 256);
    name[256] = '\0';
    assert_false(broker_artifacts_name_ok(name, 256));
    name[255] = '\0';
    assert_true(broker_artifacts_name_ok(name, 255));

    const char *types[] = {"a.json",       "application/json",
                           "A.PNG",        "image/png",
                           "plots/a.png",  "image/png",
                           "t.csv",        "text/csv",
                           "run.log",      "text/plain",
                           "x.jpeg",       "image/jpeg",
                           "d.tar.gz",     "application/gzip",
                           "f.svg",        "image/svg+xml",
                           "c.yml",        "application/yaml",
                           "m.msgpack",    "application/msgpack",
                           "Makefile",     "application/octet-stream",
                           "dir.json/raw", "application/octet-stream",
                           "x.",           "application/octet-stream"};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i += 2)
        assert_string_equal(broker_artifacts_content_type(types[i]), types[i + 1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define S_TEST(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)
        S_TEST(test_happy_path_stores_every_file_under_credit),
        S_TEST(test_refused_names_are_skipped_and_never_fetched),
        S_TEST(test_size_limits_skip_files_without_fetching_them),
        S_TEST(test_bad_chunks_discard_the_transfer),
        S_TEST(test_chunks_nobody_expects_are_stray),
        S_TEST(test_repeated_failures_give_up_on_the_files),
        S_TEST(test_failures_below_the_limit_or_not_the_runners_still_fetch),
        S_TEST(test_repeated_finished_is_busy_and_no_files_is_none),
        S_TEST(test_expire_and_drop_runner_discard_uploads),
        S_TEST(test_new_sweeps_what_a_crash_left),
        S_TEST(test_done_keeps_only_the_recorded_attempt),
        S_TEST(test_a_file_and_a_directory_of_the_same_name),
        S_TEST(test_name_ok_and_content_type_tables),
#undef S_TEST
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
