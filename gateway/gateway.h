//  gateway: the lynx-gateway actor. Serves the REST API of lynx-docs over HTTP and turns each
//  call into one REQUEST to the broker, answering when the REPLY arrives. It holds no job
//  state; a silent broker gives 503 after broker_timeout_ms, never a hung client.
#ifndef GATEWAY_H_INCLUDED
#define GATEWAY_H_INCLUDED

#include <czmq.h>

#include "lynx_err.h"

typedef struct {
    const char *bind_address; //  e.g. 127.0.0.1
    uint16_t port;            //  0 picks a free port
    const char *broker_endpoint;
    size_t max_body_bytes;
    int broker_timeout_ms;
    int submit_timeout_ms; //  POST /jobs writes a whole batch: it may take longer
    bool auth_required;    //  false: --auth none, no tokens (loopback only: main.c checks)
    //  What the HTTP server puts up with, and HTTPS: as in gateway_http_options_t.
    unsigned int max_connections;
    unsigned int max_connections_per_client;
    int request_deadline_ms;
    const char *tls_cert_file; //  PEM; with tls_key_file serves HTTPS, neither plain HTTP
    const char *tls_key_file;
} gateway_options_t;

//  Start the gateway actor. NULL with err when the HTTP port cannot be bound, a TLS file
//  cannot be used or the broker endpoint is malformed. *port_out receives the bound port.
zactor_t *gateway_start(const gateway_options_t *options, uint16_t *port_out, lynx_err_t *err);

#endif
