//  gateway_http_internal: what gateway_http.c (the server, the request lifecycle) and
//  gateway_http_request.c (a request's accessors and its answer) share. Only those two
//  include it; everyone else uses gateway_http.h.
#ifndef GATEWAY_HTTP_INTERNAL_H_INCLUDED
#define GATEWAY_HTTP_INTERNAL_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#include <microhttpd.h>

#include "gateway_conns.h"
#include "gateway_http.h"

typedef enum { S_RECEIVING, S_REFUSED, S_ABORTED, S_WAITING, S_ANSWERED, S_DROPPED } s_state_t;

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
    gateway_conns_t *conns;  //  every open connection, with its request deadline
    int64_t request_deadline_ms;
    bool tls;
    char *tls_cert; //  PEM text, kept while MHD runs
    char *tls_key;
    gateway_log_limit_t cut_log;     //  connections we closed
    gateway_log_limit_t library_log; //  MHD's own messages, which repeat per connection
};

struct _gateway_request_t {
    gateway_http_t *owner;
    struct MHD_Connection *connection;
    gateway_conn_t *conn;           //  its connection's tracking; NULL if that failed (OOM)
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

//  What MHD's content reader and free callbacks get: the request, until it completes.
typedef struct {
    gateway_request_t *request;
    gateway_stream_read_fn *read;
    gateway_stream_done_fn *done;
    void *arg;
} s_stream_t;

//  A response of body (copied) with content_type, or NULL (out of memory).
struct MHD_Response *gateway_http_response_new(const char *content_type, const char *body,
                                               size_t body_len);

#endif
