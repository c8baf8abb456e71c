//  gateway_stream: one file streamed from the broker to an HTTP client (an artifact, a log),
//  through a buffer of at most two chunks whatever the file's size. It asks the broker for the
//  file's size, digest and type first (job.artifact with length 0), answers the headers
//  (Content-Length, ETag: the SHA-256, Accept-Ranges, and 206 with Content-Range for a Range
//  request), then fetches the next chunk while the client reads the last. Errors before the
//  headers are JSON error answers; after them the connection is closed (a short body).
#ifndef GATEWAY_STREAM_H_INCLUDED
#define GATEWAY_STREAM_H_INCLUDED

#include <stdint.h>

#include "gateway_http.h"
#include "lynx_msg.h"
#include "lynx_value.h"

typedef struct gateway_stream_t gateway_stream_t;

//  Who waits for a question's answer: on_answer gets the broker's REPLY or ERROR, on_timeout
//  the error when none came in time; exactly one of them is called, once.
typedef struct {
    void (*on_answer)(void *target, const lynx_msg_t *msg);
    void (*on_timeout)(void *target, const lynx_err_t *err);
    void *target;
} gateway_waiter_t;

//  How a download asks the broker: send op with *args_p (taken) and hand the answer to waiter
//  (copied); 0, or -1 with err when it could not be sent (the waiter is then not called).
typedef int(gateway_ask_fn)(void *arg, const char *op, lynx_value_t **args_p,
                            const gateway_waiter_t *waiter, lynx_err_t *err);

//  Stream the file args names ({job_id, name[, tail]}, taken) to request. Sends the first
//  question at once; a failure is answered on request and the stream is gone. The stream
//  frees itself once the client is done and no answer is awaited.
void gateway_stream_start(gateway_request_t *request, lynx_value_t **args_p, gateway_ask_fn *ask,
                          void *ask_arg);

//  Parse a Range header against size: 1 with [*first, *last] for one satisfiable range, 0 when
//  absent or not a single byte range (the whole file is sent), -1 when unsatisfiable (416).
int gateway_stream_parse_range(const char *header, uint64_t size, uint64_t *first, uint64_t *last);

#endif
