#include "runner_enroll.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lynx_json.h"

#define S_REPLY_MAX (1 << 20)

typedef struct {
    char *data;
    size_t len;
} s_reply_t;

static size_t s_write(char *data, size_t size, size_t count, void *arg)
{
    s_reply_t *reply = (s_reply_t *)arg;
    size_t bytes = size * count;
    if (reply->len + bytes > S_REPLY_MAX)
        return 0;
    char *grown = realloc(reply->data, reply->len + bytes + 1);
    if (!grown)
        return 0;
    memcpy(grown + reply->len, data, bytes);
    reply->data = grown;
    reply->len += bytes;
    reply->data[reply->len] = '\0';
    return bytes;
}

static void s_copy(char *target, size_t size, const lynx_value_t *map, const char *key)
{
    snprintf(target, size, "%s", lynx_value_get_string(map, key, ""));
}

int runner_enroll(const char *url, const char *token, const char *cacert, const char *runner_id,
                  const char *public_key, const char *host, runner_enrollment_t *enrollment,
                  lynx_err_t *err)
{
    if (!token || !*token)
        return lynx_err_set(err, LYNX_EINVALID, "--token",
                            "--token: --enroll needs an API token (role submit or admin)");
    lynx_value_t *request = lynx_value_map();
    lynx_value_set_string(request, "runner_id", runner_id);
    lynx_value_set_string(request, "public_key", public_key);
    lynx_value_set_string(request, "host", host);
    char *body = lynx_json_dump(request, 0);
    lynx_value_destroy(&request);
    char endpoint[2048], auth[256], curl_error[CURL_ERROR_SIZE] = "";
    size_t len = strlen(url);
    while (len > 0 && url[len - 1] == '/')
        len--;
    snprintf(endpoint, sizeof endpoint, "%.*s/runners/enrollments", (int)len, url);
    snprintf(auth, sizeof auth, "Authorization: Bearer %.200s", token);
    CURL *curl = curl_easy_init();
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    headers = curl_slist_append(headers, auth);
    s_reply_t reply = {0};
    int rc = 0;
    if (!curl || !body) {
        rc = lynx_err_set(err, LYNX_EINTERNAL, NULL, "enroll: out of memory");
    } else {
        curl_easy_setopt(curl, CURLOPT_URL, endpoint);
        curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_error);
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 30000L);
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, s_write);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply);
        if (cacert)
            curl_easy_setopt(curl, CURLOPT_CAINFO, cacert);
        CURLcode code = curl_easy_perform(curl);
        long status = 0;
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        lynx_value_t *answer = reply.data ? lynx_json_parse(reply.data, reply.len, NULL) : NULL;
        const lynx_value_t *error = lynx_value_get(answer, "error");
        if (code != CURLE_OK)
            rc = lynx_err_set(err, LYNX_EUNAVAILABLE, "--enroll", "POST %s: %s", endpoint,
                              curl_error[0] ? curl_error : curl_easy_strerror(code));
        else if (status != 200 && status != 201)
            rc = lynx_err_set(err,
                              status == 401 || status == 403 ? LYNX_EUNAUTHORIZED : LYNX_EINVALID,
                              "--enroll", "POST %s: HTTP %ld: %s", endpoint, status,
                              lynx_value_get_string(error, "message", "(no error message)"));
        else if (!lynx_value_get_string(answer, "broker_public_key", NULL))
            rc = lynx_err_set(err, LYNX_EPROTOCOL, "--enroll",
                              "POST %s: the answer names no broker_public_key", endpoint);
        else {
            memset(enrollment, 0, sizeof *enrollment);
            s_copy(enrollment->id, sizeof enrollment->id, answer, "id");
            s_copy(enrollment->status, sizeof enrollment->status, answer, "status");
            s_copy(enrollment->broker_public_key, sizeof enrollment->broker_public_key, answer,
                   "broker_public_key");
        }
        lynx_value_destroy(&answer);
    }
    curl_slist_free_all(headers);
    if (curl)
        curl_easy_cleanup(curl);
    free(reply.data);
    free(body);
    return rc;
}
