//  runner_keys: the runner's CURVE identity. A keypair in zcert files (key_file holds the
//  public key, key_file + "_secret" the secret one, mode 0600), made by --init-keys or on
//  first start; the broker admits the public key once an admin enrolled it. Sockets to the
//  broker become CURVE clients of the broker's public key.
#ifndef RUNNER_KEYS_H_INCLUDED
#define RUNNER_KEYS_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>

#include "lynx_err.h"

//  Load the keypair at key_file, creating it (and its directory, mode 0700) when absent and
//  create is true. NULL with err naming the file and the cause; a secret file readable by
//  group or others is refused.
zcert_t *runner_keys_load(const char *key_file, bool create, lynx_err_t *err);

//  The broker's public key from text: a Z85 key (40 characters) or the path of a zcert public
//  file (the broker's data_dir/keys/broker.key, or what --enroll saved). 0 with key filled
//  (41 bytes), -1 with err (field broker_public_key).
int runner_keys_broker_key(const char *text, char key[41], lynx_err_t *err);

//  Make socket (before connect) a CURVE client with cert, talking to broker_key.
void runner_keys_secure(zsock_t *socket, zcert_t *cert, const char *broker_key);

#endif
