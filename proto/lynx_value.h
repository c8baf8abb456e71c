//  lynx_value: a dynamically typed tree (null, bool, int, double, string, array, map).
//
//  It is the common currency between our modules: the codec decodes msgpack bodies into it,
//  lynx_json and lynx_yaml convert text to and from it, the broker validates batch configs and
//  builds REST reply bodies with it. Maps keep insertion order (so JSON replies read in the
//  order they were built) and have unique keys. A value owns its children.
#ifndef LYNX_VALUE_H_INCLUDED
#define LYNX_VALUE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    LYNX_VALUE_NULL,
    LYNX_VALUE_BOOL,
    LYNX_VALUE_INT,
    LYNX_VALUE_DOUBLE,
    LYNX_VALUE_STRING,
    LYNX_VALUE_ARRAY,
    LYNX_VALUE_MAP,
} lynx_value_type_t;

typedef struct _lynx_value_t lynx_value_t;

//  Constructors return an owned value, or NULL on out-of-memory.
lynx_value_t *lynx_value_null(void);
lynx_value_t *lynx_value_bool(bool value);
lynx_value_t *lynx_value_int(int64_t value);
lynx_value_t *lynx_value_double(double value);
//  Copy a NUL-terminated string. NULL string gives a null value.
lynx_value_t *lynx_value_string(const char *value);
//  Copy len bytes (may contain NUL bytes; a terminating NUL is added).
lynx_value_t *lynx_value_stringn(const char *value, size_t len);
lynx_value_t *lynx_value_array(void);
lynx_value_t *lynx_value_map(void);

//  Destroy a value and its children; sets *self_p to NULL. NULL-safe.
void lynx_value_destroy(lynx_value_t **self_p);

//  Deep copy; NULL on out-of-memory or NULL input.
lynx_value_t *lynx_value_dup(const lynx_value_t *self);

//  Deep equality (an int and a double are equal when numerically equal).
bool lynx_value_equal(const lynx_value_t *a, const lynx_value_t *b);

//  Type of the value; NULL input counts as LYNX_VALUE_NULL.
lynx_value_type_t lynx_value_type(const lynx_value_t *self);
//  Lower-case type name for error messages ("null", "boolean", "integer", "number", "string",
//  "array", "object").
const char *lynx_value_type_name(lynx_value_type_t type);

//  True for LYNX_VALUE_INT and LYNX_VALUE_DOUBLE.
bool lynx_value_is_number(const lynx_value_t *self);

//  Scalar accessors. Each returns a neutral value (false, 0, 0.0, NULL) on a type mismatch.
//  lynx_value_as_double converts integers; lynx_value_as_int does not truncate doubles.
bool lynx_value_as_bool(const lynx_value_t *self);
int64_t lynx_value_as_int(const lynx_value_t *self);
double lynx_value_as_double(const lynx_value_t *self);
//  Borrowed NUL-terminated string, valid while the value lives.
const char *lynx_value_as_string(const lynx_value_t *self);
size_t lynx_value_string_len(const lynx_value_t *self);

//  Number of elements of an array or entries of a map; 0 for anything else.
size_t lynx_value_size(const lynx_value_t *self);
//  Element i of an array, or value of entry i of a map (borrowed); NULL when out of range.
lynx_value_t *lynx_value_at(const lynx_value_t *self, size_t index);
//  Key of entry i of a map (borrowed); NULL when not a map or out of range.
const char *lynx_value_key_at(const lynx_value_t *self, size_t index);
//  Value stored under key in a map (borrowed); NULL when missing or self is not a map.
lynx_value_t *lynx_value_get(const lynx_value_t *self, const char *key);
//  Follow a dotted path of map keys ("compute.max_parallel_jobs"); NULL when any step is
//  missing.
lynx_value_t *lynx_value_get_path(const lynx_value_t *self, const char *path);

//  Append to an array. Takes ownership of *item_p and nulls it on success; returns -1 (item
//  stays with the caller) when self is not an array or on out-of-memory.
int lynx_value_append(lynx_value_t *self, lynx_value_t **item_p);
//  Set key in a map, replacing any previous value. Ownership as lynx_value_append.
int lynx_value_set(lynx_value_t *self, const char *key, lynx_value_t **item_p);
//  The same for a freshly built child (NULL after an out-of-memory is fine): it is stored, or
//  destroyed when it cannot be. For building reply bodies in one call.
int lynx_value_set_owned(lynx_value_t *self, const char *key, lynx_value_t *child);
int lynx_value_append_owned(lynx_value_t *self, lynx_value_t *child);
//  Remove key from a map; returns 0 if it was present, -1 otherwise.
int lynx_value_remove(lynx_value_t *self, const char *key);

//  Convenience setters for building reply bodies; return -1 on out-of-memory or when self is
//  not a map. A NULL string stores null.
int lynx_value_set_null(lynx_value_t *self, const char *key);
int lynx_value_set_bool(lynx_value_t *self, const char *key, bool value);
int lynx_value_set_int(lynx_value_t *self, const char *key, int64_t value);
int lynx_value_set_double(lynx_value_t *self, const char *key, double value);
int lynx_value_set_string(lynx_value_t *self, const char *key, const char *value);

//  Convenience getters on maps: the value under key, or fallback when missing or mistyped.
const char *lynx_value_get_string(const lynx_value_t *self, const char *key, const char *fallback);
int64_t lynx_value_get_int(const lynx_value_t *self, const char *key, int64_t fallback);
double lynx_value_get_double(const lynx_value_t *self, const char *key, double fallback);
bool lynx_value_get_bool(const lynx_value_t *self, const char *key, bool fallback);

#endif
