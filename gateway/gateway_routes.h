//  gateway_routes: the REST API as a table of (method, path pattern) -> broker operation, and
//  the translation of HTTP requests into REQUEST args and of broker answers into HTTP.
#ifndef GATEWAY_ROUTES_H_INCLUDED
#define GATEWAY_ROUTES_H_INCLUDED

#include <stdbool.h>

#include "gateway_http.h"
#include "lynx_err.h"
#include "lynx_token.h"
#include "lynx_value.h"

typedef struct {
    const char *op;           //  broker operation, e.g. "batch.get"
    int success_status;       //  HTTP status of a successful answer (200, 201)
    lynx_value_t *args;       //  REQUEST args (owned by the caller)
    const char *const *query; //  query arguments to copy into args as strings (NULL-ended)
    bool stream;              //  the answer is a file streamed from the broker (gateway_stream)
    lynx_role_t role;         //  the least a token needs (LYNX_ROLE_NONE: no token)
} gateway_call_t;

//  Match method and path (plus body and content type for POST) to a broker call. Returns 0
//  and fills call, or -1 with err (404 unknown route, 405 wrong method, 415 content type, 400
//  invalid JSON).
int gateway_routes_match(const char *method, const char *path, const char *content_type,
                         const char *body, size_t body_len, gateway_call_t *call, lynx_err_t *err);

//  What gateway_routes_complete reads of a request: the value of a query argument or of a
//  header called name, NULL when absent. Borrowed until the request is answered.
typedef const char *(gateway_routes_lookup_fn)(void *request, const char *name);

//  Complete a matched call with the request's query string and headers: the route's query
//  arguments are copied into args as strings; for batch.submit only dry_run in the query asks
//  for a dry run ("true" or "false"; the body's own dry_run is dropped); a POST's
//  Idempotency-Key header (1 to 128 visible ASCII characters) is lent in *idempotency_key_p,
//  NULL when absent. Returns 0, or -1 with err (400) after destroying call->args.
int gateway_routes_complete(gateway_call_t *call, const char *method,
                            gateway_routes_lookup_fn *query, gateway_routes_lookup_fn *header,
                            void *request, const char **idempotency_key_p, lynx_err_t *err);

//  The methods path accepts, comma-separated ("GET, POST"), for a 405's Allow header; "" when
//  the path matches no route.
void gateway_routes_allowed(const char *path, char *methods, size_t size);

//  JSON text of an error: {"error":{"code","message","field"}} plus "errors" when given.
//  Caller frees.
char *gateway_routes_error_json(const lynx_err_t *err, const lynx_value_t *errors);

//  Answer request with that error body and err's HTTP status, plus headers (a NULL-ended
//  name, value list, or NULL) as gateway_request_respond_with.
void gateway_routes_respond_error(gateway_request_t *request, const lynx_err_t *err,
                                  const lynx_value_t *errors, const char *const *headers);

#endif
