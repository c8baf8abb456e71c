//  lynx_rules: the early-termination rules of a batch, checked and compiled.
//
//  The broker builds one at submit time to validate config.early_termination; the runner
//  builds one per job and evaluates it against the latest value of each telemetry variable.
//  A rule (a top-level condition) is a comparison of one variable with a number, or an all/any
//  group of comparisons and nested groups. Accepted forms, in the terms of the config:
//
//      {name, description, variable, operator: lt|lte|gt|gte|eq|neq, threshold, units}
//      {name?, description, variable, condition: "< 0.1"}        (compact; name derived)
//      {name, description, all: [...]}  or  {name, description, any: [...]}
//
//  Rules are compiled to a flat array of comparisons with short-circuit jumps, and variables
//  are interned to indices 0..variable_count-1, so evaluation does no string work and no
//  allocation. docs/early-termination.md describes the language and its semantics.
#ifndef LYNX_RULES_H_INCLUDED
#define LYNX_RULES_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "lynx_value.h"

//  Used when check_frequency_hz is absent; values must lie in (0, MAX].
#define LYNX_RULES_CHECK_FREQUENCY_HZ_DEFAULT 10.0
#define LYNX_RULES_CHECK_FREQUENCY_HZ_MAX 1000.0
//  Deepest nesting of all/any groups (a top-level group is level 1).
#define LYNX_RULES_DEPTH_MAX 16
//  Most comparisons in one early_termination block, over all its rules.
#define LYNX_RULES_COMPARISONS_MAX 4096

typedef struct _lynx_rules_t lynx_rules_t;

//  Latest value of a telemetry variable: set *value and return true, or return false when the
//  variable has not been seen yet. Called during evaluation; must not change the rules.
typedef bool(lynx_rules_lookup_fn)(const char *variable, double *value, void *arg);

//  Check and compile an early_termination object. path prefixes the field paths of problems
//  ("config.early_termination"; NULL means "early_termination"). Every problem is appended
//  to errors as a {field, message} map, and then the result is NULL; unknown fields are
//  appended to warnings the same way ("unknown field (ignored)") and are not errors. errors
//  and warnings are arrays owned by the caller, either may be NULL. NULL or a null value for
//  early_termination gives the defaults: enabled, 10 Hz, no rules. Out of memory is reported
//  as an error at path. The rules own copies of every string they keep.
lynx_rules_t *lynx_rules_new(const lynx_value_t *early_termination, const char *path,
                             lynx_value_t *errors, lynx_value_t *warnings);

//  Destroy the rules; sets *self_p to NULL. NULL-safe.
void lynx_rules_destroy(lynx_rules_t **self_p);

//  The enabled flag (default true). Disabled rules are still checked, but never fire.
bool lynx_rules_enabled(const lynx_rules_t *self);

//  How often the runner should evaluate, in Hz (default 10).
double lynx_rules_check_frequency_hz(const lynx_rules_t *self);

//  Number of rules (top-level conditions), in config order.
size_t lynx_rules_count(const lynx_rules_t *self);

//  Name of rule index: as configured, or for a compact rule without a name "variable condition"
//  ("orbit.radius_km < 6371"). Names are unique. Borrowed; NULL when index is out of range.
const char *lynx_rules_name(const lynx_rules_t *self, size_t index);

//  Description of rule index, borrowed; NULL when the rule has none or index is out of range.
const char *lynx_rules_description(const lynx_rules_t *self, size_t index);

//  Index of the rule named name, or -1 when there is none.
int lynx_rules_find(const lynx_rules_t *self, const char *name);

//  Number of distinct variables the rules reference. Variable i is the i-th distinct name in
//  config order; the fast evaluator reads values[i] and seen[i].
size_t lynx_rules_variable_count(const lynx_rules_t *self);

//  Name of variable index, borrowed; NULL when index is out of range.
const char *lynx_rules_variable_name(const lynx_rules_t *self, size_t index);

//  Index of the variable called name, or -1 when no rule references it (the runner need not
//  keep its value).
int lynx_rules_variable_index(const lynx_rules_t *self, const char *name);

//  Evaluate every rule against the latest values given by lookup, and return the name of the
//  first rule in config order that fires (borrowed, as lynx_rules_name), or NULL when none
//  does or the rules are disabled. A comparison is false when its variable is unseen or NaN,
//  for every operator including neq; eq and neq compare exactly.
const char *lynx_rules_evaluate(const lynx_rules_t *self, lynx_rules_lookup_fn *lookup, void *arg);

//  The runner's fast path: as lynx_rules_evaluate, with the latest value of variable i in
//  values[i] and whether it has been seen in seen[i] (both lynx_rules_variable_count long).
//  seen may be NULL when unseen values hold NaN. Returns the index of the first rule that
//  fires, or -1. Does not allocate; cost is at most one comparison per configured comparison.
int lynx_rules_evaluate_values(const lynx_rules_t *self, const double values[], const bool seen[]);

#endif
