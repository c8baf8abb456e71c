//  lynx_yaml: YAML text -> lynx_value. The only module that includes libyaml.
//
//  Plain scalars are typed as YAML 1.2 core schema says: null/~/empty -> null, true/false ->
//  bool, decimal/hex/octal integers -> int, decimals/exponents/.inf/.nan -> double, anything
//  else -> string. Quoted scalars are always strings. Anchors and aliases are refused (they
//  are a denial-of-service vector and configs do not need them).
#ifndef LYNX_YAML_H_INCLUDED
#define LYNX_YAML_H_INCLUDED

#include <stddef.h>

#include "lynx_err.h"
#include "lynx_value.h"

//  Parse the first document of a YAML text. NULL with err (LYNX_EINVALID, "line L column C:
//  reason") on a syntax error, duplicate key, alias, non-scalar key or nesting deeper than 64.
//  An empty document gives a null value.
lynx_value_t *lynx_yaml_parse(const char *text, size_t len, lynx_err_t *err);

//  Read and parse a file; the error message starts with the path.
lynx_value_t *lynx_yaml_load_file(const char *path, lynx_err_t *err);

#endif
