//  lynx_err: one error vocabulary for the whole grid.
//
//  A lynx_code_t names what went wrong; the gateway maps it to an HTTP status and the broker
//  sends it in protocol ERROR replies. A lynx_err_t carries the code with the field path and a
//  human message, like jansson's json_error_t: callers own it, usually on the stack.
#ifndef LYNX_ERR_H_INCLUDED
#define LYNX_ERR_H_INCLUDED

#include <stdarg.h>
#include <stddef.h>

typedef enum {
    LYNX_OK = 0,
    LYNX_EINVALID,      //  bad input: config, arguments, body (HTTP 400)
    LYNX_ENOTFOUND,     //  unknown id or route (404)
    LYNX_EMETHOD,       //  wrong HTTP method (405)
    LYNX_ECONFLICT,     //  state does not allow the operation (409)
    LYNX_ETOOLARGE,     //  body or frame over the limit (413)
    LYNX_EMEDIA,        //  unsupported content type (415)
    LYNX_EPROTOCOL,     //  malformed wire message (400 when it reaches HTTP)
    LYNX_EINTERNAL,     //  our bug or a failing resource such as the disk (500)
    LYNX_EUNAVAILABLE,  //  a peer is down or did not answer in time (503)
    LYNX_ESTORAGE,      //  the broker's disk is full: writes refused, reads served (507)
    LYNX_EUNAUTHORIZED, //  no credentials, or unknown/revoked ones (401)
    LYNX_EFORBIDDEN,    //  valid credentials whose role may not do this (403)
    LYNX_CODE_COUNT
} lynx_code_t;

#define LYNX_ERR_FIELD_MAX 256
#define LYNX_ERR_MESSAGE_MAX 512

typedef struct {
    lynx_code_t code;
    char field[LYNX_ERR_FIELD_MAX];     //  dotted path such as config.monte_carlo.runs, or ""
    char message[LYNX_ERR_MESSAGE_MAX]; //  what is wrong, without the field path
} lynx_err_t;

//  Reset err to LYNX_OK with empty field and message. NULL-safe.
void lynx_err_clear(lynx_err_t *err);

//  Record an error. field may be NULL. NULL-safe on err, so callers that do not care pass NULL.
//  Always returns -1 so handlers can write `return lynx_err_set (...)`.
int lynx_err_set(lynx_err_t *err, lynx_code_t code, const char *field, const char *format, ...)
    __attribute__((format(printf, 4, 5)));

//  Stable snake_case name of a code ("invalid_argument", "not_found", ...), used on the wire
//  and in JSON error bodies.
const char *lynx_code_name(lynx_code_t code);

//  Inverse of lynx_code_name; returns LYNX_EINTERNAL for unknown names.
lynx_code_t lynx_code_from_name(const char *name);

//  HTTP status for a code (LYNX_OK is 200).
int lynx_code_http_status(lynx_code_t code);

//  Untrusted text (len bytes, may hold NUL) made fit to quote in a message: at most 40 bytes
//  (and dest_size - 4, dest_size >= 5), control bytes as '?', "..." when cut. Returns dest.
const char *lynx_err_printable(char *dest, size_t dest_size, const char *src, size_t len);

#endif
