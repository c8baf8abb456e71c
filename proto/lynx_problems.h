//  lynx_problems: the {field, message} lists validators fill, so a submitter sees every problem
//  at once with its field path (config.dispersions.mass_kg.distribution.std_dev: must be > 0).
#ifndef LYNX_PROBLEMS_H_INCLUDED
#define LYNX_PROBLEMS_H_INCLUDED

#include <stddef.h>

#include "lynx_value.h"

//  path + "." + key, or path + "[index]" when key is NULL, in a new string (caller frees).
//  NULL on out-of-memory.
char *lynx_problems_path(const char *path, const char *key, size_t index);

//  Append {field: path (+ "." + key when key is not NULL), message} to list, an array. A NULL
//  list (the caller does not want the details) is fine. Returns 0, or -1 on out-of-memory (the
//  caller must still fail: an error was lost).
int lynx_problems_add(lynx_value_t *list, const char *path, const char *key, const char *message);

#endif
