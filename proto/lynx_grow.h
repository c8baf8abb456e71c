//  lynx_grow: room for one more element in an array that doubles as it grows, the one
//  growth rule of every append-only list (series columns, scanned paths, read buffers).
#ifndef LYNX_GROW_H_INCLUDED
#define LYNX_GROW_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

//  array (count elements of size bytes, room for *capacity) with room for count + 1: as is
//  when there is room, else reallocated to twice the capacity (initial when empty) and
//  *capacity updated. NULL on out-of-memory, array then still valid and unchanged.
static inline void *lynx_grow(void *array, size_t *capacity, size_t count, size_t size,
                              size_t initial)
{
    if (count < *capacity)
        return array;
    size_t bigger = *capacity ? *capacity * 2 : initial;
    if (bigger < *capacity || bigger > SIZE_MAX / size)
        return NULL;
    void *grown = realloc(array, bigger * size);
    if (grown)
        *capacity = bigger;
    return grown;
}

#endif
