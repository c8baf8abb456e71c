//  broker_artifacts: pull, check and keep the files of ended attempts (see the header).
#include "broker_artifacts.h"

#include <czmq.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lynx_digest.h"
#include "lynx_path.h"
#include "lynx_time.h"

#define S_WRITEBACK (8 * 1024 * 1024)
#define S_DEFAULT_MAX_FILE_BYTES (INT64_C(2) << 30)
#define S_DEFAULT_MAX_JOB_BYTES (INT64_C(4) << 30)

typedef struct {
    char *name;
    int64_t size;
    char sha256[LYNX_DIGEST_HEX_SIZE];
} s_file_t;

typedef struct {
    char *runner_id;
    char *job_id;
    int64_t attempt;
    char job_dir[PATH_MAX];  //  data_dir/artifacts/<batch>/<job>
    char relative[PATH_MAX]; //  artifacts/<batch>/<job>, as stored
    lynx_value_t *finished;  //  the FINISHED body, replayed when every file is in
    lynx_value_t *skipped;   //  [{name, reason}]
    lynx_value_t *files_out; //  [{name, size, sha256, content_type, path}], when done
    s_file_t *files;
    size_t count;
    size_t fetch_file; //  the next FETCH: file and offset
    int64_t fetch_offset;
    size_t write_file; //  the next CHUNK expected: file and offset
    int64_t write_offset;
    int outstanding; //  FETCHes not answered yet
    int fd;          //  the partial file being written, or -1
    lynx_digest_t digest;
    int64_t last_chunk_ms;
} s_upload_t;

struct broker_artifacts_t {
    char root[PATH_MAX]; //  data_dir/artifacts
    zlistx_t *uploads;   //  of s_upload_t
    zhashx_t *failures;  //  "job_id/attempt" -> count of failed uploads (as a pointer)
    s_upload_t *done;    //  the upload a view describes, until broker_artifacts_done
};

//  --------------------------------------------------------------------------------------------
//  Names, types, directories

bool broker_artifacts_name_ok(const char *name, size_t length)
{
    return lynx_path_name_ok(name, length);
}

int broker_artifacts_open(const broker_artifacts_t *self, const char *stored_path)
{
    const char *prefix = "artifacts/";
    if (strncmp(stored_path, prefix, strlen(prefix)) != 0) {
        errno = EINVAL;
        return -1;
    }
    return lynx_path_open_beneath(self->root, stored_path + strlen(prefix), O_RDONLY);
}

void broker_artifacts_url(char *url, size_t size, const char *job_id, const char *name)
{
    int used = snprintf(url, size, "/jobs/%s/artifacts/", job_id);
    for (const unsigned char *at = (const unsigned char *)name; used > 0 && *at; at++) {
        bool plain = (*at >= 'a' && *at <= 'z') || (*at >= 'A' && *at <= 'Z') ||
                     (*at >= '0' && *at <= '9') || strchr("._~/-", *at);
        if ((size_t)used + 4 >= size)
            break;
        used += plain ? snprintf(url + used, size - (size_t)used, "%c", *at)
                      : snprintf(url + used, size - (size_t)used, "%%%02X", *at);
    }
}

const char *broker_artifacts_content_type(const char *name)
{
    static const char *const types[][2] = {
        {".json", "application/json"}, {".csv", "text/csv"},
        {".txt", "text/plain"},        {".log", "text/plain"},
        {".md", "text/markdown"},      {".html", "text/html"},
        {".png", "image/png"},         {".jpg", "image/jpeg"},
        {".jpeg", "image/jpeg"},       {".svg", "image/svg+xml"},
        {".pdf", "application/pdf"},   {".gz", "application/gzip"},
        {".tar", "application/x-tar"}, {".zip", "application/zip"},
        {".yaml", "application/yaml"}, {".yml", "application/yaml"},
        {".xml", "application/xml"},   {".msgpack", "application/msgpack"},
    };
    const char *dot = strrchr(name, '.');
    if (dot && !strchr(dot, '/'))
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strcasecmp(dot, types[i][0]) == 0)
                return types[i][1];
    return "application/octet-stream";
}

//  A path built by format into out; false when it does not fit (what does fit is then cut).
static bool s_path_format(char *out, size_t size, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
static bool s_path_format(char *out, size_t size, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    int len = vsnprintf(out, size, format, args);
    va_end(args);
    return len >= 0 && (size_t)len < size;
}

//  dir/name into out; false when it does not fit.
static bool s_join(char *out, size_t size, const char *dir, const char *name)
{
    int len = snprintf(out, size, "%s/%s", dir, name);
    return len >= 0 && (size_t)len < size;
}

//  rm -rf path; entries that vanish meanwhile are fine.
static void s_remove_tree(const char *path)
{
    struct stat info;
    if (lstat(path, &info) != 0)
        return;
    if (S_ISDIR(info.st_mode)) {
        DIR *dir = opendir(path);
        struct dirent *entry;
        while (dir && (entry = readdir(dir))) {
            if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
                continue;
            char child[PATH_MAX];
            if (s_join(child, sizeof child, path, entry->d_name))
                s_remove_tree(child);
        }
        if (dir)
            closedir(dir);
        rmdir(path);
    } else
        unlink(path);
}

static void s_sync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

//  Remove what a crash left half-written: *.part directories and *.partial files two levels
//  down (<batch>/<job>/).
static void s_sweep(const char *root)
{
    DIR *batches = opendir(root);
    struct dirent *batch;
    while (batches && (batch = readdir(batches))) {
        if (batch->d_name[0] == '.')
            continue;
        char batch_dir[PATH_MAX];
        DIR *jobs =
            s_join(batch_dir, sizeof batch_dir, root, batch->d_name) ? opendir(batch_dir) : NULL;
        struct dirent *job;
        while (jobs && (job = readdir(jobs))) {
            if (job->d_name[0] == '.')
                continue;
            char job_dir[PATH_MAX];
            DIR *attempts =
                s_join(job_dir, sizeof job_dir, batch_dir, job->d_name) ? opendir(job_dir) : NULL;
            struct dirent *entry;
            while (attempts && (entry = readdir(attempts))) {
                size_t len = strlen(entry->d_name);
                bool part = len > 5 && strcmp(entry->d_name + len - 5, ".part") == 0;
                bool partial = len > 8 && strcmp(entry->d_name + len - 8, ".partial") == 0;
                char leftover[PATH_MAX];
                if ((part || partial) &&
                    s_join(leftover, sizeof leftover, job_dir, entry->d_name)) {
                    zsys_notice("broker: removing a half-written artifact %s", leftover);
                    s_remove_tree(leftover);
                }
            }
            if (attempts)
                closedir(attempts);
        }
        if (jobs)
            closedir(jobs);
    }
    if (batches)
        closedir(batches);
}

//  --------------------------------------------------------------------------------------------
//  Lifecycle

static void s_upload_destroy(s_upload_t **upload_p)
{
    if (!upload_p || !*upload_p)
        return;
    s_upload_t *upload = *upload_p;
    if (upload->fd >= 0)
        close(upload->fd);
    for (size_t i = 0; i < upload->count; i++)
        free(upload->files[i].name);
    free(upload->files);
    free(upload->runner_id);
    free(upload->job_id);
    lynx_value_destroy(&upload->finished);
    lynx_value_destroy(&upload->skipped);
    lynx_value_destroy(&upload->files_out);
    free(upload);
    *upload_p = NULL;
}

broker_artifacts_t *broker_artifacts_new(const char *data_dir, lynx_err_t *err)
{
    broker_artifacts_t *self = calloc(1, sizeof *self);
    if (!self) {
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory");
        return NULL;
    }
    s_path_format(self->root, sizeof self->root, "%s/artifacts", data_dir);
    self->uploads = zlistx_new();
    self->failures = zhashx_new();
    if (!self->uploads || !self->failures) {
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory");
        broker_artifacts_destroy(&self);
        return NULL;
    }
    zlistx_set_destructor(self->uploads, (zlistx_destructor_fn *)s_upload_destroy);
    if (lynx_path_make_dirs(self->root, false) != 0) {
        lynx_err_set(err, LYNX_EINTERNAL, "data_dir", "cannot create %s: %s", self->root,
                     strerror(errno));
        broker_artifacts_destroy(&self);
        return NULL;
    }
    s_sweep(self->root);
    return self;
}

void broker_artifacts_destroy(broker_artifacts_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    broker_artifacts_t *self = *self_p;
    s_upload_destroy(&self->done);
    zlistx_destroy(&self->uploads);
    zhashx_destroy(&self->failures);
    free(self);
    *self_p = NULL;
}

static s_upload_t *s_find(broker_artifacts_t *self, const char *job_id, int64_t attempt)
{
    for (s_upload_t *upload = (s_upload_t *)zlistx_first(self->uploads); upload;
         upload = (s_upload_t *)zlistx_next(self->uploads))
        if (upload->attempt == attempt && strcmp(upload->job_id, job_id) == 0)
            return upload;
    return NULL;
}

static void s_attempt_key(char *key, size_t size, const char *job_id, int64_t attempt)
{
    snprintf(key, size, "%s/%" PRId64, job_id, attempt);
}

static size_t s_failures(broker_artifacts_t *self, const char *job_id, int64_t attempt)
{
    char key[256];
    s_attempt_key(key, sizeof key, job_id, attempt);
    return (size_t)(uintptr_t)zhashx_lookup(self->failures, key);
}

//  --------------------------------------------------------------------------------------------
//  Starting an upload

static void s_skip(lynx_value_t *skipped, const char *name, const char *reason)
{
    lynx_value_t *entry = lynx_value_map();
    lynx_value_set_string(entry, "name", name);
    lynx_value_set_string(entry, "reason", reason);
    lynx_value_append_owned(skipped, entry);
}

//  The manifest's files the broker accepts, into upload->files; the rest into skipped.
static int s_accept_files(s_upload_t *upload, const lynx_value_t *manifest,
                          const lynx_value_t *policy)
{
    int64_t max_file = lynx_value_get_int(policy, "max_file_bytes", S_DEFAULT_MAX_FILE_BYTES);
    int64_t max_job = lynx_value_get_int(policy, "max_job_bytes", S_DEFAULT_MAX_JOB_BYTES);
    const lynx_value_t *files = lynx_value_get(manifest, "files");
    upload->files = calloc(lynx_value_size(files) + 1, sizeof *upload->files);
    if (!upload->files)
        return -1;
    int64_t total = 0;
    for (size_t i = 0; i < lynx_value_size(files); i++) {
        const lynx_value_t *file = lynx_value_at(files, i);
        const lynx_value_t *name_value = lynx_value_get(file, "name");
        const char *name = lynx_value_as_string(name_value);
        int64_t size = lynx_value_get_int(file, "size", -1);
        const char *shown = name ? name : "?";
        //  "x" twice, or "x" beside "x/y" (a file and a directory of one name): never both.
        bool repeated = false, clashes = false;
        for (size_t j = 0; name && j < upload->count; j++) {
            const char *other = upload->files[j].name;
            size_t len = strlen(name), other_len = strlen(other);
            repeated = repeated || strcmp(other, name) == 0;
            clashes =
                clashes ||
                (len < other_len && strncmp(other, name, len) == 0 && other[len] == '/') ||
                (other_len < len && strncmp(name, other, other_len) == 0 && name[other_len] == '/');
        }
        const char *reason = NULL;
        if (!lynx_path_name_ok(name, lynx_value_string_len(name_value)))
            reason = "refused: not a relative path inside the output directory";
        else if (repeated)
            reason = "refused: listed twice";
        else if (clashes)
            reason = "refused: a file and a directory of the same name";
        else if (size < 0)
            reason = "refused: no size";
        else if (size > max_file)
            reason = "larger than max_file_bytes";
        else if (total + size > max_job)
            reason = "max_job_bytes reached";
        if (reason) {
            if (strncmp(reason, "refused", 7) == 0)
                zsys_warning("broker: artifact name refused job=%s attempt=%" PRId64
                             " name=\"%.200s\": %s",
                             upload->job_id, upload->attempt, shown, reason);
            s_skip(upload->skipped, shown, reason);
            continue;
        }
        total += size;
        upload->files[upload->count].name = strdup(name);
        upload->files[upload->count].size = size;
        if (!upload->files[upload->count].name)
            return -1;
        upload->count++;
    }
    return 0;
}

//  Append FETCHes while credit lasts.
static void s_fill_credit(s_upload_t *upload, lynx_value_t *fetches)
{
    while (upload->outstanding < BROKER_ARTIFACTS_CREDIT && upload->fetch_file < upload->count) {
        const s_file_t *file = &upload->files[upload->fetch_file];
        int64_t length = file->size - upload->fetch_offset;
        if (length > BROKER_ARTIFACTS_CHUNK)
            length = BROKER_ARTIFACTS_CHUNK;
        lynx_value_t *fetch = lynx_value_map();
        lynx_value_set_string(fetch, "job_id", upload->job_id);
        lynx_value_set_int(fetch, "attempt", upload->attempt);
        lynx_value_set_string(fetch, "name", file->name);
        lynx_value_set_int(fetch, "offset", upload->fetch_offset);
        lynx_value_set_int(fetch, "length", length);
        lynx_value_append_owned(fetches, fetch);
        upload->outstanding++;
        upload->fetch_offset += length;
        if (upload->fetch_offset >= file->size) {
            upload->fetch_file++;
            upload->fetch_offset = 0;
        }
    }
}

static void s_part_dir(const s_upload_t *upload, char *path, size_t size)
{
    s_path_format(path, size, "%s/a%" PRId64 ".part", upload->job_dir, upload->attempt);
}

static void s_partial_file(const s_upload_t *upload, char *path, size_t size)
{
    s_path_format(path, size, "%s/a%" PRId64 ".partial", upload->job_dir, upload->attempt);
}

//  Make upload the view's subject (as done), for the caller to read until broker_artifacts_done.
static void s_hand_over(broker_artifacts_t *self, s_upload_t *upload, broker_upload_view_t *view)
{
    s_upload_destroy(&self->done);
    self->done = upload;
    *view = (broker_upload_view_t){.job_id = upload->job_id,
                                   .attempt = upload->attempt,
                                   .finished = upload->finished,
                                   .files = upload->files_out,
                                   .skipped = upload->skipped};
}

broker_upload_rc_t broker_artifacts_begin(broker_artifacts_t *self, const char *runner_id,
                                          const char *batch_id, const lynx_value_t *finished,
                                          const lynx_value_t *policy, lynx_value_t *fetches,
                                          broker_upload_view_t *view_p, lynx_err_t *err)
{
    const char *job_id = lynx_value_get_string(finished, "job_id", "");
    int64_t attempt = lynx_value_get_int(finished, "attempt", 0);
    if (s_find(self, job_id, attempt))
        return BROKER_UPLOAD_BUSY;
    s_upload_t *upload = calloc(1, sizeof *upload);
    if (!upload)
        return lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory");
    upload->fd = -1;
    upload->attempt = attempt;
    upload->runner_id = strdup(runner_id);
    upload->job_id = strdup(job_id);
    upload->finished = lynx_value_dup(finished);
    upload->skipped =
        lynx_value_dup(lynx_value_get(lynx_value_get(finished, "artifacts"), "skipped"));
    if (lynx_value_type(upload->skipped) != LYNX_VALUE_ARRAY) {
        lynx_value_destroy(&upload->skipped);
        upload->skipped = lynx_value_array();
    }
    upload->files_out = lynx_value_array();
    s_path_format(upload->relative, sizeof upload->relative, "artifacts/%s/%s", batch_id, job_id);
    char batch_dir[PATH_MAX];
    if (!s_join(batch_dir, sizeof batch_dir, self->root, batch_id) ||
        !s_join(upload->job_dir, sizeof upload->job_dir, batch_dir, job_id)) {
        s_upload_destroy(&upload);
        return lynx_err_set(err, LYNX_EINVALID, "job_id", "artifact path too long");
    }
    upload->last_chunk_ms = lynx_time_mono_ms();
    if (!upload->runner_id || !upload->job_id || !upload->finished || !upload->skipped ||
        !upload->files_out ||
        s_accept_files(upload, lynx_value_get(finished, "artifacts"), policy) != 0) {
        s_upload_destroy(&upload);
        return lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory");
    }
    size_t failures = s_failures(self, job_id, attempt);
    if (upload->count > 0 && failures >= BROKER_ARTIFACTS_MAX_FAILURES) {
        char reason[96];
        snprintf(reason, sizeof reason, "transfer failed %zu times; given up", failures);
        for (size_t i = 0; i < upload->count; i++) {
            s_skip(upload->skipped, upload->files[i].name, reason);
            free(upload->files[i].name);
        }
        upload->count = 0;
    }
    if (upload->count == 0) {
        s_hand_over(self, upload, view_p);
        return BROKER_UPLOAD_NONE;
    }
    char part[PATH_MAX];
    s_part_dir(upload, part, sizeof part);
    s_remove_tree(part);
    if (lynx_path_make_dirs(part, false) != 0) {
        int saved = errno;
        s_upload_destroy(&upload);
        return lynx_err_set(err, LYNX_EUNAVAILABLE, NULL, "cannot create %s: %s", part,
                            strerror(saved));
    }
    zlistx_add_end(self->uploads, upload);
    s_fill_credit(upload, fetches);
    zsys_info("broker: fetching artifacts job=%s attempt=%" PRId64 " files=%zu runner=%s", job_id,
              attempt, upload->count, runner_id);
    return BROKER_UPLOAD_STARTED;
}

//  --------------------------------------------------------------------------------------------
//  Chunks

//  Discard upload (its partial files too); a failure that is the runner's counts towards
//  giving up on the attempt's files.
static void s_discard(broker_artifacts_t *self, s_upload_t *upload, bool count_failure)
{
    char path[PATH_MAX];
    s_part_dir(upload, path, sizeof path);
    s_remove_tree(path);
    s_partial_file(upload, path, sizeof path);
    unlink(path);
    if (count_failure) {
        char key[256];
        s_attempt_key(key, sizeof key, upload->job_id, upload->attempt);
        size_t failures = s_failures(self, upload->job_id, upload->attempt) + 1;
        zhashx_update(self->failures, key, (void *)(uintptr_t)failures);
    }
    if (s_find(self, upload->job_id, upload->attempt) == upload)
        zlistx_delete(self->uploads, zlistx_cursor(self->uploads));
}

static broker_chunk_rc_t s_fail(broker_artifacts_t *self, s_upload_t *upload, bool runner_fault,
                                lynx_err_t *err, const char *format, ...)
    __attribute__((format(printf, 5, 6)));

static broker_chunk_rc_t s_fail(broker_artifacts_t *self, s_upload_t *upload, bool runner_fault,
                                lynx_err_t *err, const char *format, ...)
{
    char message[LYNX_ERR_MESSAGE_MAX];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    zsys_warning("broker: artifact transfer failed job=%s attempt=%" PRId64 " runner=%s: %s",
                 upload->job_id, upload->attempt, upload->runner_id, message);
    lynx_err_set(err, runner_fault ? LYNX_EPROTOCOL : LYNX_EUNAVAILABLE, "name", "%s", message);
    s_discard(self, upload, runner_fault);
    return BROKER_CHUNK_FAILED;
}

static int s_write_all(int fd, const char *data, size_t size)
{
    while (size > 0) {
        ssize_t wrote = write(fd, data, size);
        if (wrote < 0 && errno == EINTR)
            continue;
        if (wrote <= 0)
            return -1;
        data += wrote;
        size -= (size_t)wrote;
    }
    return 0;
}

//  The file is whole and checked: sync it and move it into the attempt's directory.
static int s_install_file(s_upload_t *upload, const s_file_t *file, char *why, size_t why_size)
{
    char partial[PATH_MAX], part[PATH_MAX], target[PATH_MAX * 2];
    s_partial_file(upload, partial, sizeof partial);
    s_part_dir(upload, part, sizeof part);
    s_path_format(target, sizeof target, "%s/%s", part, file->name);
    int rc = fsync(upload->fd);
    close(upload->fd);
    upload->fd = -1;
    char *slash = strrchr(target, '/');
    *slash = '\0';
    if (rc == 0)
        rc = lynx_path_make_dirs(target, false);
    *slash = '/';
    if (rc == 0)
        rc = rename(partial, target);
    if (rc != 0) {
        snprintf(why, why_size, "cannot store %s: %s", file->name, strerror(errno));
        return -1;
    }
    *slash = '\0';
    s_sync_dir(target);
    *slash = '/';
    lynx_value_t *entry = lynx_value_map();
    lynx_value_set_string(entry, "name", file->name);
    lynx_value_set_int(entry, "size", file->size);
    lynx_value_set_string(entry, "sha256", file->sha256);
    lynx_value_set_string(entry, "content_type", broker_artifacts_content_type(file->name));
    char stored[PATH_MAX * 2];
    s_path_format(stored, sizeof stored, "%s/a%" PRId64 "/%s", upload->relative, upload->attempt,
                  file->name);
    lynx_value_set_string(entry, "path", stored);
    lynx_value_append_owned(upload->files_out, entry);
    return 0;
}

//  Every file is in: the attempt's directory takes its final name.
static int s_install_attempt(s_upload_t *upload, char *why, size_t why_size)
{
    char part[PATH_MAX], final[PATH_MAX + 32];
    s_part_dir(upload, part, sizeof part);
    s_path_format(final, sizeof final, "%s/a%" PRId64, upload->job_dir, upload->attempt);
    s_remove_tree(final); //  a set of this attempt whose end was never recorded
    s_sync_dir(part);
    if (rename(part, final) != 0) {
        snprintf(why, why_size, "cannot store the files: %s", strerror(errno));
        return -1;
    }
    s_sync_dir(upload->job_dir);
    return 0;
}

broker_chunk_rc_t broker_artifacts_chunk(broker_artifacts_t *self, const char *runner_id,
                                         const lynx_value_t *chunk, lynx_value_t *fetches,
                                         broker_upload_view_t *view_p, lynx_err_t *err)
{
    const char *job_id = lynx_value_get_string(chunk, "job_id", "");
    int64_t attempt = lynx_value_get_int(chunk, "attempt", -1);
    const char *name = lynx_value_get_string(chunk, "name", "");
    int64_t offset = lynx_value_get_int(chunk, "offset", -1);
    s_upload_t *upload = s_find(self, job_id, attempt);
    if (!upload || strcmp(upload->runner_id, runner_id) != 0) {
        lynx_err_set(err, LYNX_EPROTOCOL, "job_id",
                     "no transfer of attempt %" PRId64 " of job %.64s expects a chunk from %s",
                     attempt, job_id, runner_id);
        return BROKER_CHUNK_STRAY;
    }
    upload->last_chunk_ms = lynx_time_mono_ms();
    upload->outstanding--;
    s_file_t *file = &upload->files[upload->write_file];
    const char *error = lynx_value_get_string(chunk, "error", NULL);
    if (error)
        return s_fail(self, upload, true, err, "runner could not send %s: %s", file->name, error);
    if (strcmp(name, file->name) != 0 || offset != upload->write_offset)
        return s_fail(self, upload, true, err,
                      "chunk out of order: got %.200s at %" PRId64 ", expected %s at %" PRId64,
                      name, offset, file->name, upload->write_offset);
    const lynx_value_t *data = lynx_value_get(chunk, "data");
    size_t length = lynx_value_string_len(data);
    int64_t expected = file->size - offset;
    if (expected > BROKER_ARTIFACTS_CHUNK)
        expected = BROKER_ARTIFACTS_CHUNK;
    if ((int64_t)length != expected)
        return s_fail(
            self, upload, true, err, "%s: chunk at %" PRId64 " holds %zu bytes, %s %" PRId64,
            file->name, offset, length,
            (int64_t)length > expected ? "more than the declared size allows:" : "expected",
            expected);
    if (offset == 0) {
        char partial[PATH_MAX];
        s_partial_file(upload, partial, sizeof partial);
        upload->fd = open(partial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (upload->fd < 0)
            return s_fail(self, upload, false, err, "cannot create %s: %s", partial,
                          strerror(errno));
        lynx_digest_init(&upload->digest);
    }
    if (length && s_write_all(upload->fd, lynx_value_as_string(data), length) != 0)
        return s_fail(self, upload, false, err, "cannot write %s: %s", file->name, strerror(errno));
    lynx_digest_update(&upload->digest, lynx_value_as_string(data), length);
    //  Start writing back every S_WRITEBACK bytes as they come, so that the fsync that makes
    //  the file durable at its end has little left to do (a 1 GiB file: seconds less).
    int64_t before = upload->write_offset;
    upload->write_offset += (int64_t)length;
    if (before / S_WRITEBACK != upload->write_offset / S_WRITEBACK)
        sync_file_range(upload->fd, (before / S_WRITEBACK) * S_WRITEBACK, S_WRITEBACK,
                        SYNC_FILE_RANGE_WRITE);
    if (upload->write_offset == file->size) {
        const char *claimed = lynx_value_get_string(chunk, "sha256", "");
        lynx_digest_final_hex(&upload->digest, file->sha256);
        if (!lynx_value_get_bool(chunk, "eof", false))
            return s_fail(self, upload, true, err, "%s: last chunk not marked eof", file->name);
        if (strcmp(claimed, file->sha256) != 0)
            return s_fail(self, upload, true, err,
                          "%s: sha256 mismatch: the runner read %.64s, the broker received %s",
                          file->name, claimed, file->sha256);
        char why[512];
        if (s_install_file(upload, file, why, sizeof why) != 0)
            return s_fail(self, upload, false, err, "%s", why);
        upload->write_file++;
        upload->write_offset = 0;
        if (upload->write_file == upload->count) {
            if (s_install_attempt(upload, why, sizeof why) != 0)
                return s_fail(self, upload, false, err, "%s", why);
            zlistx_detach(self->uploads, zlistx_find(self->uploads, upload));
            s_hand_over(self, upload, view_p);
            zsys_info("broker: artifacts stored job=%s attempt=%" PRId64 " files=%zu", job_id,
                      attempt, upload->count);
            return BROKER_CHUNK_DONE;
        }
    } else if (lynx_value_get_bool(chunk, "eof", false))
        return s_fail(self, upload, true, err, "%s: eof at %" PRId64 " of %" PRId64 " bytes",
                      file->name, upload->write_offset, file->size);
    s_fill_credit(upload, fetches);
    return BROKER_CHUNK_MORE;
}

//  --------------------------------------------------------------------------------------------
//  After the job's end, and housekeeping

void broker_artifacts_done(broker_artifacts_t *self, const char *job_id, int64_t attempt)
{
    s_upload_t *done = self->done;
    char key[256];
    s_attempt_key(key, sizeof key, job_id, attempt);
    zhashx_delete(self->failures, key);
    if (!done || done->attempt != attempt || strcmp(done->job_id, job_id) != 0)
        return;
    //  Only the recorded attempt's set stays.
    DIR *dir = opendir(done->job_dir);
    struct dirent *entry;
    char keep[64];
    snprintf(keep, sizeof keep, "a%" PRId64, attempt);
    while (dir && (entry = readdir(dir))) {
        if (entry->d_name[0] != 'a' || strcmp(entry->d_name, keep) == 0)
            continue;
        char other[PATH_MAX * 2];
        s_path_format(other, sizeof other, "%s/%s", done->job_dir, entry->d_name);
        s_remove_tree(other);
    }
    if (dir)
        closedir(dir);
    s_upload_destroy(&self->done);
}

void broker_artifacts_expire(broker_artifacts_t *self, int64_t now_mono_ms, lynx_value_t *stalled)
{
    s_upload_t *upload = (s_upload_t *)zlistx_first(self->uploads);
    while (upload) {
        s_upload_t *next = (s_upload_t *)zlistx_next(self->uploads);
        if (now_mono_ms - upload->last_chunk_ms >= BROKER_ARTIFACTS_STALL_MS) {
            lynx_value_t *entry = lynx_value_map();
            lynx_value_set_string(entry, "runner_id", upload->runner_id);
            lynx_value_set_string(entry, "job_id", upload->job_id);
            lynx_value_set_int(entry, "attempt", upload->attempt);
            lynx_value_set_string(entry, "reason", "no chunk for 30 s: transfer abandoned");
            lynx_value_append_owned(stalled, entry);
            zsys_warning("broker: artifact transfer stalled job=%s attempt=%" PRId64
                         " runner=%s: abandoned",
                         upload->job_id, upload->attempt, upload->runner_id);
            s_discard(self, upload, true);
        }
        upload = next;
        if (upload)
            zlistx_find(self->uploads, upload); //  s_discard moved the cursor
    }
}

void broker_artifacts_drop_all(broker_artifacts_t *self)
{
    s_upload_t *upload;
    while ((upload = (s_upload_t *)zlistx_first(self->uploads)))
        s_discard(self, upload, false);
}

void broker_artifacts_drop_runner(broker_artifacts_t *self, const char *runner_id)
{
    s_upload_t *upload = (s_upload_t *)zlistx_first(self->uploads);
    while (upload) {
        s_upload_t *next = (s_upload_t *)zlistx_next(self->uploads);
        if (strcmp(upload->runner_id, runner_id) == 0)
            s_discard(self, upload, false);
        upload = next;
        if (upload)
            zlistx_find(self->uploads, upload);
    }
}

//  The newest modification time (epoch seconds) of anything under path, or 0.
static int64_t s_newest(const char *path, int depth)
{
    struct stat info;
    if (lstat(path, &info) != 0)
        return 0;
    int64_t newest = (int64_t)info.st_mtime;
    if (!S_ISDIR(info.st_mode) || depth > 64)
        return newest;
    DIR *dir = opendir(path);
    struct dirent *entry;
    while (dir && (entry = readdir(dir))) {
        char child[PATH_MAX];
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0 ||
            !s_join(child, sizeof child, path, entry->d_name))
            continue;
        int64_t when = s_newest(child, depth + 1);
        newest = when > newest ? when : newest;
    }
    if (dir)
        closedir(dir);
    return newest;
}

size_t broker_artifacts_expire_batches(broker_artifacts_t *self, int64_t cutoff_epoch_s,
                                       broker_artifacts_keep_fn *keep, void *arg,
                                       lynx_value_t *removed)
{
    size_t count = 0;
    DIR *batches = opendir(self->root);
    struct dirent *batch;
    while (batches && (batch = readdir(batches))) {
        char path[PATH_MAX];
        if (batch->d_name[0] == '.' || !s_join(path, sizeof path, self->root, batch->d_name))
            continue;
        if (keep(batch->d_name, arg) || s_newest(path, 0) >= cutoff_epoch_s)
            continue;
        s_remove_tree(path);
        lynx_value_append_owned(removed, lynx_value_string(batch->d_name));
        count++;
    }
    if (batches)
        closedir(batches);
    return count;
}

bool broker_artifacts_busy(const broker_artifacts_t *self, const char *job_id)
{
    zlistx_t *uploads = self->uploads;
    for (void *handle = zlistx_first(uploads); handle; handle = zlistx_next(uploads))
        if (strcmp(((s_upload_t *)handle)->job_id, job_id) == 0)
            return true;
    return false;
}
