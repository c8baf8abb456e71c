//  lynx_check: the field-checking kit (see the header).
#include "lynx_check.h"

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

//  JSON has one number type, so a double holding an exact integer (500.0) is an integer too.
int lynx_check_get_integer(lynx_check_t *check, const lynx_value_t *map, const char *path,
                           const char *key, int flags, int64_t min, int64_t max, int64_t *value)
{
    const lynx_value_t *member = lynx_check_member(map, key);
    if (!member)
        return s_absent(check, path, key, flags);
    int64_t number = 0;
    bool in_range;
    if (lynx_value_type(member) == LYNX_VALUE_INT) {
        number = lynx_value_as_int(member);
        in_range = true;
    } else {
        double real = lynx_value_as_double(member);
        if (lynx_value_type(member) != LYNX_VALUE_DOUBLE || !isfinite(real) || real != trunc(real))
            return lynx_check_error(check, path, key, "must be an integer");
        //  [-2^63, 2^63) are the doubles that convert to int64_t.
        in_range = real >= -0x1p63 && real < 0x1p63;
        number = in_range ? (int64_t)real : 0;
    }
    if (!in_range || number < min || number > max) {
        if ((flags & LYNX_CHECK_NO_MAX) && in_range && number < min)
            return lynx_check_error(check, path, key, "must be >= %" PRId64, min);
        return lynx_check_error(check, path, key, "must be between %" PRId64 " and %" PRId64, min,
                                max);
    }
    *value = number;
    return 1;
}
