//  lynx-gateway: parse flags and environment, start the gateway actor, print READY, wait for
//  SIGINT/SIGTERM.
#include <arpa/inet.h>
#include <sys/resource.h>

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

//  127.0.0.0/8 or ::1: traffic that never leaves the host.
static bool s_is_loopback(const char *host)
{
    struct in_addr v4;
    struct in6_addr v6;
    if (strcmp(host, "localhost") == 0)
        return true;
    if (inet_pton(AF_INET, host, &v4) == 1)
        return (ntohl(v4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, host, &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

//  Each connection is a descriptor: raise the soft open-file limit to fit max_connections
//  (plus the broker sockets and some spare), as far as the hard limit allows.
static void s_fit_open_files(long max_connections)
{
    struct rlimit limit;
    rlim_t want = (rlim_t)max_connections + 64;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= want)
        return;
    limit.rlim_cur =
        limit.rlim_max == RLIM_INFINITY || limit.rlim_max >= want ? want : limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
    if (limit.rlim_cur < want)
        zsys_warning("gateway: open-file limit %lu is below --max-connections %ld plus 64: "
                     "clients past it are refused",
                     (unsigned long)limit.rlim_cur, max_connections);
}

//  An empty environment variable counts as not set.
static const char *s_nonempty(const char *value)
{
    return value && *value ? value : NULL;
}

int main(int argc, char **argv)
{
    lynx_daemon_tune_memory();
    lynx_option_t options[] = {
        {"--listen", "LYNX_GATEWAY_LISTEN", "127.0.0.1:8080",
         "HTTP(S) address to listen on (port 0 picks a free port)", NULL, false},
        {"--broker", "LYNX_GATEWAY_BROKER", "tcp://127.0.0.1:5556", "broker API endpoint", NULL,
         false},
        {"--max-body-bytes", "LYNX_GATEWAY_MAX_BODY_BYTES", "16777216",
         "largest request body accepted (413 beyond)", NULL, false},
        {"--broker-timeout-ms", "LYNX_GATEWAY_BROKER_TIMEOUT_MS", "5000",
         "answer 503 when the broker has not replied within this time", NULL, false},
        {"--submit-timeout-ms", "LYNX_GATEWAY_SUBMIT_TIMEOUT_MS", "120000",
         "the same for POST /jobs, which writes a whole batch before answering", NULL, false},
        {"--max-connections", "LYNX_GATEWAY_MAX_CONNECTIONS", "1000",
         "open connections at most (more wait in the listen backlog)", NULL, false},
        {"--max-connections-per-client", "LYNX_GATEWAY_MAX_CONNECTIONS_PER_CLIENT", "64",
         "open connections from one address (more are closed at once)", NULL, false},
        {"--request-deadline-secs", "LYNX_GATEWAY_REQUEST_DEADLINE_SECS", "30",
         "time to send a request's headers and body, however slowly they trickle", NULL, false},
        {"--tls-cert", "LYNX_GATEWAY_TLS_CERT", NULL,
         "PEM certificate (chain) file: serve HTTPS, with --tls-key", NULL, false},
        {"--tls-key", "LYNX_GATEWAY_TLS_KEY", NULL,
         "PEM private key of --tls-cert (unencrypted: keep it mode 0600)", NULL, false},
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
    long submit_timeout_ms = 0, max_connections = 0, per_client = 0, deadline_secs = 0;
    if (rc == 0)
        rc = lynx_options_int(&options[4], 10, 3600000, &submit_timeout_ms, &err);
    if (rc == 0)
        rc = lynx_options_int(&options[5], 1, 100000, &max_connections, &err);
    if (rc == 0)
        rc = lynx_options_int(&options[6], 1, 100000, &per_client, &err);
    if (rc == 0)
        rc = lynx_options_int(&options[7], 1, 3600, &deadline_secs, &err);
    const char *tls_cert = s_nonempty(options[8].value);
    const char *tls_key = s_nonempty(options[9].value);
    if (rc == 0 && !tls_cert != !tls_key)
        rc = lynx_err_set(&err, LYNX_EINVALID, tls_cert ? "--tls-key" : "--tls-cert",
                          "%s: HTTPS needs --tls-cert and --tls-key together",
                          tls_cert ? "--tls-key" : "--tls-cert");
    const char *auth = options[10].value;
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
    s_fit_open_files(max_connections);
    gateway_options_t gateway_options = {
        .bind_address = host,
        .port = (uint16_t)port,
        .broker_endpoint = options[1].value,
        .max_body_bytes = (size_t)max_body,
        .broker_timeout_ms = (int)timeout_ms,
        .submit_timeout_ms = (int)submit_timeout_ms,
        .auth_required = auth_required,
        .max_connections = (unsigned int)max_connections,
        .max_connections_per_client = (unsigned int)per_client,
        .request_deadline_ms = (int)deadline_secs * 1000,
        .tls_cert_file = tls_cert,
        .tls_key_file = tls_key,
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
    if (!tls_cert && !s_is_loopback(host))
        zsys_warning("gateway: WARNING: plain HTTP on %s, which is not a loopback address: "
                     "requests and answers (batch configs, results, artifacts) cross the network "
                     "unencrypted and can be read or changed on the way; serve HTTPS with "
                     "--tls-cert and --tls-key",
                     options[0].value);
    //  An IPv6 host is bracketed in a URL
    bool v6 = strchr(host, ':') != NULL;
    printf("READY url=%s://%s%s%s:%u\n", tls_cert ? "https" : "http", v6 ? "[" : "", host,
           v6 ? "]" : "", bound_port);
    fflush(stdout);
    while (!zsys_interrupted) {
        char *message = zstr_recv(gateway);
        zstr_free(&message);
    }
    zactor_destroy(&gateway);
    return 0;
}
