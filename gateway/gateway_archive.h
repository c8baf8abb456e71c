//  gateway_archive: one artifact of every job of a batch as a single .tar.gz stream
//  (GET /batches/{id}/artifacts/{name}), entries run-<run_id>/<name> in run_id order. The
//  batch's index comes a page at a time (batch.artifact_index) and each file a chunk at a time
//  (job.artifact), each checked against its sha256 as it passes, through deflate into a buffer
//  of about one chunk: memory stays bounded whatever the batch's size. The length is not known
//  in advance, so the answer is chunked.
#ifndef GATEWAY_ARCHIVE_H_INCLUDED
#define GATEWAY_ARCHIVE_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#include "gateway_http.h"
#include "gateway_stream.h"

//  Stream the archive of args ({batch_id, name}, taken) to request, asking the broker with
//  ask. A batch without such a file in any job is 404; other failures before the body starts
//  are JSON errors, after it the connection is closed (a truncated gzip stream).
void gateway_archive_start(gateway_request_t *request, lynx_value_t **args_p, gateway_ask_fn *ask,
                           void *ask_arg);

//  The tar header block(s) of one entry: a pax header first when path is longer than 100
//  bytes or size too big for ustar, then the ustar header. Into out (3 * 512 + path's pax
//  record bytes at most); returns the bytes written, a multiple of 512, or 0 when out is too
//  small.
size_t gateway_archive_tar_header(const char *path, uint64_t size, uint64_t mtime, char *out,
                                  size_t out_size);

#endif
