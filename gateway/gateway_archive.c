//  gateway_archive: one file of every job of a batch as .tar.gz (see the header).
#include "gateway_archive.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "gateway_routes.h"
#include "lynx_digest.h"

#define S_CHUNK (1024 * 1024)
#define S_BLOCK 512

typedef enum { S_NEXT, S_DATA, S_PAD, S_TRAILER, S_DONE } s_phase_t;
typedef enum { S_ASKING_NOTHING, S_ASKING_INDEX, S_ASKING_CHUNK } s_asking_t;

typedef struct {
    gateway_request_t *request; //  NULL once the HTTP side is done with us
    gateway_ask_fn *ask;
    void *ask_arg;
    char *batch_id, *name;
    bool answered; //  headers sent
    bool failed;   //  the body cannot go on: the client gets a truncated stream
    s_asking_t asking;
    lynx_value_t *page; //  this index page's files, and the next one to send
    size_t page_pos;
    int64_t next_after; //  run_id to ask the next page after, or -1: this is the last page
    //  The entry being sent.
    char job_id[64];
    int64_t run_id;
    uint64_t size, offset;
    char sha256[LYNX_DIGEST_HEX_SIZE];
    lynx_digest_t digest;
    lynx_value_t *chunk; //  the next piece of the entry's data, when it has come
    s_phase_t phase;
    uint64_t mtime;
    z_stream z;
    bool z_ready;
    unsigned char *out; //  deflate's output, [out_pos, out_len) still to hand to the client
    size_t out_size, out_pos, out_len;
} s_archive_t;

//  --------------------------------------------------------------------------------------------
//  tar

static void s_octal(char *field, size_t size, uint64_t value)
{
    snprintf(field, size, "%0*" PRIo64, (int)size - 1, value);
}

//  One ustar header block for name (at most 100 bytes: longer ones go in a pax record).
static void s_ustar(char *block, const char *name, uint64_t size, uint64_t mtime, char type)
{
    memset(block, 0, S_BLOCK);
    snprintf(block, 100, "%.99s", name);
    s_octal(block + 100, 8, 0644);
    s_octal(block + 108, 8, 0);
    s_octal(block + 116, 8, 0);
    s_octal(block + 124, 12, size);
    s_octal(block + 136, 12, mtime);
    memset(block + 148, ' ', 8); //  the checksum counts itself as spaces
    block[156] = type;
    memcpy(block + 257, "ustar", 6);
    memcpy(block + 263, "00", 2);
    memcpy(block + 265, "lynx", 4);
    memcpy(block + 297, "lynx", 4);
    unsigned sum = 0;
    for (size_t i = 0; i < S_BLOCK; i++)
        sum += (unsigned char)block[i];
    snprintf(block + 148, 8, "%06o", sum);
    block[155] = ' ';
}

//  "<len> key=value\n", whose len counts its own digits.
static size_t s_pax_record(char *out, size_t size, const char *key, const char *value)
{
    size_t body = strlen(key) + strlen(value) + 3; //  ' ', '=', '\n'
    size_t len = body + 1;
    while (true) {
        char digits[24];
        size_t total = body + (size_t)snprintf(digits, sizeof digits, "%zu", len);
        if (total == len)
            break;
        len = total;
    }
    int wrote = snprintf(out, size, "%zu %s=%s\n", len, key, value);
    return wrote > 0 && (size_t)wrote < size ? (size_t)wrote : 0;
}

size_t gateway_archive_tar_header(const char *path, uint64_t size, uint64_t mtime, char *out,
                                  size_t out_size)
{
    bool long_path = strlen(path) > 99;
    bool big = size > 077777777777ULL; //  11 octal digits
    size_t used = 0;
    if (long_path || big) {
        char records[2048];
        size_t len = 0;
        if (long_path)
            len += s_pax_record(records, sizeof records, "path", path);
        if (big) {
            char text[32];
            snprintf(text, sizeof text, "%" PRIu64, size);
            len += s_pax_record(records + len, sizeof records - len, "size", text);
        }
        size_t padded = (len + S_BLOCK - 1) / S_BLOCK * S_BLOCK;
        if (len == 0 || out_size < S_BLOCK + padded + S_BLOCK)
            return 0;
        s_ustar(out, "PaxHeader", len, mtime, 'x');
        memset(out + S_BLOCK, 0, padded);
        memcpy(out + S_BLOCK, records, len);
        used = S_BLOCK + padded;
    }
    if (out_size < used + S_BLOCK)
        return 0;
    s_ustar(out + used, path, big ? 0 : size, mtime, '0');
    return used + S_BLOCK;
}

//  --------------------------------------------------------------------------------------------
//  The stream

static void s_destroy(s_archive_t *self)
{
    if (self->z_ready)
        deflateEnd(&self->z);
    lynx_value_destroy(&self->page);
    lynx_value_destroy(&self->chunk);
    free(self->out);
    free(self->batch_id);
    free(self->name);
    free(self);
}

static void s_release(s_archive_t *self)
{
    if (!self->request && self->asking == S_ASKING_NOTHING)
        s_destroy(self);
}

static void s_fail_json(s_archive_t *self, const lynx_err_t *err)
{
    gateway_routes_respond_error(self->request, err, NULL, NULL);
    self->request = NULL;
}

static void s_on_answer(void *target, const lynx_msg_t *msg);
static void s_on_timeout(void *target, const lynx_err_t *err);

static void s_ask(s_archive_t *self, s_asking_t what)
{
    lynx_value_t *args = lynx_value_map();
    const char *op = "batch.artifact_index";
    if (what == S_ASKING_INDEX) {
        lynx_value_set_string(args, "batch_id", self->batch_id);
        lynx_value_set_int(args, "after_run_id", self->next_after);
    } else {
        op = "job.artifact";
        lynx_value_set_string(args, "job_id", self->job_id);
        lynx_value_set_int(args, "offset", (int64_t)self->offset);
        uint64_t left = self->size - self->offset;
        lynx_value_set_int(args, "length", (int64_t)(left < S_CHUNK ? left : S_CHUNK));
    }
    lynx_value_set_string(args, "name", self->name);
    gateway_waiter_t waiter = {s_on_answer, s_on_timeout, self};
    lynx_err_t err;
    if (self->ask(self->ask_arg, op, &args, &waiter, &err) == 0)
        self->asking = what;
    else if (!self->answered)
        s_fail_json(self, &err);
    else
        self->failed = true;
    lynx_value_destroy(&args);
}

//  Deflate size bytes (into the empty output buffer, which holds what any piece up to a chunk
//  becomes).
static int s_deflate(s_archive_t *self, const void *data, size_t size, int flush)
{
    self->z.next_in = (Bytef *)(uintptr_t)data;
    self->z.avail_in = (uInt)size;
    self->z.next_out = self->out + self->out_len;
    self->z.avail_out = (uInt)(self->out_size - self->out_len);
    int rc = deflate(&self->z, flush);
    self->out_len = self->out_size - self->z.avail_out;
    return (rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR) && self->z.avail_in == 0 ? 0
                                                                                            : -1;
}

//  One step of the archive: 1 when it moved on, 0 when it waits for the broker, -1 on failure.
static int s_step(s_archive_t *self)
{
    static const char zeros[2 * S_BLOCK];
    switch (self->phase) {
    case S_NEXT: {
        if (self->page_pos < lynx_value_size(self->page)) {
            const lynx_value_t *file = lynx_value_at(self->page, self->page_pos++);
            snprintf(self->job_id, sizeof self->job_id, "%s",
                     lynx_value_get_string(file, "job_id", ""));
            snprintf(self->sha256, sizeof self->sha256, "%s",
                     lynx_value_get_string(file, "sha256", ""));
            self->run_id = lynx_value_get_int(file, "run_id", 0);
            self->size = (uint64_t)lynx_value_get_int(file, "size", 0);
            self->offset = 0;
            lynx_digest_init(&self->digest);
            char path[2048], header[4 * S_BLOCK + 2048];
            snprintf(path, sizeof path, "run-%" PRId64 "/%s", self->run_id, self->name);
            size_t len =
                gateway_archive_tar_header(path, self->size, self->mtime, header, sizeof header);
            self->phase = S_DATA;
            return len && s_deflate(self, header, len, Z_NO_FLUSH) == 0 ? 1 : -1;
        }
        if (self->next_after >= 0) {
            s_ask(self, S_ASKING_INDEX);
            return self->failed ? -1 : 0;
        }
        self->phase = S_TRAILER;
        return 1;
    }
    case S_DATA: {
        if (self->offset == self->size) {
            char hex[LYNX_DIGEST_HEX_SIZE];
            lynx_digest_final_hex(&self->digest, hex);
            if (strcmp(hex, self->sha256) != 0)
                return -1; //  not what the broker listed: stop rather than ship it
            self->phase = S_PAD;
            return 1;
        }
        if (!self->chunk) {
            s_ask(self, S_ASKING_CHUNK);
            return self->failed ? -1 : 0;
        }
        const lynx_value_t *data = lynx_value_get(self->chunk, "data");
        size_t len = lynx_value_string_len(data);
        lynx_digest_update(&self->digest, lynx_value_as_string(data), len);
        self->offset += len;
        int rc = s_deflate(self, lynx_value_as_string(data), len, Z_NO_FLUSH);
        lynx_value_destroy(&self->chunk);
        return rc == 0 ? 1 : -1;
    }
    case S_PAD: {
        size_t pad = (size_t)((S_BLOCK - self->size % S_BLOCK) % S_BLOCK);
        self->phase = S_NEXT;
        return s_deflate(self, zeros, pad, Z_NO_FLUSH) == 0 ? 1 : -1;
    }
    case S_TRAILER:
        self->phase = S_DONE;
        return s_deflate(self, zeros, sizeof zeros, Z_FINISH) == 0 ? 1 : -1;
    case S_DONE:
        break;
    }
    return 1;
}

static long s_read(void *arg, uint64_t pos, char *buffer, size_t max)
{
    s_archive_t *self = arg;
    (void)pos;
    while (true) {
        if (self->out_pos < self->out_len) {
            size_t take = self->out_len - self->out_pos < max ? self->out_len - self->out_pos : max;
            memcpy(buffer, self->out + self->out_pos, take);
            self->out_pos += take;
            return (long)take;
        }
        self->out_pos = self->out_len = 0;
        if (self->failed)
            return -1;
        if (self->phase == S_DONE)
            return GATEWAY_STREAM_END;
        int rc = s_step(self);
        if (rc < 0) {
            self->failed = true;
            return -1;
        }
        if (rc == 0)
            return 0; //  waits for the broker; resumed by the answer
    }
}

static void s_done(void *arg)
{
    s_archive_t *self = arg;
    self->request = NULL;
    s_release(self);
}

//  The first index page: 404 when no job has the file, else the headers and the body.
static void s_begin(s_archive_t *self)
{
    if (lynx_value_size(self->page) == 0 && self->next_after < 0) {
        lynx_err_t err;
        lynx_err_set(&err, LYNX_ENOTFOUND, "name", "no job of batch %.64s has an artifact '%.200s'",
                     self->batch_id, self->name);
        s_fail_json(self, &err);
        return;
    }
    self->out_size = deflateBound(&self->z, S_CHUNK) + 8 * S_BLOCK;
    self->out = malloc(self->out_size);
    if (!self->out) {
        lynx_err_t err;
        lynx_err_set(&err, LYNX_EINTERNAL, NULL, "out of memory");
        s_fail_json(self, &err);
        return;
    }
    const char *base = strrchr(self->name, '/') ? strrchr(self->name, '/') + 1 : self->name;
    char disposition[512];
    snprintf(disposition, sizeof disposition, "attachment; filename=\"%.64s-%.200s.tar.gz\"",
             self->batch_id, base);
    for (char *at = disposition + strlen("attachment; filename=\""); *at; at++)
        if (*at == '"' && at[1] != '\0')
            *at = '_';
    const char *headers[] = {"Content-Disposition", disposition, NULL};
    self->answered = true;
    gateway_request_stream(self->request, 200, "application/gzip", GATEWAY_STREAM_SIZE_UNKNOWN,
                           headers, s_read, s_done, self);
}

static void s_on_answer(void *target, const lynx_msg_t *msg)
{
    s_archive_t *self = target;
    s_asking_t was = self->asking;
    self->asking = S_ASKING_NOTHING;
    const lynx_value_t *body = lynx_msg_body((lynx_msg_t *)msg);
    if (self->request && lynx_msg_id(msg) != LYNX_MSG_REPLY) {
        lynx_err_t err;
        lynx_err_set(&err, lynx_code_from_name(lynx_value_get_string(body, "code", "")),
                     lynx_value_get_string(body, "field", NULL), "%s",
                     lynx_value_get_string(body, "message", "broker refused"));
        if (!self->answered)
            s_fail_json(self, &err);
        else
            self->failed = true;
    } else if (self->request) {
        const lynx_value_t *reply = lynx_value_get(body, "body");
        if (was == S_ASKING_INDEX) {
            lynx_value_destroy(&self->page);
            self->page = lynx_value_dup(lynx_value_get(reply, "files"));
            self->page_pos = 0;
            self->next_after = lynx_value_get_int(reply, "next_after", -1);
            if (!self->answered)
                s_begin(self);
        } else if (lynx_value_get_int(reply, "offset", -1) != (int64_t)self->offset ||
                   lynx_value_string_len(lynx_value_get(reply, "data")) == 0)
            self->failed = true;
        else
            self->chunk = lynx_value_dup(reply);
    }
    if (self->request && self->answered)
        gateway_request_resume(self->request);
    s_release(self);
}

static void s_on_timeout(void *target, const lynx_err_t *err)
{
    s_archive_t *self = target;
    self->asking = S_ASKING_NOTHING;
    if (self->request && !self->answered)
        s_fail_json(self, err);
    else if (self->request) {
        self->failed = true;
        gateway_request_resume(self->request);
    }
    s_release(self);
}

void gateway_archive_start(gateway_request_t *request, lynx_value_t **args_p, gateway_ask_fn *ask,
                           void *ask_arg)
{
    s_archive_t *self = calloc(1, sizeof *self);
    lynx_err_t err;
    lynx_err_clear(&err);
    if (self) {
        self->request = request;
        self->ask = ask;
        self->ask_arg = ask_arg;
        self->batch_id = strdup(lynx_value_get_string(*args_p, "batch_id", ""));
        self->name = strdup(lynx_value_get_string(*args_p, "name", ""));
        self->next_after = -1;
        self->mtime = (uint64_t)time(NULL);
        self->z_ready = deflateInit2(&self->z, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8,
                                     Z_DEFAULT_STRATEGY) == Z_OK;
    }
    lynx_value_destroy(args_p);
    if (!self || !self->batch_id || !self->name || !self->z_ready) {
        lynx_err_set(&err, LYNX_EINTERNAL, NULL, "out of memory");
        gateway_routes_respond_error(request, &err, NULL, NULL);
        if (self)
            s_destroy(self);
        return;
    }
    s_ask(self, S_ASKING_INDEX);
    s_release(self);
}
