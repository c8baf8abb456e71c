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
//    REFUSED    the declared body is over the limit: 413 queued at once, no body is read
//    ABORTED    a chunked body went over the limit: 413 written, connection suspended until
//               its linger ends, then the call closes it
//    WAITING    the handler has it; the connection is suspended until respond -> ANSWERED
//    ANSWERED   respond stored the response; the next call queues it
//    DROPPED    the server is being destroyed; the call closes the connection
//
//  Each connection is tracked by gateway_conns (its socket context) for the request deadline:
//  started when MHD announces the connection and whenever a request completes, stopped when a
//  request is handed to the handler or answered 413. gateway_http_run closes overdue ones with
//  shutdown(2): MHD sees the end of the stream and closes the connection the usual way.
#include "gateway_http.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "gateway_conns.h"
#include "gateway_http_internal.h"
#include "gateway_pem.h"
#include "lynx_time.h"

//  A connection silent this long is dropped by MHD (suspended ones never are). Bounds an
//  answer's sending; reading a request is bounded by the request deadline.
#define GATEWAY_HTTP_CONNECTION_TIMEOUT_SECS 60
//  Open connections, suspended ones included; further clients wait in the listen backlog.
#define GATEWAY_HTTP_MAX_CONNECTIONS 1000
#define GATEWAY_HTTP_REQUEST_DEADLINE_MS 30000
//  How long a connection refused in the middle of its body stays open, not read, so that the
//  client reads the 413 rather than a reset.
#define GATEWAY_HTTP_LINGER_MS 1000
//  Lines that an attack repeats go out at most so often: per interval one line for the
//  connections we closed, and a few of MHD's messages (a refused client, a failed handshake).
#define GATEWAY_HTTP_LOG_INTERVAL_MS 10000
#define GATEWAY_HTTP_LOG_BURST 5
//  MHD_run passes per call; see gateway_http_run.
#define GATEWAY_HTTP_MAX_RUNS 8

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
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    self->conn = info ? info->socket_context : NULL;
    if (self->conn)
        gateway_conn_set_user(self->conn, self);
    return self;
}

static void s_request_destroy(gateway_request_t **self_p)
{
    gateway_request_t *self = *self_p;
    if (!self)
        return;
    if (self->read) //  the streamed answer outlives us: it must not reach back
        ((s_stream_t *)self->stream_arg)->request = NULL;
    if (self->conn)
        gateway_conn_set_user(self->conn, NULL);
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

//  The grid's JSON error body for a body over the limit; its length.
static int s_too_large_json(const gateway_http_t *self, char *body, size_t size)
{
    return snprintf(body, size,
                    "{\"error\":{\"code\":\"%s\",\"message\":\"request body exceeds %zu "
                    "bytes\",\"field\":null}}",
                    lynx_code_name(LYNX_ETOOLARGE), self->max_body_bytes);
}

//  A connection the server closes on a client's account: logged, but at most once per
//  GATEWAY_HTTP_LOG_INTERVAL_MS, so a flood of them cannot flood the log.
static void s_log_closed(gateway_http_t *self, const char *why, const char *client)
{
    unsigned long held = 0;
    if (!gateway_log_limit_pass(&self->cut_log, lynx_time_mono_ms(), GATEWAY_HTTP_LOG_INTERVAL_MS,
                                1, &held))
        return;
    fprintf(stderr, "gateway: connection closed reason=\"%s\" client=%s", why, client);
    if (held)
        fprintf(stderr, " closed_since_last_line=%lu", held);
    fprintf(stderr, "\n");
}

//  Answer 413 with the grid's JSON error body, without involving the handler.
static enum MHD_Result s_request_refuse(gateway_request_t *self)
{
    char body[256];
    int body_len = s_too_large_json(self->owner, body, sizeof body);
    self->status = (unsigned int)lynx_code_http_status(LYNX_ETOOLARGE);
    self->response = gateway_http_response_new("application/json", body, (size_t)body_len);
    if (self->conn)
        gateway_conns_stop(self->owner->conns, self->conn);
    return s_request_queue(self);
}

//  A chunked body went over the limit. Reading the rest would hand the client our time (a
//  64 MiB body took 22 s), and MHD 0.9.75 queues an answer only before the body or after all
//  of it. So over plain HTTP the 413 goes straight onto the socket, with Connection: close and
//  our FIN after it; the connection is suspended (not read any more) and closed when its
//  linger ends, which gives the client time to read the answer rather than a reset. Over TLS
//  the socket carries MHD's session, not our bytes: the connection just closes.
static enum MHD_Result s_request_abort(gateway_request_t *self)
{
    gateway_http_t *owner = self->owner;
    self->state = S_ABORTED;
    free(self->body);
    self->body = NULL;
    self->body_len = self->body_cap = 0;
    const char *client = self->conn ? gateway_conn_client(self->conn) : "?";
    if (owner->tls || !self->conn) {
        s_log_closed(owner, "request body over the limit", client);
        return MHD_NO;
    }
    char body[256];
    int body_len = s_too_large_json(owner, body, sizeof body);
    char text[512];
    int text_len = snprintf(text, sizeof text,
                            "HTTP/1.1 %d Payload Too Large\r\nContent-Type: application/json\r\n"
                            "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
                            lynx_code_http_status(LYNX_ETOOLARGE), body_len, body);
    int fd = gateway_conn_fd(self->conn);
    //  A few hundred bytes on a socket nobody has written to since the headers: they fit in
    //  its buffer, and if the client is gone there is nobody to tell.
    if (send(fd, text, (size_t)text_len, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 ||
        shutdown(fd, SHUT_WR) != 0)
        return MHD_NO;
    s_log_closed(owner, "request body over the limit (413 sent)", client);
    gateway_conns_linger(owner->conns, self->conn, lynx_time_mono_ms());
    MHD_suspend_connection(self->connection);
    self->suspended = true;
    return MHD_YES;
}

//  Give the complete request to the handler; suspend the connection unless it answered at once.
static enum MHD_Result s_request_handle(gateway_request_t *self)
{
    if (self->conn)
        gateway_conns_stop(self->owner->conns, self->conn);
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
        size_t chunk = *upload_data_size;
        *upload_data_size = 0;
        if (self->state == S_ABORTED) //  what MHD had read already; closed once resumed
            return self->suspended ? MHD_YES : MHD_NO;
        if (self->state != S_RECEIVING)
            return MHD_YES;
        //  A chunked body gives no warning: it is refused the moment it passes the limit.
        if (chunk > owner->max_body_bytes - self->body_len)
            return s_request_abort(self);
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
    case S_ABORTED:
        if (!self->suspended)
            return MHD_NO; //  the linger is over: close
        MHD_suspend_connection(connection);
        return MHD_YES;
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
//  A request is freed here, and the next one on the connection (keep-alive) starts its deadline.
static void s_on_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
                           enum MHD_RequestTerminationCode toe)
{
    (void)connection;
    (void)toe;
    gateway_http_t *owner = cls;
    gateway_request_t *self = *con_cls;
    if (self && self->conn)
        gateway_conns_start(owner->conns, self->conn, lynx_time_mono_ms());
    s_request_destroy(&self);
    *con_cls = NULL;
}

//  MHD opens and closes connections: track each for its request deadline. A connection we
//  cannot track (out of memory) still works, with MHD's own timeout only.
static void s_on_connection(void *cls, struct MHD_Connection *connection, void **socket_context,
                            enum MHD_ConnectionNotificationCode toe)
{
    gateway_http_t *self = cls;
    if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        gateway_conn_t *conn = *socket_context;
        if (conn && gateway_conn_user(conn))
            ((gateway_request_t *)gateway_conn_user(conn))->conn = NULL;
        gateway_conns_remove(self->conns, &conn);
        *socket_context = NULL;
        return;
    }
    const union MHD_ConnectionInfo *fd_info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    const union MHD_ConnectionInfo *addr_info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    char client[INET6_ADDRSTRLEN] = "?";
    const struct sockaddr *addr = addr_info ? addr_info->client_addr : NULL;
    if (addr && addr->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)addr)->sin_addr, client, sizeof client);
    else if (addr && addr->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)addr)->sin6_addr, client, sizeof client);
    *socket_context =
        fd_info ? gateway_conns_add(self->conns, fd_info->connect_fd, client, lynx_time_mono_ms())
                : NULL;
}

static void s_log_library(const char *line, unsigned long held)
{
    if (held)
        fprintf(stderr, "gateway: http library message=\"%s\" messages_held_back=%lu\n", line,
                held);
    else
        fprintf(stderr, "gateway: http library message=\"%s\"\n", line);
}

static void s_on_log(void *cls, const char *format, va_list args)
{
    gateway_http_t *self = cls;
    char line[256];
    vsnprintf(line, sizeof line, format, args);
    line[strcspn(line, "\r\n")] = '\0';
    if (self->starting) {
        //  The first line names the cause ("GnuTLS failed to setup x509 certificate/key: ..."),
        //  later ones the consequence ("Failed to initialize TLS support.")
        if (!self->start_error[0])
            snprintf(self->start_error, sizeof self->start_error, "%s", line);
        return;
    }
    //  MHD says something per refused client or failed TLS handshake: an attacker must not be
    //  able to fill the disk through our log.
    unsigned long held = 0;
    if (gateway_log_limit_pass(&self->library_log, lynx_time_mono_ms(),
                               GATEWAY_HTTP_LOG_INTERVAL_MS, GATEWAY_HTTP_LOG_BURST, &held))
        s_log_library(line, held);
}

//  --------------------------------------------------------------------------------------------
//  Server

gateway_http_t *gateway_http_new(const gateway_http_options_t *options,
                                 gateway_http_handler_fn *handler, void *arg, lynx_err_t *err)
{
    assert(options && options->bind_address);
    assert(handler);
    const char *bind_address = options->bind_address;
    uint16_t port = options->port;
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
    if (self) {
        self->request_deadline_ms = options->request_deadline_ms > 0
                                        ? options->request_deadline_ms
                                        : GATEWAY_HTTP_REQUEST_DEADLINE_MS;
        self->conns = gateway_conns_new(self->request_deadline_ms, GATEWAY_HTTP_LINGER_MS);
    }
    if (!self || !self->conns) {
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "bind %s%s%s:%u: out of memory", lbracket,
                     bind_address, rbracket, port);
        gateway_http_destroy(&self);
        return NULL;
    }
    self->handler = handler;
    self->arg = arg;
    self->max_body_bytes = options->max_body_bytes;
    if (gateway_pem_load(options->tls_cert_file, options->tls_key_file, &self->tls_cert,
                         &self->tls_key, err) != 0) {
        gateway_http_destroy(&self);
        return NULL;
    }
    self->tls = self->tls_cert != NULL;
    if (self->tls)
        flags |= MHD_USE_TLS;
    unsigned int max_connections =
        options->max_connections ? options->max_connections : GATEWAY_HTTP_MAX_CONNECTIONS;
    //  TLS options come last: for plain HTTP they are the array's end.
    struct MHD_OptionItem settings[] = {
        {MHD_OPTION_SOCK_ADDR, 0, &addr.any},
        {MHD_OPTION_CONNECTION_TIMEOUT, GATEWAY_HTTP_CONNECTION_TIMEOUT_SECS, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)max_connections, NULL},
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, (intptr_t)options->max_connections_per_client, NULL},
        {self->tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, self->tls_cert},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, self->tls_key},
        {MHD_OPTION_HTTPS_PRIORITIES, 0, "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"},
        {MHD_OPTION_END, 0, NULL},
    };
    self->starting = true;
    //  The logger first, or MHD complains through its own
    self->daemon = MHD_start_daemon(
        flags, port, NULL, NULL, s_on_access, self, MHD_OPTION_EXTERNAL_LOGGER, s_on_log, self,
        MHD_OPTION_NOTIFY_COMPLETED, s_on_completed, self, MHD_OPTION_NOTIFY_CONNECTION,
        s_on_connection, self, MHD_OPTION_ARRAY, settings, MHD_OPTION_END);
    int start_errno = errno;
    self->starting = false;
    const union MHD_DaemonInfo *fd_info =
        self->daemon ? MHD_get_daemon_info(self->daemon, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
    const union MHD_DaemonInfo *port_info =
        self->daemon ? MHD_get_daemon_info(self->daemon, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    if (!fd_info || !port_info) {
        //  GnuTLS refusing the pair: "GnuTLS failed to setup x509 certificate/key: The
        //  certificate and the given key do not match."
        if (self->tls && strstr(self->start_error, "x509 certificate/key")) {
            const char *cause = strrchr(self->start_error, ':');
            lynx_err_set(err, LYNX_EINVALID, NULL, "TLS certificate %s with key %s: %s",
                         options->tls_cert_file, options->tls_key_file,
                         cause ? cause + 1 + strspn(cause + 1, " ") : self->start_error);
            gateway_http_destroy(&self);
            return NULL;
        }
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
    gateway_conns_destroy(&self->conns);
    gateway_pem_free(&self->tls_key);
    gateway_pem_free(&self->tls_cert);
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

bool gateway_http_tls(const gateway_http_t *self)
{
    assert(self);
    return self->tls;
}

//  Close every connection whose deadline has passed. shutdown(2) rather than close: MHD owns
//  the descriptor and, seeing the stream end, closes the connection and completes its request
//  the usual way on its next run. A lingering one (refused mid-body) is suspended: resume it,
//  and the access handler closes it.
static void s_close_overdue(gateway_http_t *self)
{
    int64_t now_ms = lynx_time_mono_ms();
    gateway_conn_t *conn;
    while ((conn = gateway_conns_overdue(self->conns, now_ms))) {
        shutdown(gateway_conn_fd(conn), SHUT_RDWR);
        gateway_request_t *request = gateway_conn_user(conn);
        if (gateway_conn_lingered(conn)) {
            if (request && request->suspended) {
                request->suspended = false;
                self->resumes_pending = true;
                MHD_resume_connection(request->connection);
            }
            continue;
        }
        char why[96];
        snprintf(why, sizeof why, "request not read within the %" PRId64 " ms deadline",
                 self->request_deadline_ms);
        s_log_closed(self, why, gateway_conn_client(conn));
    }
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
        s_close_overdue(self);
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
    long deadline_ms = gateway_conns_timeout_ms(self->conns, lynx_time_mono_ms());
    MHD_UNSIGNED_LONG_LONG timeout_ms;
    if (MHD_get_timeout(self->daemon, &timeout_ms) != MHD_YES)
        return deadline_ms;
    long mhd_ms = timeout_ms > LONG_MAX ? LONG_MAX : (long)timeout_ms;
    return deadline_ms >= 0 && deadline_ms < mhd_ms ? deadline_ms : mhd_ms;
}
