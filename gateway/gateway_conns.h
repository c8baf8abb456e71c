//  gateway_conns: the HTTP server's open connections and the deadline each one runs against.
//  libmicrohttpd's own timeout restarts with every byte received, so a client that trickles a
//  byte every few seconds holds a connection (and a slot of the connection limit) for ever.
//  Here a request's deadline starts when the connection is accepted, or when the previous
//  request on a keep-alive connection ends, and only stops when the request's headers and
//  body are completely read: a trickle does not move it. Answers being sent (downloads, slow
//  replies) run no deadline. A connection refused in the middle of its body lingers for a
//  short fixed time (so the client can read the refusal) and is then closed.
//
//  Knows nothing of MHD or sockets: gateway_http reports events and closes what
//  gateway_conns_overdue hands back. Each of the two waits (reading, lingering) has one fixed
//  length, so each is a queue in deadline order and every call is O(1).
#ifndef GATEWAY_CONNS_H_INCLUDED
#define GATEWAY_CONNS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _gateway_conns_t gateway_conns_t;
typedef struct _gateway_conn_t gateway_conn_t;

//  Track connections whose requests must be read within request_deadline_ms (0: no
//  deadline) and whose refused requests linger for linger_ms. NULL on out-of-memory.
gateway_conns_t *gateway_conns_new(int64_t request_deadline_ms, int64_t linger_ms);
//  Free the table and every connection still in it; sets *self_p to NULL. NULL-safe.
void gateway_conns_destroy(gateway_conns_t **self_p);

//  A connection was accepted now from client (an address as text, copied, cut to 63
//  characters) on socket fd; its first request's deadline starts. NULL on out-of-memory.
gateway_conn_t *gateway_conns_add(gateway_conns_t *self, int fd, const char *client,
                                  int64_t now_ms);
//  The connection is closed: forget it; sets *conn_p to NULL. NULL-safe.
void gateway_conns_remove(gateway_conns_t *self, gateway_conn_t **conn_p);

//  A request starts waiting to be read (the previous one on this connection ended): its
//  deadline runs from now. Ignored for a connection already handed out by
//  gateway_conns_overdue, which is being closed.
void gateway_conns_start(gateway_conns_t *self, gateway_conn_t *conn, int64_t now_ms);
//  The request is read, or an answer is on its way: no deadline until the next start.
void gateway_conns_stop(gateway_conns_t *self, gateway_conn_t *conn);
//  The request was refused before its body ended: close the connection linger_ms from now,
//  whatever else happens.
void gateway_conns_linger(gateway_conns_t *self, gateway_conn_t *conn, int64_t now_ms);

//  Milliseconds until the earliest deadline (0 when one has passed); -1 when none runs.
long gateway_conns_timeout_ms(const gateway_conns_t *self, int64_t now_ms);
//  A connection whose deadline has passed, taken off its wait so that it is handed out only
//  once; NULL when there is none. The caller closes it; it stays tracked until removed.
gateway_conn_t *gateway_conns_overdue(gateway_conns_t *self, int64_t now_ms);

//  Connections tracked, and how many have a request deadline running.
size_t gateway_conns_size(const gateway_conns_t *self);
size_t gateway_conns_reading(const gateway_conns_t *self);

//  The connection's socket, client address, and whether it was lingering when handed out by
//  gateway_conns_overdue (a refused request) rather than over its request deadline.
int gateway_conn_fd(const gateway_conn_t *conn);
const char *gateway_conn_client(const gateway_conn_t *conn);
bool gateway_conn_lingered(const gateway_conn_t *conn);
//  The caller's pointer for this connection (its current request), NULL until set.
void *gateway_conn_user(const gateway_conn_t *conn);
void gateway_conn_set_user(gateway_conn_t *conn, void *user);

//  Log lines that an attack can repeat (each cut connection, each refused client) go out at
//  most burst per interval; the next one that does says how many were held back.
typedef struct {
    int64_t window_ms;   //  when the current interval began; 0 before the first line
    unsigned int passed; //  lines let through in it
    unsigned long held;  //  lines held back since the last one let through
} gateway_log_limit_t;

//  True when a line may be logged at now_ms; *held_out (may be NULL) gets how many were held
//  back since the last one, for this line to report. False counts this one as held back.
bool gateway_log_limit_pass(gateway_log_limit_t *self, int64_t now_ms, int64_t interval_ms,
                            unsigned int burst, unsigned long *held_out);

#endif
