//  broker_keys: the broker's CURVE identity and who may connect. The broker's long-term
//  keypair lives in keys_dir (data_dir/keys/broker.key and broker.key_secret, mode 0600, made
//  on first start); the allow lists are files an admin can manage by hand: one zcert public
//  file per runner in keys_dir/runners/ (metadata runner_id, which the key is bound to) and
//  per telemetry subscriber in keys_dir/subscribers/. The ZAP handler (RFC 27) answers every
//  CURVE handshake on the broker's sockets from these lists and names the runner it admitted
//  as the connection's User-Id, so each message says which enrolled runner sent it.
#ifndef BROKER_KEYS_H_INCLUDED
#define BROKER_KEYS_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>

#include "lynx_err.h"

typedef struct _broker_keys_t broker_keys_t;

//  ZAP domains: which allow list a socket's handshakes are checked against.
#define BROKER_KEYS_DOMAIN_RUNNERS "runners"     //  runner ROUTER and events SUB
#define BROKER_KEYS_DOMAIN_TELEMETRY "telemetry" //  telemetry PUB: subscribers (and runners)

//  Load (or create, on first start) the keypair in keys_dir, load the allow lists and bind
//  the ZAP handler. NULL with err when a key file cannot be read or written, when the secret
//  key is readable by group or others, or when another ZAP handler is bound in this process.
broker_keys_t *broker_keys_new(const char *keys_dir, lynx_err_t *err);
//  Unbind the handler and free; sets *self_p to NULL. NULL-safe.
void broker_keys_destroy(broker_keys_t **self_p);

//  The broker's public key, Z85 (40 characters).
const char *broker_keys_public(const broker_keys_t *self);
//  Path of the broker's public key file (what runners and subscribers need).
const char *broker_keys_public_file(const broker_keys_t *self);
//  Make socket (before bind) a CURVE server with the broker's keypair in ZAP domain domain.
void broker_keys_serve(broker_keys_t *self, zsock_t *socket, const char *domain);
//  The ZAP handler's socket: call broker_keys_handle_zap when it is readable.
zsock_t *broker_keys_zap_socket(broker_keys_t *self);
//  Answer one pending handshake (does not block when none is pending).
void broker_keys_handle_zap(broker_keys_t *self);

//  The runner id key (Z85) is enrolled for, or NULL. Borrowed until the next change.
const char *broker_keys_runner_of(const broker_keys_t *self, const char *public_key);
//  The public key (Z85) runner_id is enrolled with, or NULL.
const char *broker_keys_key_of(const broker_keys_t *self, const char *runner_id);
//  Enroll public_key (Z85) for runner_id: writes keys_dir/runners/<runner_id>.key. -1 with
//  err: LYNX_EINVALID for a malformed key or id, LYNX_ECONFLICT when runner_id is enrolled
//  with another key or the key for another runner, LYNX_EINTERNAL when the file cannot be
//  written. Enrolling the same pair again is a success.
int broker_keys_admit_runner(broker_keys_t *self, const char *runner_id, const char *public_key,
                             lynx_err_t *err);
//  Remove runner_id's key (file and list): 1 when it had one, 0 when not, -1 with err.
int broker_keys_revoke_runner(broker_keys_t *self, const char *runner_id, lynx_err_t *err);

//  Called for each runner whose key left the allow list by hand (its file was deleted).
typedef void(broker_keys_revoked_fn)(const char *runner_id, void *arg);
//  Who hears of those (set once, after new).
void broker_keys_on_revoked(broker_keys_t *self, broker_keys_revoked_fn *revoked, void *arg);
//  Re-read the allow lists if an admin changed the directories since the last look; report
//  runners whose keys went away. Cheap when nothing changed (two stat calls). Also done by a
//  handshake with an unknown key, so a key file copied in a moment ago is seen at once.
void broker_keys_refresh(broker_keys_t *self);

//  True for a Z85-encoded 32-byte key (40 characters of the Z85 alphabet).
bool broker_keys_is_z85(const char *text);

#endif
