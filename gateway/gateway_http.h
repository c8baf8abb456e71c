//  gateway_http: the HTTP server, libmicrohttpd in external epoll mode with suspended
//  connections. The owner polls gateway_http_fd in its own loop and calls gateway_http_run, so
//  one thread serves every client and a handler never has to block: it may answer later.
//  The only module that includes microhttpd.h.
#ifndef GATEWAY_HTTP_H_INCLUDED
#define GATEWAY_HTTP_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lynx_err.h"

typedef struct _gateway_http_t gateway_http_t;
typedef struct _gateway_request_t gateway_request_t;

//  Called once per request whose body has been received within the limit, inside
//  gateway_http_run. The handler must call gateway_request_respond exactly once, during the
//  call or later from the same thread; until then the connection is suspended.
typedef void(gateway_http_handler_fn)(gateway_request_t *request, void *arg);

//  How the server listens and what it puts up with. Zero values take the defaults noted.
typedef struct {
    const char *bind_address; //  IPv4 or IPv6 literal, e.g. 127.0.0.1
    uint16_t port;            //  0 picks a free port
    //  Bodies over this are answered 413 with a JSON error, without calling the handler: a
    //  declared Content-Length before any body is read, a chunked body as soon as it passes
    //  the limit (the connection is then closed, see gateway_http_new).
    size_t max_body_bytes;
    unsigned int max_connections;            //  open at once; 0: 1000
    unsigned int max_connections_per_client; //  open at once from one address; 0: no limit
    //  Time to read a request's headers and body, from the connection's accept or the end of
    //  the previous request on it; the connection is closed when it passes. A client that
    //  trickles bytes does not extend it. Answers being sent are not limited. 0: 30000.
    int request_deadline_ms;
    //  PEM files of the certificate (chain) and private key: both to serve HTTPS, neither for
    //  plain HTTP. Read once by gateway_http_new.
    const char *tls_cert_file;
    const char *tls_key_file;
} gateway_http_options_t;

//  Listen as options say. NULL with err naming the address and the cause when the socket
//  cannot be bound, or naming the file and the cause when a TLS file is missing, unreadable,
//  not PEM, or its key does not match the certificate.
//  A chunked body over the limit is answered 413 with Connection: close at once over plain
//  HTTP (libmicrohttpd 0.9.75 cannot queue an answer in the middle of a body, so the answer is
//  written on the socket directly) and the connection closed a moment later; over HTTPS the
//  connection is closed without an answer.
gateway_http_t *gateway_http_new(const gateway_http_options_t *options,
                                 gateway_http_handler_fn *handler, void *arg, lynx_err_t *err);
//  Whether the server speaks HTTPS.
bool gateway_http_tls(const gateway_http_t *self);
//  Stop listening, drop unanswered requests, free; sets *self_p to NULL. NULL-safe.
void gateway_http_destroy(gateway_http_t **self_p);

//  The port actually bound.
uint16_t gateway_http_port(const gateway_http_t *self);
//  File descriptor to poll for input; call gateway_http_run when it is readable.
int gateway_http_fd(const gateway_http_t *self);
//  Do all pending network work without blocking, including connections resumed by a respond,
//  and close connections whose request deadline has passed.
void gateway_http_run(gateway_http_t *self);
//  Milliseconds until gateway_http_run must be called even without input (MHD's timers and
//  the next request deadline); -1 for no limit.
long gateway_http_timeout_ms(gateway_http_t *self);

//  Request accessors; strings are borrowed until the request is answered.
const char *gateway_request_method(const gateway_request_t *self);
const char *gateway_request_path(const gateway_request_t *self);
//  Query argument or header value; NULL when absent.
const char *gateway_request_query(const gateway_request_t *self, const char *key);
const char *gateway_request_header(const gateway_request_t *self, const char *name);
const char *gateway_request_body(const gateway_request_t *self);
size_t gateway_request_body_len(const gateway_request_t *self);

//  As gateway_request_respond, with extra response headers: a NULL-ended list of name, value
//  pairs (e.g. {"Allow", "GET, POST", NULL}), copied.
void gateway_request_respond_with(gateway_request_t *self, int status, const char *content_type,
                                  const char *body, size_t body_len, const char *const *headers);

//  A streamed answer's source. read copies up to max bytes of the body from position pos into
//  buffer and returns how many; 0 when none are ready yet (the connection waits until
//  gateway_request_resume); -1 to abort (the connection is closed: the client sees a short
//  body). done is called once when the server has finished with the answer (sent, or the
//  client went away); the request is gone by then.
typedef long(gateway_stream_read_fn)(void *arg, uint64_t pos, char *buffer, size_t max);
//  What read returns at the end of a body of unknown size (GATEWAY_STREAM_SIZE_UNKNOWN).
#define GATEWAY_STREAM_END (-2)
//  A size for gateway_request_stream when it is not known in advance (sent chunked).
#define GATEWAY_STREAM_SIZE_UNKNOWN UINT64_MAX
typedef void(gateway_stream_done_fn)(void *arg);

//  Answer with a body of size bytes produced by read as the client takes it, with extra
//  headers as gateway_request_respond_with. Bounded memory whatever the size.
void gateway_request_stream(gateway_request_t *self, int status, const char *content_type,
                            uint64_t size, const char *const *headers, gateway_stream_read_fn *read,
                            gateway_stream_done_fn *done, void *arg);
//  A streamed answer whose read returned 0 has data again. Harmless when it was not waiting.
void gateway_request_resume(gateway_request_t *self);

//  Answer with status and body (copied). Resumes the connection if it was suspended. The
//  request is gone afterwards: do not touch it again.
void gateway_request_respond(gateway_request_t *self, int status, const char *content_type,
                             const char *body, size_t body_len);

#endif
