#include "lynx_problems.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *lynx_problems_path(const char *path, const char *key, size_t index)
{
    char *joined = NULL;
    int rc =
        key ? asprintf(&joined, "%s.%s", path, key) : asprintf(&joined, "%s[%zu]", path, index);
    return rc < 0 ? NULL : joined;
}

int lynx_problems_add(lynx_value_t *list, const char *path, const char *key, const char *message)
{
    if (!list)
        return 0;
    char *field = key ? lynx_problems_path(path, key, 0) : strdup(path);
    lynx_value_t *entry = lynx_value_map();
    int rc = 0;
    if (!field || lynx_value_set_string(entry, "field", field) ||
        lynx_value_set_string(entry, "message", message) || lynx_value_append(list, &entry))
        rc = -1;
    lynx_value_destroy(&entry);
    free(field);
    return rc;
}
