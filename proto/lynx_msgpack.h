//  lynx_msgpack: lynx_value <-> msgpack, for the wire envelope (lynx_msg) and for values
//  stored as msgpack (results, configs, telemetry records). The only module that includes
//  msgpack.h. Untrusted bytes are scanned before anything is built (declared lengths against
//  the bytes left, nesting depth), so no input makes it allocate past the frame or recurse
//  past the limit; errors name the field path ("body.runs[3].name") and the problem.
#ifndef LYNX_MSGPACK_H_INCLUDED
#define LYNX_MSGPACK_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "lynx_err.h"
#include "lynx_value.h"

//  Largest input decoded; bigger ones are refused before parsing.
#define LYNX_MSGPACK_MAX_BYTES (64u * 1024u * 1024u)
//  Deepest nesting of arrays/maps accepted (a flat map is 1).
#define LYNX_MSGPACK_MAX_DEPTH 32

//  Pack any value; the caller frees *data_p with free(). -1 on out-of-memory and for a value
//  unpack would refuse (deeper than LYNX_MSGPACK_MAX_DEPTH, more than LYNX_MSGPACK_MAX_BYTES).
int lynx_msgpack_pack(const lynx_value_t *value, unsigned char **data_p, size_t *size_p);
//  Unpack exactly one value filling data. NULL with err (LYNX_EPROTOCOL and the path) for
//  malformed, truncated, trailing or too deep input, bin/ext, non-string or duplicate keys.
lynx_value_t *lynx_msgpack_unpack(const void *data, size_t size, lynx_err_t *err);

//  The pieces lynx_msg builds its envelope from.

//  -1 with err ("empty frame", "frame of N bytes exceeds limit of M") when size is not
//  decodable, else 0.
int lynx_msgpack_check_size(size_t size, lynx_err_t *err);
//  Read the header of the object at the start of data: 0 with its element count and the
//  offset of its first element when it is an array, 1 when it is something else, -1 with err
//  when the header is truncated.
int lynx_msgpack_read_array(const void *data, size_t size, uint64_t *count_p, size_t *offset_p,
                            lynx_err_t *err);
//  Unpack the one value at *offset_p (moved past it, also on most errors); path names it in
//  err ("magic", "body").
lynx_value_t *lynx_msgpack_unpack_at(const void *data, size_t size, size_t *offset_p,
                                     const char *path, lynx_err_t *err);
//  Deepest container level of value (1 for a flat map; stops counting past the limit).
int lynx_msgpack_depth(const lynx_value_t *value);

//  An output buffer written piece by piece. Writes return 0, or -1 on out-of-memory (and, for
//  a value, nesting past LYNX_MSGPACK_MAX_DEPTH).
typedef struct _lynx_msgpack_writer_t lynx_msgpack_writer_t;
lynx_msgpack_writer_t *lynx_msgpack_writer_new(void);
void lynx_msgpack_writer_destroy(lynx_msgpack_writer_t **self_p);
int lynx_msgpack_write_array(lynx_msgpack_writer_t *self, size_t count);
int lynx_msgpack_write_string(lynx_msgpack_writer_t *self, const char *text);
int lynx_msgpack_write_int(lynx_msgpack_writer_t *self, int64_t value);
int lynx_msgpack_write_value(lynx_msgpack_writer_t *self, const lynx_value_t *value);
//  What was written so far (borrowed until the next write or destroy).
const void *lynx_msgpack_writer_data(const lynx_msgpack_writer_t *self, size_t *size_p);

#endif
