//  broker_study_check_internal: what the two halves of broker_study_check share.
//  broker_study_check.c checks the config section by section; broker_dist_check.c checks each
//  dispersion's distribution. Both report through a study_check_t and read members with the
//  typed getters below. Only those two files include this header.
#ifndef BROKER_STUDY_CHECK_INTERNAL_H_INCLUDED
#define BROKER_STUDY_CHECK_INTERNAL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker_study_check.h"
#include "lynx_value.h"

//  Reporting. Problems are counted here rather than in the caller's arrays, which may already
//  hold entries or be NULL.
typedef struct {
    lynx_value_t *errors;
    lynx_value_t *warnings;
    size_t error_count;
    bool out_of_memory;
} study_check_t;

//  Flags for the typed getters. STUDY_CHECK_NO_MAX: the integer has no upper bound of its own
//  (only int64's), so a value below the minimum reads "must be >= min".
enum {
    STUDY_CHECK_OPTIONAL = 0,
    STUDY_CHECK_REQUIRED = 1,
    STUDY_CHECK_NON_EMPTY = 2,
    STUDY_CHECK_NO_MAX = 4
};

//  A field path in a new string: path + "." + key, or path + "[index]" when key is NULL.
//  NULL on out-of-memory (remembered in check). The caller frees it.
char *study_check_path_join(study_check_t *check, const char *path, const char *key, size_t index);
//  Records an error at path.key (key may be NULL). Always returns -1.
int study_check_error(study_check_t *check, const char *path, const char *key, const char *format,
                      ...) __attribute__((format(printf, 4, 5)));
//  "a, b, c" into buffer, for messages that list what is accepted. Returns buffer.
const char *study_check_name_list(char *buffer, size_t size, const char *const names[]);
//  A warning at path.key for each key of map not in known (NULL-terminated).
void study_check_warn_unknown(study_check_t *check, const lynx_value_t *map, const char *path,
                              const char *const known[]);

//  Typed getters. Each returns 1 and sets *value when the member is present and valid, 0 when
//  it is absent and optional (leaving *value, the default, alone), and -1 after reporting an
//  error. JSON null counts as absent. What they set is borrowed from map.

//  map's member key, or NULL when it is absent or null. Borrowed.
const lynx_value_t *study_check_member(const lynx_value_t *map, const char *key);
int study_check_get_array(study_check_t *check, const lynx_value_t *map, const char *path,
                          const char *key, int flags, const lynx_value_t **value);
//  With STUDY_CHECK_NON_EMPTY, "" is an error.
int study_check_get_string(study_check_t *check, const lynx_value_t *map, const char *path,
                           const char *key, int flags, const char **value);
//  A finite number.
int study_check_get_number(study_check_t *check, const lynx_value_t *map, const char *path,
                           const char *key, int flags, double *value);
//  A required number > 0.
int study_check_get_positive(study_check_t *check, const lynx_value_t *map, const char *path,
                             const char *key, double *value);
//  member itself (present) as a finite number: JSON has no NaN or infinity, but msgpack and
//  YAML do. 1, or -1 after reporting an error at path.key.
int study_check_number(study_check_t *check, const lynx_value_t *member, const char *path,
                       const char *key, double *value);

//  Check a dispersion's distribution object at path into dimension->spec (and, for choice and
//  constant, dimension->weights and dimension->values). Problems are reported in check.
//  Defined in broker_dist_check.c.
void study_check_distribution(study_check_t *check, broker_study_dimension_t *dimension,
                              const lynx_value_t *map, const char *path);

#endif
