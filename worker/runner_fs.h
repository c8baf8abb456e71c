//  runner_fs: the file-system steps a job needs that must tolerate other runners doing the
//  same thing at the same moment on a shared (possibly network) output root.
#ifndef RUNNER_FS_H_INCLUDED
#define RUNNER_FS_H_INCLUDED

#include <sys/types.h>

#include "lynx_err.h"

//  Create path and every missing parent with mode. A component that already exists as a
//  directory, or that another process creates between our check and our mkdir, is success:
//  only a component that exists as something else, or a real failure (EACCES, ENOSPC, ...),
//  is an error. -1 with err naming the component and the cause.
int runner_fs_mkdir_p(const char *path, mode_t mode, lynx_err_t *err);

//  Remove everything inside the directory path, keeping path itself. Entries that vanish while
//  we walk are fine. -1 with err naming the first entry that could not be removed.
int runner_fs_empty_dir(const char *path, lynx_err_t *err);

//  0 when the process can create and remove a file in the directory path (creating path first
//  if missing), else -1 with err naming path and the cause.
int runner_fs_check_writable(const char *path, lynx_err_t *err);

#endif
