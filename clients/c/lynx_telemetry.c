//  lynx_telemetry: the scenario-side telemetry client (see lynx_telemetry.h).
//
//  A standalone library for scenario authors, so it speaks to libzmq and msgpack-c directly:
//  no czmq, and not our codec (proto/lynx_msg.c), whose frames it must nevertheless match
//  byte for byte. tests/unit/lynx_telemetry_test.c decodes what we send with the codec and
//  compares it with the codec's own encoding of the same message.
#include "lynx_telemetry.h"

#include <errno.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

//  The codec refuses bigger frames (LYNX_MSG_MAX_BYTES in proto/lynx_msg.h).
#define S_MAX_FRAME_BYTES (64u * 1024u * 1024u)
//  Samples up to this size are checked for repeated names pairwise; bigger ones are sorted.
#define S_PAIRWISE_MAX 16

struct _lynx_telemetry_t {
    void *context; //  NULL for a no-op client
    void *socket;
    uint64_t seq;           //  sequence number of the next frame
    uint64_t dropped;       //  frames refused by a full queue
    msgpack_sbuffer buffer; //  the frame being packed, reused from send to send
    const char **names;     //  scratch for the repeated-name check of big samples
    size_t names_max;
    char *error; //  why a client with a URL is a no-op, or NULL
};

//  Returned when even the no-op client cannot be allocated, so from_env is never NULL. Never
//  written: every function returns before touching a client without a socket.
static const lynx_telemetry_t s_out_of_memory_client;

//  A sample is either an array of tagged values or parallel arrays of names and doubles.
typedef struct {
    const lynx_telemetry_value_t *values;
    const char *const *names;
    const double *doubles;
} s_sample_t;

static const char *s_name(const s_sample_t *sample, size_t index)
{
    return sample->values ? sample->values[index].name : sample->names[index];
}

static int s_set_error(lynx_telemetry_t *self, const char *operation, const char *url)
{
    const char *reason = zmq_strerror(zmq_errno());
    size_t size = strlen(operation) + strlen(url) + strlen(reason) + 4;
    self->error = malloc(size);
    if (self->error)
        snprintf(self->error, size, "%s %s: %s", operation, url, reason);
    fprintf(stderr, "lynx_telemetry: %s %s: %s; telemetry disabled\n", operation, url, reason);
    return -1;
}

//  Create the context and the PUSH socket and connect it. On failure the client stays a
//  no-op with self->error set.
static int s_connect(lynx_telemetry_t *self, const char *url)
{
    int sndhwm = LYNX_TELEMETRY_SNDHWM;
    int linger_ms = LYNX_TELEMETRY_LINGER_MS;
    //  Our own context, so closing waits (up to the linger) for our frames only.
    void *context = zmq_ctx_new();
    if (!context)
        return s_set_error(self, "create context for", url);
    void *socket = zmq_socket(context, ZMQ_PUSH);
    if (!socket || zmq_setsockopt(socket, ZMQ_SNDHWM, &sndhwm, sizeof sndhwm) ||
        zmq_setsockopt(socket, ZMQ_LINGER, &linger_ms, sizeof linger_ms) ||
        zmq_connect(socket, url)) {
        s_set_error(self, socket ? "connect" : "create socket for", url);
        int no_linger = 0;
        if (socket) {
            zmq_setsockopt(socket, ZMQ_LINGER, &no_linger, sizeof no_linger);
            zmq_close(socket);
        }
        zmq_ctx_term(context);
        return -1;
    }
    self->context = context;
    self->socket = socket;
    return 0;
}

lynx_telemetry_t *lynx_telemetry_new(const char *url)
{
    lynx_telemetry_t *self = calloc(1, sizeof *self);
    if (!self) {
        if (url && *url)
            fprintf(stderr, "lynx_telemetry: connect %s: out of memory; telemetry disabled\n", url);
        return (lynx_telemetry_t *)&s_out_of_memory_client;
    }
    msgpack_sbuffer_init(&self->buffer);
    if (url && *url)
        s_connect(self, url);
    return self;
}

lynx_telemetry_t *lynx_telemetry_from_env(void)
{
    return lynx_telemetry_new(getenv(LYNX_TELEMETRY_ENV_URL));
}

void lynx_telemetry_close(lynx_telemetry_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    lynx_telemetry_t *self = *self_p;
    *self_p = NULL;
    if (self == &s_out_of_memory_client)
        return;
    if (self->socket) {
        zmq_close(self->socket);
        //  Waits up to the linger for queued frames; a signal interrupts it, so try again.
        while (zmq_ctx_term(self->context) == -1 && zmq_errno() == EINTR)
            ;
    }
    msgpack_sbuffer_destroy(&self->buffer);
    free(self->names);
    free(self->error);
    free(self);
}

static int s_compare_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

//  EINVAL unless every name is set and unique and every type known; ENOMEM.
static int s_check_sample(lynx_telemetry_t *self, size_t count, const s_sample_t *sample)
{
    for (size_t i = 0; i < count; i++) {
        if (!s_name(sample, i))
            return EINVAL;
        if (sample->values) {
            lynx_telemetry_type_t type = sample->values[i].type;
            if (type != LYNX_TELEMETRY_DOUBLE && type != LYNX_TELEMETRY_INT &&
                type != LYNX_TELEMETRY_BOOL)
                return EINVAL;
        }
    }
    if (count <= S_PAIRWISE_MAX) {
        for (size_t i = 1; i < count; i++)
            for (size_t j = 0; j < i; j++)
                if (strcmp(s_name(sample, i), s_name(sample, j)) == 0)
                    return EINVAL;
        return 0;
    }
    if (count > self->names_max) {
        const char **names = realloc(self->names, count * sizeof *names);
        if (!names)
            return ENOMEM;
        self->names = names;
        self->names_max = count;
    }
    for (size_t i = 0; i < count; i++)
        self->names[i] = s_name(sample, i);
    qsort(self->names, count, sizeof *self->names, s_compare_names);
    for (size_t i = 1; i < count; i++)
        if (strcmp(self->names[i - 1], self->names[i]) == 0)
            return EINVAL;
    return 0;
}

static int s_pack_str(msgpack_packer *packer, const char *text)
{
    return msgpack_pack_str_with_body(packer, text, strlen(text));
}

static int s_pack_value(msgpack_packer *packer, const s_sample_t *sample, size_t index)
{
    if (!sample->values)
        return msgpack_pack_double(packer, sample->doubles[index]);
    const lynx_telemetry_value_t *value = &sample->values[index];
    switch (value->type) {
    case LYNX_TELEMETRY_DOUBLE:
        return msgpack_pack_double(packer, value->as_double);
    case LYNX_TELEMETRY_INT:
        return msgpack_pack_int64(packer, value->as_int);
    case LYNX_TELEMETRY_BOOL:
        return value->as_bool ? msgpack_pack_true(packer) : msgpack_pack_false(packer);
    }
    return -1; //  unreachable: s_check_sample refused unknown types
}

//  Pack ["LYNX", 1, "TELEMETRY", {"seq", "timestamp_ns", "values"}] into self->buffer, with
//  the same msgpack forms as the codec: shortest integers, float 64, str (not bin).
static int s_pack_frame(lynx_telemetry_t *self, int64_t timestamp_ns, size_t count,
                        const s_sample_t *sample)
{
    msgpack_sbuffer_clear(&self->buffer);
    msgpack_packer packer;
    msgpack_packer_init(&packer, &self->buffer, msgpack_sbuffer_write);
    int rc = msgpack_pack_array(&packer, 4) || s_pack_str(&packer, "LYNX") ||
             msgpack_pack_int(&packer, 1) || s_pack_str(&packer, "TELEMETRY") ||
             msgpack_pack_map(&packer, 3) || s_pack_str(&packer, "seq") ||
             msgpack_pack_int64(&packer, (int64_t)self->seq) ||
             s_pack_str(&packer, "timestamp_ns") || msgpack_pack_int64(&packer, timestamp_ns) ||
             s_pack_str(&packer, "values") || msgpack_pack_map(&packer, count);
    for (size_t i = 0; i < count && rc == 0; i++)
        rc = s_pack_str(&packer, s_name(sample, i)) || s_pack_value(&packer, sample, i);
    return rc ? ENOMEM : 0;
}

static int64_t s_now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

static int s_fail(int error)
{
    errno = error;
    return -1;
}

static int s_send(lynx_telemetry_t *self, int64_t timestamp_ns, size_t count,
                  const s_sample_t *sample)
{
    if (!self || !self->socket)
        return 0;
    if (count > 0 && !sample->values && !(sample->names && sample->doubles))
        return s_fail(EINVAL);
    //  A msgpack map holds at most 2^32-1 entries; the frame limit comes long before.
    if (count > S_MAX_FRAME_BYTES)
        return s_fail(EMSGSIZE);
    int error = s_check_sample(self, count, sample);
    if (!error)
        error = s_pack_frame(self, timestamp_ns == LYNX_TELEMETRY_NOW ? s_now_ns() : timestamp_ns,
                             count, sample);
    if (!error && self->buffer.size > S_MAX_FRAME_BYTES)
        error = EMSGSIZE;
    if (error)
        return s_fail(error);
    self->seq++;
    //  zmq_send copies the bytes, so the buffer is ours again at once.
    if (zmq_send(self->socket, self->buffer.data, self->buffer.size, ZMQ_DONTWAIT) == -1) {
        self->dropped++;
        return s_fail(EAGAIN);
    }
    return 0;
}

int lynx_telemetry_send(lynx_telemetry_t *self, int64_t timestamp_ns, size_t count,
                        const lynx_telemetry_value_t *values)
{
    s_sample_t sample = {.values = values};
    return s_send(self, timestamp_ns, count, &sample);
}

int lynx_telemetry_send_doubles(lynx_telemetry_t *self, int64_t timestamp_ns,
                                const char *const *names, const double *values, size_t count)
{
    s_sample_t sample = {.names = names, .doubles = values};
    return s_send(self, timestamp_ns, count, &sample);
}

bool lynx_telemetry_active(const lynx_telemetry_t *self)
{
    return self && self->socket;
}

uint64_t lynx_telemetry_dropped(const lynx_telemetry_t *self)
{
    return self ? self->dropped : 0;
}

uint64_t lynx_telemetry_seq(const lynx_telemetry_t *self)
{
    return self ? self->seq : 0;
}

const char *lynx_telemetry_error(const lynx_telemetry_t *self)
{
    return self ? self->error : NULL;
}
