//  lynx_path: relative names that cannot leave their directory, and opening them so. What
//  runner and broker both need for artifacts: names come from the network, and files under an
//  output or data directory may have been swapped for links after they were listed.
#ifndef LYNX_PATH_H_INCLUDED
#define LYNX_PATH_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

//  Longest relative name accepted, in bytes.
#define LYNX_PATH_NAME_MAX 1024

//  True for a name of length bytes that is relative, '/'-separated, without an empty, "." or
//  ".." component, at most LYNX_PATH_NAME_MAX bytes (255 a component), and without NUL or
//  control characters.
bool lynx_path_name_ok(const char *name, size_t length);
//  Open dir/name (flags as open(2), O_NOFOLLOW and O_CLOEXEC added) one component at a time,
//  so that no symbolic link is followed on the way and the open never leaves dir. -1 with
//  errno (EINVAL for a name lynx_path_name_ok refuses).
int lynx_path_open_beneath(const char *dir, const char *name, int flags);
//  mkdir -p: make path's directories (mode 0755), the last component too unless
//  parents_only (then path names a file to come). 0, or -1 with errno.
int lynx_path_make_dirs(const char *path, bool parents_only);

#endif
