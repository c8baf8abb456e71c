//  lynx_json: JSON text <-> lynx_value. The only module that includes jansson.
#ifndef LYNX_JSON_H_INCLUDED
#define LYNX_JSON_H_INCLUDED

#include <stddef.h>

#include "lynx_err.h"
#include "lynx_value.h"

//  Parse a JSON document of len bytes (need not be NUL-terminated). Integers stay integers,
//  reals become doubles. Returns NULL with err (LYNX_EINVALID, message with line and column)
//  on invalid JSON, duplicate keys, NUL bytes in strings or nesting deeper than 64.
lynx_value_t *lynx_json_parse(const char *text, size_t len, lynx_err_t *err);

//  Serialize compactly (pretty when indent > 0, with that many spaces). Map order is kept.
//  Non-finite doubles are written as null (JSON has no NaN). Caller frees. NULL on OOM.
char *lynx_json_dump(const lynx_value_t *value, int indent);

//  Write value as pretty JSON to path atomically (temp file + rename). -1 with err on failure.
int lynx_json_write_file(const lynx_value_t *value, const char *path, lynx_err_t *err);

#endif
