//  lynx_rules: the early-termination rules of a batch, checked and compiled.
//
//  Checking walks the early_termination object once and reports every problem, like the
//  broker's config check (null counts as absent; unknown fields are warnings). While it walks,
//  it appends each comparison to a flat array in config order and records the shape of the
//  current rule (which comparisons each all/any group spans). When the rule is complete and
//  the config is clean so far, the shape is turned into jumps: each comparison says where to
//  go when it is true and when it is false, the way a compiler lowers && and ||. Evaluation
//  is then a forward walk over the array with no recursion, strings or allocation: it stops at
//  the first rule whose comparisons lead to "fire", or at the end of the array.
#include "lynx_rules.h"

#include "lynx_check.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { S_LT, S_LTE, S_GT, S_GTE, S_EQ, S_NEQ, S_OP_COUNT } s_op_t;

static const char *const s_op_names[] = {"lt", "lte", "gt", "gte", "eq", "neq", NULL};
//  The compact form's spelling of the same operators, in the same order.
static const char *const s_op_symbols[] = {"<", "<=", ">", ">=", "==", "!=", NULL};

static const char *const s_block_fields[] = {"enabled", "check_frequency_hz", "conditions", NULL};
static const char *const s_rule_fields[] = {"name",      "description", "variable",  "operator",
                                            "threshold", "units",       "condition", "all",
                                            "any",       NULL};
//  Members of a group are bare comparisons or groups: a name or description there is unused.
static const char *const s_member_fields[] = {"variable",  "operator", "threshold", "units",
                                              "condition", "all",      "any",       NULL};

//  One comparison. on_true and on_false are the index of the next comparison to evaluate,
//  leaf_count when no rule fires, or -(rule + 1) when rule fires. Jumps only go forward.
typedef struct {
    double threshold;
    uint32_t variable;
    uint32_t op; //  s_op_t
    int32_t on_true;
    int32_t on_false;
} s_leaf_t;

typedef struct {
    char *name;
    char *description;
    size_t position; //  index in the conditions array, for duplicate-name messages
} s_rule_t;

struct _lynx_rules_t {
    bool enabled;
    double check_frequency_hz;
    s_rule_t *rules;
    size_t rule_count;
    s_leaf_t *leaves;
    size_t leaf_count;
    char **variables;
    size_t variable_count;
};

//  ---------------------------------------------------------------------------------------
//  Checking state. A rule's shape is a preorder array of nodes; a node's subtree is the nodes
//  up to end_node, and its comparisons are the leaves up to end_leaf.

typedef enum { S_NODE_LEAF, S_NODE_ALL, S_NODE_ANY } s_kind_t;

typedef struct {
    s_kind_t kind;
    size_t end_node;
    size_t end_leaf;
} s_node_t;

typedef struct {
    lynx_rules_t *self;
    lynx_check_t report; //  where problems go
    bool too_many;       //  LYNX_RULES_COMPARISONS_MAX was passed (reported once)
    const char *conditions_path;
    s_node_t *nodes;
    size_t node_count;
    size_t node_alloc;
    size_t leaf_alloc;
    size_t rule_alloc;
    size_t variable_alloc;
} s_check_t;

//  Make room for one more element in a growable array. -1 on out-of-memory.
static int s_grow(s_check_t *check, void **array, size_t *alloc, size_t count, size_t size)
{
    if (count < *alloc)
        return 0;
    size_t wanted = *alloc ? *alloc * 2 : 8;
    void *grown = realloc(*array, wanted * size);
    if (!grown) {
        check->report.out_of_memory = true;
        return -1;
    }
    *array = grown;
    *alloc = wanted;
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  The compact form: "< 0.1", "<=-5", " >= 1e-3 ". Whitespace is allowed around the operator
//  and the number; the number is decimal with an optional sign, fraction and exponent (no
//  hex, inf or nan). Returns 0, or -1 when text does not have that shape.

static size_t s_skip_space(const char *text, size_t at)
{
    while (text[at] && isspace((unsigned char)text[at]))
        at++;
    return at;
}

static size_t s_skip_digits(const char *text, size_t at)
{
    while (isdigit((unsigned char)text[at]))
        at++;
    return at;
}

static int s_parse_condition(const char *text, s_op_t *op, double *threshold, size_t *number_at,
                             size_t *number_len)
{
    size_t at = s_skip_space(text, 0);
    size_t op_len = 0;
    for (int i = 0; i < S_OP_COUNT; i++) {
        size_t len = strlen(s_op_symbols[i]);
        if (len > op_len && strncmp(text + at, s_op_symbols[i], len) == 0) {
            *op = (s_op_t)i;
            op_len = len;
        }
    }
    if (op_len == 0)
        return -1;
    at = s_skip_space(text, at + op_len);

    size_t start = at;
    if (text[at] == '+' || text[at] == '-')
        at++;
    size_t integer_end = s_skip_digits(text, at);
    size_t fraction_end = integer_end;
    if (text[integer_end] == '.')
        fraction_end = s_skip_digits(text, integer_end + 1);
    if (integer_end == at && fraction_end <= integer_end + 1)
        return -1; //  no digits before or after the point
    at = fraction_end;
    if (text[at] == 'e' || text[at] == 'E') {
        size_t exponent = at + 1;
        if (text[exponent] == '+' || text[exponent] == '-')
            exponent++;
        size_t exponent_end = s_skip_digits(text, exponent);
        if (exponent_end == exponent)
            return -1;
        at = exponent_end;
    }
    size_t end = at;
    if (text[s_skip_space(text, at)] != '\0')
        return -1;
    *threshold = strtod(text + start, NULL);
    *number_at = start;
    *number_len = end - start;
    return 0;
}

//  ---------------------------------------------------------------------------------------
//  Comparisons and groups

static int s_push_node(s_check_t *check, s_kind_t kind)
{
    if (s_grow(check, (void **)&check->nodes, &check->node_alloc, check->node_count,
               sizeof *check->nodes))
        return -1;
    check->nodes[check->node_count] = (s_node_t){.kind = kind};
    return (int)check->node_count++;
}

//  Index of variable name, added on first use. -1 on out-of-memory.
static int64_t s_intern(s_check_t *check, const char *name)
{
    lynx_rules_t *self = check->self;
    for (size_t i = 0; i < self->variable_count; i++)
        if (strcmp(self->variables[i], name) == 0)
            return (int64_t)i;
    char *copy = lynx_check_strdup(&check->report, name);
    if (!copy || s_grow(check, (void **)&self->variables, &check->variable_alloc,
                        self->variable_count, sizeof *self->variables)) {
        free(copy);
        return -1;
    }
    self->variables[self->variable_count] = copy;
    return (int64_t)self->variable_count++;
}

static void s_emit_leaf(s_check_t *check, const char *variable, s_op_t op, double threshold)
{
    lynx_rules_t *self = check->self;
    if (self->leaf_count >= LYNX_RULES_COMPARISONS_MAX) {
        if (!check->too_many)
            lynx_check_error(&check->report, check->conditions_path, NULL,
                             "too many comparisons (at most %d)", LYNX_RULES_COMPARISONS_MAX);
        check->too_many = true;
        return;
    }
    int64_t index = s_intern(check, variable);
    if (index < 0 || s_grow(check, (void **)&self->leaves, &check->leaf_alloc, self->leaf_count,
                            sizeof *self->leaves))
        return;
    self->leaves[self->leaf_count++] =
        (s_leaf_t){.threshold = threshold, .variable = (uint32_t)index, .op = op};
}

//  What a top-level rule needs from its comparison to derive a name: the compact condition's
//  operator and number as written.
typedef struct {
    bool compact;
    s_op_t op;
    const char *number;
    size_t number_len;
} s_compact_t;

static void s_check_comparison(s_check_t *check, const lynx_value_t *map, const char *path,
                               s_compact_t *compact)
{
    size_t errors_before = check->report.error_count;
    const char *variable = NULL;
    lynx_check_get_string(&check->report, map, path, "variable",
                          LYNX_CHECK_REQUIRED | LYNX_CHECK_NON_EMPTY, &variable);
    s_op_t op = S_LT;
    double threshold = 0;

    const lynx_value_t *condition = lynx_check_member(map, "condition");
    if (condition) {
        const char *text = NULL, *units = NULL;
        size_t number_at = 0, number_len = 0;
        if (lynx_check_member(map, "operator") || lynx_check_member(map, "threshold"))
            lynx_check_error(&check->report, path, "condition",
                             "cannot be combined with operator and threshold (use one form)");
        else if (lynx_check_get_string(&check->report, map, path, "condition", LYNX_CHECK_OPTIONAL,
                                       &text) == 1) {
            if (s_parse_condition(text, &op, &threshold, &number_at, &number_len))
                lynx_check_error(
                    &check->report, path, "condition",
                    "cannot parse '%s' (expected an operator <, <=, >, >=, ==, != and a "
                    "number)",
                    text);
            else if (!isfinite(threshold))
                lynx_check_error(&check->report, path, "condition", "number out of range in '%s'",
                                 text);
            else
                *compact = (s_compact_t){true, op, text + number_at, number_len};
        }
        lynx_check_get_string(&check->report, map, path, "units", LYNX_CHECK_OPTIONAL, &units);
    } else {
        const char *name = NULL, *units = NULL;
        if (lynx_check_get_string(&check->report, map, path, "operator",
                                  LYNX_CHECK_REQUIRED | LYNX_CHECK_NON_EMPTY, &name) == 1) {
            int index = lynx_check_name_index(name, s_op_names);
            if (index < 0)
                lynx_check_error(&check->report, path, "operator",
                                 "unknown operator '%s' (use lt, lte, gt, gte, eq, neq)", name);
            else
                op = (s_op_t)index;
        }
        const lynx_value_t *number = lynx_check_member(map, "threshold");
        if (!number)
            lynx_check_error(&check->report, path, "threshold", "required");
        else if (!lynx_value_is_number(number))
            lynx_check_error(&check->report, path, "threshold", "must be a number");
        else if (!isfinite(threshold = lynx_value_as_double(number)))
            lynx_check_error(&check->report, path, "threshold", "must be a finite number");
        lynx_check_get_string(&check->report, map, path, "units",
                              LYNX_CHECK_REQUIRED | LYNX_CHECK_NON_EMPTY, &units);
    }
    if (check->report.error_count == errors_before)
        s_emit_leaf(check, variable, op, threshold);
}

static void s_check_node(s_check_t *check, const lynx_value_t *map, const char *path, int depth,
                         s_compact_t *compact);

//  The members of an all or any group, which is at nesting level depth.
static void s_check_group(s_check_t *check, const lynx_value_t *map, const char *path,
                          const char *key, int depth)
{
    if (depth > LYNX_RULES_DEPTH_MAX) {
        lynx_check_error(&check->report, path, key, "groups nest deeper than %d levels",
                         LYNX_RULES_DEPTH_MAX);
        return;
    }
    const lynx_value_t *members = lynx_check_member(map, key);
    if (lynx_value_type(members) != LYNX_VALUE_ARRAY) {
        lynx_check_error(&check->report, path, key, "must be an array");
        return;
    }
    if (lynx_value_size(members) == 0) {
        lynx_check_error(&check->report, path, key, "must not be empty");
        return;
    }
    int node = s_push_node(check, strcmp(key, "all") == 0 ? S_NODE_ALL : S_NODE_ANY);
    char *group_path = lynx_check_path_join(&check->report, path, key, 0);
    if (node < 0 || !group_path) {
        free(group_path);
        return;
    }
    for (size_t i = 0; i < lynx_value_size(members); i++) {
        char *member_path = lynx_check_path_join(&check->report, group_path, NULL, i);
        s_compact_t unused = {0};
        if (member_path)
            s_check_node(check, lynx_value_at(members, i), member_path, depth + 1, &unused);
        free(member_path);
    }
    free(group_path);
    check->nodes[node].end_node = check->node_count;
    check->nodes[node].end_leaf = check->self->leaf_count;
}

//  A comparison or a group, at nesting level depth (a top-level comparison is at level 1).
static void s_check_node(s_check_t *check, const lynx_value_t *map, const char *path, int depth,
                         s_compact_t *compact)
{
    if (lynx_value_type(map) != LYNX_VALUE_MAP) {
        lynx_check_error(&check->report, path, NULL, "must be an object");
        return;
    }
    if (depth > 1)
        lynx_check_warn_unknown(&check->report, map, path, s_member_fields);
    bool has_variable = lynx_check_member(map, "variable") != NULL;
    bool has_all = lynx_check_member(map, "all") != NULL;
    bool has_any = lynx_check_member(map, "any") != NULL;
    if (has_variable + has_all + has_any != 1) {
        lynx_check_error(&check->report, path, NULL, "must have exactly one of variable, all, any");
        return;
    }
    if (has_variable) {
        int node = s_push_node(check, S_NODE_LEAF);
        s_check_comparison(check, map, path, compact);
        if (node >= 0) {
            check->nodes[node].end_node = check->node_count;
            check->nodes[node].end_leaf = check->self->leaf_count;
        }
    } else
        s_check_group(check, map, path, has_all ? "all" : "any", depth);
}

//  Set the jumps of the comparisons under node: where to go when the node is true and when it
//  is false. Inside an all, a true member goes on to the next member; inside an any, a false
//  one does. The next member's first comparison is the one after this member's last.
static void s_link(s_check_t *check, size_t node, int32_t on_true, int32_t on_false)
{
    const s_node_t *nodes = check->nodes;
    if (nodes[node].kind == S_NODE_LEAF) {
        s_leaf_t *leaf = &check->self->leaves[nodes[node].end_leaf - 1];
        leaf->on_true = on_true;
        leaf->on_false = on_false;
        return;
    }
    for (size_t member = node + 1; member < nodes[node].end_node; member = nodes[member].end_node) {
        bool last = nodes[member].end_node == nodes[node].end_node;
        int32_t next = (int32_t)nodes[member].end_leaf;
        if (nodes[node].kind == S_NODE_ALL)
            s_link(check, member, last ? on_true : next, on_false);
        else
            s_link(check, member, on_true, last ? on_false : next);
    }
}

//  ---------------------------------------------------------------------------------------
//  Rules

static int s_push_rule(s_check_t *check, char *name, char *description, size_t position)
{
    lynx_rules_t *self = check->self;
    if (!name || s_grow(check, (void **)&self->rules, &check->rule_alloc, self->rule_count,
                        sizeof *self->rules)) {
        free(name);
        free(description);
        return -1;
    }
    self->rules[self->rule_count++] = (s_rule_t){name, description, position};
    return 0;
}

//  Top-level condition number position, at path.
static void s_check_rule(s_check_t *check, const lynx_value_t *map, const char *path,
                         size_t position)
{
    if (lynx_value_type(map) != LYNX_VALUE_MAP) {
        lynx_check_error(&check->report, path, NULL, "must be an object");
        return;
    }
    lynx_check_warn_unknown(&check->report, map, path, s_rule_fields);
    //  The compact form comes from the batch examples, which carry no name: it gets one.
    bool compact_form = lynx_check_member(map, "variable") && lynx_check_member(map, "condition") &&
                        !lynx_check_member(map, "all") && !lynx_check_member(map, "any");
    const char *name = NULL, *description = NULL;
    int named = lynx_check_get_string(
        &check->report, map, path, "name",
        compact_form ? LYNX_CHECK_OPTIONAL : LYNX_CHECK_REQUIRED | LYNX_CHECK_NON_EMPTY, &name);
    lynx_check_get_string(&check->report, map, path, "description", LYNX_CHECK_OPTIONAL,
                          &description);

    size_t errors_before = check->report.error_count;
    check->node_count = 0;
    s_compact_t compact = {0};
    s_check_node(check, map, path, 1, &compact);

    char *owned_name = NULL;
    if (named == 1)
        owned_name = lynx_check_strdup(&check->report, name);
    else if (named == 0 && compact.compact && check->report.error_count == errors_before) {
        const char *variable = lynx_value_get_string(map, "variable", "");
        if (asprintf(&owned_name, "%s %s %.*s", variable, s_op_symbols[compact.op],
                     (int)compact.number_len, compact.number) < 0) {
            check->report.out_of_memory = true;
            owned_name = NULL;
        }
    }
    if (!owned_name)
        return;
    lynx_rules_t *self = check->self;
    for (size_t i = 0; i < self->rule_count; i++)
        if (strcmp(self->rules[i].name, owned_name) == 0) {
            lynx_check_error(&check->report, path, named == 1 ? "name" : NULL,
                             "duplicate name '%s' (first used by conditions[%zu])", owned_name,
                             self->rules[i].position);
            free(owned_name);
            return;
        }
    char *owned_description = description ? lynx_check_strdup(&check->report, description) : NULL;
    if (s_push_rule(check, owned_name, owned_description, position))
        return;
    //  Jumps are only needed, and the shape only complete, when nothing is wrong so far.
    if (check->report.error_count == 0 && !check->report.out_of_memory)
        s_link(check, 0, -(int32_t)self->rule_count, (int32_t)check->nodes[0].end_leaf);
}

lynx_rules_t *lynx_rules_new(const lynx_value_t *early_termination, const char *path,
                             lynx_value_t *errors, lynx_value_t *warnings)
{
    if (!path)
        path = "early_termination";
    s_check_t check = {.report = {.errors = errors, .warnings = warnings}};
    lynx_rules_t *self = calloc(1, sizeof *self);
    if (!self) {
        lynx_check_error(&check.report, path, NULL, "out of memory");
        return NULL;
    }
    check.self = self;
    self->enabled = true;
    self->check_frequency_hz = LYNX_RULES_CHECK_FREQUENCY_HZ_DEFAULT;
    if (lynx_value_type(early_termination) == LYNX_VALUE_NULL)
        return self;
    if (lynx_value_type(early_termination) != LYNX_VALUE_MAP) {
        lynx_check_error(&check.report, path, NULL, "must be an object");
        lynx_rules_destroy(&self);
        return NULL;
    }
    lynx_check_warn_unknown(&check.report, early_termination, path, s_block_fields);

    const lynx_value_t *enabled = lynx_check_member(early_termination, "enabled");
    if (enabled && lynx_value_type(enabled) != LYNX_VALUE_BOOL)
        lynx_check_error(&check.report, path, "enabled", "must be a boolean");
    else if (enabled)
        self->enabled = lynx_value_as_bool(enabled);

    const lynx_value_t *frequency = lynx_check_member(early_termination, "check_frequency_hz");
    if (frequency && !lynx_value_is_number(frequency))
        lynx_check_error(&check.report, path, "check_frequency_hz", "must be a number");
    else if (frequency) {
        double hz = lynx_value_as_double(frequency);
        if (hz > 0 && hz <= LYNX_RULES_CHECK_FREQUENCY_HZ_MAX)
            self->check_frequency_hz = hz;
        else
            lynx_check_error(&check.report, path, "check_frequency_hz", "must be > 0 and <= %g",
                             LYNX_RULES_CHECK_FREQUENCY_HZ_MAX);
    }

    const lynx_value_t *conditions = lynx_check_member(early_termination, "conditions");
    char *conditions_path = lynx_check_path_join(&check.report, path, "conditions", 0);
    check.conditions_path = conditions_path;
    if (conditions && lynx_value_type(conditions) != LYNX_VALUE_ARRAY)
        lynx_check_error(&check.report, path, "conditions", "must be an array");
    else if (conditions_path)
        for (size_t i = 0; i < lynx_value_size(conditions); i++) {
            char *rule_path = lynx_check_path_join(&check.report, conditions_path, NULL, i);
            if (rule_path)
                s_check_rule(&check, lynx_value_at(conditions, i), rule_path, i);
            free(rule_path);
        }
    free(conditions_path);
    free(check.nodes);

    if (check.report.out_of_memory)
        lynx_check_error(&check.report, path, NULL, "out of memory");
    if (check.report.error_count > 0)
        lynx_rules_destroy(&self);
    return self;
}

void lynx_rules_destroy(lynx_rules_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    lynx_rules_t *self = *self_p;
    for (size_t i = 0; i < self->rule_count; i++) {
        free(self->rules[i].name);
        free(self->rules[i].description);
    }
    free(self->rules);
    for (size_t i = 0; i < self->variable_count; i++)
        free(self->variables[i]);
    free(self->variables);
    free(self->leaves);
    free(self);
    *self_p = NULL;
}

//  ---------------------------------------------------------------------------------------
//  Accessors

bool lynx_rules_enabled(const lynx_rules_t *self)
{
    return self && self->enabled;
}

double lynx_rules_check_frequency_hz(const lynx_rules_t *self)
{
    return self ? self->check_frequency_hz : LYNX_RULES_CHECK_FREQUENCY_HZ_DEFAULT;
}

size_t lynx_rules_count(const lynx_rules_t *self)
{
    return self ? self->rule_count : 0;
}

const char *lynx_rules_name(const lynx_rules_t *self, size_t index)
{
    return self && index < self->rule_count ? self->rules[index].name : NULL;
}

const char *lynx_rules_description(const lynx_rules_t *self, size_t index)
{
    return self && index < self->rule_count ? self->rules[index].description : NULL;
}

int lynx_rules_find(const lynx_rules_t *self, const char *name)
{
    for (size_t i = 0; name && i < lynx_rules_count(self); i++)
        if (strcmp(self->rules[i].name, name) == 0)
            return (int)i;
    return -1;
}

size_t lynx_rules_variable_count(const lynx_rules_t *self)
{
    return self ? self->variable_count : 0;
}

const char *lynx_rules_variable_name(const lynx_rules_t *self, size_t index)
{
    return self && index < self->variable_count ? self->variables[index] : NULL;
}

int lynx_rules_variable_index(const lynx_rules_t *self, const char *name)
{
    for (size_t i = 0; name && i < lynx_rules_variable_count(self); i++)
        if (strcmp(self->variables[i], name) == 0)
            return (int)i;
    return -1;
}

//  ---------------------------------------------------------------------------------------
//  Evaluation

//  NaN compares false with everything, neq included (C's != would say true).
static bool s_holds(const s_leaf_t *leaf, double value)
{
    if (isnan(value))
        return false;
    switch ((s_op_t)leaf->op) {
    case S_LT:
        return value < leaf->threshold;
    case S_LTE:
        return value <= leaf->threshold;
    case S_GT:
        return value > leaf->threshold;
    case S_GTE:
        return value >= leaf->threshold;
    case S_EQ:
        return value == leaf->threshold;
    case S_NEQ:
        return value != leaf->threshold;
    case S_OP_COUNT:
        break;
    }
    return false;
}

const char *lynx_rules_evaluate(const lynx_rules_t *self, lynx_rules_lookup_fn *lookup, void *arg)
{
    if (!self || !self->enabled || !lookup)
        return NULL;
    int32_t at = 0;
    while (at < (int32_t)self->leaf_count) {
        const s_leaf_t *leaf = &self->leaves[at];
        double value = NAN;
        bool holds = lookup(self->variables[leaf->variable], &value, arg) && s_holds(leaf, value);
        at = holds ? leaf->on_true : leaf->on_false;
        if (at < 0)
            return self->rules[-at - 1].name;
    }
    return NULL;
}

int lynx_rules_evaluate_values(const lynx_rules_t *self, const double values[], const bool seen[])
{
    if (!self || !self->enabled || !values)
        return -1;
    int32_t at = 0;
    while (at < (int32_t)self->leaf_count) {
        const s_leaf_t *leaf = &self->leaves[at];
        bool holds = (!seen || seen[leaf->variable]) && s_holds(leaf, values[leaf->variable]);
        at = holds ? leaf->on_true : leaf->on_false;
        if (at < 0)
            return -at - 1;
    }
    return -1;
}
