//  runner_artifacts: scan an attempt's output directory and serve its files (see the header).
#include "runner_artifacts.h"

#include <czmq.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lynx_digest.h"
#include "lynx_grow.h"
#include "lynx_path.h"
#include "runner_fs.h"

#define S_MAX_DEPTH 64

//  --------------------------------------------------------------------------------------------
//  The scan

//  What config.artifacts asks for. collect: NULL patterns and all = true for "all"; all =
//  false with no patterns for "none".
typedef struct {
    bool all;
    const lynx_value_t *patterns; //  array of strings, or NULL
    int64_t max_file_bytes;
    int64_t max_job_bytes;
} s_policy_t;

static s_policy_t s_policy_of(const lynx_value_t *policy)
{
    s_policy_t out = {.all = true,
                      .max_file_bytes = RUNNER_ARTIFACTS_MAX_FILE_BYTES,
                      .max_job_bytes = RUNNER_ARTIFACTS_MAX_JOB_BYTES};
    const lynx_value_t *collect = lynx_value_get(policy, "collect");
    if (lynx_value_type(collect) == LYNX_VALUE_STRING)
        out.all = strcmp(lynx_value_as_string(collect), "none") != 0;
    else if (lynx_value_type(collect) == LYNX_VALUE_ARRAY) {
        out.all = false;
        out.patterns = collect;
    }
    out.max_file_bytes = lynx_value_get_int(policy, "max_file_bytes", out.max_file_bytes);
    out.max_job_bytes = lynx_value_get_int(policy, "max_job_bytes", out.max_job_bytes);
    return out;
}

//  A pattern without '/' matches the base name at any depth, one with '/' the whole name.
static bool s_collected(const s_policy_t *policy, const char *name)
{
    if (policy->all)
        return true;
    const char *slash = strrchr(name, '/');
    const char *base = slash ? slash + 1 : name;
    for (size_t i = 0; i < lynx_value_size(policy->patterns); i++) {
        const char *pattern = lynx_value_as_string(lynx_value_at(policy->patterns, i));
        if (!pattern)
            continue;
        bool whole = strchr(pattern, '/') != NULL;
        if (fnmatch(pattern, whole ? name : base, whole ? FNM_PATHNAME : 0) == 0)
            return true;
    }
    return false;
}

//  One regular file or one skipped entry met by the walk.
typedef struct {
    char *name; //  relative to the output directory
    int64_t size;
    const char *reason; //  NULL for a regular file; static text otherwise
    char detail[96];    //  reason's variable part, when it has one
} s_entry_t;

typedef struct {
    s_entry_t *items;
    size_t count, capacity;
} s_entries_t;

static int s_entries_push(s_entries_t *list, s_entry_t entry)
{
    s_entry_t *items = lynx_grow(list->items, &list->capacity, list->count, sizeof *items, 32);
    if (!items)
        return -1;
    list->items = items;
    list->items[list->count++] = entry;
    return 0;
}

static void s_entries_free(s_entries_t *list)
{
    for (size_t i = 0; i < list->count; i++)
        free(list->items[i].name);
    free(list->items);
}

static char *s_join(const char *dir, const char *name)
{
    char *path;
    if (!*dir)
        return strdup(name);
    return asprintf(&path, "%s/%s", dir, name) < 0 ? NULL : path;
}

//  Walk root/relative: regular files and what is skipped into entries. Directories are read
//  whole and closed before descending. -1 on out-of-memory only.
static int s_walk(const char *root, const char *relative, int depth, s_entries_t *entries)
{
    char *dir_path = *relative ? s_join(root, relative) : strdup(root);
    if (!dir_path)
        return -1;
    DIR *handle = opendir(dir_path);
    free(dir_path);
    if (!handle) {
        if (!*relative) //  no output directory at all: nothing to offer
            return 0;
        s_entry_t entry = {.name = strdup(relative), .reason = "directory not readable"};
        snprintf(entry.detail, sizeof entry.detail, "%s", strerror(errno));
        if (entry.name && s_entries_push(entries, entry) == 0)
            return 0;
        free(entry.name);
        return -1;
    }
    s_entries_t subdirs = {0};
    int rc = 0;
    struct dirent *found;
    while (rc == 0 && (found = readdir(handle))) {
        if (strcmp(found->d_name, ".") == 0 || strcmp(found->d_name, "..") == 0)
            continue;
        s_entry_t entry = {.name = s_join(relative, found->d_name)};
        struct stat info;
        if (!entry.name) {
            rc = -1;
            break;
        }
        if (fstatat(dirfd(handle), found->d_name, &info, AT_SYMLINK_NOFOLLOW) != 0) {
            entry.reason = "vanished while listed";
        } else if (S_ISDIR(info.st_mode)) {
            if (depth + 1 < S_MAX_DEPTH) {
                rc = s_entries_push(&subdirs, entry);
                if (rc)
                    free(entry.name);
                continue;
            }
            entry.reason = "directory nested too deep";
        } else if (S_ISLNK(info.st_mode))
            entry.reason = "symbolic link (not followed)";
        else if (!S_ISREG(info.st_mode))
            entry.reason = "not a regular file (device, socket or FIFO)";
        else
            entry.size = (int64_t)info.st_size;
        rc = s_entries_push(entries, entry);
        if (rc)
            free(entry.name);
    }
    closedir(handle);
    for (size_t i = 0; rc == 0 && i < subdirs.count; i++)
        rc = s_walk(root, subdirs.items[i].name, depth + 1, entries);
    s_entries_free(&subdirs);
    return rc;
}

static int s_compare_entries(const void *a, const void *b)
{
    return strcmp(((const s_entry_t *)a)->name, ((const s_entry_t *)b)->name);
}

static void s_add_skipped(lynx_value_t *skipped, const s_entry_t *entry)
{
    lynx_value_t *item = lynx_value_map();
    lynx_value_set_string(item, "name", entry->name);
    char reason[256];
    snprintf(reason, sizeof reason, "%s%s%s", entry->reason, *entry->detail ? ": " : "",
             entry->detail);
    lynx_value_set_string(item, "reason", reason);
    lynx_value_append_owned(skipped, item);
}

lynx_value_t *runner_artifacts_scan(const char *output_dir, const lynx_value_t *policy_value)
{
    s_policy_t policy = s_policy_of(policy_value);
    lynx_value_t *scan = lynx_value_map();
    lynx_value_t *output_files = lynx_value_array();
    lynx_value_t *files = lynx_value_array();
    lynx_value_t *skipped = lynx_value_array();
    s_entries_t entries = {0};
    int rc = scan && output_files && files && skipped ? 0 : -1;
    //  Canonical paths in output_files, however the directory was spelled.
    char *root = output_dir ? realpath(output_dir, NULL) : NULL;
    if (rc == 0 && root)
        rc = s_walk(root, "", 0, &entries);
    if (rc == 0 && entries.count > 1)
        qsort(entries.items, entries.count, sizeof *entries.items, s_compare_entries);
    int64_t job_bytes = 0;
    for (size_t i = 0; rc == 0 && i < entries.count; i++) {
        s_entry_t *entry = &entries.items[i];
        if (!entry->reason) {
            char *path = s_join(root, entry->name);
            rc = path ? lynx_value_append_owned(output_files, lynx_value_string(path)) : -1;
            free(path);
            if (!s_collected(&policy, entry->name))
                continue;
            if (entry->size > policy.max_file_bytes) {
                entry->reason = "larger than max_file_bytes";
                snprintf(entry->detail, sizeof entry->detail, "%lld > %lld", (long long)entry->size,
                         (long long)policy.max_file_bytes);
            } else if (job_bytes + entry->size > policy.max_job_bytes) {
                entry->reason = "max_job_bytes reached";
                snprintf(entry->detail, sizeof entry->detail, "%lld bytes",
                         (long long)policy.max_job_bytes);
            } else {
                job_bytes += entry->size;
                lynx_value_t *item = lynx_value_map();
                lynx_value_set_string(item, "name", entry->name);
                lynx_value_set_int(item, "size", entry->size);
                rc = lynx_value_append_owned(files, item);
                continue;
            }
        }
        s_add_skipped(skipped, entry);
    }
    s_entries_free(&entries);
    free(root);
    if (rc == 0) {
        lynx_value_set_owned(scan, "output_files", output_files);
        lynx_value_set_owned(scan, "files", files);
        lynx_value_set_owned(scan, "skipped", skipped);
        return scan;
    }
    lynx_value_destroy(&output_files);
    lynx_value_destroy(&files);
    lynx_value_destroy(&skipped);
    lynx_value_destroy(&scan);
    return NULL;
}

//  --------------------------------------------------------------------------------------------
//  Serving

typedef struct {
    char *job_id;
    int64_t attempt;
    char *dir;
    lynx_value_t *files; //  [{name, size}]
    int fd;              //  the file being read, or -1
    const char *open_name;
    int64_t open_size;
    int64_t position; //  bytes of the open file read and hashed so far
    lynx_digest_t digest;
} s_offer_t;

struct _runner_artifacts_t {
    zlistx_t *offers; //  of s_offer_t
    char *buffer;     //  RUNNER_ARTIFACTS_CHUNK_MAX bytes
};

static void s_offer_close(s_offer_t *offer)
{
    if (offer->fd >= 0)
        close(offer->fd);
    offer->fd = -1;
    offer->open_name = NULL;
}

static void s_offer_destroy(s_offer_t **offer_p)
{
    if (!offer_p || !*offer_p)
        return;
    s_offer_t *offer = *offer_p;
    s_offer_close(offer);
    free(offer->job_id);
    free(offer->dir);
    lynx_value_destroy(&offer->files);
    free(offer);
    *offer_p = NULL;
}

runner_artifacts_t *runner_artifacts_new(void)
{
    runner_artifacts_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->offers = zlistx_new();
    self->buffer = malloc(RUNNER_ARTIFACTS_CHUNK_MAX);
    if (!self->offers || !self->buffer) {
        runner_artifacts_destroy(&self);
        return NULL;
    }
    zlistx_set_destructor(self->offers, (zlistx_destructor_fn *)s_offer_destroy);
    return self;
}

void runner_artifacts_destroy(runner_artifacts_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    runner_artifacts_t *self = *self_p;
    zlistx_destroy(&self->offers);
    free(self->buffer);
    free(self);
    *self_p = NULL;
}

static s_offer_t *s_find(runner_artifacts_t *self, const char *job_id, int64_t attempt)
{
    for (s_offer_t *offer = (s_offer_t *)zlistx_first(self->offers); offer;
         offer = (s_offer_t *)zlistx_next(self->offers))
        if (offer->attempt == attempt && strcmp(offer->job_id, job_id) == 0)
            return offer;
    return NULL;
}

int runner_artifacts_offer(runner_artifacts_t *self, const char *job_id, int64_t attempt,
                           const char *output_dir, const lynx_value_t *files)
{
    runner_artifacts_forget(self, job_id, attempt, false);
    s_offer_t *offer = calloc(1, sizeof *offer);
    if (!offer)
        return -1;
    offer->job_id = strdup(job_id);
    offer->attempt = attempt;
    offer->dir = strdup(output_dir);
    offer->files = files ? lynx_value_dup(files) : lynx_value_array();
    offer->fd = -1;
    if (!offer->job_id || !offer->dir || !offer->files || !zlistx_add_end(self->offers, offer)) {
        s_offer_destroy(&offer);
        return -1;
    }
    return 0;
}

static lynx_value_t *s_chunk(const lynx_value_t *fetch, const char *error_format, ...)
    __attribute__((format(printf, 2, 3)));

//  A CHUNK body answering fetch: its job_id, attempt, name and offset, plus "error" when
//  error_format is not NULL.
static lynx_value_t *s_chunk(const lynx_value_t *fetch, const char *error_format, ...)
{
    lynx_value_t *chunk = lynx_value_map();
    lynx_value_set_string(chunk, "job_id", lynx_value_get_string(fetch, "job_id", ""));
    lynx_value_set_int(chunk, "attempt", lynx_value_get_int(fetch, "attempt", 0));
    lynx_value_set_string(chunk, "name", lynx_value_get_string(fetch, "name", ""));
    lynx_value_set_int(chunk, "offset", lynx_value_get_int(fetch, "offset", 0));
    if (error_format) {
        char message[512];
        va_list args;
        va_start(args, error_format);
        vsnprintf(message, sizeof message, error_format, args);
        va_end(args);
        lynx_value_set_string(chunk, "error", message);
    }
    return chunk;
}

//  Make name the open file of offer, from its start. NULL, or the error text.
static const char *s_open_file(s_offer_t *offer, const char *name, int64_t size, char *why,
                               size_t why_size)
{
    s_offer_close(offer);
    int fd = lynx_path_open_beneath(offer->dir, name, O_RDONLY | O_NONBLOCK);
    struct stat info;
    if (fd < 0) {
        snprintf(why, why_size, "cannot open: %s", strerror(errno));
        return why;
    }
    if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode) || (int64_t)info.st_size != size) {
        close(fd);
        snprintf(why, why_size, "changed since the attempt ended (now %lld bytes, offered %lld)",
                 (long long)info.st_size, (long long)size);
        return why;
    }
    offer->fd = fd;
    offer->open_size = size;
    offer->position = 0;
    lynx_digest_init(&offer->digest);
    return NULL;
}

lynx_value_t *runner_artifacts_read(runner_artifacts_t *self, const lynx_value_t *fetch)
{
    const char *job_id = lynx_value_get_string(fetch, "job_id", "");
    int64_t attempt = lynx_value_get_int(fetch, "attempt", -1);
    const char *name = lynx_value_get_string(fetch, "name", "");
    int64_t offset = lynx_value_get_int(fetch, "offset", -1);
    int64_t length = lynx_value_get_int(fetch, "length", -1);
    s_offer_t *offer = s_find(self, job_id, attempt);
    if (!offer)
        return s_chunk(fetch, "attempt %lld of job %s is not offered", (long long)attempt, job_id);
    const lynx_value_t *file = NULL;
    for (size_t i = 0; !file && i < lynx_value_size(offer->files); i++)
        if (strcmp(lynx_value_get_string(lynx_value_at(offer->files, i), "name", ""), name) == 0)
            file = lynx_value_at(offer->files, i);
    if (!file)
        return s_chunk(fetch, "%s: not an offered file", name);
    int64_t size = lynx_value_get_int(file, "size", 0);
    if (offset < 0 || offset > size || length < 0 || length > RUNNER_ARTIFACTS_CHUNK_MAX ||
        (length == 0 && offset != size))
        return s_chunk(fetch, "%s: bad range offset %lld length %lld (size %lld, at most %d)", name,
                       (long long)offset, (long long)length, (long long)size,
                       RUNNER_ARTIFACTS_CHUNK_MAX);
    char why[256];
    if (offset == 0) {
        if (s_open_file(offer, name, size, why, sizeof why))
            return s_chunk(fetch, "%s: %s", name, why);
        offer->open_name = lynx_value_get_string(file, "name", "");
    } else if (offer->fd < 0 || strcmp(offer->open_name, name) != 0 || offset != offer->position)
        return s_chunk(fetch, "%s: out of order: fetch from offset 0, in order", name);
    if (length > size - offset)
        length = size - offset;
    ssize_t got = length ? pread(offer->fd, self->buffer, (size_t)length, offset) : 0;
    if (got != length) {
        s_offer_close(offer);
        return s_chunk(fetch, "%s: read %lld of %lld bytes at offset %lld%s%s", name,
                       (long long)got, (long long)length, (long long)offset, got < 0 ? ": " : "",
                       got < 0 ? strerror(errno) : "");
    }
    lynx_digest_update(&offer->digest, self->buffer, (size_t)got);
    offer->position += got;
    lynx_value_t *chunk = s_chunk(fetch, NULL);
    lynx_value_set_owned(chunk, "data", lynx_value_stringn(self->buffer, (size_t)got));
    if (offer->position == size) {
        char hex[LYNX_DIGEST_HEX_SIZE];
        lynx_digest_final_hex(&offer->digest, hex);
        lynx_value_set_bool(chunk, "eof", true);
        lynx_value_set_string(chunk, "sha256", hex);
        s_offer_close(offer);
    }
    return chunk;
}

void runner_artifacts_forget(runner_artifacts_t *self, const char *job_id, int64_t attempt,
                             bool remove_dir)
{
    s_offer_t *offer = s_find(self, job_id, attempt);
    if (!offer)
        return;
    if (remove_dir) {
        lynx_err_t err;
        lynx_err_clear(&err);
        if (runner_fs_empty_dir(offer->dir, &err) != 0 || rmdir(offer->dir) != 0)
            zsys_warning("runner: cannot remove output dir %s: %s", offer->dir,
                         err.message[0] ? err.message : strerror(errno));
    }
    zlistx_delete(self->offers, zlistx_cursor(self->offers));
}

size_t runner_artifacts_count(const runner_artifacts_t *self)
{
    return zlistx_size(self->offers);
}
