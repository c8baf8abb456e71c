//  fuzz_http: an HTTP request as libmicrohttpd hands it to the gateway -> gateway_routes_match
//  (route, path segments, content type, JSON body) and gateway_routes_complete (query
//  arguments, dry_run, Idempotency-Key) and the Authorization header (lynx_token), then the
//  error body or the REQUEST args as JSON.
//
//  Input: one byte choosing the method, then the request target ("/path?a=1&b=2"), a newline,
//  header lines ("Name: value") up to an empty line, and the body (any bytes). MHD's parsing
//  of the wire format is not ours: this stands in for it with plain splitting, no unescaping.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gateway_routes.h"
#include "lynx_token.h"
#include "lynx_json.h"

static const char *const s_methods[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "get", ""};
#define S_METHOD_COUNT (sizeof s_methods / sizeof s_methods[0])
#define S_FIELDS_MAX 32

typedef struct {
    const char *name;
    const char *value;
} s_field_t;

//  A request split into its parts; every string points into one NUL-terminated copy.
typedef struct {
    const char *path;
    s_field_t query[S_FIELDS_MAX];
    size_t query_count;
    s_field_t headers[S_FIELDS_MAX];
    size_t header_count;
    const char *body;
    size_t body_len;
} s_request_t;

//  The next line of text (up to '\n', which is replaced by a NUL), or NULL at the end.
static char *s_line(char **at_p, char *end)
{
    char *line = *at_p;
    if (line >= end)
        return NULL;
    char *newline = memchr(line, '\n', (size_t)(end - line));
    *at_p = newline ? newline + 1 : end;
    if (newline)
        *newline = '\0';
    return line;
}

static void s_split_query(s_request_t *request, char *query)
{
    for (char *arg = query; arg && request->query_count < S_FIELDS_MAX;) {
        char *next = strchr(arg, '&');
        if (next)
            *next++ = '\0';
        char *equals = strchr(arg, '=');
        if (equals)
            *equals++ = '\0';
        request->query[request->query_count++] = (s_field_t){arg, equals ? equals : ""};
        arg = next;
    }
}

static void s_parse(s_request_t *request, char *text, size_t size)
{
    char *at = text, *end = text + size;
    char *target = s_line(&at, end);
    char *query = target ? strchr(target, '?') : NULL;
    if (query)
        *query++ = '\0';
    request->path = target ? target : "";
    s_split_query(request, query);
    for (char *line; (line = s_line(&at, end)) && *line;) {
        char *colon = strchr(line, ':');
        if (!colon || request->header_count == S_FIELDS_MAX)
            continue;
        *colon++ = '\0';
        colon += strspn(colon, " \t");
        request->headers[request->header_count++] = (s_field_t){line, colon};
    }
    request->body = at;
    request->body_len = (size_t)(end - at);
}

//  gateway_routes_lookup_fn: query arguments by exact name, headers by any case, as MHD.
static const char *s_query(void *arg, const char *name)
{
    s_request_t *request = (s_request_t *)arg;
    for (size_t i = 0; i < request->query_count; i++)
        if (strcmp(request->query[i].name, name) == 0)
            return request->query[i].value;
    return NULL;
}

static const char *s_header(void *arg, const char *name)
{
    s_request_t *request = (s_request_t *)arg;
    for (size_t i = 0; i < request->header_count; i++)
        if (strcasecmp(request->headers[i].name, name) == 0)
            return request->headers[i].value;
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *method = s_methods[data[0] % S_METHOD_COUNT];
    char *text = malloc(size); //  the rest, NUL-terminated
    if (!text)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    s_request_t request = {0};
    s_parse(&request, text, size - 1);

    //  The Authorization header as the gateway reads it: a Bearer token of the right shape.
    char token[LYNX_TOKEN_TEXT_SIZE + 1], id[LYNX_TOKEN_ID_SIZE];
    if (lynx_token_from_bearer(s_header(&request, "Authorization"), token, sizeof token) == 0) {
        if (strlen(token) >= sizeof token)
            abort();
        if (lynx_token_parse(token, id) && strlen(id) != LYNX_TOKEN_ID_SIZE - 1)
            abort();
        char hash[LYNX_DIGEST_HEX_SIZE];
        lynx_token_hash(token, hash);
    }

    gateway_call_t call = {0};
    lynx_err_t err;
    lynx_err_clear(&err);
    const char *key = NULL;
    if (gateway_routes_match(method, request.path, s_header(&request, "Content-Type"), request.body,
                             request.body_len, &call, &err) == 0 &&
        gateway_routes_complete(&call, method, s_query, s_header, &request, &key, &err) == 0) {
        if (!call.op || !call.args || (key && strcmp(method, "POST") != 0))
            abort();
        free(lynx_json_dump(call.args, 0));
        lynx_value_destroy(&call.args);
    } else {
        if (call.args)
            abort(); //  a refused request keeps nothing
        char allowed[64];
        gateway_routes_allowed(request.path, allowed, sizeof allowed);
        free(gateway_routes_error_json(&err, NULL));
    }
    free(text);
    return 0;
}
