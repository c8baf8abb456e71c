//  lynx_msg: the wire codec. Every message between runner, broker and API clients is one
//  ZeroMQ frame holding a msgpack array ["LYNX", version, command, body] (see
//  proto/PROTOCOL.md). This module is the only code that encodes or decodes frames; the
//  msgpack underneath (and any value stored as msgpack) is lynx_msgpack's.
//
//  Decoding checks the magic, the version, the command name, the size and nesting limits and
//  the body against the command's schema (required fields and their types); anything else is
//  rejected with code LYNX_EPROTOCOL and a message that names the problem. Unknown body
//  fields are kept (forward compatibility) but never required.
#ifndef LYNX_MSG_H_INCLUDED
#define LYNX_MSG_H_INCLUDED

#include <czmq.h>

#include "lynx_err.h"
#include "lynx_msgpack.h"
#include "lynx_value.h"

#define LYNX_PROTOCOL_MAGIC "LYNX"
#define LYNX_PROTOCOL_VERSION 1
//  Largest frame we decode; bigger ones are rejected before parsing.
#define LYNX_MSG_MAX_BYTES LYNX_MSGPACK_MAX_BYTES
//  Deepest nesting of arrays/maps accepted in a body.
#define LYNX_MSG_MAX_DEPTH LYNX_MSGPACK_MAX_DEPTH

typedef enum {
    LYNX_MSG_REGISTER = 1, //  runner -> broker: identity, capabilities, jobs it still holds
    LYNX_MSG_REGISTERED,   //  broker -> runner: registration accepted
    LYNX_MSG_HEARTBEAT,    //  runner -> broker: still alive
    LYNX_MSG_ASSIGN,       //  broker -> runner: run this job attempt
    LYNX_MSG_STARTED,      //  runner -> broker: the scenario process is running
    LYNX_MSG_FINISHED,     //  runner -> broker: outcome and result of an attempt
    LYNX_MSG_ACK,          //  broker -> runner: result is durable, forget it
    LYNX_MSG_KILL,         //  broker -> runner: stop this attempt
    LYNX_MSG_REQUEST,      //  client -> broker: API operation with a correlation id
    LYNX_MSG_REPLY,        //  broker -> client: successful answer to a REQUEST
    LYNX_MSG_ERROR,        //  either way: a request or message was refused
    LYNX_MSG_TELEMETRY,    //  scenario -> runner -> broker -> subscribers: one sample of values
    LYNX_MSG_PING,         //  runner -> broker: is a Lynx broker listening? (no registration)
    LYNX_MSG_PONG,         //  broker -> runner: yes, with its protocol version
    LYNX_MSG_DISCONNECT,   //  runner -> broker: stopping now; requeue what I ran
    LYNX_MSG_FETCH,        //  broker -> runner: send me this range of a finished attempt's file
    LYNX_MSG_CHUNK,        //  runner -> broker: that range (or why not)
    LYNX_MSG_COUNT
} lynx_msg_id_t;

typedef struct _lynx_msg_t lynx_msg_t;

//  Create a message with an empty map body. NULL on out-of-memory or an invalid id.
lynx_msg_t *lynx_msg_new(lynx_msg_id_t id);
//  Destroy; sets *self_p to NULL. NULL-safe.
void lynx_msg_destroy(lynx_msg_t **self_p);

lynx_msg_id_t lynx_msg_id(const lynx_msg_t *self);
//  Who sent it, as the receiving socket's ZAP handler authenticated the connection (the
//  User-Id it returned: for runner sockets, the runner id the key is enrolled for); NULL on
//  an unauthenticated socket or for a message built locally.
const char *lynx_msg_peer(const lynx_msg_t *self);
//  Command name as on the wire ("REGISTER", ...).
const char *lynx_msg_command(const lynx_msg_t *self);
//  Command name of an id, or "UNKNOWN".
const char *lynx_msg_id_name(lynx_msg_id_t id);

//  The body map, borrowed and mutable: fill it with lynx_value_set_* before encoding.
lynx_value_t *lynx_msg_body(lynx_msg_t *self);
//  Replace the body. Takes ownership of *body_p on success (it must be a map).
int lynx_msg_set_body(lynx_msg_t *self, lynx_value_t **body_p);

//  Encode into a new frame. Returns NULL and fills err when the body does not satisfy the
//  command's schema or nests deeper than LYNX_MSG_MAX_DEPTH (LYNX_EPROTOCOL), or the frame
//  would exceed LYNX_MSG_MAX_BYTES (LYNX_ETOOLARGE): we never put invalid messages on the wire.
zframe_t *lynx_msg_encode(const lynx_msg_t *self, lynx_err_t *err);
//  Decode one frame's bytes. Returns an owned message, or NULL with err->code LYNX_EPROTOCOL
//  and a message naming the problem. Never crashes or leaks on any input.
lynx_msg_t *lynx_msg_decode(const void *data, size_t size, lynx_err_t *err);

//  Send on a socket: [routing_id] frame. routing_id may be NULL (DEALER side); it is not
//  consumed. Destroys *self_p whatever the outcome. Returns 0, or -1 with err filled.
int lynx_msg_send(lynx_msg_t **self_p, void *socket, zframe_t *routing_id, lynx_err_t *err);
//  Receive one message. On a ROUTER pass routing_id_p to get the sender's id (owned by the
//  caller); pass NULL on a DEALER. Returns NULL with err filled when the message is malformed;
//  the offending ZeroMQ message is consumed either way, and *routing_id_p is still set when
//  the envelope was readable so the caller can answer with an ERROR.
lynx_msg_t *lynx_msg_recv(void *socket, zframe_t **routing_id_p, lynx_err_t *err);

#endif
