//  lynx_msgpack: lynx_value <-> msgpack, the only module that includes msgpack.h (see the
//  header).
//
//  Decoding runs in two passes over untrusted bytes. s_scan walks the msgpack structure
//  first, checking every declared length against the bytes that remain and the nesting
//  depth; only then does msgpack_unpack_next build objects. The first pass is what keeps us
//  safe: msgpack-c 4.0 allocates a declared array length up front (an array32 header of
//  0xffffffff asks for 128 GiB) and caps its own stack at 32 open containers with an opaque
//  "out of memory" error.
#include "lynx_msgpack.h"

#include <inttypes.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#define S_ZONE_CHUNK 928 //  bytes: stays in glibc's small bins

struct _lynx_msgpack_writer_t {
    msgpack_sbuffer buffer;
    msgpack_packer packer;
};

//  --------------------------------------------------------------------------
//  Pass 1: structural scan of untrusted msgpack.

typedef enum { S_HEAD_SCALAR, S_HEAD_ARRAY, S_HEAD_MAP } s_head_kind_t;

typedef struct {
    s_head_kind_t kind;
    size_t header;    //  bytes of the type byte and length fields
    uint64_t payload; //  bytes after the header (scalars)
    uint64_t count;   //  elements of an array, entries of a map
} s_head_t;

static int s_truncated(lynx_err_t *err)
{
    return lynx_err_set(err, LYNX_EPROTOCOL, NULL, "truncated msgpack");
}

static uint64_t s_read_be(const unsigned char *bytes, size_t width)
{
    uint64_t value = 0;
    for (size_t i = 0; i < width; i++)
        value = value << 8 | bytes[i];
    return value;
}

//  Decode the header of the object at offset. The object's payload may still run past the end.
static int s_read_head(const unsigned char *data, size_t size, size_t offset, s_head_t *head,
                       lynx_err_t *err)
{
    if (offset >= size)
        return s_truncated(err);
    unsigned char byte = data[offset];
    *head = (s_head_t){S_HEAD_SCALAR, 1, 0, 0};
    if (byte <= 0x7f || byte >= 0xe0 || byte == 0xc0 || byte == 0xc2 || byte == 0xc3)
        return 0; //  fixint, nil, bool
    if (byte >= 0x80 && byte <= 0x8f) {
        *head = (s_head_t){S_HEAD_MAP, 1, 0, byte & 0x0f};
        return 0;
    }
    if (byte >= 0x90 && byte <= 0x9f) {
        *head = (s_head_t){S_HEAD_ARRAY, 1, 0, byte & 0x0f};
        return 0;
    }
    if (byte >= 0xa0 && byte <= 0xbf) {
        head->payload = byte & 0x1f;
        return 0;
    }
    //  For the rest: width of the length field, bytes that follow it regardless of the length
    //  (the ext type byte) and fixed payload size for numbers and fixext.
    size_t width = 0, extra = 0, fixed = 0;
    switch (byte) {
    case 0xc4: //  bin 8/16/32
    case 0xc5:
    case 0xc6:
        width = (size_t)1 << (byte - 0xc4);
        break;
    case 0xc7: //  ext 8/16/32
    case 0xc8:
    case 0xc9:
        width = (size_t)1 << (byte - 0xc7);
        extra = 1;
        break;
    case 0xca: //  float 32/64
        fixed = 4;
        break;
    case 0xcb:
        fixed = 8;
        break;
    case 0xcc: //  uint 8..64
    case 0xcd:
    case 0xce:
    case 0xcf:
        fixed = (size_t)1 << (byte - 0xcc);
        break;
    case 0xd0: //  int 8..64
    case 0xd1:
    case 0xd2:
    case 0xd3:
        fixed = (size_t)1 << (byte - 0xd0);
        break;
    case 0xd4: //  fixext 1..16
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
        fixed = 1 + ((size_t)1 << (byte - 0xd4));
        break;
    case 0xd9: //  str 8/16/32
    case 0xda:
    case 0xdb:
        width = (size_t)1 << (byte - 0xd9);
        break;
    case 0xdc: //  array 16/32
    case 0xdd:
        width = (size_t)2 << (byte - 0xdc);
        head->kind = S_HEAD_ARRAY;
        break;
    case 0xde: //  map 16/32
    case 0xdf:
        width = (size_t)2 << (byte - 0xde);
        head->kind = S_HEAD_MAP;
        break;
    default: //  0xc1 is never used
        return lynx_err_set(err, LYNX_EPROTOCOL, NULL, "invalid msgpack type byte 0x%02x", byte);
    }
    if (size - offset - 1 < width)
        return s_truncated(err);
    uint64_t length = s_read_be(data + offset + 1, width);
    head->header = 1 + width;
    if (head->kind == S_HEAD_SCALAR)
        head->payload = fixed + extra + length;
    else
        head->count = length;
    return 0;
}

//  Check that one complete object starts at *offset_p, with containers no deeper than
//  LYNX_MSGPACK_MAX_DEPTH (depth is the level of this object, 1 at the top), and move past it.
static int s_scan(const unsigned char *data, size_t size, size_t *offset_p, int depth,
                  lynx_err_t *err)
{
    s_head_t head = {0};
    if (s_read_head(data, size, *offset_p, &head, err))
        return -1;
    size_t offset = *offset_p + head.header;
    size_t remaining = size - offset;
    if (head.kind == S_HEAD_SCALAR) {
        if (head.payload > remaining)
            return s_truncated(err);
        *offset_p = offset + head.payload;
        return 0;
    }
    if (depth > LYNX_MSGPACK_MAX_DEPTH)
        return lynx_err_set(err, LYNX_EPROTOCOL, NULL, "nesting deeper than %d",
                            LYNX_MSGPACK_MAX_DEPTH);
    //  Every element takes at least one byte: a longer declared count cannot be honest, and
    //  letting it through would make msgpack-c allocate for it.
    uint64_t children = head.kind == S_HEAD_MAP ? head.count * 2 : head.count;
    if (children > remaining)
        return lynx_err_set(err, LYNX_EPROTOCOL, NULL,
                            "truncated msgpack: %s of %" PRIu64 " %s in %zu remaining bytes",
                            head.kind == S_HEAD_MAP ? "map" : "array", head.count,
                            head.kind == S_HEAD_MAP ? "entries" : "elements", remaining);
    for (uint64_t i = 0; i < children; i++)
        if (s_scan(data, size, &offset, depth + 1, err))
            return -1;
    *offset_p = offset;
    return 0;
}

//  --------------------------------------------------------------------------
//  Pass 2: msgpack objects -> lynx_value, with a field path for error messages.

//  Where the conversion is, as a stack of keys and indices: cheap to keep on the happy path,
//  formatted into "body.runs[3].name" only when there is an error to report.
typedef struct {
    const char *key; //  NULL for an array index
    size_t key_len;
    uint32_t index;
} s_step_t;

typedef struct {
    const char *root;
    s_step_t steps[LYNX_MSGPACK_MAX_DEPTH + 2];
    size_t depth;
    char path[LYNX_ERR_FIELD_MAX];
    lynx_err_t *err;
} s_convert_t;

static void s_path_push_key(s_convert_t *self, const char *key, size_t len)
{
    if (self->depth < sizeof self->steps / sizeof self->steps[0])
        self->steps[self->depth] = (s_step_t){key, len, 0};
    self->depth++;
}

static void s_path_push_index(s_convert_t *self, uint32_t index)
{
    if (self->depth < sizeof self->steps / sizeof self->steps[0])
        self->steps[self->depth] = (s_step_t){NULL, 0, index};
    self->depth++;
}

static void s_path_pop(s_convert_t *self)
{
    self->depth--;
}

//  The current position as text, for an error message. A path that outgrows the buffer is
//  cut short.
static const char *s_path(s_convert_t *self)
{
    size_t used = (size_t)snprintf(self->path, sizeof self->path, "%s", self->root);
    size_t depth = self->depth < sizeof self->steps / sizeof self->steps[0]
                       ? self->depth
                       : sizeof self->steps / sizeof self->steps[0];
    for (size_t i = 0; i < depth && used < sizeof self->path; i++) {
        const s_step_t *step = &self->steps[i];
        char label[64];
        if (step->key)
            used += (size_t)snprintf(
                self->path + used, sizeof self->path - used, "%s%s", used ? "." : "",
                lynx_err_printable(label, sizeof label, step->key, step->key_len));
        else
            used += (size_t)snprintf(self->path + used, sizeof self->path - used, "[%" PRIu32 "]",
                                     step->index);
    }
    return self->path;
}

static lynx_value_t *s_convert(s_convert_t *self, const msgpack_object *object);

static lynx_value_t *s_convert_array(s_convert_t *self, const msgpack_object_array *array)
{
    lynx_value_t *value = lynx_value_array();
    for (uint32_t i = 0; value && i < array->size; i++) {
        s_path_push_index(self, i);
        lynx_value_t *item = s_convert(self, &array->ptr[i]);
        s_path_pop(self);
        if (!item || lynx_value_append(value, &item)) {
            lynx_value_destroy(&item);
            lynx_value_destroy(&value);
        }
    }
    return value;
}

static lynx_value_t *s_convert_map(s_convert_t *self, const msgpack_object_map *map)
{
    lynx_value_t *value = lynx_value_map();
    char label[64];
    for (uint32_t i = 0; value && i < map->size; i++) {
        const msgpack_object *key = &map->ptr[i].key;
        if (key->type != MSGPACK_OBJECT_STR) {
            lynx_err_set(self->err, LYNX_EPROTOCOL, s_path(self), "map key must be a string");
            lynx_value_destroy(&value);
            break;
        }
        //  msgpack-c leaves ptr NULL for an empty string.
        const char *text = key->via.str.size ? key->via.str.ptr : "";
        size_t len = key->via.str.size;
        if (memchr(text, '\0', len)) {
            lynx_err_set(self->err, LYNX_EPROTOCOL, s_path(self), "map key contains a NUL byte");
            lynx_value_destroy(&value);
            break;
        }
        char *name = strndup(text, len);
        s_path_push_key(self, text, len);
        lynx_value_t *item = name ? s_convert(self, &map->ptr[i].val) : NULL;
        s_path_pop(self);
        size_t size_before = lynx_value_size(value);
        if (!item || lynx_value_set(value, name, &item)) {
            lynx_value_destroy(&item);
            lynx_value_destroy(&value);
        }
        //  lynx_value_set replaces an existing key, so a size that did not grow is a duplicate.
        else if (lynx_value_size(value) == size_before) {
            lynx_err_set(self->err, LYNX_EPROTOCOL, s_path(self), "duplicate key '%s'",
                         lynx_err_printable(label, sizeof label, name, strlen(name)));
            lynx_value_destroy(&value);
        }
        free(name);
    }
    return value;
}

//  Returns NULL with err set on a type we refuse; NULL with err untouched on out-of-memory.
static lynx_value_t *s_convert(s_convert_t *self, const msgpack_object *object)
{
    switch (object->type) {
    case MSGPACK_OBJECT_NIL:
        return lynx_value_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return lynx_value_bool(object->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (object->via.u64 > INT64_MAX) {
            lynx_err_set(self->err, LYNX_EPROTOCOL, s_path(self),
                         "integer %" PRIu64 " does not fit in a signed 64-bit integer",
                         object->via.u64);
            return NULL;
        }
        return lynx_value_int((int64_t)object->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return lynx_value_int(object->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return lynx_value_double(object->via.f64);
    case MSGPACK_OBJECT_STR:
        return lynx_value_stringn(object->via.str.ptr, object->via.str.size);
    case MSGPACK_OBJECT_ARRAY:
        return s_convert_array(self, &object->via.array);
    case MSGPACK_OBJECT_MAP:
        return s_convert_map(self, &object->via.map);
    case MSGPACK_OBJECT_BIN:
        lynx_err_set(self->err, LYNX_EPROTOCOL, s_path(self), "binary data is not supported");
        return NULL;
    case MSGPACK_OBJECT_EXT:
        lynx_err_set(self->err, LYNX_EPROTOCOL, s_path(self), "extension type %d is not supported",
                     object->via.ext.type);
        return NULL;
    }
    lynx_err_set(self->err, LYNX_EPROTOCOL, s_path(self), "unknown msgpack object type %d",
                 (int)object->type);
    return NULL;
}

//  Scan, unpack and convert the object at *offset_p; path names it in error messages.
lynx_value_t *lynx_msgpack_unpack_at(const void *bytes, size_t size, size_t *offset_p,
                                     const char *path, lynx_err_t *err)
{
    const unsigned char *data = (const unsigned char *)bytes;
    size_t end = *offset_p;
    if (s_scan(data, size, &end, 1, err)) {
        if (err && !err->field[0])
            snprintf(err->field, sizeof err->field, "%s", path);
        return NULL;
    } //  A zone of small chunks: msgpack_unpack_next's default 8 KiB chunk is a large-bin
    //  allocation, which makes glibc consolidate its fast bins on every message.
    msgpack_zone zone;
    if (!msgpack_zone_init(&zone, S_ZONE_CHUNK)) {
        lynx_err_set(err, LYNX_EINTERNAL, path, "out of memory decoding msgpack");
        *offset_p = end;
        return NULL;
    }
    msgpack_object object;
    size_t offset = *offset_p;
    msgpack_unpack_return rc = msgpack_unpack((const char *)data, end, &offset, &zone, &object);
    lynx_value_t *value = NULL;
    if ((rc == MSGPACK_UNPACK_SUCCESS || rc == MSGPACK_UNPACK_EXTRA_BYTES) && offset == end) {
        s_convert_t convert = {.err = err, .root = path};
        lynx_err_clear(err);
        value = s_convert(&convert, &object);
        if (!value && (!err || err->code == LYNX_OK))
            lynx_err_set(err, LYNX_EINTERNAL, path, "out of memory decoding msgpack");
    } else if (rc == MSGPACK_UNPACK_NOMEM_ERROR)
        lynx_err_set(err, LYNX_EINTERNAL, path, "out of memory decoding msgpack");
    else
        lynx_err_set(err, LYNX_EPROTOCOL, path, "malformed msgpack");
    msgpack_zone_destroy(&zone);
    *offset_p = end;
    return value;
}

int lynx_msgpack_check_size(size_t size, lynx_err_t *err)
{
    if (size == 0)
        return lynx_err_set(err, LYNX_EPROTOCOL, NULL, "empty frame");
    if (size > LYNX_MSGPACK_MAX_BYTES)
        return lynx_err_set(err, LYNX_EPROTOCOL, NULL, "frame of %zu bytes exceeds limit of %u",
                            size, LYNX_MSGPACK_MAX_BYTES);
    return 0;
}

//  --------------------------------------------------------------------------
//  Packing

static int s_pack(msgpack_packer *packer, const lynx_value_t *value, int depth)
{
    size_t size = lynx_value_size(value);
    switch (lynx_value_type(value)) {
    case LYNX_VALUE_NULL:
        return msgpack_pack_nil(packer);
    case LYNX_VALUE_BOOL:
        return lynx_value_as_bool(value) ? msgpack_pack_true(packer) : msgpack_pack_false(packer);
    case LYNX_VALUE_INT:
        return msgpack_pack_int64(packer, lynx_value_as_int(value));
    case LYNX_VALUE_DOUBLE:
        return msgpack_pack_double(packer, lynx_value_as_double(value));
    case LYNX_VALUE_STRING:
        return msgpack_pack_str_with_body(packer, lynx_value_as_string(value),
                                          lynx_value_string_len(value));
    case LYNX_VALUE_ARRAY:
        if (depth > LYNX_MSGPACK_MAX_DEPTH || msgpack_pack_array(packer, size))
            return -1;
        for (size_t i = 0; i < size; i++)
            if (s_pack(packer, lynx_value_at(value, i), depth + 1))
                return -1;
        return 0;
    case LYNX_VALUE_MAP:
        if (depth > LYNX_MSGPACK_MAX_DEPTH || msgpack_pack_map(packer, size))
            return -1;
        for (size_t i = 0; i < size; i++) {
            const char *key = lynx_value_key_at(value, i);
            if (msgpack_pack_str_with_body(packer, key, strlen(key)) ||
                s_pack(packer, lynx_value_at(value, i), depth + 1))
                return -1;
        }
        return 0;
    }
    return -1;
}

//  Deepest container level of value (1 for a flat map), stopping once past the limit.
static int s_depth(const lynx_value_t *value, int depth)
{
    lynx_value_type_t type = lynx_value_type(value);
    if (type != LYNX_VALUE_ARRAY && type != LYNX_VALUE_MAP)
        return depth - 1;
    int deepest = depth;
    for (size_t i = 0; i < lynx_value_size(value) && deepest <= LYNX_MSGPACK_MAX_DEPTH; i++) {
        int child = s_depth(lynx_value_at(value, i), depth + 1);
        if (child > deepest)
            deepest = child;
    }
    return deepest;
}

int lynx_msgpack_pack(const lynx_value_t *value, unsigned char **data_p, size_t *size_p)
{
    if (!data_p || !size_p || s_depth(value, 1) > LYNX_MSGPACK_MAX_DEPTH)
        return -1;
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init(&buffer);
    msgpack_packer packer;
    msgpack_packer_init(&packer, &buffer, msgpack_sbuffer_write);
    if (s_pack(&packer, value, 1) || buffer.size > LYNX_MSGPACK_MAX_BYTES) {
        msgpack_sbuffer_destroy(&buffer);
        return -1;
    }
    *size_p = buffer.size;
    *data_p = (unsigned char *)msgpack_sbuffer_release(&buffer);
    return 0;
}

lynx_value_t *lynx_msgpack_unpack(const void *data, size_t size, lynx_err_t *err)
{
    if (lynx_msgpack_check_size(size, err))
        return NULL;
    size_t offset = 0;
    lynx_value_t *value = lynx_msgpack_unpack_at(data, size, &offset, "", err);
    if (value && offset != size) {
        lynx_err_set(err, LYNX_EPROTOCOL, NULL, "trailing bytes after message");
        lynx_value_destroy(&value);
    }
    return value;
}

int lynx_msgpack_read_array(const void *data, size_t size, uint64_t *count_p, size_t *offset_p,
                            lynx_err_t *err)
{
    s_head_t head = {0};
    if (s_read_head((const unsigned char *)data, size, 0, &head, err))
        return -1;
    if (head.kind != S_HEAD_ARRAY)
        return 1;
    *count_p = head.count;
    *offset_p = head.header;
    return 0;
}

lynx_msgpack_writer_t *lynx_msgpack_writer_new(void)
{
    lynx_msgpack_writer_t *self = (lynx_msgpack_writer_t *)calloc(1, sizeof *self);
    if (!self)
        return NULL;
    msgpack_sbuffer_init(&self->buffer);
    msgpack_packer_init(&self->packer, &self->buffer, msgpack_sbuffer_write);
    return self;
}

void lynx_msgpack_writer_destroy(lynx_msgpack_writer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    msgpack_sbuffer_destroy(&(*self_p)->buffer);
    free(*self_p);
    *self_p = NULL;
}

int lynx_msgpack_write_array(lynx_msgpack_writer_t *self, size_t count)
{
    return msgpack_pack_array(&self->packer, count) ? -1 : 0;
}

int lynx_msgpack_write_string(lynx_msgpack_writer_t *self, const char *text)
{
    return msgpack_pack_str_with_body(&self->packer, text, strlen(text)) ? -1 : 0;
}

int lynx_msgpack_write_int(lynx_msgpack_writer_t *self, int64_t value)
{
    return msgpack_pack_int64(&self->packer, value) ? -1 : 0;
}

int lynx_msgpack_write_value(lynx_msgpack_writer_t *self, const lynx_value_t *value)
{
    if (lynx_msgpack_depth(value) > LYNX_MSGPACK_MAX_DEPTH)
        return -1;
    return s_pack(&self->packer, value, 1) ? -1 : 0;
}

const void *lynx_msgpack_writer_data(const lynx_msgpack_writer_t *self, size_t *size_p)
{
    *size_p = self->buffer.size;
    return self->buffer.data;
}

int lynx_msgpack_depth(const lynx_value_t *value)
{
    return s_depth(value, 1);
}
