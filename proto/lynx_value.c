#include "lynx_value.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

//  Maps look keys up by a linear scan while small; once they outgrow S_INDEX_MIN_ENTRIES they
//  get a hash index, so building or decoding a map of n keys costs O(n), not O(n^2) (a hostile
//  frame of a million keys would otherwise stall the broker for hours).
#define S_INDEX_MIN_ENTRIES 16
//  Sizes are 32-bit to keep a value at 40 bytes; the index needs slot numbers below 2^32.
#define S_LIST_MAX_CAPACITY ((uint32_t)1 << 31)

//  One slot of the open-addressing table: the low 32 bits of the key's hash (so rebuilding
//  and deleting never rehash a string, and most mismatches skip the string compare) and the
//  entry's position in the map plus one, 0 for an empty slot.
typedef struct {
    uint32_t hash;
    uint32_t entry;
} s_slot_t;

//  Linear probing over twice as many slots as the map has capacity (load <= 1/2).
typedef struct {
    uint64_t key[2]; //  SipHash key, fixed for the map's lifetime
    size_t mask;     //  slot count - 1
    s_slot_t slots[];
} s_index_t;

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
            s_index_t *index;     //  maps past S_INDEX_MIN_ENTRIES entries, else NULL
            uint32_t size;
            uint32_t capacity;
        } list;
    } u;
};

static lynx_value_t *s_value_new(lynx_value_type_t type)
{
    lynx_value_t *self = calloc(1, sizeof *self);
    if (self)
        self->type = type;
    return self;
}

lynx_value_t *lynx_value_null(void)
{
    return s_value_new(LYNX_VALUE_NULL);
}

lynx_value_t *lynx_value_bool(bool value)
{
    lynx_value_t *self = s_value_new(LYNX_VALUE_BOOL);
    if (self)
        self->u.boolean = value;
    return self;
}

lynx_value_t *lynx_value_int(int64_t value)
{
    lynx_value_t *self = s_value_new(LYNX_VALUE_INT);
    if (self)
        self->u.integer = value;
    return self;
}

lynx_value_t *lynx_value_double(double value)
{
    lynx_value_t *self = s_value_new(LYNX_VALUE_DOUBLE);
    if (self)
        self->u.number = value;
    return self;
}

lynx_value_t *lynx_value_string(const char *value)
{
    if (!value)
        return lynx_value_null();
    return lynx_value_stringn(value, strlen(value));
}

lynx_value_t *lynx_value_stringn(const char *value, size_t len)
{ //  One allocation for the node and its text: strings are most of a message's values.
    if (len > SIZE_MAX - sizeof(lynx_value_t) - 1)
        return NULL;
    lynx_value_t *self = malloc(sizeof *self + len + 1);
    if (!self)
        return NULL;
    memset(self, 0, sizeof *self);
    self->type = LYNX_VALUE_STRING;
    self->u.string.data = (char *)(self + 1);
    if (len)
        memcpy(self->u.string.data, value, len);
    self->u.string.data[len] = '\0';
    self->u.string.len = len;
    return self;
}

lynx_value_t *lynx_value_array(void)
{
    return s_value_new(LYNX_VALUE_ARRAY);
}

lynx_value_t *lynx_value_map(void)
{
    return s_value_new(LYNX_VALUE_MAP);
}

void lynx_value_destroy(lynx_value_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    lynx_value_t *self = *self_p;
    //  A string's text lives in the node's own allocation: nothing more to free.
    if (self->type == LYNX_VALUE_ARRAY || self->type == LYNX_VALUE_MAP) {
        for (size_t i = 0; i < self->u.list.size; i++) {
            lynx_value_destroy(&self->u.list.items[i]);
            if (self->u.list.keys)
                free(self->u.list.keys[i]);
        }
        free(self->u.list.items);
        free(self->u.list.keys);
        free(self->u.list.index);
    }
    free(self);
    *self_p = NULL;
}

lynx_value_t *lynx_value_dup(const lynx_value_t *self)
{
    if (!self)
        return NULL;
    switch (self->type) {
    case LYNX_VALUE_NULL:
        return lynx_value_null();
    case LYNX_VALUE_BOOL:
        return lynx_value_bool(self->u.boolean);
    case LYNX_VALUE_INT:
        return lynx_value_int(self->u.integer);
    case LYNX_VALUE_DOUBLE:
        return lynx_value_double(self->u.number);
    case LYNX_VALUE_STRING:
        return lynx_value_stringn(self->u.string.data, self->u.string.len);
    case LYNX_VALUE_ARRAY:
    case LYNX_VALUE_MAP:
        break;
    }
    lynx_value_t *copy = s_value_new(self->type);
    for (size_t i = 0; copy && i < self->u.list.size; i++) {
        lynx_value_t *item = lynx_value_dup(self->u.list.items[i]);
        int rc = self->type == LYNX_VALUE_MAP ? lynx_value_set(copy, self->u.list.keys[i], &item)
                                              : lynx_value_append(copy, &item);
        if (rc != 0) {
            lynx_value_destroy(&item);
            lynx_value_destroy(&copy);
        }
    }
    return copy;
}

bool lynx_value_equal(const lynx_value_t *a, const lynx_value_t *b)
{
    if (lynx_value_is_number(a) && lynx_value_is_number(b)) {
        if (a->type == LYNX_VALUE_INT && b->type == LYNX_VALUE_INT)
            return a->u.integer == b->u.integer;
        return lynx_value_as_double(a) == lynx_value_as_double(b);
    }
    if (lynx_value_type(a) != lynx_value_type(b))
        return false;
    if (!a || !b)
        return !a && !b ? true : lynx_value_type(a) == LYNX_VALUE_NULL;
    switch (a->type) {
    case LYNX_VALUE_NULL:
        return true;
    case LYNX_VALUE_BOOL:
        return a->u.boolean == b->u.boolean;
    case LYNX_VALUE_STRING:
        return a->u.string.len == b->u.string.len &&
               memcmp(a->u.string.data, b->u.string.data, a->u.string.len) == 0;
    case LYNX_VALUE_ARRAY:
        if (a->u.list.size != b->u.list.size)
            return false;
        for (size_t i = 0; i < a->u.list.size; i++)
            if (!lynx_value_equal(a->u.list.items[i], b->u.list.items[i]))
                return false;
        return true;
    case LYNX_VALUE_MAP:
        if (a->u.list.size != b->u.list.size)
            return false;
        for (size_t i = 0; i < a->u.list.size; i++) {
            const lynx_value_t *other = lynx_value_get(b, a->u.list.keys[i]);
            if (!other || !lynx_value_equal(a->u.list.items[i], other))
                return false;
        }
        return true;
    default:
        return false;
    }
}

lynx_value_type_t lynx_value_type(const lynx_value_t *self)
{
    return self ? self->type : LYNX_VALUE_NULL;
}

const char *lynx_value_type_name(lynx_value_type_t type)
{
    static const char *names[] = {"null",   "boolean", "integer", "number",
                                  "string", "array",   "object"};
    return (unsigned)type < sizeof names / sizeof names[0] ? names[type] : "unknown";
}

bool lynx_value_is_number(const lynx_value_t *self)
{
    return self && (self->type == LYNX_VALUE_INT || self->type == LYNX_VALUE_DOUBLE);
}

bool lynx_value_as_bool(const lynx_value_t *self)
{
    return self && self->type == LYNX_VALUE_BOOL ? self->u.boolean : false;
}

int64_t lynx_value_as_int(const lynx_value_t *self)
{
    return self && self->type == LYNX_VALUE_INT ? self->u.integer : 0;
}

double lynx_value_as_double(const lynx_value_t *self)
{
    if (self && self->type == LYNX_VALUE_DOUBLE)
        return self->u.number;
    if (self && self->type == LYNX_VALUE_INT)
        return (double)self->u.integer;
    return 0.0;
}

const char *lynx_value_as_string(const lynx_value_t *self)
{
    return self && self->type == LYNX_VALUE_STRING ? self->u.string.data : NULL;
}

size_t lynx_value_string_len(const lynx_value_t *self)
{
    return self && self->type == LYNX_VALUE_STRING ? self->u.string.len : 0;
}

static bool s_is_list(const lynx_value_t *self)
{
    return self && (self->type == LYNX_VALUE_ARRAY || self->type == LYNX_VALUE_MAP);
}

size_t lynx_value_size(const lynx_value_t *self)
{
    return s_is_list(self) ? self->u.list.size : 0;
}

lynx_value_t *lynx_value_at(const lynx_value_t *self, size_t index)
{
    if (!s_is_list(self) || index >= self->u.list.size)
        return NULL;
    return self->u.list.items[index];
}

const char *lynx_value_key_at(const lynx_value_t *self, size_t index)
{
    if (lynx_value_type(self) != LYNX_VALUE_MAP || index >= self->u.list.size)
        return NULL;
    return self->u.list.keys[index];
}

//  --------------------------------------------------------------------------
//  Map index

//  SipHash-1-3: keyed, so without the key nobody can craft keys that all land in one probe
//  chain (a plain FNV or multiply-shift hash with a public seed would let a client rebuild
//  the quadratic case on purpose).
static void s_sip_round(uint64_t v[4])
{
    v[0] += v[1];
    v[1] = v[1] << 13 | v[1] >> 51;
    v[1] ^= v[0];
    v[0] = v[0] << 32 | v[0] >> 32;
    v[2] += v[3];
    v[3] = v[3] << 16 | v[3] >> 48;
    v[3] ^= v[2];
    v[0] += v[3];
    v[3] = v[3] << 21 | v[3] >> 43;
    v[3] ^= v[0];
    v[2] += v[1];
    v[1] = v[1] << 17 | v[1] >> 47;
    v[1] ^= v[2];
    v[2] = v[2] << 32 | v[2] >> 32;
}

static uint64_t s_siphash(const uint64_t key[2], const char *data, size_t len)
{
    uint64_t v[4] = {0x736f6d6570736575ULL ^ key[0], 0x646f72616e646f6dULL ^ key[1],
                     0x6c7967656e657261ULL ^ key[0], 0x7465646279746573ULL ^ key[1]};
    const unsigned char *bytes = (const unsigned char *)data;
    size_t whole = len & ~(size_t)7;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t word = 0;
        for (size_t j = 0; j < 8; j++)
            word |= (uint64_t)bytes[i + j] << (8 * j);
        v[3] ^= word;
        s_sip_round(v);
        v[0] ^= word;
    }
    uint64_t last = (uint64_t)len << 56;
    for (size_t j = 0; j < (len & 7); j++)
        last |= (uint64_t)bytes[whole + j] << (8 * j);
    v[3] ^= last;
    s_sip_round(v);
    v[0] ^= last;
    v[2] ^= 0xff;
    for (int round = 0; round < 3; round++)
        s_sip_round(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

static uint64_t s_mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

//  A key the client cannot know: heap and stack addresses (randomized by ASLR) and the clock.
static void s_index_seed(const lynx_value_t *self, uint64_t key[2])
{
    struct timespec now = {0, 0};
    timespec_get(&now, TIME_UTC);
    uint64_t stack = (uint64_t)(uintptr_t)&now;
    key[0] = s_mix64((uint64_t)(uintptr_t)self ^ (uint64_t)now.tv_nsec);
    key[1] = s_mix64(key[0] ^ stack ^ (uint64_t)now.tv_sec);
}

static uint32_t s_index_hash(const s_index_t *index, const char *key, size_t len)
{
    return (uint32_t)s_siphash(index->key, key, len);
}

//  Put entry (a position in the map) with its hash into the first free slot of its chain.
static void s_index_insert(s_index_t *index, uint32_t hash, uint32_t entry)
{
    size_t slot = hash & index->mask;
    while (index->slots[slot].entry)
        slot = (slot + 1) & index->mask;
    index->slots[slot] = (s_slot_t){hash, entry + 1};
}

//  Replace the index with one sized for capacity entries, carrying the hashes over (or
//  hashing every key the first time). On out-of-memory the old index stays in place.
static int s_index_rebuild(lynx_value_t *self, uint32_t capacity)
{
    size_t slots = (size_t)capacity * 2;
    s_index_t *old = self->u.list.index;
    s_index_t *index = calloc(1, sizeof *index + slots * sizeof index->slots[0]);
    if (!index)
        return -1;
    index->mask = slots - 1;
    if (old) {
        memcpy(index->key, old->key, sizeof index->key);
        for (size_t slot = 0; slot <= old->mask; slot++)
            if (old->slots[slot].entry)
                s_index_insert(index, old->slots[slot].hash, old->slots[slot].entry - 1);
    } else {
        s_index_seed(self, index->key);
        for (uint32_t i = 0; i < self->u.list.size; i++) {
            const char *key = self->u.list.keys[i];
            s_index_insert(index, s_index_hash(index, key, strlen(key)), i);
        }
    }
    free(old);
    self->u.list.index = index;
    return 0;
}

//  Drop the slot of entry removed (which lives in slot). Backward-shift deletion keeps every
//  probe chain unbroken without tombstones.
static void s_index_delete(s_index_t *index, size_t slot)
{
    size_t hole = slot;
    for (size_t next = (hole + 1) & index->mask; index->slots[next].entry;
         next = (next + 1) & index->mask) {
        size_t home = index->slots[next].hash & index->mask;
        //  An entry may fill the hole unless its home lies cyclically in (hole, next].
        if (((next - home) & index->mask) >= ((next - hole) & index->mask)) {
            index->slots[hole] = index->slots[next];
            hole = next;
        }
    }
    index->slots[hole].entry = 0;
}

//  Removing entry removed shifts the entries after it down by one: renumber their slots,
//  finding each by its key's hash when they are few (removing near the end stays cheap),
//  else by one sweep over all slots.
static void s_index_renumber(const lynx_value_t *self, uint32_t removed)
{
    s_index_t *index = self->u.list.index;
    size_t after = self->u.list.size - removed - 1;
    if (after * 16 > index->mask) {
        for (size_t slot = 0; slot <= index->mask; slot++)
            if (index->slots[slot].entry > removed + 1)
                index->slots[slot].entry--;
        return;
    }
    for (uint32_t entry = removed + 1; entry < self->u.list.size; entry++) {
        const char *key = self->u.list.keys[entry];
        size_t slot = s_index_hash(index, key, strlen(key)) & index->mask;
        while (index->slots[slot].entry != entry + 1)
            slot = (slot + 1) & index->mask;
        index->slots[slot].entry--;
    }
}

//  --------------------------------------------------------------------------
//  Map lookup

static bool s_key_equal(const char *stored, const char *key, size_t len)
{
    return strncmp(stored, key, len) == 0 && stored[len] == '\0';
}

//  Position of the len-byte key in map self, or -1. With an index, *slot_p (if given) gets the
//  slot that holds it.
static ssize_t s_map_find(const lynx_value_t *self, const char *key, size_t len, size_t *slot_p)
{
    if (lynx_value_type(self) != LYNX_VALUE_MAP || !key)
        return -1;
    const s_index_t *index = self->u.list.index;
    if (!index) {
        for (uint32_t i = 0; i < self->u.list.size; i++)
            if (s_key_equal(self->u.list.keys[i], key, len))
                return (ssize_t)i;
        return -1;
    }
    uint32_t hash = s_index_hash(index, key, len);
    for (size_t slot = hash & index->mask; index->slots[slot].entry;
         slot = (slot + 1) & index->mask) {
        uint32_t entry = index->slots[slot].entry - 1;
        if (index->slots[slot].hash == hash && s_key_equal(self->u.list.keys[entry], key, len)) {
            if (slot_p)
                *slot_p = slot;
            return (ssize_t)entry;
        }
    }
    return -1;
}

lynx_value_t *lynx_value_get(const lynx_value_t *self, const char *key)
{
    ssize_t index = key ? s_map_find(self, key, strlen(key), NULL) : -1;
    return index < 0 ? NULL : self->u.list.items[index];
}

lynx_value_t *lynx_value_get_path(const lynx_value_t *self, const char *path)
{
    const lynx_value_t *node = self;
    while (node && path) {
        const char *dot = strchr(path, '.');
        size_t len = dot ? (size_t)(dot - path) : strlen(path);
        ssize_t index = s_map_find(node, path, len, NULL);
        node = index < 0 ? NULL : node->u.list.items[index];
        path = dot ? dot + 1 : NULL;
    }
    return (lynx_value_t *)node;
}

//  Make room for one more element. A map that passes S_INDEX_MIN_ENTRIES gets its index here,
//  and the index grows with the arrays. On failure the list is unchanged.
static int s_list_grow(lynx_value_t *self)
{
    if (self->u.list.size < self->u.list.capacity)
        return 0;
    if (self->u.list.capacity >= S_LIST_MAX_CAPACITY)
        return -1;
    uint32_t capacity = self->u.list.capacity ? self->u.list.capacity * 2 : 4;
    lynx_value_t **items = realloc(self->u.list.items, capacity * sizeof *items);
    if (!items)
        return -1;
    self->u.list.items = items;
    if (self->type == LYNX_VALUE_MAP) {
        char **keys = realloc(self->u.list.keys, capacity * sizeof *keys);
        if (!keys)
            return -1;
        self->u.list.keys = keys;
        if (capacity > S_INDEX_MIN_ENTRIES && s_index_rebuild(self, capacity))
            return -1;
    }
    self->u.list.capacity = capacity;
    return 0;
}

int lynx_value_append(lynx_value_t *self, lynx_value_t **item_p)
{
    if (lynx_value_type(self) != LYNX_VALUE_ARRAY || !item_p || !*item_p || s_list_grow(self))
        return -1;
    self->u.list.items[self->u.list.size++] = *item_p;
    *item_p = NULL;
    return 0;
}

int lynx_value_set(lynx_value_t *self, const char *key, lynx_value_t **item_p)
{
    if (lynx_value_type(self) != LYNX_VALUE_MAP || !key || !item_p || !*item_p)
        return -1;
    size_t len = strlen(key);
    ssize_t index = s_map_find(self, key, len, NULL);
    if (index >= 0) {
        lynx_value_destroy(&self->u.list.items[index]);
        self->u.list.items[index] = *item_p;
        *item_p = NULL;
        return 0;
    }
    char *key_copy = malloc(len + 1);
    if (!key_copy || s_list_grow(self)) {
        free(key_copy);
        return -1;
    }
    memcpy(key_copy, key, len + 1);
    uint32_t entry = self->u.list.size++;
    self->u.list.keys[entry] = key_copy;
    self->u.list.items[entry] = *item_p;
    *item_p = NULL;
    if (self->u.list.index)
        s_index_insert(self->u.list.index, s_index_hash(self->u.list.index, key, len), entry);
    return 0;
}

int lynx_value_remove(lynx_value_t *self, const char *key)
{
    size_t slot = 0;
    ssize_t index = key ? s_map_find(self, key, strlen(key), &slot) : -1;
    if (index < 0)
        return -1;
    if (self->u.list.index) {
        s_index_delete(self->u.list.index, slot);
        s_index_renumber(self, (uint32_t)index);
    }
    lynx_value_destroy(&self->u.list.items[index]);
    free(self->u.list.keys[index]);
    size_t tail = self->u.list.size - (size_t)index - 1;
    memmove(self->u.list.items + index, self->u.list.items + index + 1,
            tail * sizeof *self->u.list.items);
    memmove(self->u.list.keys + index, self->u.list.keys + index + 1,
            tail * sizeof *self->u.list.keys);
    self->u.list.size--;
    return 0;
}

int lynx_value_set_owned(lynx_value_t *self, const char *key, lynx_value_t *child)
{
    if (lynx_value_set(self, key, &child) == 0)
        return 0;
    lynx_value_destroy(&child);
    return -1;
}

int lynx_value_append_owned(lynx_value_t *self, lynx_value_t *child)
{
    if (lynx_value_append(self, &child) == 0)
        return 0;
    lynx_value_destroy(&child);
    return -1;
}

int lynx_value_set_null(lynx_value_t *self, const char *key)
{
    return lynx_value_set_owned(self, key, lynx_value_null());
}

int lynx_value_set_bool(lynx_value_t *self, const char *key, bool value)
{
    return lynx_value_set_owned(self, key, lynx_value_bool(value));
}

int lynx_value_set_int(lynx_value_t *self, const char *key, int64_t value)
{
    return lynx_value_set_owned(self, key, lynx_value_int(value));
}

int lynx_value_set_double(lynx_value_t *self, const char *key, double value)
{
    return lynx_value_set_owned(self, key, lynx_value_double(value));
}

int lynx_value_set_string(lynx_value_t *self, const char *key, const char *value)
{
    return lynx_value_set_owned(self, key, lynx_value_string(value));
}

const char *lynx_value_get_string(const lynx_value_t *self, const char *key, const char *fallback)
{
    const char *value = lynx_value_as_string(lynx_value_get(self, key));
    return value ? value : fallback;
}

int64_t lynx_value_get_int(const lynx_value_t *self, const char *key, int64_t fallback)
{
    const lynx_value_t *value = lynx_value_get(self, key);
    if (lynx_value_type(value) == LYNX_VALUE_INT)
        return value->u.integer;
    //  JSON has one number type: accept a double that holds an exact integer.
    if (lynx_value_type(value) == LYNX_VALUE_DOUBLE && value->u.number == floor(value->u.number) &&
        fabs(value->u.number) < 9.0e15)
        return (int64_t)value->u.number;
    return fallback;
}

double lynx_value_get_double(const lynx_value_t *self, const char *key, double fallback)
{
    const lynx_value_t *value = lynx_value_get(self, key);
    return lynx_value_is_number(value) ? lynx_value_as_double(value) : fallback;
}

bool lynx_value_get_bool(const lynx_value_t *self, const char *key, bool fallback)
{
    const lynx_value_t *value = lynx_value_get(self, key);
    return lynx_value_type(value) == LYNX_VALUE_BOOL ? value->u.boolean : fallback;
}
