//  lynx_check: the field-checking kit (see the header).
#include "lynx_check.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lynx_err.h"
#include "lynx_problems.h"

//  A field path in a new string: path + "." + key, or path + "[index]" when key is NULL.
//  NULL on out-of-memory.
char *lynx_check_path_join(lynx_check_t *check, const char *path, const char *key, size_t index)
{
    char *joined = lynx_problems_path(path, key, index);
    if (!joined)
        check->out_of_memory = true;
    return joined;
}

//  Appends {field: path[.key], message} to list. Running out of memory here is remembered,
//  so the study still fails instead of passing with a lost error.
static void s_report(lynx_check_t *check, lynx_value_t *list, const char *path, const char *key,
                     const char *message)
{
    if (lynx_problems_add(list, path, key, message))
        check->out_of_memory = true;
}

//  Records an error at path.key (key may be NULL). Always returns -1.
int lynx_check_error(lynx_check_t *check, const char *path, const char *key, const char *format,
                     ...)
{
    check->error_count++;
    char message[LYNX_ERR_MESSAGE_MAX];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    s_report(check, check->errors, path, key, message);
    return -1;
}

void lynx_check_warn(lynx_check_t *check, const char *path, const char *key, const char *message)
{
    s_report(check, check->warnings, path, key, message);
}

char *lynx_check_strdup(lynx_check_t *check, const char *string)
{
    char *copy = strdup(string);
    if (!copy)
        check->out_of_memory = true;
    return copy;
}

int lynx_check_name_index(const char *name, const char *const names[])
{
    for (int i = 0; names[i]; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

//  "a, b, c" into buffer, for messages that list what is accepted.
const char *lynx_check_name_list(char *buffer, size_t size, const char *const names[])
{
    size_t used = 0;
    buffer[0] = '\0';
    for (int i = 0; names[i] && used < size; i++)
        used += (size_t)snprintf(buffer + used, size - used, "%s%s", i ? ", " : "", names[i]);
    return buffer;
}

void lynx_check_warn_unknown(lynx_check_t *check, const lynx_value_t *map, const char *path,
                             const char *const known[])
{
    for (size_t i = 0; i < lynx_value_size(map); i++) {
        const char *key = lynx_value_key_at(map, i);
        if (lynx_check_name_index(key, known) < 0)
            s_report(check, check->warnings, path, key, "unknown field (ignored)");
    }
}

//  ---------------------------------------------------------------------------------------
//  Typed getters. Each returns 1 and sets *value when the member is present and valid, 0 when
//  it is absent and optional (leaving *value, the default, alone), and -1 after reporting an
//  error. JSON null counts as absent: clients that serialise an unset field as null mean "use
//  the default".

const lynx_value_t *lynx_check_member(const lynx_value_t *map, const char *key)
{
    const lynx_value_t *member = lynx_value_get(map, key);
    return lynx_value_type(member) == LYNX_VALUE_NULL ? NULL : member;
}

static int s_absent(lynx_check_t *check, const char *path, const char *key, int flags)
{
    return flags & LYNX_CHECK_REQUIRED ? lynx_check_error(check, path, key, "required") : 0;
}

static int s_get_typed(lynx_check_t *check, const lynx_value_t *map, const char *path,
                       const char *key, int flags, lynx_value_type_t type, const char *what,
                       const lynx_value_t **value)
{
    const lynx_value_t *member = lynx_check_member(map, key);
    if (!member)
        return s_absent(check, path, key, flags);
    if (lynx_value_type(member) != type)
        return lynx_check_error(check, path, key, "must be %s", what);
    *value = member;
    return 1;
}

int lynx_check_get_object(lynx_check_t *check, const lynx_value_t *map, const char *path,
                          const char *key, int flags, const lynx_value_t **value)
{
    return s_get_typed(check, map, path, key, flags, LYNX_VALUE_MAP, "an object", value);
}

int lynx_check_get_array(lynx_check_t *check, const lynx_value_t *map, const char *path,
                         const char *key, int flags, const lynx_value_t **value)
{
    return s_get_typed(check, map, path, key, flags, LYNX_VALUE_ARRAY, "an array", value);
}

int lynx_check_get_bool(lynx_check_t *check, const lynx_value_t *map, const char *path,
                        const char *key, bool *value)
{
    const lynx_value_t *member = NULL;
    int rc = s_get_typed(check, map, path, key, LYNX_CHECK_OPTIONAL, LYNX_VALUE_BOOL, "a boolean",
                         &member);
    if (rc == 1)
        *value = lynx_value_as_bool(member);
    return rc;
}

int lynx_check_get_string(lynx_check_t *check, const lynx_value_t *map, const char *path,
                          const char *key, int flags, const char **value)
{
    const lynx_value_t *member = NULL;
    int rc = s_get_typed(check, map, path, key, flags, LYNX_VALUE_STRING, "a string", &member);
    if (rc != 1)
        return rc;
    if ((flags & LYNX_CHECK_NON_EMPTY) && lynx_value_string_len(member) == 0)
        return lynx_check_error(check, path, key, "must not be empty");
    *value = lynx_value_as_string(member);
    return 1;
}

//  A number that is finite: JSON has no NaN or infinity, but msgpack and YAML do.
int lynx_check_number(lynx_check_t *check, const lynx_value_t *member, const char *path,
                      const char *key, double *value)
{
    if (!lynx_value_is_number(member))
        return lynx_check_error(check, path, key, "must be a number");
    double number = lynx_value_as_double(member);
    if (!isfinite(number))
        return lynx_check_error(check, path, key, "must be a finite number");
    *value = number;
    return 1;
}

int lynx_check_get_number(lynx_check_t *check, const lynx_value_t *map, const char *path,
                          const char *key, int flags, double *value)
{
    const lynx_value_t *member = lynx_check_member(map, key);
    if (!member)
        return s_absent(check, path, key, flags);
    return lynx_check_number(check, member, path, key, value);
}

//  A required number > 0.
int lynx_check_get_positive(lynx_check_t *check, const lynx_value_t *map, const char *path,
                            const char *key, double *value)
{
    int rc = lynx_check_get_number(check, map, path, key, LYNX_CHECK_REQUIRED, value);
    if (rc == 1 && !(*value > 0))
        return lynx_check_error(check, path, key, "must be > 0");
    return rc;
}

//  member as an integer: an INT, or a double holding an exact integer. *in_range is false for
//  such a double beyond int64_t ([-2^63, 2^63) are the doubles that convert).
static bool s_integer_of(const lynx_value_t *member, int64_t *number, bool *in_range)
{
    *in_range = true;
    if (lynx_value_type(member) == LYNX_VALUE_INT) {
        *number = lynx_value_as_int(member);
        return true;
    }
    double real = lynx_value_as_double(member);
    if (lynx_value_type(member) != LYNX_VALUE_DOUBLE || !isfinite(real) || real != trunc(real))
        return false;
    *in_range = real >= -0x1p63 && real < 0x1p63;
    *number = *in_range ? (int64_t)real : 0;
    return true;
}

//  JSON has one number type, so a double holding an exact integer (500.0) is an integer too.
int lynx_check_get_integer(lynx_check_t *check, const lynx_value_t *map, const char *path,
                           const char *key, int flags, int64_t min, int64_t max, int64_t *value)
{
    const lynx_value_t *member = lynx_check_member(map, key);
    if (!member)
        return s_absent(check, path, key, flags);
    int64_t number = 0;
    bool in_range;
    if (!s_integer_of(member, &number, &in_range))
        return lynx_check_error(check, path, key, "must be an integer");
    if (!in_range || number < min || number > max) {
        if ((flags & LYNX_CHECK_NO_MAX) && in_range && number < min)
            return lynx_check_error(check, path, key, "must be >= %" PRId64, min);
        return lynx_check_error(check, path, key, "must be between %" PRId64 " and %" PRId64, min,
                                max);
    }
    *value = number;
    return 1;
}

//  ---------------------------------------------------------------------------------------
//  Typed fields: one sentence per field, the same for a document member and for text.

const char *lynx_check_expected(const lynx_check_type_t *type, char *buffer, size_t size)
{
    switch (type->kind) {
    case LYNX_CHECK_KIND_STRING:
        snprintf(buffer, size, "a non-empty string");
        break;
    case LYNX_CHECK_KIND_STRINGS:
    case LYNX_CHECK_KIND_ARGS:
        snprintf(buffer, size, "a list of strings or a comma-separated string");
        break;
    case LYNX_CHECK_KIND_INTEGER:
        snprintf(buffer, size, "an integer between %" PRId64 " and %" PRId64, type->min, type->max);
        break;
    case LYNX_CHECK_KIND_POSITIVE:
        snprintf(buffer, size, "a number greater than 0");
        break;
    case LYNX_CHECK_KIND_BOOL:
        snprintf(buffer, size, "true or false");
        break;
    default:
        snprintf(buffer, size, "a valid value");
        break;
    }
    return buffer;
}

static int s_field_error(lynx_check_t *check, const char *path, const char *key,
                         const lynx_check_type_t *type)
{
    char expected[96];
    return lynx_check_error(check, path, key, "must be %s",
                            lynx_check_expected(type, expected, sizeof expected));
}

void lynx_check_items_free(char **items, size_t count)
{
    for (size_t i = 0; items && i < count; i++)
        free(items[i]);
    free(items);
}

bool lynx_check_parse_integer(const char *text, int64_t *value)
{
    if (!text || !(*text == '-' || *text == '+' || (*text >= '0' && *text <= '9')))
        return false; //  strtoll would skip leading blanks
    char *end;
    errno = 0;
    long long parsed = strtoll(text, &end, 10);
    if (errno || end == text || *end)
        return false;
    *value = parsed;
    return true;
}

bool lynx_check_parse_number(const char *text, double *value)
{
    if (!text || !*text || isspace((unsigned char)*text))
        return false;
    char *end;
    errno = 0;
    double parsed = strtod(text, &end);
    if (errno || end == text || *end)
        return false;
    *value = parsed;
    return true;
}

//  text split at commas. verbatim (ARGS): every comma splits and nothing else is touched, ""
//  being the empty list; otherwise items are trimmed of blanks and empty ones skipped.
static char **s_split(lynx_check_t *check, const char *text, bool verbatim, size_t *count_p)
{
    size_t capacity = 2, count = 0;
    for (const char *cursor = text; *cursor; cursor++)
        capacity += *cursor == ',';
    char **items = calloc(capacity, sizeof *items);
    for (const char *cursor = text; items && *text;) {
        const char *end = strchr(cursor, ',');
        const char *first = cursor, *last = end ? end : cursor + strlen(cursor);
        while (!verbatim && first < last && (*first == ' ' || *first == '\t'))
            first++;
        while (!verbatim && last > first && (last[-1] == ' ' || last[-1] == '\t'))
            last--;
        if (verbatim || last > first) {
            if (!(items[count] = strndup(first, (size_t)(last - first)))) {
                lynx_check_items_free(items, count);
                items = NULL;
                break;
            }
            count++;
        }
        if (!end)
            break;
        cursor = end + 1;
    }
    if (!items)
        check->out_of_memory = true;
    *count_p = count;
    return items;
}

//  A document list of strings (non-empty ones unless verbatim) as owned items; -1 when an
//  item is not such a string, -2 on out-of-memory.
static int s_copy_items(lynx_check_t *check, const lynx_value_t *list, bool verbatim,
                        lynx_check_value_t *out)
{
    size_t count = lynx_value_size(list);
    for (size_t i = 0; i < count; i++) {
        const char *item = lynx_value_as_string(lynx_value_at(list, i));
        if (!item || (!*item && !verbatim))
            return -1;
    }
    char **items = calloc(count + 1, sizeof *items);
    for (size_t i = 0; items && i < count; i++)
        if (!(items[i] = strdup(lynx_value_as_string(lynx_value_at(list, i))))) {
            lynx_check_items_free(items, i);
            items = NULL;
        }
    if (!items) {
        check->out_of_memory = true;
        return -2;
    }
    out->items = items;
    out->count = count;
    return 1;
}

int lynx_check_text(lynx_check_t *check, const char *text, const char *path, const char *key,
                    const lynx_check_type_t *type, lynx_check_value_t *out)
{
    *out = (lynx_check_value_t){0};
    bool valid = false;
    switch (type->kind) {
    case LYNX_CHECK_KIND_STRING:
        out->text = text;
        valid = *text != '\0';
        break;
    case LYNX_CHECK_KIND_STRINGS:
    case LYNX_CHECK_KIND_ARGS:
        out->items = s_split(check, text, type->kind == LYNX_CHECK_KIND_ARGS, &out->count);
        if (!out->items)
            return -1; //  out of memory, remembered in check
        return 1;
    case LYNX_CHECK_KIND_INTEGER:
        valid = lynx_check_parse_integer(text, &out->integer) && out->integer >= type->min &&
                out->integer <= type->max;
        break;
    case LYNX_CHECK_KIND_POSITIVE:
        valid =
            lynx_check_parse_number(text, &out->number) && isfinite(out->number) && out->number > 0;
        break;
    case LYNX_CHECK_KIND_BOOL:
        out->boolean = strcmp(text, "true") == 0;
        valid = out->boolean || strcmp(text, "false") == 0;
        break;
    }
    return valid ? 1 : s_field_error(check, path, key, type);
}

int lynx_check_value(lynx_check_t *check, const lynx_value_t *value, const char *path,
                     const char *key, const lynx_check_type_t *type, lynx_check_value_t *out)
{
    *out = (lynx_check_value_t){0};
    lynx_value_type_t vtype = lynx_value_type(value);
    if (!value || vtype == LYNX_VALUE_NULL)
        return 0;
    bool is_list = type->kind == LYNX_CHECK_KIND_STRINGS || type->kind == LYNX_CHECK_KIND_ARGS;
    if ((type->kind == LYNX_CHECK_KIND_STRING || is_list) && vtype == LYNX_VALUE_STRING)
        return lynx_check_text(check, lynx_value_as_string(value), path, key, type, out);
    bool valid = false, in_range = false;
    switch (type->kind) {
    case LYNX_CHECK_KIND_STRING:
        break;
    case LYNX_CHECK_KIND_STRINGS:
    case LYNX_CHECK_KIND_ARGS:
        if (vtype == LYNX_VALUE_ARRAY) {
            int rc = s_copy_items(check, value, type->kind == LYNX_CHECK_KIND_ARGS, out);
            if (rc != -1)
                return rc == 1 ? 1 : -1;
        }
        break;
    case LYNX_CHECK_KIND_INTEGER:
        valid = s_integer_of(value, &out->integer, &in_range) && in_range &&
                out->integer >= type->min && out->integer <= type->max;
        break;
    case LYNX_CHECK_KIND_POSITIVE:
        out->number = lynx_value_as_double(value);
        valid = lynx_value_is_number(value) && isfinite(out->number) && out->number > 0;
        break;
    case LYNX_CHECK_KIND_BOOL:
        out->boolean = lynx_value_as_bool(value);
        valid = vtype == LYNX_VALUE_BOOL;
        break;
    }
    return valid ? 1 : s_field_error(check, path, key, type);
}
