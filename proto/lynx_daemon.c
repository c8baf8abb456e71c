//  lynx_daemon: process-wide settings (see the header).
#include "lynx_daemon.h"

#include <malloc.h>

void lynx_daemon_tune_memory(void)
{
    mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
    mallopt(M_TRIM_THRESHOLD, 64 * 1024 * 1024);
}
