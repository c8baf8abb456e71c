//  runner_fs: mkdir -p that other runners may race, emptying a reused output directory, and
//  the writability probe behind the runner's start-up checks.
#include "runner_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RUNNER_FS_PATH_MAX 4096
//  Scenario outputs deeper than this are not ours to walk (and would exhaust the stack).
#define RUNNER_FS_DEPTH_MAX 64

//  One component: EEXIST is success when what exists is a directory (ours or a racer's).
static int s_mkdir_one(const char *path, mode_t mode, lynx_err_t *err)
{
    if (mkdir(path, mode) == 0)
        return 0;
    int cause = errno;
    struct stat info;
    if (cause == EEXIST && stat(path, &info) == 0) {
        if (S_ISDIR(info.st_mode))
            return 0;
        return lynx_err_set(err, LYNX_EINTERNAL, NULL, "create %s: exists and is not a directory",
                            path);
    }
    return lynx_err_set(err, LYNX_EINTERNAL, NULL, "create %s: %s", path, strerror(cause));
}

int runner_fs_mkdir_p(const char *path, mode_t mode, lynx_err_t *err)
{
    char buffer[RUNNER_FS_PATH_MAX];
    if (!path || !*path)
        return lynx_err_set(err, LYNX_EINVALID, NULL, "create: empty path");
    if (strlen(path) >= sizeof buffer)
        return lynx_err_set(err, LYNX_EINVALID, NULL, "create %.64s...: path too long", path);
    strcpy(buffer, path);
    size_t length = strlen(buffer);
    while (length > 1 && buffer[length - 1] == '/')
        buffer[--length] = '\0';
    //  The common case (a job directory under an existing root) is one mkdir; anything else
    //  walks the path, which names the component that is missing or in the way.
    if (mkdir(buffer, mode) == 0)
        return 0;
    if (errno == EEXIST)
        return s_mkdir_one(buffer, mode, err);
    //  Every parent first, in order, so each mkdir's parent exists (or a racer made it).
    for (char *slash = strchr(buffer + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
        if (slash[-1] == '/')
            continue; //  "a//b"
        *slash = '\0';
        int rc = s_mkdir_one(buffer, mode, err);
        *slash = '/';
        if (rc)
            return -1;
    }
    return s_mkdir_one(buffer, mode, err);
}

//  Remove what is inside the open directory dir_fd (closed here); path is for messages.
//  Entries another process removes meanwhile (ENOENT) are fine.
static int s_empty_at(int dir_fd, const char *path, int depth, lynx_err_t *err)
{
    DIR *dir = fdopendir(dir_fd);
    if (!dir) {
        close(dir_fd);
        return lynx_err_set(err, LYNX_EINTERNAL, NULL, "open %s: %s", path, strerror(errno));
    }
    int rc = 0;
    struct dirent *entry;
    while (rc == 0 && (entry = readdir(dir))) {
        const char *name = entry->d_name;
        if (!strcmp(name, ".") || !strcmp(name, ".."))
            continue;
        char child[RUNNER_FS_PATH_MAX];
        snprintf(child, sizeof child, "%s/%s", path, name);
        if (unlinkat(dirfd(dir), name, 0) == 0 || errno == ENOENT)
            continue;
        if (errno != EISDIR && errno != EPERM) //  Linux says EISDIR, POSIX allows EPERM
            rc = lynx_err_set(err, LYNX_EINTERNAL, NULL, "remove %s: %s", child, strerror(errno));
        else if (depth >= RUNNER_FS_DEPTH_MAX)
            rc = lynx_err_set(err, LYNX_EINTERNAL, NULL, "remove %s: nested too deep", child);
        else {
            int child_fd = openat(dirfd(dir), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
            if (child_fd < 0 && errno != ENOENT)
                rc = lynx_err_set(err, LYNX_EINTERNAL, NULL, "open %s: %s", child, strerror(errno));
            else if (child_fd >= 0 && s_empty_at(child_fd, child, depth + 1, err))
                rc = -1;
            else if (unlinkat(dirfd(dir), name, AT_REMOVEDIR) != 0 && errno != ENOENT)
                rc = lynx_err_set(err, LYNX_EINTERNAL, NULL, "remove %s: %s", child,
                                  strerror(errno));
        }
    }
    closedir(dir);
    return rc;
}

int runner_fs_empty_dir(const char *path, lynx_err_t *err)
{
    int dir_fd = open(path, O_RDONLY | O_DIRECTORY);
    if (dir_fd < 0)
        return lynx_err_set(err, LYNX_EINTERNAL, NULL, "open %s: %s", path, strerror(errno));
    return s_empty_at(dir_fd, path, 0, err);
}

int runner_fs_check_writable(const char *path, lynx_err_t *err)
{
    if (runner_fs_mkdir_p(path, 0755, err))
        return -1;
    char probe[RUNNER_FS_PATH_MAX + 64];
    snprintf(probe, sizeof probe, "%s/.lynx-write-check-%ld", path, (long)getpid());
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return lynx_err_set(err, LYNX_EINVALID, NULL, "%s: not writable: %s", path,
                            strerror(errno));
    close(fd);
    unlink(probe);
    return 0;
}
