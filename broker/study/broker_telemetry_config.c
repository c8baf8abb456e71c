//  broker_telemetry_config: a batch's telemetry section, and the rules for telemetry's ids and
//  names (see the header).
#include "broker_telemetry_config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define S_FLUSH_INTERVAL_MS_DEFAULT 30000
#define S_FLUSH_INTERVAL_SECS_MAX 86400

bool broker_telemetry_config_id_valid(const char *id, size_t len)
{
    if (!id || len == 0 || len > BROKER_TELEMETRY_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

bool broker_telemetry_config_name_valid(const char *name, size_t len)
{
    if (!name || len == 0 || len > BROKER_TELEMETRY_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < ' ' || c == 0x7f)
            return false;
    }
    return true;
}

const char *broker_telemetry_config_quote(const char *text, size_t len, char *out)
{
    size_t limit = BROKER_TELEMETRY_QUOTE_MAX - 4, n = 0;
    out[n++] = '\'';
    for (size_t i = 0; text && i < len && i < limit; i++) {
        unsigned char c = (unsigned char)text[i];
        out[n++] = c >= ' ' && c <= '~' ? (char)c : '?';
    }
    if (text && len > limit)
        out[n - 1] = '~';
    out[n++] = '\'';
    out[n] = '\0';
    return out;
}

//  Normalize a storage prefix into out ("spacecraft/" -> "spacecraft", "a//b" -> "a/b").
//  -1 for an absolute path, a "." or ".." part, or characters outside [A-Za-z0-9._/-].
static int s_prefix_normalize(const char *prefix, size_t len, char *out)
{
    if (len > BROKER_TELEMETRY_PREFIX_MAX || (len > 0 && prefix[0] == '/'))
        return -1;
    size_t n = 0;
    for (size_t start = 0; start < len;) {
        size_t end = start;
        while (end < len && prefix[end] != '/')
            end++;
        size_t part = end - start;
        if ((part == 1 && prefix[start] == '.') ||
            (part == 2 && prefix[start] == '.' && prefix[start + 1] == '.'))
            return -1;
        for (size_t i = start; i < end; i++) {
            char c = prefix[i];
            if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || c == '.'))
                return -1;
        }
        if (part > 0) {
            if (n > 0)
                out[n++] = '/';
            memcpy(out + n, prefix + start, part);
            n += part;
        }
        start = end + 1;
    }
    out[n] = '\0';
    return 0;
}

int broker_telemetry_config_parse(const lynx_value_t *config, broker_telemetry_config_t *batch,
                                  lynx_err_t *err)
{
    broker_telemetry_config_t scratch;
    if (!batch)
        batch = &scratch;
    batch->prefix[0] = '\0';
    batch->gzip = false;
    batch->flush_interval_ms = S_FLUSH_INTERVAL_MS_DEFAULT;
    if (!config || lynx_value_type(config) == LYNX_VALUE_NULL)
        return 0;
    if (lynx_value_type(config) != LYNX_VALUE_MAP)
        return lynx_err_set(err, LYNX_EINVALID, "config.telemetry", "must be an object");
    lynx_err_t first;
    lynx_err_clear(&first);
#define S_FAIL(field, ...)                                                                         \
    do {                                                                                           \
        if (first.code == LYNX_OK)                                                                 \
            lynx_err_set(&first, LYNX_EINVALID, "config.telemetry." field, __VA_ARGS__);           \
    } while (0)

    const lynx_value_t *rate = lynx_value_get(config, "sampling_rate_hz");
    if (rate && (!lynx_value_is_number(rate) || !(lynx_value_as_double(rate) > 0)))
        S_FAIL("sampling_rate_hz", "must be a number above 0");
    const lynx_value_t *variables = lynx_value_get(config, "variables");
    if (variables && lynx_value_type(variables) != LYNX_VALUE_ARRAY)
        S_FAIL("variables", "must be an array of variable names");
    for (size_t i = 0; i < lynx_value_size(variables); i++) {
        const lynx_value_t *name = lynx_value_at(variables, i);
        if (lynx_value_type(name) != LYNX_VALUE_STRING ||
            !broker_telemetry_config_name_valid(lynx_value_as_string(name),
                                                lynx_value_string_len(name)))
            S_FAIL("variables",
                   "item %zu: must be a name of 1-%d bytes without control "
                   "characters",
                   i, BROKER_TELEMETRY_NAME_MAX);
    }
    const lynx_value_t *interval = lynx_value_get(config, "buffer_flush_interval_seconds");
    if (interval) {
        double secs = lynx_value_as_double(interval);
        if (!lynx_value_is_number(interval) || !(secs > 0) || secs > S_FLUSH_INTERVAL_SECS_MAX)
            S_FAIL("buffer_flush_interval_seconds", "must be a number above 0 and at most %d",
                   S_FLUSH_INTERVAL_SECS_MAX);
        else
            batch->flush_interval_ms = (int64_t)ceil(secs * 1000.0);
    }
    const lynx_value_t *storage = lynx_value_get(config, "storage");
    if (storage && lynx_value_type(storage) != LYNX_VALUE_MAP)
        S_FAIL("storage", "must be an object");
    const lynx_value_t *bucket = lynx_value_get(storage, "s3_bucket");
    if (bucket && lynx_value_type(bucket) != LYNX_VALUE_STRING)
        S_FAIL("storage.s3_bucket", "must be a string");
    const lynx_value_t *compression = lynx_value_get(storage, "compression");
    const char *method = lynx_value_as_string(compression);
    if (compression &&
        (!method || (strcmp(method, "gzip") && strcmp(method, "none") && strcmp(method, ""))))
        S_FAIL("storage.compression", "must be \"gzip\" or \"none\"");
    else
        batch->gzip = method && strcmp(method, "gzip") == 0;
    const lynx_value_t *prefix = lynx_value_get(storage, "s3_prefix");
    if (prefix && (lynx_value_type(prefix) != LYNX_VALUE_STRING ||
                   s_prefix_normalize(lynx_value_as_string(prefix), lynx_value_string_len(prefix),
                                      batch->prefix))) {
        batch->prefix[0] = '\0';
        S_FAIL("storage.s3_prefix",
               "must be a relative path of at most %d characters of A-Z a-z 0-9 . _ / - "
               "without '.' or '..' parts",
               BROKER_TELEMETRY_PREFIX_MAX);
    }
#undef S_FAIL
    if (first.code == LYNX_OK)
        return 0;
    if (err)
        *err = first;
    return -1;
}
