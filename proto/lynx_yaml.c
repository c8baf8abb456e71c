//  lynx_yaml: YAML text -> lynx_value over libyaml's event API (see lynx_yaml.h).
//
//  Containers are attached to their parent as soon as they start, so the loader owns only the
//  root; the stack holds borrowed pointers to the open containers and the pending map key.
#include "lynx_yaml.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define S_MAX_DEPTH 64
#define S_TAG_PREFIX "tag:yaml.org,2002:"

typedef struct {
    lynx_value_t *node; //  borrowed: owned by its parent or by the root
    char *key;          //  pending key of an open map, owned; NULL when the next scalar is a key
} s_open_t;

typedef struct {
    yaml_parser_t parser;
    lynx_value_t *root;
    s_open_t stack[S_MAX_DEPTH];
    int depth;
    lynx_err_t *err;
} s_loader_t;

//  Record an error at mark; always returns -1.
static int s_error(s_loader_t *self, yaml_mark_t mark, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static int s_error(s_loader_t *self, yaml_mark_t mark, const char *format, ...)
{
    char reason[LYNX_ERR_MESSAGE_MAX];
    va_list args;
    va_start(args, format);
    vsnprintf(reason, sizeof reason, format, args);
    va_end(args);
    return lynx_err_set(self->err, LYNX_EINVALID, NULL, "line %zu column %zu: %s", mark.line + 1,
                        mark.column + 1, reason);
}

static int s_out_of_memory(s_loader_t *self)
{
    return lynx_err_set(self->err, LYNX_EINTERNAL, NULL, "out of memory parsing YAML");
}

//  --------------------------------------------------------------------------
//  Core schema typing of plain scalars

static bool s_one_of(const char *text, const char *const *words)
{
    for (; *words; words++)
        if (strcmp(text, *words) == 0)
            return true;
    return false;
}

static size_t s_digits(const char *text, size_t i, size_t len, const char *alphabet)
{
    size_t start = i;
    while (i < len && text[i] && strchr(alphabet, text[i]))
        i++;
    return i - start;
}

#define S_DECIMAL "0123456789"

//  [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?
static bool s_is_float(const char *text, size_t len)
{
    size_t i = text[0] == '-' || text[0] == '+' ? 1 : 0;
    size_t whole = s_digits(text, i, len, S_DECIMAL);
    i += whole;
    size_t fraction = 0;
    if (i < len && text[i] == '.') {
        fraction = s_digits(text, ++i, len, S_DECIMAL);
        i += fraction;
    }
    if (whole + fraction == 0)
        return false;
    if (i < len && (text[i] == 'e' || text[i] == 'E')) {
        i++;
        if (i < len && (text[i] == '-' || text[i] == '+'))
            i++;
        size_t exponent = s_digits(text, i, len, S_DECIMAL);
        if (exponent == 0)
            return false;
        i += exponent;
    }
    return i == len;
}

//  Parse text as an integer of the core schema into *value. Returns 1 when it is one, 0 when
//  it is not, -1 when it is one that does not fit in 64 bits.
static int s_parse_int(const char *text, size_t len, int64_t *value)
{
    size_t sign = text[0] == '-' || text[0] == '+' ? 1 : 0;
    int base = 0;
    size_t start = 0;
    if (len > sign && s_digits(text, sign, len, S_DECIMAL) == len - sign)
        base = 10;
    else if (len > 2 && strncmp(text, "0o", 2) == 0 &&
             s_digits(text, 2, len, "01234567") == len - 2)
        base = 8, start = 2;
    else if (len > 2 && strncmp(text, "0x", 2) == 0 &&
             s_digits(text, 2, len, S_DECIMAL "abcdefABCDEF") == len - 2)
        base = 16, start = 2;
    if (!base)
        return 0;
    errno = 0;
    if (base == 10) {
        *value = strtoll(text, NULL, 10);
        return errno == ERANGE ? -1 : 1;
    }
    unsigned long long magnitude = strtoull(text + start, NULL, base);
    if (errno == ERANGE || magnitude > INT64_MAX)
        return -1;
    *value = (int64_t)magnitude;
    return 1;
}

//  Type a plain scalar. NULL with err on an out-of-range integer or out-of-memory.
static lynx_value_t *s_resolve(s_loader_t *self, const yaml_event_t *event)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"true", "True", "TRUE", NULL};
    static const char *const falses[] = {"false", "False", "FALSE", NULL};
    static const char *const infinities[] = {".inf", ".Inf", ".INF", NULL};
    static const char *const nans[] = {".nan", ".NaN", ".NAN", NULL};
    const char *text = (const char *)event->data.scalar.value;
    size_t len = event->data.scalar.length;
    if (memchr(text, '\0', len)) //  only quoted scalars can hold NUL, but be sure
        return lynx_value_stringn(text, len);
    if (s_one_of(text, nulls))
        return lynx_value_null();
    if (s_one_of(text, trues) || s_one_of(text, falses))
        return lynx_value_bool(s_one_of(text, trues));
    int64_t integer;
    int rc = s_parse_int(text, len, &integer);
    if (rc < 0) {
        s_error(self, event->start_mark, "integer %s out of range", text);
        return NULL;
    }
    if (rc > 0)
        return lynx_value_int(integer);
    bool negative = text[0] == '-';
    const char *unsigned_text = text[0] == '-' || text[0] == '+' ? text + 1 : text;
    if (s_one_of(unsigned_text, infinities))
        return lynx_value_double(negative ? -HUGE_VAL : HUGE_VAL);
    if (s_one_of(text, nans))
        return lynx_value_double(NAN);
    if (s_is_float(text, len))
        return lynx_value_double(strtod(text, NULL));
    return lynx_value_stringn(text, len);
}

//  Build the value of a scalar event from its style and tag.
static lynx_value_t *s_scalar(s_loader_t *self, const yaml_event_t *event)
{
    const char *tag = (const char *)event->data.scalar.tag;
    const char *text = (const char *)event->data.scalar.value;
    size_t len = event->data.scalar.length;
    bool plain = event->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    if (!tag)
        return plain ? s_resolve(self, event) : lynx_value_stringn(text, len);
    if (strcmp(tag, "!") == 0 || strcmp(tag, S_TAG_PREFIX "str") == 0)
        return lynx_value_stringn(text, len);
    //  !!null, !!bool, !!int, !!float: the text must type as the tag says.
    static const struct {
        const char *tag;
        lynx_value_type_t type;
    } typed[] = {{S_TAG_PREFIX "null", LYNX_VALUE_NULL},
                 {S_TAG_PREFIX "bool", LYNX_VALUE_BOOL},
                 {S_TAG_PREFIX "int", LYNX_VALUE_INT},
                 {S_TAG_PREFIX "float", LYNX_VALUE_DOUBLE}};
    for (size_t i = 0; i < sizeof typed / sizeof typed[0]; i++) {
        if (strcmp(tag, typed[i].tag) != 0)
            continue;
        lynx_value_t *value = s_resolve(self, event);
        lynx_value_type_t type = lynx_value_type(value);
        if (type == LYNX_VALUE_INT && typed[i].type == LYNX_VALUE_DOUBLE) {
            double number = lynx_value_as_double(value);
            lynx_value_destroy(&value);
            return lynx_value_double(number);
        }
        if (value && type != typed[i].type) {
            lynx_value_destroy(&value);
            s_error(self, event->start_mark, "'%s' is not a valid !!%s", text,
                    typed[i].tag + strlen(S_TAG_PREFIX));
        }
        return value;
    }
    s_error(self, event->start_mark, "unsupported tag '%s'", tag);
    return NULL;
}

//  --------------------------------------------------------------------------
//  Tree building

//  Store node under the pending key of the open map, at the end of the open sequence, or as
//  the root. Takes ownership of *node_p in every case.
static int s_attach(s_loader_t *self, lynx_value_t **node_p)
{
    int rc = 0;
    if (self->depth == 0) {
        self->root = *node_p;
        *node_p = NULL;
    } else {
        s_open_t *top = &self->stack[self->depth - 1];
        if (lynx_value_type(top->node) == LYNX_VALUE_ARRAY)
            rc = lynx_value_append(top->node, node_p);
        else {
            rc = lynx_value_set(top->node, top->key, node_p);
            free(top->key);
            top->key = NULL;
        }
    }
    if (rc) {
        lynx_value_destroy(node_p);
        return s_out_of_memory(self);
    }
    return 0;
}

static bool s_expects_key(const s_loader_t *self)
{
    return self->depth > 0 &&
           lynx_value_type(self->stack[self->depth - 1].node) == LYNX_VALUE_MAP &&
           !self->stack[self->depth - 1].key;
}

static int s_on_key(s_loader_t *self, const yaml_event_t *event)
{
    const char *text = (const char *)event->data.scalar.value;
    size_t len = event->data.scalar.length;
    s_open_t *top = &self->stack[self->depth - 1];
    if (memchr(text, '\0', len))
        return s_error(self, event->start_mark, "map key contains a NUL byte");
    if (lynx_value_get(top->node, text))
        return s_error(self, event->start_mark, "duplicate key '%s'", text);
    top->key = strdup(text);
    return top->key ? 0 : s_out_of_memory(self);
}

static int s_on_scalar(s_loader_t *self, const yaml_event_t *event)
{
    if (event->data.scalar.anchor)
        return s_error(self, event->start_mark, "anchors are not supported ('&%s')",
                       (const char *)event->data.scalar.anchor);
    if (s_expects_key(self))
        return s_on_key(self, event);
    lynx_value_t *value = s_scalar(self, event);
    if (!value)
        return self->err && self->err->code != LYNX_OK ? -1 : s_out_of_memory(self);
    return s_attach(self, &value);
}

static int s_on_start(s_loader_t *self, const yaml_event_t *event)
{
    bool is_map = event->type == YAML_MAPPING_START_EVENT;
    const yaml_char_t *anchor =
        is_map ? event->data.mapping_start.anchor : event->data.sequence_start.anchor;
    const char *tag =
        (const char *)(is_map ? event->data.mapping_start.tag : event->data.sequence_start.tag);
    const char *expected_tag = is_map ? S_TAG_PREFIX "map" : S_TAG_PREFIX "seq";
    if (anchor)
        return s_error(self, event->start_mark, "anchors are not supported ('&%s')",
                       (const char *)anchor);
    if (tag && strcmp(tag, expected_tag) != 0 && strcmp(tag, "!") != 0)
        return s_error(self, event->start_mark, "unsupported tag '%s'", tag);
    if (s_expects_key(self))
        return s_error(self, event->start_mark, "map keys must be scalars");
    if (self->depth >= S_MAX_DEPTH)
        return s_error(self, event->start_mark, "nesting deeper than %d", S_MAX_DEPTH);
    lynx_value_t *node = is_map ? lynx_value_map() : lynx_value_array();
    if (!node)
        return s_out_of_memory(self);
    lynx_value_t *borrowed = node;
    if (s_attach(self, &node))
        return -1;
    self->stack[self->depth++] = (s_open_t){borrowed, NULL};
    return 0;
}

//  Line and column of a byte offset, for reader errors that only carry an offset.
static yaml_mark_t s_mark_at(const char *text, size_t len, size_t offset)
{
    yaml_mark_t mark = {0, 0, 0};
    for (size_t i = 0; i < offset && i < len; i++) {
        if (text[i] == '\n')
            mark.line++, mark.column = 0;
        else if (((unsigned char)text[i] & 0xc0) != 0x80)
            mark.column++;
    }
    return mark;
}

static int s_parser_error(s_loader_t *self, const char *text, size_t len)
{
    const yaml_parser_t *parser = &self->parser;
    const char *problem = parser->problem ? parser->problem : "invalid YAML";
    if (parser->error == YAML_MEMORY_ERROR)
        return s_out_of_memory(self);
    if (parser->error == YAML_READER_ERROR)
        return s_error(self, s_mark_at(text, len, parser->problem_offset), "%s", problem);
    if (parser->context)
        return s_error(self, parser->problem_mark, "%s (%s at line %zu column %zu)", problem,
                       parser->context, parser->context_mark.line + 1,
                       parser->context_mark.column + 1);
    return s_error(self, parser->problem_mark, "%s", problem);
}

lynx_value_t *lynx_yaml_parse(const char *text, size_t len, lynx_err_t *err)
{
    s_loader_t self = {.err = err};
    if (!text) {
        text = "";
        len = 0;
    }
    if (!yaml_parser_initialize(&self.parser)) {
        s_out_of_memory(&self);
        return NULL;
    }
    yaml_parser_set_input_string(&self.parser, (const unsigned char *)text, len);
    lynx_err_clear(err);
    int rc = 0;
    bool done = false;
    while (!done && rc == 0) {
        yaml_event_t event;
        if (!yaml_parser_parse(&self.parser, &event)) {
            rc = s_parser_error(&self, text, len);
            break;
        }
        switch (event.type) {
        case YAML_SCALAR_EVENT:
            rc = s_on_scalar(&self, &event);
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            rc = s_on_start(&self, &event);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            self.depth--;
            break;
        case YAML_ALIAS_EVENT:
            rc = s_error(&self, event.start_mark, "aliases are not supported ('*%s')",
                         (const char *)event.data.alias.anchor);
            break;
        case YAML_DOCUMENT_END_EVENT: //  only the first document counts
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        default:
            break;
        }
        yaml_event_delete(&event);
    }
    for (int i = 0; i < self.depth; i++)
        free(self.stack[i].key);
    yaml_parser_delete(&self.parser);
    if (rc)
        lynx_value_destroy(&self.root);
    else if (!self.root && !(self.root = lynx_value_null()))
        s_out_of_memory(&self);
    return self.root;
}

lynx_value_t *lynx_yaml_load_file(const char *path, lynx_err_t *err)
{
    FILE *file = fopen(path, "rb");
    if (!file) {
        lynx_err_set(err, LYNX_EINVALID, NULL, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *text = NULL;
    size_t len = 0, capacity = 0;
    bool failed = false;
    while (!failed) {
        if (len == capacity) {
            capacity = capacity ? capacity * 2 : 4096;
            char *bigger = realloc(text, capacity);
            if (!bigger) {
                failed = true;
                errno = ENOMEM;
                break;
            }
            text = bigger;
        }
        size_t got = fread(text + len, 1, capacity - len, file);
        len += got;
        if (got == 0) {
            failed = ferror(file) != 0;
            break;
        }
    }
    int error = errno;
    fclose(file);
    lynx_value_t *value = NULL;
    if (failed)
        lynx_err_set(err, LYNX_EINVALID, NULL, "%s: %s", path, strerror(error));
    else {
        lynx_err_t parse_err;
        value = lynx_yaml_parse(text, len, &parse_err);
        if (!value)
            lynx_err_set(err, parse_err.code, parse_err.field, "%s: %s", path, parse_err.message);
    }
    free(text);
    return value;
}
