//  cli_http: one HTTP connection to the gateway for the lynx command-line client. The only
//  module that includes curl.h; everything else sees status codes, bytes and lynx_values.
#ifndef CLI_HTTP_H_INCLUDED
#define CLI_HTTP_H_INCLUDED

#include <stddef.h>
#include <stdio.h>

#include "lynx_err.h"
#include "lynx_value.h"

typedef struct _cli_http_t cli_http_t;

//  Initialise libcurl once per process, before any cli_http_new; -1 when it cannot start.
int cli_http_global_init(void);
//  Release libcurl's global state after the last cli_http_destroy.
void cli_http_global_cleanup(void);

//  One answer from the gateway. body is the raw text (NUL-terminated, owned by the reply);
//  json is the parsed body, or NULL when the body is empty or not JSON.
typedef struct {
    long status;
    char *body;
    size_t body_len;
    lynx_value_t *json;
} cli_http_reply_t;

//  Create a client for base_url ("http://127.0.0.1:8080", a trailing slash is ignored). An
//  https:// gateway's certificate is always verified (peer and host name): against the CA
//  certificates in the PEM file cacert when given, the system's otherwise. Returns NULL with
//  err on out-of-memory, when libcurl cannot start, or when cacert cannot be read (LYNX_EINVALID,
//  naming the file and the cause).
cli_http_t *cli_http_new(const char *base_url, const char *cacert, lynx_err_t *err);

//  Destroy the client; sets *self_p to NULL. NULL-safe.
void cli_http_destroy(cli_http_t **self_p);

//  The base URL given to cli_http_new, without a trailing slash (borrowed).
const char *cli_http_url(cli_http_t *self);

//  Send method to base_url + path (path starts with '/'; the caller escapes its parts with
//  cli_http_escape). json_body, when not NULL, is sent as application/json. Returns 0 and
//  fills reply (any HTTP status) when the gateway answered; -1 with err (LYNX_EUNAVAILABLE,
//  naming the URL and curl's reason) when it could not be reached. Free the reply with
//  cli_http_reply_clear.
int cli_http_request(cli_http_t *self, const char *method, const char *path, const char *json_body,
                     cli_http_reply_t *reply, lynx_err_t *err);

//  GET base_url + path, writing a 2xx body to out as it arrives (any size, bounded memory);
//  any other answer's body is kept in reply as cli_http_request keeps it (reply->body is ""
//  after a 2xx). 0 when the gateway answered; -1 with err when it could not be reached, the
//  transfer stalled, or out could not be written.
int cli_http_download(cli_http_t *self, const char *path, FILE *out, cli_http_reply_t *reply,
                      lynx_err_t *err);

//  Release what a reply owns and zero it. NULL-safe.
void cli_http_reply_clear(cli_http_reply_t *reply);

//  Percent-escape text for a path segment or query value. Caller frees; NULL on OOM.
char *cli_http_escape(cli_http_t *self, const char *text);

#endif
