#include "lynx_err.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int http_status;
} s_codes[LYNX_CODE_COUNT] = {
    [LYNX_OK] = {"ok", 200},
    [LYNX_EINVALID] = {"invalid_argument", 400},
    [LYNX_ENOTFOUND] = {"not_found", 404},
    [LYNX_EMETHOD] = {"method_not_allowed", 405},
    [LYNX_ECONFLICT] = {"conflict", 409},
    [LYNX_ETOOLARGE] = {"payload_too_large", 413},
    [LYNX_EMEDIA] = {"unsupported_media_type", 415},
    [LYNX_EPROTOCOL] = {"protocol_error", 400},
    [LYNX_EINTERNAL] = {"internal", 500},
    [LYNX_EUNAVAILABLE] = {"unavailable", 503},
    [LYNX_ESTORAGE] = {"storage_full", 507},
    [LYNX_EUNAUTHORIZED] = {"unauthorized", 401},
    [LYNX_EFORBIDDEN] = {"forbidden", 403},
};

void lynx_err_clear(lynx_err_t *err)
{
    if (!err)
        return;
    err->code = LYNX_OK;
    err->field[0] = '\0';
    err->message[0] = '\0';
}

int lynx_err_set(lynx_err_t *err, lynx_code_t code, const char *field, const char *format, ...)
{
    if (!err)
        return -1;
    err->code = code;
    snprintf(err->field, sizeof err->field, "%s", field ? field : "");
    va_list args;
    va_start(args, format);
    vsnprintf(err->message, sizeof err->message, format, args);
    va_end(args);
    return -1;
}

const char *lynx_code_name(lynx_code_t code)
{
    if ((int)code < 0 || code >= LYNX_CODE_COUNT)
        return "internal";
    return s_codes[code].name;
}

lynx_code_t lynx_code_from_name(const char *name)
{
    for (int code = 0; name && code < LYNX_CODE_COUNT; code++)
        if (strcmp(s_codes[code].name, name) == 0)
            return (lynx_code_t)code;
    return LYNX_EINTERNAL;
}

int lynx_code_http_status(lynx_code_t code)
{
    if ((int)code < 0 || code >= LYNX_CODE_COUNT)
        return 500;
    return s_codes[code].http_status;
}

const char *lynx_err_printable(char *dest, size_t dest_size, const char *src, size_t len)
{
    size_t limit = len > 40 ? 40 : len;
    if (limit > dest_size - 4)
        limit = dest_size - 4;
    size_t out = 0;
    for (size_t i = 0; i < limit; i++) {
        unsigned char byte = (unsigned char)src[i];
        dest[out++] = byte < 0x20 || byte == 0x7f ? '?' : (char)byte;
    }
    if (limit < len)
        for (int i = 0; i < 3; i++)
            dest[out++] = '.';
    dest[out] = '\0';
    return dest;
}
