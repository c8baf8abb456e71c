#include "lynx_value.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct _lynx_value_t {
    lynx_value_type_t type;
    union {
        bool boolean;
        int64_t integer;
        double number;
        struct {
            char *data;
            size_t len;
        } string;
        struct {
            lynx_value_t **items; //  array elements or map values
            char **keys;          //  map keys, NULL for arrays
            size_t size;
            size_t capacity;
        } list;
    } u;
};

static lynx_value_t *s_value_new (lynx_value_type_t type)
{
    lynx_value_t *self = calloc (1, sizeof *self);
    if (self)
        self->type = type;
    return self;
}

lynx_value_t *lynx_value_null (void)
{
    return s_value_new (LYNX_VALUE_NULL);
}

lynx_value_t *lynx_value_bool (bool value)
{
    lynx_value_t *self = s_value_new (LYNX_VALUE_BOOL);
    if (self)
        self->u.boolean = value;
    return self;
}

lynx_value_t *lynx_value_int (int64_t value)
{
    lynx_value_t *self = s_value_new (LYNX_VALUE_INT);
    if (self)
        self->u.integer = value;
    return self;
}

lynx_value_t *lynx_value_double (double value)
{
    lynx_value_t *self = s_value_new (LYNX_VALUE_DOUBLE);
    if (self)
        self->u.number = value;
    return self;
}

lynx_value_t *lynx_value_string (const char *value)
{
    if (!value)
        return lynx_value_null ();
    return lynx_value_stringn (value, strlen (value));
}

lynx_value_t *lynx_value_stringn (const char *value, size_t len)
{
    lynx_value_t *self = s_value_new (LYNX_VALUE_STRING);
    if (!self)
        return NULL;
    self->u.string.data = malloc (len + 1);
    if (!self->u.string.data) {
        free (self);
        return NULL;
    }
    if (len)
        memcpy (self->u.string.data, value, len);
    self->u.string.data[len] = '\0';
    self->u.string.len = len;
    return self;
}

lynx_value_t *lynx_value_array (void)
{
    return s_value_new (LYNX_VALUE_ARRAY);
}

lynx_value_t *lynx_value_map (void)
{
    return s_value_new (LYNX_VALUE_MAP);
}

void lynx_value_destroy (lynx_value_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    lynx_value_t *self = *self_p;
    if (self->type == LYNX_VALUE_STRING)
        free (self->u.string.data);
    else if (self->type == LYNX_VALUE_ARRAY || self->type == LYNX_VALUE_MAP) {
        for (size_t i = 0; i < self->u.list.size; i++) {
            lynx_value_destroy (&self->u.list.items[i]);
            if (self->u.list.keys)
                free (self->u.list.keys[i]);
        }
        free (self->u.list.items);
        free (self->u.list.keys);
    }
    free (self);
    *self_p = NULL;
}

lynx_value_t *lynx_value_dup (const lynx_value_t *self)
{
    if (!self)
        return NULL;
    switch (self->type) {
    case LYNX_VALUE_NULL:
        return lynx_value_null ();
    case LYNX_VALUE_BOOL:
        return lynx_value_bool (self->u.boolean);
    case LYNX_VALUE_INT:
        return lynx_value_int (self->u.integer);
    case LYNX_VALUE_DOUBLE:
        return lynx_value_double (self->u.number);
    case LYNX_VALUE_STRING:
        return lynx_value_stringn (self->u.string.data, self->u.string.len);
    case LYNX_VALUE_ARRAY:
    case LYNX_VALUE_MAP:
        break;
    }
    lynx_value_t *copy = s_value_new (self->type);
    for (size_t i = 0; copy && i < self->u.list.size; i++) {
        lynx_value_t *item = lynx_value_dup (self->u.list.items[i]);
        int rc = self->type == LYNX_VALUE_MAP
                     ? lynx_value_set (copy, self->u.list.keys[i], &item)
                     : lynx_value_append (copy, &item);
        if (rc != 0) {
            lynx_value_destroy (&item);
            lynx_value_destroy (&copy);
        }
    }
    return copy;
}

bool lynx_value_equal (const lynx_value_t *a, const lynx_value_t *b)
{
    if (lynx_value_is_number (a) && lynx_value_is_number (b)) {
        if (a->type == LYNX_VALUE_INT && b->type == LYNX_VALUE_INT)
            return a->u.integer == b->u.integer;
        return lynx_value_as_double (a) == lynx_value_as_double (b);
    }
    if (lynx_value_type (a) != lynx_value_type (b))
        return false;
    if (!a || !b)
        return !a && !b ? true : lynx_value_type (a) == LYNX_VALUE_NULL;
    switch (a->type) {
    case LYNX_VALUE_NULL:
        return true;
    case LYNX_VALUE_BOOL:
        return a->u.boolean == b->u.boolean;
    case LYNX_VALUE_STRING:
        return a->u.string.len == b->u.string.len &&
               memcmp (a->u.string.data, b->u.string.data, a->u.string.len) == 0;
    case LYNX_VALUE_ARRAY:
        if (a->u.list.size != b->u.list.size)
            return false;
        for (size_t i = 0; i < a->u.list.size; i++)
            if (!lynx_value_equal (a->u.list.items[i], b->u.list.items[i]))
                return false;
        return true;
    case LYNX_VALUE_MAP:
        if (a->u.list.size != b->u.list.size)
            return false;
        for (size_t i = 0; i < a->u.list.size; i++) {
            const lynx_value_t *other = lynx_value_get (b, a->u.list.keys[i]);
            if (!other || !lynx_value_equal (a->u.list.items[i], other))
                return false;
        }
        return true;
    default:
        return false;
    }
}

lynx_value_type_t lynx_value_type (const lynx_value_t *self)
{
    return self ? self->type : LYNX_VALUE_NULL;
}

const char *lynx_value_type_name (lynx_value_type_t type)
{
    static const char *names[] = {"null",   "boolean", "integer", "number",
                                  "string", "array",   "object"};
    return (unsigned) type < sizeof names / sizeof names[0] ? names[type] : "unknown";
}

bool lynx_value_is_number (const lynx_value_t *self)
{
    return self && (self->type == LYNX_VALUE_INT || self->type == LYNX_VALUE_DOUBLE);
}

bool lynx_value_as_bool (const lynx_value_t *self)
{
    return self && self->type == LYNX_VALUE_BOOL ? self->u.boolean : false;
}

int64_t lynx_value_as_int (const lynx_value_t *self)
{
    return self && self->type == LYNX_VALUE_INT ? self->u.integer : 0;
}

double lynx_value_as_double (const lynx_value_t *self)
{
    if (self && self->type == LYNX_VALUE_DOUBLE)
        return self->u.number;
    if (self && self->type == LYNX_VALUE_INT)
        return (double) self->u.integer;
    return 0.0;
}

const char *lynx_value_as_string (const lynx_value_t *self)
{
    return self && self->type == LYNX_VALUE_STRING ? self->u.string.data : NULL;
}

size_t lynx_value_string_len (const lynx_value_t *self)
{
    return self && self->type == LYNX_VALUE_STRING ? self->u.string.len : 0;
}

static bool s_is_list (const lynx_value_t *self)
{
    return self && (self->type == LYNX_VALUE_ARRAY || self->type == LYNX_VALUE_MAP);
}

size_t lynx_value_size (const lynx_value_t *self)
{
    return s_is_list (self) ? self->u.list.size : 0;
}

lynx_value_t *lynx_value_at (const lynx_value_t *self, size_t index)
{
    if (!s_is_list (self) || index >= self->u.list.size)
        return NULL;
    return self->u.list.items[index];
}

const char *lynx_value_key_at (const lynx_value_t *self, size_t index)
{
    if (lynx_value_type (self) != LYNX_VALUE_MAP || index >= self->u.list.size)
        return NULL;
    return self->u.list.keys[index];
}

static ssize_t s_map_find (const lynx_value_t *self, const char *key, size_t key_len)
{
    if (lynx_value_type (self) != LYNX_VALUE_MAP || !key)
        return -1;
    for (size_t i = 0; i < self->u.list.size; i++)
        if (strncmp (self->u.list.keys[i], key, key_len) == 0 &&
            self->u.list.keys[i][key_len] == '\0')
            return (ssize_t) i;
    return -1;
}

lynx_value_t *lynx_value_get (const lynx_value_t *self, const char *key)
{
    ssize_t index = key ? s_map_find (self, key, strlen (key)) : -1;
    return index < 0 ? NULL : self->u.list.items[index];
}

lynx_value_t *lynx_value_get_path (const lynx_value_t *self, const char *path)
{
    const lynx_value_t *node = self;
    while (node && path) {
        const char *dot = strchr (path, '.');
        size_t len = dot ? (size_t) (dot - path) : strlen (path);
        ssize_t index = s_map_find (node, path, len);
        node = index < 0 ? NULL : node->u.list.items[index];
        path = dot ? dot + 1 : NULL;
    }
    return (lynx_value_t *) node;
}

static int s_list_grow (lynx_value_t *self)
{
    if (self->u.list.size < self->u.list.capacity)
        return 0;
    size_t capacity = self->u.list.capacity ? self->u.list.capacity * 2 : 4;
    lynx_value_t **items = realloc (self->u.list.items, capacity * sizeof *items);
    if (!items)
        return -1;
    self->u.list.items = items;
    if (self->type == LYNX_VALUE_MAP) {
        char **keys = realloc (self->u.list.keys, capacity * sizeof *keys);
        if (!keys)
            return -1;
        self->u.list.keys = keys;
    }
    self->u.list.capacity = capacity;
    return 0;
}

int lynx_value_append (lynx_value_t *self, lynx_value_t **item_p)
{
    if (lynx_value_type (self) != LYNX_VALUE_ARRAY || !item_p || !*item_p || s_list_grow (self))
        return -1;
    self->u.list.items[self->u.list.size++] = *item_p;
    *item_p = NULL;
    return 0;
}

int lynx_value_set (lynx_value_t *self, const char *key, lynx_value_t **item_p)
{
    if (lynx_value_type (self) != LYNX_VALUE_MAP || !key || !item_p || !*item_p)
        return -1;
    ssize_t index = s_map_find (self, key, strlen (key));
    if (index >= 0) {
        lynx_value_destroy (&self->u.list.items[index]);
        self->u.list.items[index] = *item_p;
        *item_p = NULL;
        return 0;
    }
    if (s_list_grow (self))
        return -1;
    char *key_copy = strdup (key);
    if (!key_copy)
        return -1;
    self->u.list.keys[self->u.list.size] = key_copy;
    self->u.list.items[self->u.list.size++] = *item_p;
    *item_p = NULL;
    return 0;
}

int lynx_value_remove (lynx_value_t *self, const char *key)
{
    ssize_t index = key ? s_map_find (self, key, strlen (key)) : -1;
    if (index < 0)
        return -1;
    lynx_value_destroy (&self->u.list.items[index]);
    free (self->u.list.keys[index]);
    size_t tail = self->u.list.size - (size_t) index - 1;
    memmove (self->u.list.items + index, self->u.list.items + index + 1,
             tail * sizeof *self->u.list.items);
    memmove (self->u.list.keys + index, self->u.list.keys + index + 1,
             tail * sizeof *self->u.list.keys);
    self->u.list.size--;
    return 0;
}

//  Takes the freshly built item (possibly NULL after out-of-memory) and stores it or frees it.
static int s_set_owned (lynx_value_t *self, const char *key, lynx_value_t *item)
{
    if (lynx_value_set (self, key, &item) == 0)
        return 0;
    lynx_value_destroy (&item);
    return -1;
}

int lynx_value_set_null (lynx_value_t *self, const char *key)
{
    return s_set_owned (self, key, lynx_value_null ());
}

int lynx_value_set_bool (lynx_value_t *self, const char *key, bool value)
{
    return s_set_owned (self, key, lynx_value_bool (value));
}

int lynx_value_set_int (lynx_value_t *self, const char *key, int64_t value)
{
    return s_set_owned (self, key, lynx_value_int (value));
}

int lynx_value_set_double (lynx_value_t *self, const char *key, double value)
{
    return s_set_owned (self, key, lynx_value_double (value));
}

int lynx_value_set_string (lynx_value_t *self, const char *key, const char *value)
{
    return s_set_owned (self, key, lynx_value_string (value));
}

const char *lynx_value_get_string (const lynx_value_t *self, const char *key,
                                   const char *fallback)
{
    const char *value = lynx_value_as_string (lynx_value_get (self, key));
    return value ? value : fallback;
}

int64_t lynx_value_get_int (const lynx_value_t *self, const char *key, int64_t fallback)
{
    const lynx_value_t *value = lynx_value_get (self, key);
    if (lynx_value_type (value) == LYNX_VALUE_INT)
        return value->u.integer;
    //  JSON has one number type: accept a double that holds an exact integer.
    if (lynx_value_type (value) == LYNX_VALUE_DOUBLE && value->u.number == floor (value->u.number) &&
        fabs (value->u.number) < 9.0e15)
        return (int64_t) value->u.number;
    return fallback;
}

double lynx_value_get_double (const lynx_value_t *self, const char *key, double fallback)
{
    const lynx_value_t *value = lynx_value_get (self, key);
    return lynx_value_is_number (value) ? lynx_value_as_double (value) : fallback;
}

bool lynx_value_get_bool (const lynx_value_t *self, const char *key, bool fallback)
{
    const lynx_value_t *value = lynx_value_get (self, key);
    return lynx_value_type (value) == LYNX_VALUE_BOOL ? value->u.boolean : fallback;
}
