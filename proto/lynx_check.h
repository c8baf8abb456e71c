//  lynx_check: the field-checking kit every config block is validated with (the study in
//  broker/study, early-termination rules in lynx_rules, and whatever block comes next). A
//  check walks a lynx_value document once and reports every problem it meets, each with its
//  field path (config.dispersions.mass_kg.distribution.std_dev: must be > 0), instead of
//  stopping at the first; unknown fields are warnings. Problems go to the caller's
//  {field, message} arrays (lynx_problems), and are counted here since those arrays may
//  already hold entries or be NULL.
#ifndef LYNX_CHECK_H_INCLUDED
#define LYNX_CHECK_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lynx_value.h"

//  A check in progress, usually on the caller's stack: zero it, point errors and warnings at
//  arrays (or NULL to only count), run the getters, then read error_count and out_of_memory
//  (an error may have been lost: the check must fail).
typedef struct {
    lynx_value_t *errors;
    lynx_value_t *warnings;
    size_t error_count;
    bool out_of_memory;
} lynx_check_t;

//  Flags of the typed getters. LYNX_CHECK_NO_MAX: the integer has no upper bound of its own
//  (only int64's), so a value below the minimum reads "must be >= min".
enum {
    LYNX_CHECK_OPTIONAL = 0,
    LYNX_CHECK_REQUIRED = 1,
    LYNX_CHECK_NON_EMPTY = 2,
    LYNX_CHECK_NO_MAX = 4
};

//  A field path in a new string: path + "." + key, or path + "[index]" when key is NULL.
//  NULL on out-of-memory (remembered in check). The caller frees it.
char *lynx_check_path_join(lynx_check_t *check, const char *path, const char *key, size_t index);
//  Record an error at path.key (key may be NULL). Always returns -1.
int lynx_check_error(lynx_check_t *check, const char *path, const char *key, const char *format,
                     ...) __attribute__((format(printf, 4, 5)));
//  Record a warning at path.key (key may be NULL): the check still passes.
void lynx_check_warn(lynx_check_t *check, const char *path, const char *key, const char *message);
//  strdup that remembers out-of-memory in check.
char *lynx_check_strdup(lynx_check_t *check, const char *string);
//  Index of name in names (NULL-terminated), or -1.
int lynx_check_name_index(const char *name, const char *const names[]);
//  "a, b, c" into buffer, for messages that list what is accepted. Returns buffer.
const char *lynx_check_name_list(char *buffer, size_t size, const char *const names[]);
//  A warning "unknown field (ignored)" at path.key for each key of map not in known.
void lynx_check_warn_unknown(lynx_check_t *check, const lynx_value_t *map, const char *path,
                             const char *const known[]);

//  Typed getters. Each returns 1 and sets *value when the member is present and valid, 0 when
//  it is absent and optional (leaving *value, the default, alone), and -1 after reporting an
//  error at path.key. JSON null counts as absent: clients that serialise an unset field as
//  null mean "use the default". What they set is borrowed from map.

//  map's member key, or NULL when it is absent or null. Borrowed.
const lynx_value_t *lynx_check_member(const lynx_value_t *map, const char *key);
int lynx_check_get_object(lynx_check_t *check, const lynx_value_t *map, const char *path,
                          const char *key, int flags, const lynx_value_t **value);
int lynx_check_get_array(lynx_check_t *check, const lynx_value_t *map, const char *path,
                         const char *key, int flags, const lynx_value_t **value);
//  Always optional.
int lynx_check_get_bool(lynx_check_t *check, const lynx_value_t *map, const char *path,
                        const char *key, bool *value);
//  With LYNX_CHECK_NON_EMPTY, "" is an error.
int lynx_check_get_string(lynx_check_t *check, const lynx_value_t *map, const char *path,
                          const char *key, int flags, const char **value);
//  A finite number (JSON has no NaN or infinity, but msgpack and YAML do).
int lynx_check_get_number(lynx_check_t *check, const lynx_value_t *map, const char *path,
                          const char *key, int flags, double *value);
//  A required number > 0.
int lynx_check_get_positive(lynx_check_t *check, const lynx_value_t *map, const char *path,
                            const char *key, double *value);
//  An integer in [min, max]; a double holding an exact integer (500.0) counts, as JSON has one
//  number type.
int lynx_check_get_integer(lynx_check_t *check, const lynx_value_t *map, const char *path,
                           const char *key, int flags, int64_t min, int64_t max, int64_t *value);
//  member itself (present) as a finite number: 1, or -1 after reporting an error at path.key.
int lynx_check_number(lynx_check_t *check, const lynx_value_t *member, const char *path,
                      const char *key, double *value);

//  ---------------------------------------------------------------------------------------
//  Typed fields. Config blocks read from a file, the environment and flags alike (the
//  runner's, and later daemons') describe each field by what it accepts, and report one
//  sentence per field whatever was wrong with the value: "must be an integer between 1 and
//  1024". A value comes either as a document member (YAML, JSON: types are strict, so "4" is
//  not an integer) or as text (environment, flags: parsed whole, so "4x" is refused).

typedef enum {
    LYNX_CHECK_KIND_STRING,   //  a non-empty string
    LYNX_CHECK_KIND_STRINGS,  //  a list of non-empty strings, or one comma-separated string
                              //  (items trimmed, empty ones skipped)
    LYNX_CHECK_KIND_ARGS,     //  as STRINGS, but items are kept verbatim and may be empty:
                              //  a program may care about spaces or empty arguments
    LYNX_CHECK_KIND_INTEGER,  //  an integer in [min, max]
    LYNX_CHECK_KIND_POSITIVE, //  a finite number > 0
    LYNX_CHECK_KIND_BOOL,     //  true or false
} lynx_check_kind_t;

typedef struct {
    lynx_check_kind_t kind;
    int64_t min, max; //  for LYNX_CHECK_KIND_INTEGER
} lynx_check_type_t;

//  A field's value once checked. For STRINGS and ARGS, items is an owned NULL-terminated array
//  of count owned strings (never NULL on success, even when empty): take it, or free it with
//  lynx_check_items_free. text is borrowed from the document or the caller's text.
typedef struct {
    const char *text; //  STRING
    char **items;     //  STRINGS, ARGS
    size_t count;
    int64_t integer; //  INTEGER
    double number;   //  POSITIVE
    bool boolean;    //  BOOL
} lynx_check_value_t;

//  "an integer between 1 and 1024", "true or false", ...: what type accepts, into buffer.
const char *lynx_check_expected(const lynx_check_type_t *type, char *buffer, size_t size);
//  value (a document member; NULL or null is absent: returns 0) checked as type: 1 with *out
//  set, or -1 after reporting "must be <expected>" at path.key.
int lynx_check_value(lynx_check_t *check, const lynx_value_t *value, const char *path,
                     const char *key, const lynx_check_type_t *type, lynx_check_value_t *out);
//  The same for text from the environment or a flag: 1 with *out set, or -1.
int lynx_check_text(lynx_check_t *check, const char *text, const char *path, const char *key,
                    const lynx_check_type_t *type, lynx_check_value_t *out);
//  Free an items array of count strings. NULL-safe.
void lynx_check_items_free(char **items, size_t count);

//  Whole-string decimal integer and finite-or-not number: "4x", "", " 4" and (for integers)
//  "2.5" are refused. For text the typed fields do not cover (lynx_options).
bool lynx_check_parse_integer(const char *text, int64_t *value);
bool lynx_check_parse_number(const char *text, double *value);

#endif
