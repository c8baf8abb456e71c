//  lynx_json: JSON text <-> lynx_value (see lynx_json.h): parsing over jansson, writing by hand.
#include "lynx_json.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <inttypes.h>
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
//
//  Our own writer, not jansson's: jansson prints reals with a fixed precision, so 0.1 came out
//  as 0.10000000000000001 in every reply and run config. We print the shortest text that reads
//  back as the same double. The layout matches jansson's (JSON_COMPACT, or JSON_INDENT(n)).

typedef struct {
    char *data;
    size_t len;
    size_t capacity;
} s_buffer_t;

static int s_buffer_reserve(s_buffer_t *self, size_t more)
{
    if (self->capacity - self->len > more)
        return 0;
    size_t capacity = self->capacity ? self->capacity : 256;
    while (capacity - self->len <= more) {
        if (capacity > SIZE_MAX / 2)
            return -1;
        capacity *= 2;
    }
    char *data = realloc(self->data, capacity);
    if (!data)
        return -1;
    self->data = data;
    self->capacity = capacity;
    return 0;
}

//  Append len bytes and keep the buffer NUL-terminated.
static int s_buffer_add(s_buffer_t *self, const char *text, size_t len)
{
    if (s_buffer_reserve(self, len))
        return -1;
    memcpy(self->data + self->len, text, len);
    self->len += len;
    self->data[self->len] = '\0';
    return 0;
}

static int s_buffer_puts(s_buffer_t *self, const char *text)
{
    return s_buffer_add(self, text, strlen(text));
}

//  A newline and the indentation of level depth; nothing in compact mode.
static int s_buffer_newline(s_buffer_t *self, int indent, int depth)
{
    if (indent <= 0)
        return 0;
    size_t spaces = (size_t)indent * (size_t)depth;
    if (s_buffer_reserve(self, spaces + 1))
        return -1;
    self->data[self->len++] = '\n';
    memset(self->data + self->len, ' ', spaces);
    self->len += spaces;
    self->data[self->len] = '\0';
    return 0;
}

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

static bool s_utf8_valid(const char *text, size_t len)
{
    for (size_t i = 0, step; i < len; i += step)
        if (!(step = s_utf8_sequence((const unsigned char *)text + i, len - i)))
            return false;
    return true;
}

//  The JSON form of the character at text (at most len bytes) into piece; returns its length
//  and sets *step to the bytes it stands for. Bytes that are not UTF-8 (msgpack strings are
//  not checked on the wire) become U+FFFD each, so the output is always valid JSON. Escapes as
//  jansson does: the short forms, \u00XX for other control characters, nothing else.
static size_t s_json_char(const char *text, size_t len, char piece[6], size_t *step)
{
    static const char hex[] = "0123456789ABCDEF";
    //  Pairs: a character, then the letter that follows the backslash for it.
    static const char shorts[] = "\"\"\\\\\bb\ff\nn\rr\tt";
    unsigned char byte = (unsigned char)text[0];
    *step = s_utf8_sequence((const unsigned char *)text, len);
    if (!*step) {
        *step = 1;
        memcpy(piece, "\xef\xbf\xbd", 3);
        return 3;
    }
    for (size_t i = 0; byte && i < sizeof shorts - 1; i += 2)
        if (shorts[i] == (char)byte) {
            piece[0] = '\\';
            piece[1] = shorts[i + 1];
            return 2;
        }
    if (byte < 0x20) {
        memcpy(piece, "\\u00", 4);
        piece[4] = hex[byte >> 4];
        piece[5] = hex[byte & 0x0f];
        return 6;
    }
    memcpy(piece, text, *step);
    return *step;
}

//  Printable ASCII other than '"' and '\': copied as is (the common case, kept out of
//  s_json_char).
static bool s_json_plain(char byte)
{
    return byte >= 0x20 && byte < 0x7f && byte != '"' && byte != '\\';
}

//  Append text as a quoted JSON string: one pass to size it, one to copy.
static int s_write_string(s_buffer_t *out, const char *text, size_t len)
{
    char piece[6];
    size_t size = 2, step;
    for (size_t i = 0; i < len; i += step) {
        step = 1;
        size += s_json_plain(text[i]) ? 1 : s_json_char(text + i, len - i, piece, &step);
    }
    if (s_buffer_reserve(out, size))
        return -1;
    char *dest = out->data + out->len;
    *dest++ = '"';
    for (size_t i = 0; i < len; i += step) {
        if (s_json_plain(text[i])) {
            *dest++ = text[i];
            step = 1;
            continue;
        }
        size_t piece_len = s_json_char(text + i, len - i, piece, &step);
        memcpy(dest, piece, piece_len);
        dest += piece_len;
    }
    *dest++ = '"';
    *dest = '\0';
    out->len += size;
    return 0;
}

//  A decimal of count significant digits: d0.d1d2... x 10^exponent.
typedef struct {
    char digits[18];
    int count;
    int exponent;
} s_decimal_t;

//  The first count digits of full, rounded down or up (a carry out of 9...9 gives 1 and a
//  higher exponent).
static s_decimal_t s_decimal_round(const s_decimal_t *full, int count, bool up)
{
    s_decimal_t result = *full;
    result.count = count;
    for (int i = count - 1; up && i >= 0; i--) {
        up = result.digits[i] == '9';
        result.digits[i] = up ? '0' : (char)(result.digits[i] + 1);
    }
    if (up) {
        result.digits[0] = '1';
        result.exponent++;
    }
    return result;
}

//  Whether strtod reads decimal back as magnitude. The text has no decimal point, so the
//  locale's (LC_NUMERIC) does not matter.
static bool s_decimal_exact(const s_decimal_t *decimal, double magnitude)
{
    char text[40];
    snprintf(text, sizeof text, "%.*se%d", decimal->count, decimal->digits,
             decimal->exponent - decimal->count + 1);
    double back = strtod(text, NULL);
    return memcmp(&back, &magnitude, sizeof back) == 0;
}

//  Print as printf's %.{precision}g would (trailing zeros dropped, an exponent when it is below
//  -4 or at least precision), but always with a '.' and, for integral values, a ".0" so the
//  text reads back as a real. text holds at least 32 bytes.
static void s_decimal_print(const s_decimal_t *decimal, int precision, bool negative, char *text)
{
    const char *digits = decimal->digits;
    int count = decimal->count, exponent = decimal->exponent;
    while (count > 1 && digits[count - 1] == '0')
        count--;
    char *out = text;
    if (negative)
        *out++ = '-';
    if (exponent < -4 || exponent >= precision) {
        *out++ = digits[0];
        if (count > 1) {
            *out++ = '.';
            memcpy(out, digits + 1, (size_t)count - 1);
            out += count - 1;
        }
        sprintf(out, "e%c%02d", exponent < 0 ? '-' : '+', abs(exponent));
        return;
    }
    if (exponent < 0) {
        memcpy(out, "0.", 2);
        memset(out + 2, '0', (size_t)(-exponent - 1));
        out += 2 + (-exponent - 1);
        memcpy(out, digits, (size_t)count);
        out += count;
    } else {
        int whole = exponent + 1;
        for (int i = 0; i < whole; i++)
            *out++ = i < count ? digits[i] : '0';
        *out++ = '.';
        if (count > whole) {
            memcpy(out, digits + whole, (size_t)(count - whole));
            out += count - whole;
        } else
            *out++ = '0';
    }
    *out = '\0';
}

//  Shortest text for a finite double that reads back bit for bit, in %g style. From the 17
//  digits that always suffice, try 15 then 16: when any form of 15 digits or fewer reads back,
//  the 15-digit rounding does (DBL_DIG), and dropping its trailing zeros gives the shortest.
//  Subnormals carry fewer digits (5e-324) and try every length. The 17 digits are themselves
//  rounded, so a cut that looks like an exact half tries both neighbours. text holds at least
//  32 bytes.
static void s_format_double(double number, char *text)
{
    double magnitude = fabs(number);
    char scientific[40];
    snprintf(scientific, sizeof scientific, "%.16e", magnitude);
    s_decimal_t full = {.count = 17};
    const char *c = scientific;
    for (int n = 0; *c && *c != 'e'; c++)
        if (*c >= '0' && *c <= '9' && n < full.count)
            full.digits[n++] = *c;
    full.exponent = *c ? atoi(c + 1) : 0;
    //  A form of 15 digits or fewer lies within 11.6 units of the 17th digit (half an ulp is at
    //  most 2^-53 of the number, and 10^17 / 2^53 = 11.1), so the last two of the 17 digits
    //  are then at most 11 or at least 89: otherwise start at 16.
    int tail = (full.digits[15] - '0') * 10 + (full.digits[16] - '0');
    int first = magnitude < DBL_MIN ? 1 : tail > 12 && tail < 88 ? DBL_DIG + 1 : DBL_DIG;
    for (int count = first; count < full.count; count++) {
        char next = full.digits[count];
        //  Round up past a 5 or more; at what looks like an exact half, try down too.
        int up = next >= '5';
        int down = next == '5' && strspn(full.digits + count + 1, "0") == (size_t)(16 - count);
        for (int round_up = up; round_up >= up - down; round_up--) {
            s_decimal_t candidate = s_decimal_round(&full, count, round_up);
            if (s_decimal_exact(&candidate, magnitude)) {
                s_decimal_print(&candidate, count, signbit(number), text);
                return;
            }
        }
    }
    s_decimal_print(&full, full.count, signbit(number), text);
}

static int s_write_value(s_buffer_t *out, const lynx_value_t *value, int indent, int depth);

//  Keys that are not UTF-8 are cleaned like strings, so two of them (or one and a valid key)
//  can come out the same; a repeated key would make our own parser refuse the text, so the
//  first wins. Only maps with such keys pay for the check.
static bool s_key_repeats(lynx_value_t *written, const char *key, size_t len)
{
    if (!written)
        return false;
    s_buffer_t cleaned = {0};
    bool repeats = true; //  on out-of-memory too: drop rather than fail the whole reply
    if (s_write_string(&cleaned, key, len) == 0) {
        repeats = lynx_value_get(written, cleaned.data) != NULL;
        if (!repeats && lynx_value_set_null(written, cleaned.data))
            repeats = true;
    }
    free(cleaned.data);
    return repeats;
}

static int s_write_map(s_buffer_t *out, const lynx_value_t *map, int indent, int depth)
{
    size_t size = lynx_value_size(map);
    lynx_value_t *written = NULL;
    for (size_t i = 0; i < size && !written; i++) {
        const char *key = lynx_value_key_at(map, i);
        if (!s_utf8_valid(key, strlen(key)) && !(written = lynx_value_map()))
            return -1;
    }
    int rc = s_buffer_add(out, "{", 1);
    bool first = true;
    for (size_t i = 0; rc == 0 && i < size; i++) {
        const char *key = lynx_value_key_at(map, i);
        size_t len = strlen(key);
        if (s_key_repeats(written, key, len))
            continue;
        if ((!first && s_buffer_add(out, ",", 1)) || s_buffer_newline(out, indent, depth + 1) ||
            s_write_string(out, key, len) || s_buffer_puts(out, indent > 0 ? ": " : ":") ||
            s_write_value(out, lynx_value_at(map, i), indent, depth + 1))
            rc = -1;
        first = false;
    }
    if (rc == 0 && !first)
        rc = s_buffer_newline(out, indent, depth);
    lynx_value_destroy(&written);
    return rc ? rc : s_buffer_add(out, "}", 1);
}

static int s_write_array(s_buffer_t *out, const lynx_value_t *array, int indent, int depth)
{
    size_t size = lynx_value_size(array);
    if (s_buffer_add(out, "[", 1))
        return -1;
    for (size_t i = 0; i < size; i++)
        if ((i && s_buffer_add(out, ",", 1)) || s_buffer_newline(out, indent, depth + 1) ||
            s_write_value(out, lynx_value_at(array, i), indent, depth + 1))
            return -1;
    if (size && s_buffer_newline(out, indent, depth))
        return -1;
    return s_buffer_add(out, "]", 1);
}

static int s_write_value(s_buffer_t *out, const lynx_value_t *value, int indent, int depth)
{
    char number[40];
    if (depth > S_DUMP_MAX_DEPTH)
        return -1;
    switch (lynx_value_type(value)) {
    case LYNX_VALUE_NULL:
        return s_buffer_puts(out, "null");
    case LYNX_VALUE_BOOL:
        return s_buffer_puts(out, lynx_value_as_bool(value) ? "true" : "false");
    case LYNX_VALUE_INT:
        snprintf(number, sizeof number, "%" PRId64, lynx_value_as_int(value));
        return s_buffer_puts(out, number);
    case LYNX_VALUE_DOUBLE:
        //  JSON has no NaN or infinity.
        if (!isfinite(lynx_value_as_double(value)))
            return s_buffer_puts(out, "null");
        s_format_double(lynx_value_as_double(value), number);
        return s_buffer_puts(out, number);
    case LYNX_VALUE_STRING:
        return s_write_string(out, lynx_value_as_string(value), lynx_value_string_len(value));
    case LYNX_VALUE_ARRAY:
        return s_write_array(out, value, indent, depth);
    case LYNX_VALUE_MAP:
        return s_write_map(out, value, indent, depth);
    }
    return -1;
}

char *lynx_json_dump(const lynx_value_t *value, int indent)
{
    s_buffer_t out = {0};
    if (s_write_value(&out, value, indent > 31 ? 31 : indent, 0)) {
        free(out.data);
        return NULL;
    }
    return out.data;
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
