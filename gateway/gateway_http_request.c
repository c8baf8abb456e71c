//  gateway_http_request: one request as the handler sees it: its method, path, query,
//  headers and body, and the answer (a body, or a stream read as the client takes it).
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "gateway_http_internal.h"

struct MHD_Response *gateway_http_response_new(const char *content_type, const char *body,
                                               size_t body_len)
{
    struct MHD_Response *response =
        MHD_create_response_from_buffer(body_len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (response && content_type &&
        MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type) != MHD_YES) {
        MHD_destroy_response(response);
        response = NULL;
    }
    return response;
}

//  An answered request's connection goes on (it was suspended while the handler had it).
static void s_resume(gateway_request_t *self)
{
    if (self->suspended) {
        self->suspended = false;
        self->owner->resumes_pending = true;
        MHD_resume_connection(self->connection);
    }
}

//  --------------------------------------------------------------------------------------------
//  Request accessors and the answer

const char *gateway_request_method(const gateway_request_t *self)
{
    assert(self);
    return self->method;
}

const char *gateway_request_path(const gateway_request_t *self)
{
    assert(self);
    return self->path;
}

//  A key given without a value (?verbose) is present, with the value "".
static const char *s_request_value(const gateway_request_t *self, enum MHD_ValueKind kind,
                                   const char *key)
{
    assert(self);
    assert(key);
    const char *value = NULL;
    if (MHD_lookup_connection_value_n(self->connection, kind, key, strlen(key), &value, NULL) !=
        MHD_YES)
        return NULL;
    return value ? value : "";
}

const char *gateway_request_query(const gateway_request_t *self, const char *key)
{
    return s_request_value(self, MHD_GET_ARGUMENT_KIND, key);
}

const char *gateway_request_header(const gateway_request_t *self, const char *name)
{
    return s_request_value(self, MHD_HEADER_KIND, name);
}

const char *gateway_request_body(const gateway_request_t *self)
{
    assert(self);
    return self->body;
}

size_t gateway_request_body_len(const gateway_request_t *self)
{
    assert(self);
    return self->body_len;
}

//  MHD asks for more of a streamed body. Nothing ready: suspend until gateway_request_resume.
static ssize_t s_stream_read(void *cls, uint64_t pos, char *buffer, size_t max)
{
    s_stream_t *stream = cls;
    gateway_request_t *request = stream->request;
    if (!request)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    long got = stream->read(stream->arg, pos, buffer, max);
    if (got == GATEWAY_STREAM_END)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (got < 0)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (got == 0) {
        request->stream_waiting = true;
        if (!request->suspended) {
            request->suspended = true;
            MHD_suspend_connection(request->connection);
        }
    }
    return (ssize_t)got;
}

static void s_stream_free(void *cls)
{
    s_stream_t *stream = cls;
    if (stream->request)
        stream->request->read = NULL;
    stream->done(stream->arg);
    free(stream);
}

void gateway_request_stream(gateway_request_t *self, int status, const char *content_type,
                            uint64_t size, const char *const *headers, gateway_stream_read_fn *read,
                            gateway_stream_done_fn *done, void *arg)
{
    assert(self && self->state == S_WAITING);
    s_stream_t *stream = calloc(1, sizeof *stream);
    if (stream) {
        *stream = (s_stream_t){.request = self, .read = read, .done = done, .arg = arg};
        self->response = MHD_create_response_from_callback(
            size == GATEWAY_STREAM_SIZE_UNKNOWN ? MHD_SIZE_UNKNOWN : size, 256 * 1024,
            s_stream_read, stream, s_stream_free);
        if (!self->response)
            free(stream);
    }
    if (!self->response)
        done(arg); //  nothing will ever call it otherwise
    if (self->response && content_type)
        MHD_add_response_header(self->response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    for (size_t i = 0; self->response && headers && headers[i] && headers[i + 1]; i += 2)
        MHD_add_response_header(self->response, headers[i], headers[i + 1]);
    self->read = self->response ? read : NULL;
    self->stream_arg = stream;
    self->status = (unsigned int)status;
    self->state = S_ANSWERED;
    s_resume(self);
}

void gateway_request_resume(gateway_request_t *self)
{
    if (!self || !self->stream_waiting)
        return;
    self->stream_waiting = false;
    s_resume(self);
}

void gateway_request_respond(gateway_request_t *self, int status, const char *content_type,
                             const char *body, size_t body_len)
{
    gateway_request_respond_with(self, status, content_type, body, body_len, NULL);
}

void gateway_request_respond_with(gateway_request_t *self, int status, const char *content_type,
                                  const char *body, size_t body_len, const char *const *headers)
{
    assert(self);
    assert(self->state == S_WAITING); //  answering twice is the caller's bug
    assert(body || body_len == 0);
    self->response = gateway_http_response_new(content_type, body ? body : "", body_len);
    for (size_t i = 0; self->response && headers && headers[i] && headers[i + 1]; i += 2)
        if (MHD_add_response_header(self->response, headers[i], headers[i + 1]) != MHD_YES) {
            MHD_destroy_response(self->response);
            self->response = NULL;
        }
    self->status = (unsigned int)status;
    self->state = S_ANSWERED;
    s_resume(self);
}
