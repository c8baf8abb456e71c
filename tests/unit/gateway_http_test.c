//  gateway_http selftest: a real daemon on 127.0.0.1 port 0, driven the way lynx-gateway drives
//  it. The test owns the loop: it polls gateway_http_fd with the module's timeout and calls
//  gateway_http_run only when the fd is readable or the timeout is due, like a zloop reader plus
//  timer. Clients are plain non-blocking sockets that write raw HTTP/1.1 and read the raw answer.
#include "gateway_http.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_BODY_BYTES (1024 * 1024)
#define MAX_CLIENTS 32
#define MAX_PENDING 32
#define DEADLINE_MS 10000 //  a condition that takes longer is a failure, not a slow machine
#define TURN_MS 10

typedef struct {
    int fd; //  -1 once the test hung up
    char *out;
    size_t out_len;
    size_t out_sent;
    char *in;
    size_t in_len;
    size_t in_cap;
    bool eof;
} client_t;

typedef enum {
    ANSWER_NOW,     //  the handler responds during the call
    ANSWER_LATER,   //  the handler keeps the request; the test responds
    ANSWER_PREVIOUS //  the handler keeps the request and answers the one kept before it
} answer_mode_t;

typedef struct {
    gateway_http_t *http;
    answer_mode_t mode;
    size_t handled; //  handler calls
    gateway_request_t *pending[MAX_PENDING];
    size_t pending_count;
    client_t clients[MAX_CLIENTS];
    size_t client_count;
    bool ipv6; //  clients connect to [::1] instead of 127.0.0.1
} fixture_t;

//  --------------------------------------------------------------------------------------------
//  The handler: it answers with what it saw, so clients can check it

static const char *s_or_none(const char *value)
{
    return value ? value : "(none)";
}

//  Body: "METHOD PATH runs=.. verbose=.. name=.. token=.. body=LEN\n" and the request body.
static void s_answer_echo(gateway_request_t *request)
{
    char summary[512];
    int summary_len =
        snprintf(summary, sizeof summary, "%s %s runs=%s verbose=%s name=%s token=%s body=%zu\n",
                 gateway_request_method(request), gateway_request_path(request),
                 s_or_none(gateway_request_query(request, "runs")),
                 s_or_none(gateway_request_query(request, "verbose")),
                 s_or_none(gateway_request_query(request, "name")),
                 s_or_none(gateway_request_header(request, "x-lynx-token")),
                 gateway_request_body_len(request));
    assert_true(summary_len > 0 && (size_t)summary_len < sizeof summary);
    size_t body_len = gateway_request_body_len(request);
    assert_non_null(gateway_request_body(request));
    assert_int_equal(gateway_request_body(request)[body_len], '\0');
    char *answer = malloc((size_t)summary_len + body_len);
    assert_non_null(answer);
    memcpy(answer, summary, (size_t)summary_len);
    memcpy(answer + summary_len, gateway_request_body(request), body_len);
    gateway_request_respond(request, 200, "text/plain", answer, (size_t)summary_len + body_len);
    free(answer);
}

static void s_handler(gateway_request_t *request, void *arg)
{
    fixture_t *fx = arg;
    fx->handled++;
    if (fx->mode == ANSWER_NOW) {
        s_answer_echo(request);
        return;
    }
    if (fx->mode == ANSWER_PREVIOUS && fx->pending_count > 0)
        s_answer_echo(fx->pending[--fx->pending_count]);
    assert_true(fx->pending_count < MAX_PENDING);
    fx->pending[fx->pending_count++] = request;
}

//  --------------------------------------------------------------------------------------------
//  Clients

static int64_t s_now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

//  Connect a client to the gateway and queue text (len bytes) to be written by the loop.
static client_t *s_client_raw(fixture_t *fx, const char *text, size_t len)
{
    assert_true(fx->client_count < MAX_CLIENTS);
    client_t *client = &fx->clients[fx->client_count++];
    union {
        struct sockaddr any;
        struct sockaddr_in v4;
        struct sockaddr_in6 v6;
    } addr = {.v4 = {.sin_family = AF_INET, .sin_port = htons(gateway_http_port(fx->http))}};
    socklen_t addr_len = sizeof addr.v4;
    inet_pton(AF_INET, "127.0.0.1", &addr.v4.sin_addr);
    if (fx->ipv6) {
        addr.v6 = (struct sockaddr_in6){.sin6_family = AF_INET6,
                                        .sin6_port = htons(gateway_http_port(fx->http))};
        addr_len = sizeof addr.v6;
        inet_pton(AF_INET6, "::1", &addr.v6.sin6_addr);
    }
    client->fd = socket(addr.any.sa_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    assert_true(client->fd >= 0);
    int rc = connect(client->fd, &addr.any, addr_len);
    assert_true(rc == 0 || errno == EINPROGRESS);
    client->out = malloc(len);
    assert_non_null(client->out);
    memcpy(client->out, text, len);
    client->out_len = len;
    return client;
}

//  Queue more bytes on a client (a second request on a keep-alive connection).
static void s_client_append(client_t *client, const char *text, size_t len)
{
    client->out = realloc(client->out, client->out_len + len);
    assert_non_null(client->out);
    memcpy(client->out + client->out_len, text, len);
    client->out_len += len;
}

//  Build "METHOD target HTTP/1.1" with extra header lines and, when body is not NULL, a
//  Content-Length and the body.
static char *s_request_text(const char *method, const char *target, const char *headers,
                            const char *body, size_t body_len, size_t *len)
{
    char head[1024];
    int head_len;
    if (body)
        head_len = snprintf(head, sizeof head,
                            "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Length: %zu\r\n\r\n",
                            method, target, headers, body_len);
    else
        head_len = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n",
                            method, target, headers);
    assert_true(head_len > 0 && (size_t)head_len < sizeof head);
    char *text = malloc((size_t)head_len + body_len);
    assert_non_null(text);
    memcpy(text, head, (size_t)head_len);
    if (body)
        memcpy(text + head_len, body, body_len);
    *len = (size_t)head_len + (body ? body_len : 0);
    return text;
}

static client_t *s_client_send(fixture_t *fx, const char *method, const char *target,
                               const char *headers, const char *body, size_t body_len)
{
    size_t len;
    char *text = s_request_text(method, target, headers, body, body_len, &len);
    client_t *client = s_client_raw(fx, text, len);
    free(text);
    return client;
}

static void s_client_write(client_t *client)
{
    ssize_t sent = send(client->fd, client->out + client->out_sent,
                        client->out_len - client->out_sent, MSG_NOSIGNAL);
    if (sent > 0)
        client->out_sent += (size_t)sent;
    else if (sent < 0 && errno != EAGAIN && errno != EINTR) {
        //  The server answered early and closed: stop sending, the answer is already here
        client->out_sent = client->out_len;
    }
}

static void s_client_read(client_t *client)
{
    while (true) {
        if (client->in_cap - client->in_len < 65536) {
            client->in_cap = client->in_cap * 2 + 65536;
            client->in = realloc(client->in, client->in_cap + 1);
            assert_non_null(client->in);
        }
        ssize_t got =
            recv(client->fd, client->in + client->in_len, client->in_cap - client->in_len, 0);
        if (got > 0) {
            client->in_len += (size_t)got;
            client->in[client->in_len] = '\0';
        } else if (got < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        else {
            client->eof = true; //  closed, or reset after an early answer
            return;
        }
    }
}

//  Hang up without waiting for the answer.
static void s_client_hang_up(client_t *client)
{
    close(client->fd);
    client->fd = -1;
}

//  The i-th response on the connection (0-based), or NULL until it has fully arrived. Sets
//  *status and points *body at its body of *body_len bytes.
static const char *s_client_response(const client_t *client, int index, int *status,
                                     const char **body, size_t *body_len)
{
    const char *at = client->in;
    const char *end = client->in + client->in_len;
    for (int i = 0; at && at < end; i++) {
        const char *head_end = memmem(at, (size_t)(end - at), "\r\n\r\n", 4);
        if (!head_end)
            return NULL;
        const char *length = strcasestr(at, "\r\nContent-Length:");
        assert_true(length && length < head_end);
        size_t content_len = strtoul(length + strlen("\r\nContent-Length:"), NULL, 10);
        const char *content = head_end + 4;
        if ((size_t)(end - content) < content_len)
            return NULL;
        if (i == index) {
            assert_int_equal(sscanf(at, "HTTP/1.1 %d ", status), 1);
            *body = content;
            *body_len = content_len;
            return at;
        }
        at = content + content_len;
    }
    return NULL;
}

static bool s_client_has_response(const client_t *client, int index)
{
    int status;
    const char *body;
    size_t body_len;
    return s_client_response(client, index, &status, &body, &body_len) != NULL;
}

//  Assert the index-th response has this status, Content-Type and body.
static void s_assert_response(const client_t *client, int index, int status,
                              const char *content_type, const char *body, size_t body_len)
{
    int got_status;
    const char *got_body;
    size_t got_len;
    const char *head = s_client_response(client, index, &got_status, &got_body, &got_len);
    assert_non_null(head);
    assert_int_equal(got_status, status);
    char header[256];
    snprintf(header, sizeof header, "\r\nContent-Type: %s\r\n", content_type);
    const char *found = strcasestr(head, header);
    assert_true(found && found < got_body);
    assert_int_equal(got_len, body_len);
    assert_memory_equal(got_body, body, body_len);
}

//  The echo handler's answer for a request without query arguments or token.
static void s_assert_echo(const client_t *client, int index, const char *method, const char *path,
                          const char *body, size_t body_len)
{
    char *expected = malloc(256 + body_len);
    assert_non_null(expected);
    int len = snprintf(expected, 256,
                       "%s %s runs=(none) verbose=(none) name=(none) token=(none) body=%zu\n",
                       method, path, body_len);
    memcpy(expected + len, body, body_len);
    s_assert_response(client, index, 200, "text/plain", expected, (size_t)len + body_len);
    free(expected);
}

//  --------------------------------------------------------------------------------------------
//  The loop

//  One turn of the owner's loop: wait for the gateway or a client, then let each do its work.
static void s_turn(fixture_t *fx)
{
    struct pollfd items[1 + MAX_CLIENTS];
    items[0] = (struct pollfd){.fd = gateway_http_fd(fx->http), .events = POLLIN};
    for (size_t i = 0; i < fx->client_count; i++) {
        client_t *client = &fx->clients[i];
        bool sending = client->out_sent < client->out_len;
        items[1 + i] = (struct pollfd){.fd = client->eof ? -1 : client->fd,
                                       .events = POLLIN | (sending ? POLLOUT : 0)};
    }
    long timeout_ms = gateway_http_timeout_ms(fx->http);
    int wait_ms = timeout_ms >= 0 && timeout_ms < TURN_MS ? (int)timeout_ms : TURN_MS;
    int64_t started_ms = s_now_ms();
    assert_true(poll(items, 1 + fx->client_count, wait_ms) >= 0);
    bool due = timeout_ms >= 0 && s_now_ms() - started_ms >= timeout_ms;
    if ((items[0].revents & POLLIN) || due)
        gateway_http_run(fx->http);
    for (size_t i = 0; i < fx->client_count; i++) {
        if (items[1 + i].revents & POLLOUT)
            s_client_write(&fx->clients[i]);
        if (items[1 + i].revents & (POLLIN | POLLHUP | POLLERR))
            s_client_read(&fx->clients[i]);
    }
}

//  Turn the loop until condition holds; fail after DEADLINE_MS.
#define WAIT_UNTIL(fx, condition)                                                                  \
    do {                                                                                           \
        int64_t deadline_ms_ = s_now_ms() + DEADLINE_MS;                                           \
        while (!(condition)) {                                                                     \
            if (s_now_ms() > deadline_ms_)                                                         \
                fail_msg("timed out waiting for %s", #condition);                                  \
            s_turn(fx);                                                                            \
        }                                                                                          \
    } while (0)

//  A server on address and port with this body limit, the other options at their defaults.
static gateway_http_t *s_http_new(fixture_t *fx, const char *address, uint16_t port,
                                  size_t max_body_bytes, lynx_err_t *err)
{
    gateway_http_options_t options = {
        .bind_address = address, .port = port, .max_body_bytes = max_body_bytes};
    return gateway_http_new(&options, s_handler, fx, err);
}

//  Replace the fixture's server with one started with these options.
static void s_restart(fixture_t *fx, const gateway_http_options_t *options)
{
    gateway_http_destroy(&fx->http);
    lynx_err_t err;
    fx->http = gateway_http_new(options, s_handler, fx, &err);
    if (!fx->http)
        fail_msg("gateway_http_new: %s", err.message);
}

static int s_setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    lynx_err_t err;
    fx->http = s_http_new(fx, "127.0.0.1", 0, MAX_BODY_BYTES, &err);
    if (!fx->http)
        fail_msg("gateway_http_new: %s", err.message);
    *state = fx;
    return 0;
}

static int s_teardown(void **state)
{
    fixture_t *fx = *state;
    gateway_http_destroy(&fx->http);
    assert_null(fx->http);
    for (size_t i = 0; i < fx->client_count; i++) {
        if (fx->clients[i].fd >= 0)
            close(fx->clients[i].fd);
        free(fx->clients[i].out);
        free(fx->clients[i].in);
    }
    free(fx);
    return 0;
}

//  A body of len bytes that is not all the same byte, so a shifted or truncated copy shows.
static char *s_pattern(size_t len)
{
    char *body = malloc(len);
    assert_non_null(body);
    for (size_t i = 0; i < len; i++)
        body[i] = (char)('a' + (i * 7 + i / 251) % 26);
    return body;
}

//  --------------------------------------------------------------------------------------------
//  Tests

static void test_port_zero_binds_a_real_port(void **state)
{
    fixture_t *fx = *state;
    assert_int_not_equal(gateway_http_port(fx->http), 0);
    assert_true(gateway_http_fd(fx->http) >= 0);
    //  Nothing to do and nobody connected: no reason to wake up
    assert_int_equal(gateway_http_timeout_ms(fx->http), -1);
    gateway_http_t *null_http = NULL;
    gateway_http_destroy(&null_http);
}

static void test_bind_failure_names_address_and_cause(void **state)
{
    fixture_t *fx = *state;
    lynx_err_t err;
    lynx_err_clear(&err);
    uint16_t taken = gateway_http_port(fx->http);
    gateway_http_t *second = s_http_new(fx, "127.0.0.1", taken, 1024, &err);
    assert_null(second);
    char expected[128];
    snprintf(expected, sizeof expected, "bind 127.0.0.1:%u: Address already in use", taken);
    assert_string_equal(err.message, expected);

    lynx_err_clear(&err);
    assert_null(s_http_new(fx, "localhost:80", 0, 1024, &err));
    assert_int_equal(err.code, LYNX_EINVALID);
    assert_string_equal(err.message, "bind localhost:80:0: not an IPv4 or IPv6 address");
}

static void test_ipv6_address_is_accepted(void **state)
{
    fixture_t *fx = *state;
    gateway_http_destroy(&fx->http);
    lynx_err_t err;
    fx->http = s_http_new(fx, "::1", 0, MAX_BODY_BYTES, &err);
    if (!fx->http)
        skip(); //  a host without IPv6 loopback
    fx->ipv6 = true;
    client_t *client = s_client_send(fx, "GET", "/v6", "", NULL, 0);
    WAIT_UNTIL(fx, s_client_has_response(client, 0));
    s_assert_echo(client, 0, "GET", "/v6", "", 0);

    uint16_t taken = gateway_http_port(fx->http);
    assert_null(s_http_new(fx, "::1", taken, 1024, &err));
    char expected[128];
    snprintf(expected, sizeof expected, "bind [::1]:%u: Address already in use", taken);
    assert_string_equal(err.message, expected);
}

static void test_get_answered_at_once_sees_query_and_headers(void **state)
{
    fixture_t *fx = *state;
    client_t *client = s_client_send(fx, "GET", "/jobs/b-17?runs=10&verbose&name=basic%20orbit",
                                     "X-Lynx-Token: s3cret\r\n", NULL, 0);
    WAIT_UNTIL(fx, s_client_has_response(client, 0));
    const char *expected = "GET /jobs/b-17 runs=10 verbose= name=basic orbit token=s3cret body=0\n";
    s_assert_response(client, 0, 200, "text/plain", expected, strlen(expected));
    assert_int_equal(fx->handled, 1);

    //  The connection stays open for the next request
    size_t len;
    char *text = s_request_text("GET", "/runners", "", NULL, 0, &len);
    s_client_append(client, text, len);
    free(text);
    WAIT_UNTIL(fx, s_client_has_response(client, 1));
    s_assert_echo(client, 1, "GET", "/runners", "", 0);
    assert_int_equal(fx->handled, 2);
}

static void test_post_bodies_arrive_intact(void **state)
{
    fixture_t *fx = *state;
    const char *json = "{\"name\":\"orbit\",\"runs\":1000}";
    size_t big_len = 100 * 1024;
    char *big = s_pattern(big_len);
    size_t full_len = MAX_BODY_BYTES;
    char *full = s_pattern(full_len);
    client_t *small_client = s_client_send(fx, "POST", "/jobs", "", json, strlen(json));
    client_t *big_client = s_client_send(fx, "PUT", "/blobs/1", "", big, big_len);
    client_t *full_client = s_client_send(fx, "POST", "/blobs", "", full, full_len);
    WAIT_UNTIL(fx, s_client_has_response(small_client, 0) && s_client_has_response(big_client, 0) &&
                       s_client_has_response(full_client, 0));
    s_assert_echo(small_client, 0, "POST", "/jobs", json, strlen(json));
    s_assert_echo(big_client, 0, "PUT", "/blobs/1", big, big_len);
    //  A body of exactly max_body_bytes is within the limit
    s_assert_echo(full_client, 0, "POST", "/blobs", full, full_len);
    free(big);
    free(full);
}

static void test_deferred_answer_reaches_client(void **state)
{
    fixture_t *fx = *state;
    fx->mode = ANSWER_LATER;
    client_t *client = s_client_send(fx, "POST", "/jobs", "", "{}", 2);
    WAIT_UNTIL(fx, fx->pending_count == 1);
    for (int turn = 0; turn < 5; turn++)
        s_turn(fx);
    assert_false(s_client_has_response(client, 0));

    //  Answered from outside the loop: the owner's next turn must not sleep
    s_answer_echo(fx->pending[--fx->pending_count]);
    assert_int_equal(gateway_http_timeout_ms(fx->http), 0);
    WAIT_UNTIL(fx, s_client_has_response(client, 0));
    s_assert_echo(client, 0, "POST", "/jobs", "{}", 2);
    //  Once the loop settles, the idle keep-alive connection only needs its timeout
    WAIT_UNTIL(fx, gateway_http_timeout_ms(fx->http) != 0);
    long timeout_ms = gateway_http_timeout_ms(fx->http);
    assert_true(timeout_ms > 0 && timeout_ms <= 60 * 1000);
}

static void test_deferred_answer_on_keep_alive_connection(void **state)
{
    fixture_t *fx = *state;
    fx->mode = ANSWER_LATER;
    client_t *client = s_client_send(fx, "GET", "/jobs/1", "", NULL, 0);
    WAIT_UNTIL(fx, fx->pending_count == 1);
    s_answer_echo(fx->pending[--fx->pending_count]);
    WAIT_UNTIL(fx, s_client_has_response(client, 0));

    size_t len;
    char *text = s_request_text("DELETE", "/jobs/1", "", NULL, 0, &len);
    s_client_append(client, text, len);
    free(text);
    WAIT_UNTIL(fx, fx->pending_count == 1);
    s_answer_echo(fx->pending[--fx->pending_count]);
    WAIT_UNTIL(fx, s_client_has_response(client, 1));
    s_assert_echo(client, 0, "GET", "/jobs/1", "", 0);
    s_assert_echo(client, 1, "DELETE", "/jobs/1", "", 0);
}

static void test_many_clients_answered_in_reverse_order(void **state)
{
    fixture_t *fx = *state;
    fx->mode = ANSWER_LATER;
    enum { CLIENTS = 24 };
    client_t *clients[CLIENTS];
    char paths[CLIENTS][32];
    for (int i = 0; i < CLIENTS; i++) {
        snprintf(paths[i], sizeof paths[i], "/jobs/%d", i);
        clients[i] = s_client_send(fx, "GET", paths[i], "", NULL, 0);
    }
    WAIT_UNTIL(fx, fx->pending_count == CLIENTS);
    //  The last request kept is answered first, one per loop turn
    while (fx->pending_count > 0) {
        s_answer_echo(fx->pending[--fx->pending_count]);
        s_turn(fx);
    }
    for (int i = 0; i < CLIENTS; i++) {
        WAIT_UNTIL(fx, s_client_has_response(clients[i], 0));
        s_assert_echo(clients[i], 0, "GET", paths[i], "", 0);
    }
}

static void test_handler_may_answer_another_request(void **state)
{
    fixture_t *fx = *state;
    fx->mode = ANSWER_PREVIOUS;
    client_t *first = s_client_send(fx, "GET", "/first", "", NULL, 0);
    WAIT_UNTIL(fx, fx->handled == 1);
    //  The second request's handler answers the first, from inside gateway_http_run
    client_t *second = s_client_send(fx, "GET", "/second", "", NULL, 0);
    WAIT_UNTIL(fx, s_client_has_response(first, 0));
    s_assert_echo(first, 0, "GET", "/first", "", 0);
    assert_false(s_client_has_response(second, 0));
    s_answer_echo(fx->pending[--fx->pending_count]);
    WAIT_UNTIL(fx, s_client_has_response(second, 0));
    s_assert_echo(second, 0, "GET", "/second", "", 0);
}

static const char s_too_large[] =
    "{\"error\":{\"code\":\"payload_too_large\",\"message\":\"request "
    "body exceeds 1048576 bytes\",\"field\":null}}";

static void test_declared_oversized_body_gets_413_while_others_are_served(void **state)
{
    fixture_t *fx = *state;
    size_t huge_len = 2 * MAX_BODY_BYTES;
    char *huge = s_pattern(huge_len);
    client_t *uploader = s_client_send(fx, "POST", "/jobs", "", huge, huge_len);
    client_t *reader = s_client_send(fx, "GET", "/runners", "", NULL, 0);
    WAIT_UNTIL(fx, s_client_has_response(uploader, 0) && s_client_has_response(reader, 0));
    s_assert_response(uploader, 0, 413, "application/json", s_too_large, strlen(s_too_large));
    s_assert_echo(reader, 0, "GET", "/runners", "", 0);
    assert_int_equal(fx->handled, 1);
    //  The refused client is cut off rather than read to the end; the server lives on
    WAIT_UNTIL(fx, uploader->eof);
    client_t *later = s_client_send(fx, "GET", "/later", "", NULL, 0);
    WAIT_UNTIL(fx, s_client_has_response(later, 0));
    s_assert_echo(later, 0, "GET", "/later", "", 0);
    free(huge);
}

static void test_expected_oversized_body_is_refused_before_it_is_sent(void **state)
{
    fixture_t *fx = *state;
    //  Like curl with a big file: headers only, waiting for 100 Continue
    char head[256];
    int len = snprintf(head, sizeof head,
                       "POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\n"
                       "Content-Length: %d\r\n\r\n",
                       2 * MAX_BODY_BYTES);
    client_t *client = s_client_raw(fx, head, (size_t)len);
    WAIT_UNTIL(fx, s_client_has_response(client, 0));
    assert_memory_equal(client->in, "HTTP/1.1 413", 12);
    s_assert_response(client, 0, 413, "application/json", s_too_large, strlen(s_too_large));
    assert_int_equal(fx->handled, 0);
}

static void test_chunked_oversized_body_gets_413_at_the_limit_and_is_closed(void **state)
{
    fixture_t *fx = *state;
    gateway_http_options_t options = {.bind_address = "127.0.0.1", .max_body_bytes = 64 * 1024};
    s_restart(fx, &options);
    //  A body 256 times the limit that never ends: only a server that stops reading at the
    //  limit answers it
    const char *head =
        "POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    size_t chunk_len = 64 * 1024;
    char *chunk = s_pattern(chunk_len);
    char size_line[32];
    int size_len = snprintf(size_line, sizeof size_line, "%zx\r\n", chunk_len);
    size_t framed_len = (size_t)size_len + chunk_len + 2;
    size_t text_len = strlen(head) + 256 * framed_len;
    char *text = malloc(text_len);
    assert_non_null(text);
    memcpy(text, head, strlen(head));
    for (size_t i = 0, at = strlen(head); i < 256; i++, at += framed_len) {
        memcpy(text + at, size_line, (size_t)size_len);
        memcpy(text + at + size_len, chunk, chunk_len);
        memcpy(text + at + size_len + chunk_len, "\r\n", 2);
    }
    client_t *client = s_client_raw(fx, text, text_len);
    free(text);
    WAIT_UNTIL(fx, s_client_has_response(client, 0));
    //  Socket buffers hold a few MiB at most: the rest of the 16 MiB was never taken
    assert_true(client->out_sent < client->out_len / 2);
    const char *too_large = "{\"error\":{\"code\":\"payload_too_large\",\"message\":\"request "
                            "body exceeds 65536 bytes\",\"field\":null}}";
    s_assert_response(client, 0, 413, "application/json", too_large, strlen(too_large));
    assert_non_null(strcasestr(client->in, "\r\nConnection: close\r\n"));
    assert_int_equal(fx->handled, 0);
    //  The server hung up, and serves others
    WAIT_UNTIL(fx, client->eof);
    client_t *later = s_client_send(fx, "GET", "/later", "", NULL, 0);
    WAIT_UNTIL(fx, s_client_has_response(later, 0));
    s_assert_echo(later, 0, "GET", "/later", "", 0);
    free(chunk);
}

//  Turn the loop until client is closed by the server, sending one more header byte each
//  interval_ms; the time it took.
static int64_t s_trickle_until_closed(fixture_t *fx, client_t *client, int interval_ms)
{
    int64_t started_ms = s_now_ms();
    int64_t sent_ms = started_ms;
    while (!client->eof) {
        if (s_now_ms() - started_ms > DEADLINE_MS)
            fail_msg("the trickling client was never cut off");
        if (s_now_ms() - sent_ms >= interval_ms) {
            s_client_append(client, "x", 1);
            sent_ms = s_now_ms();
        }
        s_turn(fx);
    }
    return s_now_ms() - started_ms;
}

static void test_trickled_request_is_closed_at_its_deadline(void **state)
{
    fixture_t *fx = *state;
    gateway_http_options_t options = {
        .bind_address = "127.0.0.1", .max_body_bytes = MAX_BODY_BYTES, .request_deadline_ms = 600};
    s_restart(fx, &options);
    //  Headers that never end, a byte every 50 ms: MHD's own timeout would never fire
    const char *head = "GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Trickle: ";
    client_t *slow = s_client_raw(fx, head, strlen(head));
    //  A client that sends its request at once is served meanwhile
    client_t *fast = s_client_send(fx, "GET", "/fast", "", NULL, 0);
    int64_t took_ms = s_trickle_until_closed(fx, slow, 50);
    assert_true(took_ms >= 600);
    assert_int_equal(slow->in_len, 0);
    assert_true(s_client_has_response(fast, 0));
    s_assert_echo(fast, 0, "GET", "/fast", "", 0);
    assert_int_equal(fx->handled, 1);

    //  The same for a body: the deadline covers headers and body together
    const char *upload = "POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n";
    client_t *uploader = s_client_raw(fx, upload, strlen(upload));
    took_ms = s_trickle_until_closed(fx, uploader, 50);
    assert_true(took_ms >= 600);
    assert_int_equal(uploader->in_len, 0);
    assert_int_equal(fx->handled, 1);
}

static void test_idle_keep_alive_connection_is_closed_at_the_deadline(void **state)
{
    fixture_t *fx = *state;
    gateway_http_options_t options = {
        .bind_address = "127.0.0.1", .max_body_bytes = MAX_BODY_BYTES, .request_deadline_ms = 300};
    s_restart(fx, &options);
    int64_t sent_ms = s_now_ms();
    client_t *client = s_client_send(fx, "GET", "/once", "", NULL, 0);
    WAIT_UNTIL(fx, s_client_has_response(client, 0));
    //  The next request's deadline starts once the answer is out, so the idle connection is
    //  closed one deadline after that: later than one deadline after the request
    WAIT_UNTIL(fx, client->eof);
    assert_true(s_now_ms() - sent_ms >= 300);
    s_assert_echo(client, 0, "GET", "/once", "", 0);
}

static void test_slow_answer_is_not_cut_by_the_deadline(void **state)
{
    fixture_t *fx = *state;
    gateway_http_options_t options = {
        .bind_address = "127.0.0.1", .max_body_bytes = MAX_BODY_BYTES, .request_deadline_ms = 200};
    s_restart(fx, &options);
    fx->mode = ANSWER_LATER;
    client_t *client = s_client_send(fx, "POST", "/jobs", "", "{}", 2);
    WAIT_UNTIL(fx, fx->pending_count == 1);
    //  The request is read: the handler may take longer than the deadline to answer
    int64_t until_ms = s_now_ms() + 3 * 200;
    while (s_now_ms() < until_ms)
        s_turn(fx);
    assert_false(client->eof);
    s_answer_echo(fx->pending[--fx->pending_count]);
    WAIT_UNTIL(fx, s_client_has_response(client, 0));
    s_assert_echo(client, 0, "POST", "/jobs", "{}", 2);
}

//  Write text to a fresh file under /tmp; its path, which the caller unlinks and frees.
static char *s_temp_file(const char *text)
{
    char *path = strdup("/tmp/gateway_http_test_XXXXXX");
    assert_non_null(path);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_tls_files_are_checked_at_start(void **state)
{
    fixture_t *fx = *state;
    char *junk = s_temp_file("this is not a certificate\n");
    char *cert = s_temp_file("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
    char *encrypted = s_temp_file("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n"
                                  "-----END ENCRYPTED PRIVATE KEY-----\n");
    const struct {
        const char *cert, *key, *message;
    } cases[] = {
        {"/nonexistent/cert.pem", junk,
         "TLS certificate /nonexistent/cert.pem: No such file or "
         "directory"},
        {"/tmp", junk, "TLS certificate /tmp: not a regular file"},
        {junk, junk, "TLS certificate %s: not PEM (no '-----BEGIN CERTIFICATE-----' line)"},
        {cert, junk, "TLS key %s: not PEM (no 'PRIVATE KEY-----' line)"},
        {cert, encrypted,
         "TLS key %s: the key is encrypted: give the gateway an unencrypted key "
         "file readable only by its user"},
        {cert, NULL, "TLS needs both a certificate and a key file, got only the certificate"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gateway_http_options_t options = {.bind_address = "127.0.0.1",
                                          .max_body_bytes = 1024,
                                          .tls_cert_file = cases[i].cert,
                                          .tls_key_file = cases[i].key};
        lynx_err_t err;
        lynx_err_clear(&err);
        assert_null(gateway_http_new(&options, s_handler, fx, &err));
        assert_int_equal(err.code, LYNX_EINVALID);
        char expected[512];
        //  The message names the file at fault: the certificate, or else the key
        snprintf(expected, sizeof expected, cases[i].message,
                 strstr(cases[i].message, "TLS key") ? cases[i].key : cases[i].cert);
        assert_string_equal(err.message, expected);
    }
    assert_false(gateway_http_tls(fx->http));
    unlink(junk);
    unlink(cert);
    unlink(encrypted);
    free(junk);
    free(cert);
    free(encrypted);
}

static void test_client_gone_while_pending(void **state)
{
    fixture_t *fx = *state;
    fx->mode = ANSWER_LATER;
    client_t *answered = s_client_send(fx, "GET", "/answered", "", NULL, 0);
    WAIT_UNTIL(fx, fx->pending_count == 1);
    client_t *dropped = s_client_send(fx, "GET", "/dropped", "", NULL, 0);
    WAIT_UNTIL(fx, fx->pending_count == 2);
    s_client_hang_up(answered);
    s_client_hang_up(dropped);
    for (int turn = 0; turn < 5; turn++)
        s_turn(fx);

    //  The request outlives its client: answering it is harmless
    gateway_request_t *request = fx->pending[0];
    assert_string_equal(gateway_request_path(request), "/answered");
    s_answer_echo(request);
    fx->pending[0] = fx->pending[--fx->pending_count];
    client_t *next = s_client_send(fx, "GET", "/next", "", NULL, 0);
    WAIT_UNTIL(fx, fx->pending_count == 2);
    s_answer_echo(fx->pending[--fx->pending_count]);
    WAIT_UNTIL(fx, s_client_has_response(next, 0));
    s_assert_echo(next, 0, "GET", "/next", "", 0);
    //  "/dropped" is never answered: destroying the server frees it
}

static void test_client_gone_while_uploading(void **state)
{
    fixture_t *fx = *state;
    char *half = s_pattern(50 * 1000);
    const char *head = "POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n";
    client_t *quitter = s_client_raw(fx, head, strlen(head));
    s_client_append(quitter, half, 50 * 1000);
    WAIT_UNTIL(fx, quitter->out_sent == quitter->out_len);
    for (int turn = 0; turn < 5; turn++)
        s_turn(fx);
    s_client_hang_up(quitter);
    client_t *next = s_client_send(fx, "GET", "/next", "", NULL, 0);
    WAIT_UNTIL(fx, s_client_has_response(next, 0));
    s_assert_echo(next, 0, "GET", "/next", "", 0);
    assert_int_equal(fx->handled, 1);
    free(half);
}

static void test_destroy_drops_unanswered_requests(void **state)
{
    fixture_t *fx = *state;
    fx->mode = ANSWER_LATER;
    client_t *clients[3];
    for (int i = 0; i < 3; i++)
        clients[i] = s_client_send(fx, "POST", "/jobs", "", "{}", 2);
    WAIT_UNTIL(fx, fx->pending_count == 3);
    //  One answered but not yet sent, two never answered
    s_answer_echo(fx->pending[--fx->pending_count]);
    gateway_http_destroy(&fx->http);
    assert_null(fx->http);
    fx->pending_count = 0;
    for (int i = 0; i < 3; i++) {
        struct pollfd item = {.fd = clients[i]->fd, .events = POLLIN};
        int64_t deadline_ms = s_now_ms() + DEADLINE_MS;
        while (!clients[i]->eof && s_now_ms() < deadline_ms)
            if (poll(&item, 1, TURN_MS) > 0)
                s_client_read(clients[i]);
        assert_true(clients[i]->eof);
        assert_int_equal(clients[i]->in_len, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define TEST(name) cmocka_unit_test_setup_teardown(name, s_setup, s_teardown)
        TEST(test_port_zero_binds_a_real_port),
        TEST(test_bind_failure_names_address_and_cause),
        TEST(test_ipv6_address_is_accepted),
        TEST(test_get_answered_at_once_sees_query_and_headers),
        TEST(test_post_bodies_arrive_intact),
        TEST(test_deferred_answer_reaches_client),
        TEST(test_deferred_answer_on_keep_alive_connection),
        TEST(test_many_clients_answered_in_reverse_order),
        TEST(test_handler_may_answer_another_request),
        TEST(test_declared_oversized_body_gets_413_while_others_are_served),
        TEST(test_expected_oversized_body_is_refused_before_it_is_sent),
        TEST(test_chunked_oversized_body_gets_413_at_the_limit_and_is_closed),
        TEST(test_trickled_request_is_closed_at_its_deadline),
        TEST(test_idle_keep_alive_connection_is_closed_at_the_deadline),
        TEST(test_slow_answer_is_not_cut_by_the_deadline),
        TEST(test_tls_files_are_checked_at_start),
        TEST(test_client_gone_while_pending),
        TEST(test_client_gone_while_uploading),
        TEST(test_destroy_drops_unanswered_requests),
#undef TEST
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
