//  gateway_stream: a file from the broker to a client through a small buffer (see the header).
#include "gateway_stream.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway_routes.h"

//  Bytes asked of the broker at a time (its most); the buffer holds at most two such chunks.
#define S_CHUNK (1024 * 1024)

struct gateway_stream_t {
    gateway_request_t *request; //  NULL once the HTTP side is done with us
    gateway_ask_fn *ask;
    void *ask_arg;
    lynx_value_t *args; //  {job_id, name[, tail]}, reused for every question
    bool answered;      //  headers sent: the body is being streamed
    bool asking;        //  a question is out
    bool failed;        //  the broker failed mid-body: the client gets a short body
    uint64_t next;      //  the file offset the next question asks for
    uint64_t end;       //  one past the last byte to send
    uint64_t start;     //  the first byte sent (what MHD's pos 0 is)
    char *buffer;       //  2 * S_CHUNK bytes: [head, head + held) is file data from offset at
    size_t head, held;
    uint64_t offset; //  file offset of buffer[head]
};

static void s_destroy(gateway_stream_t *self)
{
    lynx_value_destroy(&self->args);
    free(self->buffer);
    free(self);
}

//  Free when neither side needs us.
static void s_release(gateway_stream_t *self)
{
    if (!self->request && !self->asking)
        s_destroy(self);
}

static void s_fail_json(gateway_stream_t *self, const lynx_err_t *err)
{
    gateway_routes_respond_error(self->request, err, NULL, NULL);
    self->request = NULL;
}

static void s_on_answer(void *target, const lynx_msg_t *msg);
static void s_on_timeout(void *target, const lynx_err_t *err);

//  Send a question about the file; its answer comes to s_on_answer.
static int s_send(gateway_stream_t *self, lynx_value_t **args_p, lynx_err_t *err)
{
    gateway_waiter_t waiter = {s_on_answer, s_on_timeout, self};
    return self->ask(self->ask_arg, "job.artifact", args_p, &waiter, err);
}

//  Ask for the next chunk when there is room for it and none is out.
static void s_ask(gateway_stream_t *self)
{
    if (self->asking || self->failed || self->next >= self->end ||
        self->held + S_CHUNK > 2 * S_CHUNK)
        return;
    lynx_value_t *args = lynx_value_dup(self->args);
    lynx_value_remove(args, "tail");
    lynx_value_set_int(args, "offset", (int64_t)self->next);
    uint64_t length = self->end - self->next < S_CHUNK ? self->end - self->next : S_CHUNK;
    lynx_value_set_int(args, "length", (int64_t)length);
    lynx_err_t err;
    if (s_send(self, &args, &err) == 0)
        self->asking = true;
    else
        self->failed = true;
    lynx_value_destroy(&args);
}

static long s_read(void *arg, uint64_t pos, char *out, size_t max)
{
    gateway_stream_t *self = arg;
    (void)pos; //  MHD reads in order; offset tracks it
    if (self->held == 0) {
        if (self->failed)
            return -1;
        s_ask(self);
        return 0; //  waits for gateway_request_resume
    }
    size_t take = self->held < max ? self->held : max;
    memcpy(out, self->buffer + self->head, take);
    self->head += take;
    self->held -= take;
    self->offset += take;
    if (self->held == 0)
        self->head = 0;
    s_ask(self); //  keep one chunk ahead of the client
    return (long)take;
}

static void s_done(void *arg)
{
    gateway_stream_t *self = arg;
    self->request = NULL;
    s_release(self);
}

void gateway_stream_start(gateway_request_t *request, lynx_value_t **args_p, gateway_ask_fn *ask,
                          void *ask_arg)
{
    gateway_stream_t *self = calloc(1, sizeof *self);
    lynx_err_t err;
    lynx_err_clear(&err);
    if (!self) {
        lynx_value_destroy(args_p);
        lynx_err_set(&err, LYNX_EINTERNAL, NULL, "out of memory");
        gateway_routes_respond_error(request, &err, NULL, NULL);
        return;
    }
    self->request = request;
    self->ask = ask;
    self->ask_arg = ask_arg;
    self->args = *args_p;
    *args_p = NULL;
    //  Only ?tail=N from the query, as a number.
    const lynx_value_t *tail = lynx_value_get(self->args, "tail");
    if (tail) {
        char *end = NULL;
        long lines = strtol(lynx_value_as_string(tail) ? lynx_value_as_string(tail) : "", &end, 10);
        if (!end || *end || lines < 1 || lines > 100000) {
            lynx_err_set(&err, LYNX_EINVALID, "tail",
                         "tail: must be an integer between 1 and 100000");
            s_fail_json(self, &err);
            s_release(self);
            return;
        }
        lynx_value_set_int(self->args, "tail", lines);
    }
    lynx_value_t *first = lynx_value_dup(self->args);
    lynx_value_set_int(first, "offset", 0);
    lynx_value_set_int(first, "length", 0);
    if (s_send(self, &first, &err) == 0)
        self->asking = true;
    else
        s_fail_json(self, &err);
    lynx_value_destroy(&first);
    s_release(self);
}

int gateway_stream_parse_range(const char *header, uint64_t size, uint64_t *first, uint64_t *last)
{
    if (!header || strncmp(header, "bytes=", 6) != 0 || strchr(header, ','))
        return 0;
    const char *spec = header + 6;
    char *end = NULL;
    if (*spec == '-') { //  the last N bytes
        unsigned long long count = strtoull(spec + 1, &end, 10);
        if (end == spec + 1 || *end)
            return 0;
        if (count == 0 || size == 0)
            return -1;
        *first = count >= size ? 0 : size - count;
        *last = size - 1;
        return 1;
    }
    if (*spec < '0' || *spec > '9')
        return 0;
    unsigned long long from = strtoull(spec, &end, 10);
    if (*end != '-')
        return 0;
    const char *to_text = end + 1;
    unsigned long long to = size ? size - 1 : 0;
    if (*to_text) {
        to = strtoull(to_text, &end, 10);
        if (*end || to < from)
            return 0;
    }
    if (from >= size)
        return -1;
    *first = from;
    *last = to >= size ? size - 1 : to;
    return 1;
}

//  The first answer: size, digest and type. Send the headers and start the body.
static void s_begin(gateway_stream_t *self, const lynx_value_t *reply)
{
    uint64_t size = (uint64_t)lynx_value_get_int(reply, "size", 0);
    const char *sha256 = lynx_value_get_string(reply, "sha256", "");
    char etag[80], content_range[96], length_text[32];
    snprintf(etag, sizeof etag, "\"%s\"", sha256);
    self->start = (uint64_t)lynx_value_get_int(reply, "offset", 0); //  a tail starts here
    self->end = size;
    const char *if_none_match = gateway_request_header(self->request, "If-None-Match");
    if (if_none_match && strcmp(if_none_match, etag) == 0) {
        const char *headers[] = {"ETag", etag, NULL};
        gateway_request_respond_with(self->request, 304, NULL, "", 0, headers);
        self->request = NULL;
        return;
    }
    int status = 200;
    uint64_t first = 0, last = 0;
    int range = lynx_value_get(self->args, "tail")
                    ? 0
                    : gateway_stream_parse_range(gateway_request_header(self->request, "Range"),
                                                 size, &first, &last);
    if (range < 0) {
        snprintf(content_range, sizeof content_range, "bytes */%" PRIu64, size);
        const char *headers[] = {"Content-Range", content_range, NULL};
        const char *body = "{\"error\":{\"code\":\"invalid_argument\",\"message\":\"range not "
                           "satisfiable\",\"field\":\"Range\"}}";
        gateway_request_respond_with(self->request, 416, "application/json", body, strlen(body),
                                     headers);
        self->request = NULL;
        return;
    }
    if (range > 0) {
        status = 206;
        self->start = first;
        self->end = last + 1;
        snprintf(content_range, sizeof content_range, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64,
                 first, last, size);
    }
    self->next = self->offset = self->start;
    self->buffer = malloc(2 * S_CHUNK);
    if (!self->buffer) {
        lynx_err_t err;
        lynx_err_set(&err, LYNX_EINTERNAL, NULL, "out of memory");
        s_fail_json(self, &err);
        return;
    }
    snprintf(length_text, sizeof length_text, "%" PRIu64, self->end - self->start);
    const char *headers[] = {"ETag",        etag, "Accept-Ranges", "bytes", "Content-Range",
                             content_range, NULL};
    if (range == 0)
        headers[4] = NULL;
    self->answered = true;
    const char *type = lynx_value_get_string(reply, "content_type", "application/octet-stream");
    gateway_request_stream(self->request, status, type, self->end - self->start, headers, s_read,
                           s_done, self);
    s_ask(self);
}

static void s_on_answer(void *target, const lynx_msg_t *msg)
{
    gateway_stream_t *self = target;
    self->asking = false;
    const lynx_value_t *body = lynx_msg_body((lynx_msg_t *)msg);
    if (!self->request) {
        s_release(self);
        return;
    }
    if (lynx_msg_id(msg) != LYNX_MSG_REPLY) {
        lynx_err_t err;
        lynx_err_set(&err, lynx_code_from_name(lynx_value_get_string(body, "code", "")),
                     lynx_value_get_string(body, "field", NULL), "%s",
                     lynx_value_get_string(body, "message", "broker refused"));
        if (!self->answered)
            s_fail_json(self, &err);
        else {
            self->failed = true;
            gateway_request_resume(self->request);
        }
        s_release(self);
        return;
    }
    const lynx_value_t *reply = lynx_value_get(body, "body");
    if (!self->answered) {
        s_begin(self, reply);
        s_release(self);
        return;
    }
    const lynx_value_t *data = lynx_value_get(reply, "data");
    size_t length = lynx_value_string_len(data);
    uint64_t at = (uint64_t)lynx_value_get_int(reply, "offset", -1);
    if (at != self->next || length == 0 || length > S_CHUNK)
        self->failed = true; //  not what was asked: the broker misbehaves
    else {
        //  Asked only with held <= S_CHUNK, so the chunk fits once the data moves to the front.
        if (self->head + self->held + length > 2 * S_CHUNK) {
            memmove(self->buffer, self->buffer + self->head, self->held);
            self->head = 0;
        }
        memcpy(self->buffer + self->head + self->held, lynx_value_as_string(data), length);
        self->held += length;
        self->next += length;
    }
    gateway_request_resume(self->request);
    s_release(self);
}

static void s_on_timeout(void *target, const lynx_err_t *err)
{
    gateway_stream_t *self = target;
    self->asking = false;
    if (self->request && !self->answered)
        s_fail_json(self, err);
    else if (self->request) {
        self->failed = true;
        gateway_request_resume(self->request);
    }
    s_release(self);
}
