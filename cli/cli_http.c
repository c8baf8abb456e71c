#include "cli_http.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/random.h>
#include <string.h>

#include <curl/curl.h>

#include "lynx_json.h"

//  A gateway that accepts the connection answers within its own --submit-timeout-ms (120 s by
//  default, POST /jobs writes the whole batch); wait a little longer than that.
#define CLI_HTTP_TIMEOUT_MS 150000L
//  A download that moves no byte for this long fails.
#define CLI_HTTP_STALL_SECS 60
#define CLI_HTTP_CONNECT_TIMEOUT_MS 5000L

struct _cli_http_t {
    CURL *curl;
    char *base_url;
    char *cacert; //  CA file for an https:// gateway, or NULL for the system's
    char curl_error[CURL_ERROR_SIZE];
    //  "Idempotency-Key: ..." sent with every POST of this invocation: LYNX_IDEMPOTENCY_KEY, or
    //  a random one. A script that runs the same command again after a 503 sets the variable
    //  to get the first answer rather than a second batch.
    char key_header[192];
    char auth_header[128]; //  "Authorization: Bearer ..." from LYNX_TOKEN, or ""
};

typedef struct {
    char *data;
    size_t len;
    size_t cap;
    int oom;
} s_buffer_t;

//  Where an answer's body goes: a 2xx body to out when downloading, anything else to buf.
typedef struct {
    s_buffer_t buf;
    FILE *out;
    CURL *curl;
    int out_failed; //  writing to out failed
} s_sink_t;

static size_t s_buffer_write(s_buffer_t *buf, const char *ptr, size_t n)
{
    if (buf->len + n + 1 > buf->cap) {
        size_t cap = buf->cap ? buf->cap : 4096;
        while (cap < buf->len + n + 1)
            cap *= 2;
        char *data = realloc(buf->data, cap);
        if (!data) {
            buf->oom = 1;
            return 0; //  makes curl fail the transfer with CURLE_WRITE_ERROR
        }
        buf->data = data;
        buf->cap = cap;
    }
    memcpy(buf->data + buf->len, ptr, n);
    buf->len += n;
    buf->data[buf->len] = '\0';
    return n;
}

static size_t s_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    s_sink_t *sink = userdata;
    size_t n = size * nmemb;
    long status = 0;
    if (sink->out && curl_easy_getinfo(sink->curl, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK &&
        status >= 200 && status < 300) {
        if (fwrite(ptr, 1, n, sink->out) == n)
            return n;
        sink->out_failed = 1;
        return 0;
    }
    return s_buffer_write(&sink->buf, ptr, n);
}

int cli_http_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

void cli_http_global_cleanup(void)
{
    curl_global_cleanup();
}

cli_http_t *cli_http_new(const char *base_url, const char *cacert, lynx_err_t *err)
{
    //  Checked here, once: curl would only say "error setting certificate file" per request
    FILE *probe = cacert ? fopen(cacert, "r") : NULL;
    if (cacert && !probe) {
        lynx_err_set(err, LYNX_EINVALID, "--cacert", "--cacert %s: %s", cacert, strerror(errno));
        return NULL;
    }
    if (probe)
        fclose(probe);
    cli_http_t *self = calloc(1, sizeof *self);
    if (!self) {
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "http client: out of memory");
        return NULL;
    }
    self->base_url = strdup(base_url);
    self->cacert = cacert ? strdup(cacert) : NULL;
    self->curl = curl_easy_init();
    if (!self->base_url || !self->curl || (cacert && !self->cacert)) {
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "http client: cannot initialise libcurl");
        cli_http_destroy(&self);
        return NULL;
    }
    size_t len = strlen(self->base_url);
    while (len > 0 && self->base_url[len - 1] == '/')
        self->base_url[--len] = '\0';
    const char *token = getenv("LYNX_TOKEN");
    if (token && *token)
        snprintf(self->auth_header, sizeof self->auth_header, "Authorization: Bearer %.100s",
                 token);
    const char *key = getenv("LYNX_IDEMPOTENCY_KEY");
    unsigned char random[16] = {0};
    if (key && *key)
        snprintf(self->key_header, sizeof self->key_header, "Idempotency-Key: %.128s", key);
    else if (getrandom(random, sizeof random, 0) == (ssize_t)sizeof random) {
        int used = snprintf(self->key_header, sizeof self->key_header, "Idempotency-Key: lynx-");
        for (size_t i = 0; i < sizeof random; i++)
            used += snprintf(self->key_header + used, sizeof self->key_header - (size_t)used,
                             "%02x", random[i]);
    }
    return self;
}

void cli_http_destroy(cli_http_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cli_http_t *self = *self_p;
    if (self->curl)
        curl_easy_cleanup(self->curl);
    free(self->base_url);
    free(self->cacert);
    free(self);
    *self_p = NULL;
}

const char *cli_http_url(cli_http_t *self)
{
    return self->base_url;
}

//  What to try when a connection failed in a way that usually means HTTPS trouble; "" if none.
static const char *s_hint(const cli_http_t *self, CURLcode rc)
{
    bool https = strncmp(self->base_url, "https://", 8) == 0;
    if (https && rc == CURLE_PEER_FAILED_VERIFICATION)
        return self->cacert ? " (the gateway's certificate is not signed by a CA in --cacert, or "
                              "does not name this host)"
                            : " (the gateway's certificate is not trusted here: give its CA "
                              "certificate with --cacert FILE or LYNX_CACERT)";
    if (!https && (rc == CURLE_GOT_NOTHING || rc == CURLE_RECV_ERROR))
        return " (if the gateway serves HTTPS, use an https:// URL)";
    if (https && (rc == CURLE_SSL_CONNECT_ERROR || rc == CURLE_RECV_ERROR))
        return " (if the gateway serves plain HTTP, use an http:// URL)";
    return "";
}

//  One request; out, when not NULL, takes a 2xx body (a download: no overall time limit, but
//  a transfer stalled for CLI_HTTP_STALL_SECS fails).
static int s_perform(cli_http_t *self, const char *method, const char *path, const char *json_body,
                     FILE *out, cli_http_reply_t *reply, lynx_err_t *err)
{
    memset(reply, 0, sizeof *reply);
    size_t url_len = strlen(self->base_url) + strlen(path) + 1;
    char *url = malloc(url_len);
    if (!url)
        return lynx_err_set(err, LYNX_EINTERNAL, NULL, "%s %s: out of memory", method, path);
    snprintf(url, url_len, "%s%s", self->base_url, path);

    CURL *curl = self->curl;
    curl_easy_reset(curl);
    s_sink_t sink = {.out = out, .curl = curl};
    s_buffer_t *buf_p = &sink.buf;
    struct curl_slist *headers = NULL;
    self->curl_error[0] = '\0';
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, self->curl_error);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_NOPROXY, "*"); //  the gateway is on our network
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, CLI_HTTP_CONNECT_TIMEOUT_MS);
    //  curl's defaults, said out loud: an HTTPS gateway proves who it is
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
    if (self->cacert)
        curl_easy_setopt(curl, CURLOPT_CAINFO, self->cacert);
    if (out) {
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, (long)CLI_HTTP_STALL_SECS);
    } else
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, CLI_HTTP_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, s_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    if (self->auth_header[0])
        headers = curl_slist_append(headers, self->auth_header);
    if (strcmp(method, "POST") == 0) {
        headers = curl_slist_append(headers, "Content-Type: application/json");
        if (self->key_header[0])
            headers = curl_slist_append(headers, self->key_header);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, json_body ? json_body : "");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(json_body ? strlen(json_body) : 0));
    }
    if (headers)
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    CURLcode rc = curl_easy_perform(curl);
    curl_slist_free_all(headers);
    if (rc != CURLE_OK) {
        const char *reason = self->curl_error[0] ? self->curl_error : curl_easy_strerror(rc);
        if (sink.out_failed)
            lynx_err_set(err, LYNX_EINTERNAL, NULL, "%s %s: cannot write the file: %s", method, url,
                         strerror(errno));
        else if (buf_p->oom)
            lynx_err_set(err, LYNX_EINTERNAL, NULL, "%s %s: out of memory", method, url);
        else
            lynx_err_set(err, LYNX_EUNAVAILABLE, NULL, "%s %s: %s%s", method, url, reason,
                         s_hint(self, rc));
        free(url);
        free(buf_p->data);
        return -1;
    }
    free(url);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply->status);
    reply->body = buf_p->data ? buf_p->data : strdup("");
    reply->body_len = buf_p->len;
    if (buf_p->len > 0)
        reply->json = lynx_json_parse(reply->body, reply->body_len, NULL);
    return 0;
}

int cli_http_request(cli_http_t *self, const char *method, const char *path, const char *json_body,
                     cli_http_reply_t *reply, lynx_err_t *err)
{
    return s_perform(self, method, path, json_body, NULL, reply, err);
}

int cli_http_download(cli_http_t *self, const char *path, FILE *out, cli_http_reply_t *reply,
                      lynx_err_t *err)
{
    return s_perform(self, "GET", path, NULL, out, reply, err);
}

void cli_http_reply_clear(cli_http_reply_t *reply)
{
    if (!reply)
        return;
    free(reply->body);
    lynx_value_destroy(&reply->json);
    memset(reply, 0, sizeof *reply);
}

char *cli_http_escape(cli_http_t *self, const char *text)
{
    char *escaped = curl_easy_escape(self->curl, text, 0);
    if (!escaped)
        return NULL;
    char *copy = strdup(escaped); //  callers free with free(), not curl_free()
    curl_free(escaped);
    return copy;
}
