//  lynx_daemon: process-wide settings every Lynx daemon (broker, gateway, runner) makes first.
#ifndef LYNX_DAEMON_H_INCLUDED
#define LYNX_DAEMON_H_INCLUDED

//  Keep buffers up to 32 MiB on the heap instead of a fresh mmap each: artifact chunks and
//  big messages (1 MiB, several copies per message) would otherwise cost a map, page faults on
//  every page and an unmap each time, which is most of the CPU a file transfer takes. Memory
//  stays bounded by the largest working set; it is returned to the system above 64 MiB free.
void lynx_daemon_tune_memory(void);

#endif
