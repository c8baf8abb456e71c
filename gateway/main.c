//  lynx-gateway: parse flags and environment, start the gateway actor, print READY, wait for
//  SIGINT/SIGTERM.
#include "lynx_daemon.h"
#include "gateway.h"
#include "lynx_options.h"

extern char **environ;

//  Split "host:port" (IPv4 or a name resolving like 127.0.0.1). -1 with err when malformed.
static int s_parse_listen(const char *listen, char *host, size_t host_size, long *port,
                          lynx_err_t *err)
{
    const char *colon = strrchr(listen, ':');
    char *end = NULL;
    if (colon)
        *port = strtol(colon + 1, &end, 10);
    if (!colon || colon == listen || (size_t)(colon - listen) >= host_size || !end || *end ||
        end == colon + 1 || *port < 0 || *port > 65535)
        return lynx_err_set(err, LYNX_EINVALID, "--listen",
                            "--listen: expected HOST:PORT such as 127.0.0.1:8080, got '%s'",
                            listen);
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    return 0;
}

static bool s_is_loopback(const char *host)
{
    return strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
           strcmp(host, "::1") == 0;
}

int main(int argc, char **argv)
{
    lynx_daemon_tune_memory();
    lynx_option_t options[] = {
        {"--listen", "LYNX_GATEWAY_LISTEN", "127.0.0.1:8080",
         "HTTP address to listen on (port 0 picks a free port)", NULL, false},
        {"--broker", "LYNX_GATEWAY_BROKER", "tcp://127.0.0.1:5556", "broker API endpoint", NULL,
         false},
        {"--max-body-bytes", "LYNX_GATEWAY_MAX_BODY_BYTES", "16777216",
         "largest request body accepted (413 beyond)", NULL, false},
        {"--broker-timeout-ms", "LYNX_GATEWAY_BROKER_TIMEOUT_MS", "5000",
         "answer 503 when the broker has not replied within this time", NULL, false},
        {"--submit-timeout-ms", "LYNX_GATEWAY_SUBMIT_TIMEOUT_MS", "120000",
         "the same for POST /jobs, which writes a whole batch before answering", NULL, false},
        {"--auth", "LYNX_GATEWAY_AUTH", "token",
         "token: every route but /healthz needs a Bearer token (lynx-broker token create); "
         "none: no tokens, loopback only",
         NULL, false},
    };
    size_t count = sizeof options / sizeof options[0];
    lynx_err_t err;
    lynx_err_clear(&err);
    int rc = lynx_options_parse(options, count, argc, argv, environ, "lynx-gateway",
                                "The Lynx REST gateway in front of lynx-broker.", &err);
    if (rc == 1)
        return 0;
    char host[256];
    long port = 0, max_body = 0, timeout_ms = 0;
    if (rc == 0)
        rc = s_parse_listen(options[0].value, host, sizeof host, &port, &err);
    if (rc == 0)
        rc = lynx_options_int(&options[2], 1, 1L << 32, &max_body, &err);
    if (rc == 0)
        rc = lynx_options_int(&options[3], 10, 600000, &timeout_ms, &err);
    long submit_timeout_ms = 0;
    if (rc == 0)
        rc = lynx_options_int(&options[4], 10, 3600000, &submit_timeout_ms, &err);
    const char *auth = options[5].value;
    if (rc == 0 && strcmp(auth, "token") != 0 && strcmp(auth, "none") != 0)
        rc = lynx_err_set(&err, LYNX_EINVALID, "--auth", "--auth: must be token or none, got '%s'",
                          auth);
    bool auth_required = strcmp(auth, "token") == 0;
    if (rc == 0 && !auth_required && !s_is_loopback(host))
        rc = lynx_err_set(&err, LYNX_EINVALID, "--auth",
                          "--auth none serves anyone who reaches the port: it listens on loopback "
                          "only (127.0.0.1, localhost), not '%s'",
                          host);
    if (rc) {
        fprintf(stderr, "lynx-gateway: %s\n", err.message);
        return 2;
    }
    zsys_init();
    zsys_set_logstream(stderr); //  stdout carries only machine-readable lines (READY)
    zsys_set_logident("lynx-gateway");
    gateway_options_t gateway_options = {
        .bind_address = host,
        .port = (uint16_t)port,
        .broker_endpoint = options[1].value,
        .max_body_bytes = (size_t)max_body,
        .broker_timeout_ms = (int)timeout_ms,
        .submit_timeout_ms = (int)submit_timeout_ms,
        .auth_required = auth_required,
    };
    uint16_t bound_port = 0;
    zactor_t *gateway = gateway_start(&gateway_options, &bound_port, &err);
    if (!gateway) {
        fprintf(stderr, "lynx-gateway: %s\n", err.message);
        return 1;
    }
    if (!auth_required)
        zsys_warning("gateway: --auth none: no tokens; anyone on this host may submit, cancel "
                     "and drain (listening on %s only)",
                     host);
    printf("READY url=http://%s:%u\n", host, bound_port);
    fflush(stdout);
    while (!zsys_interrupted) {
        char *message = zstr_recv(gateway);
        zstr_free(&message);
    }
    zactor_destroy(&gateway);
    return 0;
}
