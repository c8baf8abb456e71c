//  gateway_pem: the gateway's TLS certificate and key files, read and checked before the HTTP
//  server starts, so that a wrong file is named with its cause ("TLS key /etc/lynx/key.pem:
//  Permission denied") rather than left to a GnuTLS error code. Whether the key fits the
//  certificate is for GnuTLS to say, when the server starts.
#ifndef GATEWAY_PEM_H_INCLUDED
#define GATEWAY_PEM_H_INCLUDED

#include "lynx_err.h"

//  Read the certificate (chain) file cert_path and the private key file key_path into *cert_p
//  and *key_p (NUL-terminated PEM text, owned by the caller: free with gateway_pem_free).
//  Both paths NULL: 0, nothing read (plain HTTP). -1 with err (LYNX_EINVALID) naming the
//  file and the cause: missing or unreadable, not a regular file, over 1 MiB, not PEM, an
//  encrypted key; or only one of the two paths given. Nothing is left allocated on failure.
int gateway_pem_load(const char *cert_path, const char *key_path, char **cert_p, char **key_p,
                     lynx_err_t *err);
//  Overwrite the text (a key stays out of freed memory) and free it; sets *pem_p to NULL.
//  NULL-safe.
void gateway_pem_free(char **pem_p);

#endif
