#include "gateway_routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lynx_json.h"

//  How a route turns a request into args.
typedef enum {
    ARGS_NONE,    //  {}
    ARGS_PATH_ID, //  {<id_key>: the {id} path segment}
    ARGS_BODY,    //  the JSON body, which must be an object
} s_args_kind_t;

//  Query arguments list endpoints accept; they reach the broker as string args.
static const char *const s_list_query[] = {"status", "cursor", "limit", NULL};
static const char *const s_telemetry_query[] = {"format", "variables", NULL};
static const char *const s_log_query[] = {"tail", NULL};
static const char *const s_status_query[] = {"status", NULL};

//  Who may call a route: GETs need a read token, submitting and cancelling (one's own batches:
//  the broker checks whose) a submit token, running the grid an admin token.
#define NONE LYNX_ROLE_NONE
#define READ LYNX_ROLE_READ
#define SUBMIT LYNX_ROLE_SUBMIT
#define ADMIN LYNX_ROLE_ADMIN

static const struct {
    const char *method;
    const char *pattern; //  "{id}" matches one non-empty segment
    const char *op;
    int success_status;
    s_args_kind_t args;
    const char *id_key;
    const char *const *query; //  NULL-ended query argument names, or NULL
    bool stream;              //  a file streamed from the broker
    lynx_role_t role;         //  the least a token must have
} s_routes[] = {
    {"GET", "/healthz", "health", 200, ARGS_NONE, NULL, NULL, false, NONE},
    {"POST", "/jobs", "batch.submit", 201, ARGS_BODY, NULL, NULL, false, SUBMIT},
    {"GET", "/batches", "batch.list", 200, ARGS_NONE, NULL, s_list_query, false, READ},
    {"GET", "/batches/{id}", "batch.get", 200, ARGS_PATH_ID, "batch_id", NULL, false, READ},
    {"GET", "/batches/{id}/results", "batch.results", 200, ARGS_PATH_ID, "batch_id", NULL, false,
     READ},
    {"GET", "/batches/{id}/jobs", "batch.jobs", 200, ARGS_PATH_ID, "batch_id", s_list_query, false,
     READ},
    {"POST", "/batches/{id}/cancel", "batch.cancel", 200, ARGS_PATH_ID, "batch_id", NULL, false,
     SUBMIT},
    {"GET", "/jobs/{id}", "job.get", 200, ARGS_PATH_ID, "job_id", NULL, false, READ},
    {"GET", "/jobs/{id}/results", "job.results", 200, ARGS_PATH_ID, "job_id", NULL, false, READ},
    {"POST", "/jobs/{id}/cancel", "job.cancel", 200, ARGS_PATH_ID, "job_id", NULL, false, SUBMIT},
    {"GET", "/jobs/{id}/telemetry", "job.telemetry", 200, ARGS_PATH_ID, "job_id", s_telemetry_query,
     false, READ},
    {"GET", "/jobs/{id}/artifacts", "job.artifacts", 200, ARGS_PATH_ID, "job_id", NULL, false,
     READ},
    //  {name}: the rest of the path, slashes included (plots/orbit.png).
    {"GET", "/jobs/{id}/artifacts/{name}", "job.artifact", 200, ARGS_PATH_ID, "job_id", NULL, true,
     READ},
    {"GET", "/batches/{id}/artifacts/{name}", "batch.artifact_index", 200, ARGS_PATH_ID, "batch_id",
     NULL, true, READ},
    {"GET", "/jobs/{id}/logs/stdout", "job.artifact", 200, ARGS_PATH_ID, "job_id", s_log_query,
     true, READ},
    {"GET", "/jobs/{id}/logs/stderr", "job.artifact", 200, ARGS_PATH_ID, "job_id", s_log_query,
     true, READ},
    //  Before /runners/{id}, which would take "enrollments" for a runner id.
    {"POST", "/runners/enrollments", "enrollment.create", 201, ARGS_BODY, NULL, NULL, false,
     SUBMIT},
    {"GET", "/runners/enrollments", "enrollment.list", 200, ARGS_NONE, NULL, s_status_query, false,
     ADMIN},
    {"POST", "/runners/enrollments/{id}/approve", "enrollment.approve", 200, ARGS_PATH_ID,
     "enrollment_id", NULL, false, ADMIN},
    {"POST", "/runners/enrollments/{id}/reject", "enrollment.reject", 200, ARGS_PATH_ID,
     "enrollment_id", NULL, false, ADMIN},
    {"GET", "/runners", "runner.list", 200, ARGS_NONE, NULL, NULL, false, READ},
    {"GET", "/runners/{id}", "runner.get", 200, ARGS_PATH_ID, "runner_id", NULL, false, READ},
    {"POST", "/runners/{id}/drain", "runner.drain", 200, ARGS_PATH_ID, "runner_id", NULL, false,
     ADMIN},
    {"POST", "/runners/{id}/resume", "runner.resume", 200, ARGS_PATH_ID, "runner_id", NULL, false,
     ADMIN},
    {"DELETE", "/runners/{id}/key", "runner.revoke_key", 200, ARGS_PATH_ID, "runner_id", NULL,
     false, ADMIN},
};

#undef NONE
#undef READ
#undef SUBMIT
#undef ADMIN

//  Match path against pattern; on success copy the {id} segment (if any) into id and the
//  {name} rest (if any) into name.
static bool s_path_matches(const char *pattern, const char *path, char *id, size_t id_size,
                           char *name, size_t name_size)
{
    while (*pattern && *path) {
        if (strcmp(pattern, "{name}") == 0) {
            size_t len = strlen(path);
            if (len == 0 || len >= name_size)
                return false;
            memcpy(name, path, len + 1);
            return true;
        }
        if (strncmp(pattern, "{id}", 4) == 0) {
            size_t len = strcspn(path, "/");
            if (len == 0 || len >= id_size)
                return false;
            memcpy(id, path, len);
            id[len] = '\0';
            pattern += 4;
            path += len;
        } else if (*pattern++ != *path++)
            return false;
    }
    //  A trailing slash is forgiven: /batches/x/ is /batches/x.
    return *pattern == '\0' && (*path == '\0' || strcmp(path, "/") == 0);
}

static bool s_is_json(const char *content_type)
{
    if (!content_type)
        return false;
    size_t len = strcspn(content_type, ";");
    while (len > 0 && content_type[len - 1] == ' ')
        len--;
    return len == strlen("application/json") &&
           strncasecmp(content_type, "application/json", len) == 0;
}

int gateway_routes_match(const char *method, const char *path, const char *content_type,
                         const char *body, size_t body_len, gateway_call_t *call, lynx_err_t *err)
{
    char id[256], name[2048];
    bool path_known = false;
    for (size_t i = 0; i < sizeof s_routes / sizeof s_routes[0]; i++) {
        name[0] = '\0';
        if (!s_path_matches(s_routes[i].pattern, path, id, sizeof id, name, sizeof name))
            continue;
        path_known = true;
        if (strcmp(s_routes[i].method, method) != 0)
            continue;
        call->op = s_routes[i].op;
        call->success_status = s_routes[i].success_status;
        call->query = s_routes[i].query;
        call->stream = s_routes[i].stream;
        call->role = s_routes[i].role;
        if (s_routes[i].args == ARGS_BODY) {
            if (!s_is_json(content_type))
                return lynx_err_set(err, LYNX_EMEDIA, NULL,
                                    "content type must be application/json, got '%.64s'",
                                    content_type ? content_type : "");
            call->args = lynx_json_parse(body, body_len, err);
            if (!call->args) {
                char reason[LYNX_ERR_MESSAGE_MAX];
                snprintf(reason, sizeof reason, "%s", err ? err->message : "");
                return lynx_err_set(err, LYNX_EINVALID, NULL, "invalid JSON body: %s", reason);
            }
            if (lynx_value_type(call->args) != LYNX_VALUE_MAP) {
                lynx_value_destroy(&call->args);
                return lynx_err_set(err, LYNX_EINVALID, NULL, "request body must be a JSON object");
            }
        } else {
            call->args = lynx_value_map();
            if (s_routes[i].args == ARGS_PATH_ID)
                lynx_value_set_string(call->args, s_routes[i].id_key, id);
            //  A log is its job's stdout.log or stderr.log artifact.
            const char *log = strstr(s_routes[i].pattern, "/logs/");
            if (log)
                snprintf(name, sizeof name, "%s.log", log + strlen("/logs/"));
            if (name[0])
                lynx_value_set_string(call->args, "name", name);
        }
        return 0;
    }
    if (path_known)
        return lynx_err_set(err, LYNX_EMETHOD, NULL, "method %s not allowed on %s", method, path);
    return lynx_err_set(err, LYNX_ENOTFOUND, NULL, "no route for %s %s", method, path);
}

int gateway_routes_complete(gateway_call_t *call, const char *method,
                            gateway_routes_lookup_fn *query, gateway_routes_lookup_fn *header,
                            void *request, const char **idempotency_key_p, lynx_err_t *err)
{
    *idempotency_key_p = NULL;
    for (size_t i = 0; call->query && call->query[i]; i++) {
        const char *value = query(request, call->query[i]);
        if (value)
            lynx_value_set_string(call->args, call->query[i], value);
    }
    //  POST /jobs?dry_run=true validates and previews without creating anything.
    bool submit = strcmp(call->op, "batch.submit") == 0;
    const char *dry_run = submit ? query(request, "dry_run") : NULL;
    if (submit)
        lynx_value_remove(call->args, "dry_run"); //  only the query string asks for a dry run
    if (dry_run) {
        if (strcmp(dry_run, "true") != 0 && strcmp(dry_run, "false") != 0) {
            lynx_value_destroy(&call->args);
            return lynx_err_set(err, LYNX_EINVALID, "dry_run",
                                "dry_run: must be true or false, got '%.32s'", dry_run);
        }
        lynx_value_set_bool(call->args, "dry_run", strcmp(dry_run, "true") == 0);
        if (strcmp(dry_run, "true") == 0)
            call->success_status = 200;
    }
    //  Idempotency-Key on a POST: a retry with it gets the first answer.
    const char *key = strcmp(method, "POST") == 0 ? header(request, "Idempotency-Key") : NULL;
    size_t key_len = key ? strlen(key) : 0;
    bool key_ok = key_len >= 1 && key_len <= 128;
    for (size_t i = 0; key && i < key_len; i++)
        key_ok = key_ok && key[i] > 0x20 && key[i] < 0x7f;
    if (key && !key_ok) {
        lynx_value_destroy(&call->args);
        return lynx_err_set(err, LYNX_EINVALID, "Idempotency-Key",
                            "Idempotency-Key: must be 1 to 128 visible ASCII characters");
    }
    *idempotency_key_p = key;
    return 0;
}

void gateway_routes_allowed(const char *path, char *methods, size_t size)
{
    char id[256], name[2048];
    size_t used = 0;
    methods[0] = '\0';
    for (size_t i = 0; i < sizeof s_routes / sizeof s_routes[0]; i++)
        if (s_path_matches(s_routes[i].pattern, path, id, sizeof id, name, sizeof name) &&
            used < size)
            used += (size_t)snprintf(methods + used, size - used, "%s%s", used ? ", " : "",
                                     s_routes[i].method);
}

char *gateway_routes_error_json(const lynx_err_t *err, const lynx_value_t *errors)
{
    lynx_value_t *detail = lynx_value_map();
    lynx_value_set_string(detail, "code", lynx_code_name(err->code));
    lynx_value_set_string(detail, "message", err->message);
    lynx_value_set_string(detail, "field", err->field[0] ? err->field : NULL);
    lynx_value_t *root = lynx_value_map();
    if (lynx_value_set(root, "error", &detail))
        lynx_value_destroy(&detail);
    if (errors) {
        lynx_value_t *copy = lynx_value_dup(errors);
        if (lynx_value_set(root, "errors", &copy))
            lynx_value_destroy(&copy);
    }
    char *text = lynx_json_dump(root, 0);
    lynx_value_destroy(&root);
    return text;
}

void gateway_routes_respond_error(gateway_request_t *request, const lynx_err_t *err,
                                  const lynx_value_t *errors, const char *const *headers)
{
    char *json = gateway_routes_error_json(err, errors);
    const char *body = json ? json : "{}";
    gateway_request_respond_with(request, lynx_code_http_status(err->code), "application/json",
                                 body, strlen(body), headers);
    free(json);
}
