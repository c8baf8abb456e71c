//  lynx_json: JSON text <-> lynx_value over jansson (see lynx_json.h).
#include "lynx_json.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_MAX_DEPTH 64
//  Trees we dump are built by our own code, but a runaway one must not blow the stack.
#define S_DUMP_MAX_DEPTH 1024

//  --------------------------------------------------------------------------
//  Parsing

//  Find the first bracket nested deeper than S_MAX_DEPTH, outside strings, so the error can
//  name its line and column (jansson values carry no positions). Returns 0 when none is.
static int s_check_depth(const char *text, size_t len, lynx_err_t *err)
{
    int depth = 0;
    bool in_string = false, escaped = false;
    size_t line = 1, column = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char byte = (unsigned char)text[i];
        if (byte == '\n') {
            line++;
            column = 0;
        } else if ((byte & 0xc0) != 0x80) //  count characters, not UTF-8 continuation bytes
            column++;
        if (in_string) {
            if (escaped)
                escaped = false;
            else if (byte == '\\')
                escaped = true;
            else if (byte == '"')
                in_string = false;
        } else if (byte == '"')
            in_string = true;
        else if (byte == '[' || byte == '{') {
            if (++depth > S_MAX_DEPTH)
                return lynx_err_set(err, LYNX_EINVALID, NULL,
                                    "line %zu column %zu: nesting deeper than %d", line, column,
                                    S_MAX_DEPTH);
        } else if (byte == ']' || byte == '}')
            depth--;
    }
    return 0;
}

//  Returns NULL on out-of-memory only: the depth was checked on the text.
static lynx_value_t *s_from_json(const json_t *json)
{
    lynx_value_t *value = NULL;
    switch (json_typeof(json)) {
    case JSON_NULL:
        return lynx_value_null();
    case JSON_TRUE:
        return lynx_value_bool(true);
    case JSON_FALSE:
        return lynx_value_bool(false);
    case JSON_INTEGER:
        return lynx_value_int(json_integer_value(json));
    case JSON_REAL:
        return lynx_value_double(json_real_value(json));
    case JSON_STRING:
        return lynx_value_stringn(json_string_value(json), json_string_length(json));
    case JSON_ARRAY:
        value = lynx_value_array();
        for (size_t i = 0; value && i < json_array_size(json); i++) {
            lynx_value_t *item = s_from_json(json_array_get(json, i));
            if (!item || lynx_value_append(value, &item)) {
                lynx_value_destroy(&item);
                lynx_value_destroy(&value);
            }
        }
        return value;
    case JSON_OBJECT:
        value = lynx_value_map();
        const char *key;
        json_t *member;
        json_object_foreach((json_t *)json, key, member)
        {
            lynx_value_t *item = s_from_json(member);
            if (!item || lynx_value_set(value, key, &item)) {
                lynx_value_destroy(&item);
                lynx_value_destroy(&value);
                break;
            }
        }
        return value;
    }
    return NULL;
}

lynx_value_t *lynx_json_parse(const char *text, size_t len, lynx_err_t *err)
{
    if (!text && len) {
        lynx_err_set(err, LYNX_EINVALID, NULL, "no JSON text");
        return NULL;
    }
    if (s_check_depth(text, len, err))
        return NULL;
    //  jansson refuses \u0000 in strings unless given JSON_ALLOW_NUL.
    json_error_t error;
    json_t *json =
        json_loadb(text ? text : "", len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &error);
    if (!json) {
        lynx_err_set(err, LYNX_EINVALID, NULL, "line %d column %d: %s", error.line, error.column,
                     error.text);
        return NULL;
    }
    lynx_value_t *value = s_from_json(json);
    json_decref(json);
    if (!value)
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory parsing JSON");
    return value;
}

//  --------------------------------------------------------------------------
//  Dumping

//  Length of the valid UTF-8 sequence at text (at most len bytes), or 0 when it is invalid.
static size_t s_utf8_sequence(const unsigned char *text, size_t len)
{
    unsigned char lead = text[0];
    size_t need;
    uint32_t code;
    if (lead < 0x80)
        return 1;
    else if (lead >= 0xc2 && lead <= 0xdf)
        need = 2, code = lead & 0x1f;
    else if (lead >= 0xe0 && lead <= 0xef)
        need = 3, code = lead & 0x0f;
    else if (lead >= 0xf0 && lead <= 0xf4)
        need = 4, code = lead & 0x07;
    else
        return 0;
    if (len < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((text[i] & 0xc0) != 0x80)
            return 0;
        code = code << 6 | (text[i] & 0x3f);
    }
    //  Reject overlong forms, UTF-16 surrogates and code points past U+10FFFF.
    if ((need == 3 && code < 0x800) || (need == 4 && code < 0x10000) ||
        (code >= 0xd800 && code <= 0xdfff) || code > 0x10ffff)
        return 0;
    return need;
}

//  A JSON string from bytes that may not be UTF-8 (msgpack strings are not checked on the
//  wire): invalid bytes become U+FFFD so the output is always valid JSON.
static json_t *s_json_string(const char *text, size_t len)
{
    json_t *json = json_stringn(text, len);
    if (json)
        return json;
    char *clean = malloc(len * 3 + 1);
    if (!clean)
        return NULL;
    size_t out = 0;
    for (size_t i = 0; i < len;) {
        size_t step = s_utf8_sequence((const unsigned char *)text + i, len - i);
        if (step) {
            memcpy(clean + out, text + i, step);
            out += step;
            i += step;
        } else {
            memcpy(clean + out, "\xef\xbf\xbd", 3);
            out += 3;
            i++;
        }
    }
    json = json_stringn(clean, out);
    free(clean);
    return json;
}

static json_t *s_to_json(const lynx_value_t *value, int depth)
{
    json_t *json = NULL;
    if (depth > S_DUMP_MAX_DEPTH)
        return NULL;
    switch (lynx_value_type(value)) {
    case LYNX_VALUE_NULL:
        return json_null();
    case LYNX_VALUE_BOOL:
        return json_boolean(lynx_value_as_bool(value));
    case LYNX_VALUE_INT:
        return json_integer(lynx_value_as_int(value));
    case LYNX_VALUE_DOUBLE:
        return isfinite(lynx_value_as_double(value)) ? json_real(lynx_value_as_double(value))
                                                     : json_null();
    case LYNX_VALUE_STRING:
        return s_json_string(lynx_value_as_string(value), lynx_value_string_len(value));
    case LYNX_VALUE_ARRAY:
        json = json_array();
        for (size_t i = 0; json && i < lynx_value_size(value); i++) {
            json_t *item = s_to_json(lynx_value_at(value, i), depth + 1);
            if (!item || json_array_append(json, item)) {
                json_decref(json);
                json = NULL;
            }
            json_decref(item);
        }
        return json;
    case LYNX_VALUE_MAP:
        json = json_object();
        for (size_t i = 0; json && i < lynx_value_size(value); i++) {
            const char *key = lynx_value_key_at(value, i);
            json_t *item = s_to_json(lynx_value_at(value, i), depth + 1);
            json_t *name = s_json_string(key, strlen(key));
            //  json_object_set takes its own reference, so ours is dropped either way.
            if (!item || !name || json_object_set(json, json_string_value(name), item)) {
                json_decref(json);
                json = NULL;
            }
            json_decref(item);
            json_decref(name);
        }
        return json;
    }
    return NULL;
}

char *lynx_json_dump(const lynx_value_t *value, int indent)
{
    json_t *json = s_to_json(value, 0);
    if (!json)
        return NULL;
    size_t flags = JSON_PRESERVE_ORDER | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17);
    if (indent > 0)
        flags |= JSON_INDENT(indent > 31 ? 31 : indent);
    else
        flags |= JSON_COMPACT;
    char *text = json_dumps(json, flags);
    json_decref(json);
    return text;
}

//  --------------------------------------------------------------------------
//  Atomic file write

static int s_write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t written = write(fd, data, len);
        if (written < 0 && errno == EINTR)
            continue;
        if (written < 0)
            return -1;
        data += written;
        len -= (size_t)written;
    }
    return 0;
}

//  Make the rename durable: fsync the directory that holds path.
static int s_sync_directory(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return -1;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int lynx_json_write_file(const lynx_value_t *value, const char *path, lynx_err_t *err)
{
    char *text = lynx_json_dump(value, 2);
    char *temp = NULL;
    if (!text || asprintf(&temp, "%s.tmp.XXXXXX", path) < 0) {
        free(text);
        return lynx_err_set(err, LYNX_EINTERNAL, NULL, "write %s: out of memory", path);
    }
    const char *failed = NULL;
    int fd = mkostemp(temp, O_CLOEXEC);
    if (fd < 0)
        failed = "create temporary file";
    else if (s_write_all(fd, text, strlen(text)) || s_write_all(fd, "\n", 1))
        failed = "write";
    //  mkostemp creates the file 0600; results and run configs are read by other users.
    else if (fchmod(fd, 0644))
        failed = "chmod";
    else if (fsync(fd))
        failed = "fsync";
    int error = errno;
    if (fd >= 0 && close(fd) && !failed)
        failed = "close", error = errno;
    if (!failed && rename(temp, path))
        failed = "rename", error = errno;
    if (failed && fd >= 0)
        unlink(temp);
    if (!failed && s_sync_directory(path))
        failed = "fsync directory", error = errno;
    free(temp);
    free(text);
    if (failed)
        return lynx_err_set(err, LYNX_EINTERNAL, NULL, "write %s: %s: %s", path, failed,
                            strerror(error));
    return 0;
}
