//  lynx_msg: the wire envelope (see lynx_msg.h and PROTOCOL.md): ["LYNX", version, command,
//  body], each command's body checked against its row of the schema. The bytes themselves are
//  lynx_msgpack's.
#include "lynx_msg.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct _lynx_msg_t {
    lynx_msg_id_t id;
    lynx_value_t *body; //  always a map
    char *peer;         //  the sender's ZAP User-Id, when received on an authenticated socket
};

//  --------------------------------------------------------------------------
//  The schema: one row per command, one entry per known body field.

typedef enum {
    S_STR,
    S_INT,
    S_NUM, //  integer or double
    S_BOOL,
    S_MAP,
    S_ARRAY,
    S_ANY,
} s_kind_t;

typedef struct {
    const char *name;
    s_kind_t kind;
    bool required;
} s_field_t;

//  Longest row (REGISTER has 8); a row with more fields fails to compile (excess initializer).
#define S_MAX_FIELDS 10

typedef struct {
    const char *name;
    s_field_t fields[S_MAX_FIELDS]; //  unused entries have a NULL name
} s_command_t;

#define R true
#define O false

static const s_command_t s_commands[LYNX_MSG_COUNT] = {
    [LYNX_MSG_REGISTER] = {"REGISTER",
                           {{"runner_id", S_STR, R},
                            {"name", S_STR, R},
                            {"capabilities", S_MAP, R},
                            {"engines", S_ARRAY, R},
                            {"active_jobs", S_ARRAY, O},
                            {"finished_jobs", S_ARRAY, O},
                            {"hostname", S_STR, O},
                            {"pid", S_INT, O},
                            {"heartbeat_interval_ms", S_INT, O}}},
    [LYNX_MSG_REGISTERED] = {"REGISTERED",
                             {{"runner_id", S_STR, R},
                              {"heartbeat_interval_ms", S_INT, R},
                              {"events_port", S_INT, O}}},
    [LYNX_MSG_HEARTBEAT] = {"HEARTBEAT", {{"runner_id", S_STR, R}, {"active_jobs", S_INT, O}}},
    [LYNX_MSG_ASSIGN] = {"ASSIGN",
                         {{"job_id", S_STR, R},
                          {"batch_id", S_STR, R},
                          {"attempt", S_INT, R},
                          {"engine", S_STR, R},
                          {"timeout_secs", S_INT, R},
                          {"run_config", S_MAP, R},
                          {"artifacts", S_MAP, O}}},
    [LYNX_MSG_STARTED] = {"STARTED",
                          {{"job_id", S_STR, R}, {"attempt", S_INT, R}, {"pid", S_INT, O}}},
    [LYNX_MSG_FINISHED] = {"FINISHED",
                           {{"job_id", S_STR, R},
                            {"attempt", S_INT, R},
                            {"status", S_STR, R},
                            {"result", S_MAP, R},
                            {"retryable", S_BOOL, O},
                            {"exit_code", S_INT, O},
                            {"exit_signal", S_INT, O},
                            {"artifacts", S_MAP, O}}},
    [LYNX_MSG_ACK] = {"ACK", {{"job_id", S_STR, R}, {"attempt", S_INT, R}}},
    [LYNX_MSG_KILL] = {"KILL", {{"job_id", S_STR, R}, {"attempt", S_INT, R}, {"reason", S_STR, O}}},
    [LYNX_MSG_REQUEST] = {"REQUEST",
                          {{"corr", S_INT, R},
                           {"op", S_STR, R},
                           {"args", S_MAP, O},
                           {"deadline_ms", S_INT, O},
                           {"idempotency_key", S_STR, O},
                           {"principal", S_MAP, O}}},
    [LYNX_MSG_REPLY] = {"REPLY", {{"corr", S_INT, R}, {"body", S_ANY, R}}},
    [LYNX_MSG_ERROR] = {"ERROR",
                        {{"code", S_STR, R},
                         {"message", S_STR, R},
                         {"corr", S_INT, O},
                         {"field", S_STR, O},
                         {"errors", S_ARRAY, O}}},
    //  From a scenario only seq, timestamp_ns and values; the runner adds job_id and batch_id
    //  (never trusted from the scenario) before forwarding.
    [LYNX_MSG_TELEMETRY] = {"TELEMETRY",
                            {{"seq", S_INT, R},
                             {"timestamp_ns", S_INT, R},
                             {"values", S_MAP, R},
                             {"job_id", S_STR, O},
                             {"batch_id", S_STR, O},
                             {"dropped", S_INT, O}}},
    [LYNX_MSG_PING] = {"PING", {{"nonce", S_INT, O}}},
    [LYNX_MSG_PONG] = {"PONG", {{"nonce", S_INT, O}, {"version", S_STR, O}}},
    [LYNX_MSG_DISCONNECT] = {"DISCONNECT", {{"runner_id", S_STR, R}, {"reason", S_STR, O}}},
    [LYNX_MSG_FETCH] = {"FETCH",
                        {{"job_id", S_STR, R},
                         {"attempt", S_INT, R},
                         {"name", S_STR, R},
                         {"offset", S_INT, R},
                         {"length", S_INT, R}}},
    [LYNX_MSG_CHUNK] = {"CHUNK",
                        {{"job_id", S_STR, R},
                         {"attempt", S_INT, R},
                         {"name", S_STR, R},
                         {"offset", S_INT, R},
                         {"data", S_STR, O},
                         {"eof", S_BOOL, O},
                         {"sha256", S_STR, O},
                         {"error", S_STR, O}}},
};

#undef R
#undef O

static bool s_id_valid(lynx_msg_id_t id)
{
    return id > 0 && id < LYNX_MSG_COUNT;
}

static const char *s_kind_name(s_kind_t kind)
{
    static const char *names[] = {
        [S_STR] = "string", [S_INT] = "integer", [S_NUM] = "number",    [S_BOOL] = "boolean",
        [S_MAP] = "object", [S_ARRAY] = "array", [S_ANY] = "any value",
    };
    return names[kind];
}

static bool s_kind_accepts(s_kind_t kind, const lynx_value_t *value)
{
    lynx_value_type_t type = lynx_value_type(value);
    switch (kind) {
    case S_STR:
        return type == LYNX_VALUE_STRING;
    case S_INT:
        return type == LYNX_VALUE_INT;
    case S_NUM:
        return lynx_value_is_number(value);
    case S_BOOL:
        return type == LYNX_VALUE_BOOL;
    case S_MAP:
        return type == LYNX_VALUE_MAP;
    case S_ARRAY:
        return type == LYNX_VALUE_ARRAY;
    case S_ANY:
        return true;
    }
    return false;
}

//  Check a body against its command's row. Extra fields are fine (forward compatibility).
static int s_check_body(lynx_msg_id_t id, const lynx_value_t *body, lynx_err_t *err)
{
    if (lynx_value_type(body) != LYNX_VALUE_MAP)
        return lynx_err_set(err, LYNX_EPROTOCOL, "body", "expected object, got %s",
                            lynx_value_type_name(lynx_value_type(body)));
    const s_field_t *fields = s_commands[id].fields;
    for (const s_field_t *field = fields; field < fields + S_MAX_FIELDS && field->name; field++) {
        const lynx_value_t *value = lynx_value_get(body, field->name);
        bool missing = !value && field->required;
        if (!missing && (!value || s_kind_accepts(field->kind, value)))
            continue;
        char path[LYNX_ERR_FIELD_MAX];
        snprintf(path, sizeof path, "body.%s", field->name);
        if (missing)
            return lynx_err_set(err, LYNX_EPROTOCOL, path, "required field missing");
        return lynx_err_set(err, LYNX_EPROTOCOL, path, "expected %s, got %s",
                            s_kind_name(field->kind), lynx_value_type_name(lynx_value_type(value)));
    }
    return 0;
}

//  Check one envelope element: magic, version or command. Returns the command id for the
//  command element, 0 for the others, -1 with err on a mismatch.
static int s_check_envelope(size_t index, const lynx_value_t *value, lynx_err_t *err)
{
    static const char *names[] = {"magic", "version", "command"};
    char text[64];
    if (index == 1 && lynx_value_type(value) == LYNX_VALUE_INT) {
        if (lynx_value_as_int(value) == LYNX_PROTOCOL_VERSION)
            return 0;
        return lynx_err_set(err, LYNX_EPROTOCOL, "version",
                            "protocol version %" PRId64 " not supported (expected %d)",
                            lynx_value_as_int(value), LYNX_PROTOCOL_VERSION);
    }
    if (index == 1 || lynx_value_type(value) != LYNX_VALUE_STRING)
        return lynx_err_set(err, LYNX_EPROTOCOL, names[index], "expected %s, got %s",
                            index == 1 ? "integer" : "string",
                            lynx_value_type_name(lynx_value_type(value)));
    const char *string = lynx_value_as_string(value);
    size_t len = lynx_value_string_len(value);
    if (index == 0) {
        if (len == strlen(LYNX_PROTOCOL_MAGIC) && memcmp(string, LYNX_PROTOCOL_MAGIC, len) == 0)
            return 0;
        return lynx_err_set(err, LYNX_EPROTOCOL, "magic", "wrong magic '%s' (expected '%s')",
                            lynx_err_printable(text, sizeof text, string, len),
                            LYNX_PROTOCOL_MAGIC);
    }
    for (int id = 1; id < LYNX_MSG_COUNT; id++)
        if (strlen(s_commands[id].name) == len && memcmp(s_commands[id].name, string, len) == 0)
            return id;
    return lynx_err_set(err, LYNX_EPROTOCOL, "command", "unknown command '%s'",
                        lynx_err_printable(text, sizeof text, string, len));
}

//  --------------------------------------------------------------------------
//  Public API

lynx_msg_t *lynx_msg_new(lynx_msg_id_t id)
{
    if (!s_id_valid(id))
        return NULL;
    lynx_msg_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->id = id;
    self->body = lynx_value_map();
    if (!self->body)
        lynx_msg_destroy(&self);
    return self;
}

void lynx_msg_destroy(lynx_msg_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    lynx_value_destroy(&(*self_p)->body);
    free((*self_p)->peer);
    free(*self_p);
    *self_p = NULL;
}

const char *lynx_msg_peer(const lynx_msg_t *self)
{
    return self->peer;
}

lynx_msg_id_t lynx_msg_id(const lynx_msg_t *self)
{
    return self->id;
}

const char *lynx_msg_command(const lynx_msg_t *self)
{
    return lynx_msg_id_name(self->id);
}

const char *lynx_msg_id_name(lynx_msg_id_t id)
{
    return s_id_valid(id) ? s_commands[id].name : "UNKNOWN";
}

lynx_value_t *lynx_msg_body(lynx_msg_t *self)
{
    return self->body;
}

int lynx_msg_set_body(lynx_msg_t *self, lynx_value_t **body_p)
{
    if (!self || !body_p || lynx_value_type(*body_p) != LYNX_VALUE_MAP)
        return -1;
    lynx_value_destroy(&self->body);
    self->body = *body_p;
    *body_p = NULL;
    return 0;
}

zframe_t *lynx_msg_encode(const lynx_msg_t *self, lynx_err_t *err)
{
    if (s_check_body(self->id, self->body, err))
        return NULL;
    if (lynx_msgpack_depth(self->body) > LYNX_MSG_MAX_DEPTH) {
        lynx_err_set(err, LYNX_EPROTOCOL, "body", "nesting deeper than %d", LYNX_MSG_MAX_DEPTH);
        return NULL;
    }
    const char *command = s_commands[self->id].name;
    lynx_msgpack_writer_t *writer = lynx_msgpack_writer_new();
    int rc = writer ? 0 : -1;
    rc = rc ? rc : lynx_msgpack_write_array(writer, 4);
    rc = rc ? rc : lynx_msgpack_write_string(writer, LYNX_PROTOCOL_MAGIC);
    rc = rc ? rc : lynx_msgpack_write_int(writer, LYNX_PROTOCOL_VERSION);
    rc = rc ? rc : lynx_msgpack_write_string(writer, command);
    rc = rc ? rc : lynx_msgpack_write_value(writer, self->body);
    size_t size = 0;
    const void *data = rc == 0 ? lynx_msgpack_writer_data(writer, &size) : NULL;
    zframe_t *frame = NULL;
    if (rc)
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "encode %s: out of memory", command);
    else if (size > LYNX_MSG_MAX_BYTES)
        lynx_err_set(err, LYNX_ETOOLARGE, NULL, "frame of %zu bytes exceeds limit of %u", size,
                     LYNX_MSG_MAX_BYTES);
    else if (!(frame = zframe_new(data, size)))
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "encode %s: out of memory", command);
    lynx_msgpack_writer_destroy(&writer);
    return frame;
}

lynx_msg_t *lynx_msg_decode(const void *data, size_t size, lynx_err_t *err)
{
    const unsigned char *bytes = data;
    if (lynx_msgpack_check_size(size, err))
        return NULL;
    uint64_t count = 0;
    size_t offset = 0;
    int kind = lynx_msgpack_read_array(bytes, size, &count, &offset, err);
    if (kind < 0)
        return NULL;
    if (kind > 0 || count != 4) {
        if (kind == 0)
            lynx_err_set(err, LYNX_EPROTOCOL, NULL,
                         "message must be an array of 4 elements, got %" PRIu64, count);
        else
            lynx_err_set(err, LYNX_EPROTOCOL, NULL, "message must be an array of 4 elements");
        return NULL;
    }
    int id = 0;
    for (size_t index = 0; index < 3; index++) {
        static const char *paths[] = {"magic", "version", "command"};
        lynx_value_t *value = lynx_msgpack_unpack_at(bytes, size, &offset, paths[index], err);
        int rc = value ? s_check_envelope(index, value, err) : -1;
        lynx_value_destroy(&value);
        if (rc < 0)
            return NULL;
        id = rc;
    }
    lynx_value_t *body = lynx_msgpack_unpack_at(bytes, size, &offset, "body", err);
    lynx_msg_t *self = NULL;
    if (!body)
        return NULL;
    if (offset != size)
        lynx_err_set(err, LYNX_EPROTOCOL, NULL, "trailing bytes after message");
    else if (s_check_body((lynx_msg_id_t)id, body, err) == 0) {
        self = calloc(1, sizeof *self);
        if (self) {
            self->id = (lynx_msg_id_t)id;
            self->body = body;
            body = NULL;
        } else
            lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory decoding msgpack");
    }
    lynx_value_destroy(&body);
    return self;
}

int lynx_msg_send(lynx_msg_t **self_p, void *socket, zframe_t *routing_id, lynx_err_t *err)
{
    if (!self_p || !*self_p)
        return lynx_err_set(err, LYNX_EINTERNAL, NULL, "send: no message");
    const char *command = lynx_msg_command(*self_p);
    zframe_t *frame = lynx_msg_encode(*self_p, err);
    lynx_msg_destroy(self_p);
    if (!frame)
        return -1;
    zmsg_t *msg = zmsg_new();
    zframe_t *envelope = routing_id ? zframe_dup(routing_id) : NULL;
    if (!msg || (routing_id && !envelope)) {
        zframe_destroy(&envelope);
        zframe_destroy(&frame);
        zmsg_destroy(&msg);
        return lynx_err_set(err, LYNX_EINTERNAL, NULL, "send %s: out of memory", command);
    }
    if (envelope)
        zmsg_append(msg, &envelope);
    zmsg_append(msg, &frame);
    //  zmsg_send destroys the message only when it succeeds.
    if (zmsg_send(&msg, socket)) {
        int error = zmq_errno();
        zmsg_destroy(&msg);
        return lynx_err_set(err, LYNX_EUNAVAILABLE, NULL, "send %s: %s", command,
                            zmq_strerror(error));
    }
    return 0;
}

lynx_msg_t *lynx_msg_recv(void *socket, zframe_t **routing_id_p, lynx_err_t *err)
{
    if (routing_id_p)
        *routing_id_p = NULL;
    zmsg_t *msg = zmsg_recv(socket);
    if (!msg) {
        lynx_err_set(err, LYNX_EUNAVAILABLE, NULL, "receive: %s", zmq_strerror(zmq_errno()));
        return NULL;
    }
    if (routing_id_p)
        *routing_id_p = zmsg_pop(msg);
    lynx_msg_t *self = NULL;
    size_t frames = zmsg_size(msg);
    if (routing_id_p && !*routing_id_p)
        lynx_err_set(err, LYNX_EPROTOCOL, NULL, "missing routing id frame");
    else if (frames != 1)
        lynx_err_set(err, LYNX_EPROTOCOL, NULL, "expected 1 payload frame, got %zu", frames);
    else {
        zframe_t *frame = zmsg_first(msg);
        self = lynx_msg_decode(zframe_data(frame), zframe_size(frame), err);
        //  Set by our ZAP handler on CURVE sockets (czmq asks libzmq for the frame's
        //  metadata); absent on plain sockets.
        const char *peer = self ? zframe_meta(frame, "User-Id") : NULL;
        if (peer && *peer)
            self->peer = strdup(peer);
    }
    zmsg_destroy(&msg);
    return self;
}
