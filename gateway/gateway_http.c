//  gateway_http: libmicrohttpd in external epoll mode with suspended connections.
//
//  Ownership: MHD owns each connection, we own one gateway_request_t per request. It is created
//  on the first access-handler call, stored in MHD's per-request pointer and freed only by the
//  request-completed callback, so it lives exactly as long as MHD's view of the request. A
//  request waiting for its answer is always suspended, and MHD never closes a suspended
//  connection, so a client that hangs up cannot free a request the owner still holds: the
//  disconnect is noticed when the answer is sent, after gateway_request_respond.
//
//  Lifecycle of a request (state, and what the next access-handler call does):
//    RECEIVING  upload chunks are appended; the final call runs the handler -> WAITING/ANSWERED
//    REFUSED    the body went over the limit: chunks are discarded, the final call answers 413
//    WAITING    the handler has it; the connection is suspended until respond -> ANSWERED
//    ANSWERED   respond stored the response; the next call queues it
//    DROPPED    the server is being destroyed; the call closes the connection
#include "gateway_http.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

//  An idle keep-alive or stalled client is dropped after this long (suspended ones never are).
#define GATEWAY_HTTP_CONNECTION_TIMEOUT_SECS 60
//  Open connections, suspended ones included; further clients wait in the listen backlog.
#define GATEWAY_HTTP_MAX_CONNECTIONS 1000
//  MHD_run passes per call; see gateway_http_run.
#define GATEWAY_HTTP_MAX_RUNS 8

typedef enum { S_RECEIVING, S_REFUSED, S_WAITING, S_ANSWERED, S_DROPPED } s_state_t;

struct _gateway_http_t {
    struct MHD_Daemon *daemon;
    gateway_http_handler_fn *handler;
    void *arg;
    size_t max_body_bytes;
    uint16_t port;
    int epoll_fd;
    bool starting;           //  MHD log lines are the cause of a start failure, not news
    char start_error[256];   //  last MHD log line while starting
    bool resumes_pending;    //  a respond resumed a connection that no MHD_run has seen yet
    gateway_request_t *live; //  every request MHD has shown us and not yet completed
};

struct _gateway_request_t {
    gateway_http_t *owner;
    struct MHD_Connection *connection;
    gateway_request_t *prev, *next; //  in owner->live
    s_state_t state;
    bool suspended;
    char *method;
    char *path;
    char *body; //  NUL-terminated once the handler sees it
    size_t body_len;
    size_t body_cap;
    struct MHD_Response *response; //  in S_ANSWERED; NULL when building it failed
    unsigned int status;
    //  A streamed answer: its reader (s_stream_t, NULL once MHD freed it) and whether it waits
    //  for data.
    gateway_stream_read_fn *read;
    void *stream_arg;
    bool stream_waiting;
};

//  --------------------------------------------------------------------------------------------
//  Requests

static gateway_request_t *s_request_new(gateway_http_t *owner, struct MHD_Connection *connection,
                                        const char *method, const char *url)
{
    gateway_request_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->owner = owner;
    self->connection = connection;
    self->state = S_RECEIVING;
    self->method = strdup(method);
    //  MHD hands over the path without the query string, which it has already parsed
    self->path = strdup(url);
    if (!self->method || !self->path) {
        free(self->method);
        free(self->path);
        free(self);
        return NULL;
    }
    self->next = owner->live;
    if (owner->live)
        owner->live->prev = self;
    owner->live = self;
    return self;
}

//  What MHD's content reader and free callbacks get: the request, until it completes.
typedef struct {
    gateway_request_t *request;
    gateway_stream_read_fn *read;
    gateway_stream_done_fn *done;
    void *arg;
} s_stream_t;

static void s_request_destroy(gateway_request_t **self_p)
{
    gateway_request_t *self = *self_p;
    if (!self)
        return;
    if (self->read) //  the streamed answer outlives us: it must not reach back
        ((s_stream_t *)self->stream_arg)->request = NULL;
    if (self->prev)
        self->prev->next = self->next;
    else
        self->owner->live = self->next;
    if (self->next)
        self->next->prev = self->prev;
    if (self->response)
        MHD_destroy_response(self->response);
    free(self->method);
    free(self->path);
    free(self->body);
    free(self);
    *self_p = NULL;
}

//  Make room for need bytes plus the terminating NUL, growing geometrically but never past the
//  body limit (need never exceeds it).
static int s_request_reserve(gateway_request_t *self, size_t need)
{
    if (need < self->body_cap)
        return 0;
    size_t limit = self->owner->max_body_bytes;
    limit = limit < SIZE_MAX ? limit + 1 : limit;
    size_t cap = self->body_cap ? self->body_cap : 256;
    while (cap <= need && cap < limit)
        cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
    if (cap > limit)
        cap = limit;
    if (cap <= need)
        return -1;
    char *body = realloc(self->body, cap);
    if (!body)
        return -1;
    self->body = body;
    self->body_cap = cap;
    return 0;
}

//  Content-Length as declared by the client; -1 when absent (chunked) or not a number.
static long long s_declared_length(struct MHD_Connection *connection)
{
    const char *value =
        MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (!value || *value < '0' || *value > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long length = strtoull(value, &end, 10);
    if (errno || *end != '\0' || length > LLONG_MAX)
        return -1;
    return (long long)length;
}

static struct MHD_Response *s_response_new(const char *content_type, const char *body,
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

//  Queue the stored answer. MHD keeps its own reference, so ours goes now.
static enum MHD_Result s_request_queue(gateway_request_t *self)
{
    if (!self->response)
        return MHD_NO; //  out of memory when answering: closing is all we can do
    enum MHD_Result rc = MHD_queue_response(self->connection, self->status, self->response);
    MHD_destroy_response(self->response);
    self->response = NULL;
    return rc;
}

//  Answer 413 with the grid's JSON error body, without involving the handler.
static enum MHD_Result s_request_refuse(gateway_request_t *self)
{
    char body[256];
    int body_len = snprintf(body, sizeof body,
                            "{\"error\":{\"code\":\"%s\",\"message\":\"request body exceeds %zu "
                            "bytes\",\"field\":null}}",
                            lynx_code_name(LYNX_ETOOLARGE), self->owner->max_body_bytes);
    self->status = (unsigned int)lynx_code_http_status(LYNX_ETOOLARGE);
    self->response = s_response_new("application/json", body, (size_t)body_len);
    return s_request_queue(self);
}

//  Give the complete request to the handler; suspend the connection unless it answered at once.
static enum MHD_Result s_request_handle(gateway_request_t *self)
{
    if (s_request_reserve(self, self->body_len) != 0)
        return MHD_NO;
    self->body[self->body_len] = '\0';
    self->state = S_WAITING;
    self->owner->handler(self, self->owner->arg);
    if (self->state == S_ANSWERED)
        return s_request_queue(self);
    MHD_suspend_connection(self->connection);
    self->suspended = true;
    return MHD_YES;
}

//  --------------------------------------------------------------------------------------------
//  MHD callbacks

//  MHD calls this once when the headers are in (upload_data_size 0, *con_cls NULL), once per
//  body chunk, and then with upload_data_size 0 until a response is queued, including once
//  after every resume.
static enum MHD_Result s_on_access(void *cls, struct MHD_Connection *connection, const char *url,
                                   const char *method, const char *version, const char *upload_data,
                                   size_t *upload_data_size, void **con_cls)
{
    (void)version;
    gateway_http_t *owner = cls;
    gateway_request_t *self = *con_cls;
    if (!self) {
        self = s_request_new(owner, connection, method, url);
        if (!self)
            return MHD_NO;
        *con_cls = self;
        //  Refuse a declared oversized body before it is sent: no 100 Continue goes out, MHD
        //  does not read the body and closes the connection after the answer.
        long long declared = s_declared_length(connection);
        if (declared >= 0 && (unsigned long long)declared > owner->max_body_bytes) {
            self->state = S_REFUSED;
            return s_request_refuse(self);
        }
        //  One allocation for the usual, declared body
        if (declared > 0 && s_request_reserve(self, (size_t)declared) != 0)
            return MHD_NO;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        //  A chunked body gives no warning: past the limit we keep reading but discard, so the
        //  client gets a clean 413 on a connection that stays usable.
        size_t chunk = *upload_data_size;
        *upload_data_size = 0;
        if (self->state != S_RECEIVING)
            return MHD_YES;
        if (chunk > owner->max_body_bytes - self->body_len) {
            self->state = S_REFUSED;
            free(self->body);
            self->body = NULL;
            self->body_len = self->body_cap = 0;
            return MHD_YES;
        }
        if (s_request_reserve(self, self->body_len + chunk) != 0)
            return MHD_NO;
        memcpy(self->body + self->body_len, upload_data, chunk);
        self->body_len += chunk;
        return MHD_YES;
    }
    switch (self->state) {
    case S_RECEIVING:
        return s_request_handle(self);
    case S_REFUSED:
        return s_request_refuse(self);
    case S_ANSWERED:
        return s_request_queue(self);
    case S_WAITING:
        //  Not expected while suspended; wait again rather than spin
        MHD_suspend_connection(connection);
        self->suspended = true;
        return MHD_YES;
    case S_DROPPED:
        break;
    }
    return MHD_NO;
}

//  The only place a request is freed: MHD is done with it (answered, failed or shut down).
static void s_on_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
                           enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)connection;
    (void)toe;
    gateway_request_t *self = *con_cls;
    s_request_destroy(&self);
    *con_cls = NULL;
}

static void s_on_log(void *cls, const char *format, va_list args)
{
    gateway_http_t *self = cls;
    char line[256];
    vsnprintf(line, sizeof line, format, args);
    line[strcspn(line, "\r\n")] = '\0';
    if (self->starting)
        snprintf(self->start_error, sizeof self->start_error, "%s", line);
    else
        fprintf(stderr, "gateway: http library message=\"%s\"\n", line);
}

//  --------------------------------------------------------------------------------------------
//  Server

gateway_http_t *gateway_http_new(const char *bind_address, uint16_t port, size_t max_body_bytes,
                                 gateway_http_handler_fn *handler, void *arg, lynx_err_t *err)
{
    assert(bind_address);
    assert(handler);
    union {
        struct sockaddr any;
        struct sockaddr_in v4;
        struct sockaddr_in6 v6;
    } addr;
    memset(&addr, 0, sizeof addr);
    unsigned int flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    const char *lbracket = "", *rbracket = "";
    if (inet_pton(AF_INET, bind_address, &addr.v4.sin_addr) == 1) {
        addr.v4.sin_family = AF_INET;
        addr.v4.sin_port = htons(port);
    } else if (inet_pton(AF_INET6, bind_address, &addr.v6.sin6_addr) == 1) {
        addr.v6.sin6_family = AF_INET6;
        addr.v6.sin6_port = htons(port);
        flags |= MHD_USE_IPv6;
        lbracket = "[";
        rbracket = "]";
    } else {
        lynx_err_set(err, LYNX_EINVALID, NULL, "bind %s:%u: not an IPv4 or IPv6 address",
                     bind_address, port);
        return NULL;
    }
    gateway_http_t *self = calloc(1, sizeof *self);
    if (!self) {
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "bind %s%s%s:%u: out of memory", lbracket,
                     bind_address, rbracket, port);
        return NULL;
    }
    self->handler = handler;
    self->arg = arg;
    self->max_body_bytes = max_body_bytes;
    self->starting = true;
    self->daemon = MHD_start_daemon(
        flags, port, NULL, NULL, s_on_access, self, MHD_OPTION_SOCK_ADDR, &addr.any,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)GATEWAY_HTTP_CONNECTION_TIMEOUT_SECS,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)GATEWAY_HTTP_MAX_CONNECTIONS,
        MHD_OPTION_NOTIFY_COMPLETED, s_on_completed, self, MHD_OPTION_EXTERNAL_LOGGER, s_on_log,
        self, MHD_OPTION_END);
    int start_errno = errno;
    self->starting = false;
    const union MHD_DaemonInfo *fd_info =
        self->daemon ? MHD_get_daemon_info(self->daemon, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
    const union MHD_DaemonInfo *port_info =
        self->daemon ? MHD_get_daemon_info(self->daemon, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    if (!fd_info || !port_info) {
        //  MHD logs "Failed to bind to port 8080: Address already in use"; keep the cause
        const char *cause = strrchr(self->start_error, ':');
        cause = cause ? cause + 1 + strspn(cause + 1, " ")
                      : (self->start_error[0] ? self->start_error : strerror(start_errno));
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "bind %s%s%s:%u: %s", lbracket, bind_address,
                     rbracket, port, cause);
        gateway_http_destroy(&self);
        return NULL;
    }
    self->epoll_fd = fd_info->epoll_fd;
    self->port = port_info->port;
    return self;
}

void gateway_http_destroy(gateway_http_t **self_p)
{
    gateway_http_t *self = *self_p;
    if (!self)
        return;
    if (self->daemon) {
        //  MHD must not be stopped with suspended connections: resume them all, marked so that
        //  no handler runs again. Stopping closes them and completes (frees) their requests.
        for (gateway_request_t *request = self->live; request; request = request->next) {
            if (request->state == S_WAITING)
                request->state = S_DROPPED;
            if (request->suspended) {
                request->suspended = false;
                MHD_resume_connection(request->connection);
            }
        }
        MHD_stop_daemon(self->daemon);
    }
    while (self->live) {
        gateway_request_t *request = self->live;
        s_request_destroy(&request);
    }
    free(self);
    *self_p = NULL;
}

uint16_t gateway_http_port(const gateway_http_t *self)
{
    assert(self);
    return self->port;
}

int gateway_http_fd(const gateway_http_t *self)
{
    assert(self);
    return self->epoll_fd;
}

void gateway_http_run(gateway_http_t *self)
{
    assert(self);
    //  One MHD_run is not always enough. Resumed connections are picked up at the start of a
    //  run, so a respond made by a handler during this run needs another; and MHD keeps busy
    //  connections on its own ready list, which epoll (edge-triggered) will not report again.
    //  Both show as a timeout of 0. Bounded, so a flood of work cannot starve the owner's other
    //  sockets: the owner sees the 0 and comes back at once.
    for (int run = 0; run < GATEWAY_HTTP_MAX_RUNS; run++) {
        self->resumes_pending = false;
        MHD_run(self->daemon);
        if (gateway_http_timeout_ms(self) != 0)
            break;
    }
}

long gateway_http_timeout_ms(gateway_http_t *self)
{
    assert(self);
    //  MHD 0.9.75 in external epoll mode neither wakes its epoll fd for a resume nor counts it
    //  in MHD_get_timeout: without this a resumed connection waits for unrelated traffic.
    if (self->resumes_pending)
        return 0;
    MHD_UNSIGNED_LONG_LONG timeout_ms;
    if (MHD_get_timeout(self->daemon, &timeout_ms) != MHD_YES)
        return -1;
    return timeout_ms > LONG_MAX ? LONG_MAX : (long)timeout_ms;
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
    if (self->suspended) {
        self->suspended = false;
        self->owner->resumes_pending = true;
        MHD_resume_connection(self->connection);
    }
}

void gateway_request_resume(gateway_request_t *self)
{
    if (!self || !self->stream_waiting)
        return;
    self->stream_waiting = false;
    if (self->suspended) {
        self->suspended = false;
        self->owner->resumes_pending = true;
        MHD_resume_connection(self->connection);
    }
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
    self->response = s_response_new(content_type, body ? body : "", body_len);
    for (size_t i = 0; self->response && headers && headers[i] && headers[i + 1]; i += 2)
        if (MHD_add_response_header(self->response, headers[i], headers[i + 1]) != MHD_YES) {
            MHD_destroy_response(self->response);
            self->response = NULL;
        }
    self->status = (unsigned int)status;
    self->state = S_ANSWERED;
    if (self->suspended) {
        self->suspended = false;
        self->owner->resumes_pending = true;
        MHD_resume_connection(self->connection);
    }
}
