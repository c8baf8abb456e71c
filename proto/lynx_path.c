//  lynx_path: safe relative names (see the header).
#include "lynx_path.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

bool lynx_path_name_ok(const char *name, size_t length)
{
    if (!name || length == 0 || length > LYNX_PATH_NAME_MAX || strlen(name) != length ||
        name[0] == '/')
        return false;
    const char *component = name;
    while (true) {
        const char *slash = strchr(component, '/');
        size_t len = slash ? (size_t)(slash - component) : strlen(component);
        if (len == 0 || len > NAME_MAX || (len == 1 && component[0] == '.') ||
            (len == 2 && component[0] == '.' && component[1] == '.'))
            return false;
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)component[i] < 0x20 || component[i] == 0x7f)
                return false;
        if (!slash)
            return true;
        component = slash + 1;
    }
}

int lynx_path_open_beneath(const char *dir, const char *name, int flags)
{
    if (!lynx_path_name_ok(name, name ? strlen(name) : 0)) {
        errno = EINVAL;
        return -1;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    const char *component = name;
    while (fd >= 0) {
        const char *slash = strchr(component, '/');
        size_t len = slash ? (size_t)(slash - component) : strlen(component);
        char part[NAME_MAX + 1];
        memcpy(part, component, len);
        part[len] = '\0';
        int next = openat(fd, part,
                          slash ? O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC
                                : flags | O_NOFOLLOW | O_CLOEXEC);
        int saved = errno;
        close(fd);
        errno = saved;
        fd = next;
        if (!slash)
            return fd;
        component = slash + 1;
    }
    return -1;
}

int lynx_path_make_dirs(const char *path, bool parents_only)
{
    char copy[PATH_MAX];
    if (snprintf(copy, sizeof copy, "%s", path) >= (int)sizeof copy) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *slash = copy + 1; *slash; slash++)
        if (*slash == '/') {
            *slash = '\0';
            if (mkdir(copy, 0755) != 0 && errno != EEXIST)
                return -1;
            *slash = '/';
        }
    return !parents_only && mkdir(copy, 0755) != 0 && errno != EEXIST ? -1 : 0;
}
