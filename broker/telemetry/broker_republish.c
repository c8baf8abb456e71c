//  broker_republish: the public PUB socket (see the header). Every message is two frames,
//  [topic][payload]; subscribers filter by topic prefix.
#include "broker_republish.h"

#include <czmq.h>

#include "broker_telemetry_config.h"
#include "lynx_msg.h"
#include "lynx_time.h"

#define S_PUB_HWM 100000 //  messages queued per subscriber, then dropped
#define S_TOPIC_MAX (16 + 2 * BROKER_TELEMETRY_ID_MAX)

struct _broker_republish_t {
    zsock_t *pub; //  NULL: publishing is a no-op
    char endpoint[256];
    broker_republish_stats_t stats;
};

broker_republish_t *broker_republish_new(const char *endpoint, broker_keys_t *keys, lynx_err_t *err)
{
    broker_republish_t *self = (broker_republish_t *)calloc(1, sizeof *self);
    if (!self) {
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "out of memory");
        return NULL;
    }
    if (!endpoint || !*endpoint)
        return self;
    self->pub = zsock_new(ZMQ_PUB);
    if (!self->pub) {
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "create socket for %s: %s", endpoint,
                     zmq_strerror(errno));
        broker_republish_destroy(&self);
        return NULL;
    }
    zsock_set_sndhwm(self->pub, S_PUB_HWM);
    zsock_set_linger(self->pub, 0);
    zsock_set_maxmsgsize(self->pub, 4096); //  subscribers only send subscriptions
    if (keys)
        broker_keys_serve(keys, self->pub, BROKER_KEYS_DOMAIN_TELEMETRY);
    if (zsock_bind(self->pub, "%s", endpoint) < 0) {
        lynx_err_set(err, LYNX_EINTERNAL, NULL, "bind %s: %s", endpoint, zmq_strerror(errno));
        broker_republish_destroy(&self);
        return NULL;
    }
    snprintf(self->endpoint, sizeof self->endpoint, "%s",
             zsock_endpoint(self->pub) ? zsock_endpoint(self->pub) : endpoint);
    return self;
}

void broker_republish_destroy(broker_republish_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zsock_destroy(&(*self_p)->pub);
    free(*self_p);
    *self_p = NULL;
}

const char *broker_republish_endpoint(const broker_republish_t *self)
{
    return self->endpoint;
}

bool broker_republish_active(const broker_republish_t *self)
{
    return self->pub != NULL;
}

void broker_republish_stats(const broker_republish_t *self, broker_republish_stats_t *stats)
{
    *stats = self->stats;
}

//  Send [topic][payload] without waiting; takes *payload_p whatever happens. A PUB socket
//  drops, per subscriber, what a full queue cannot take, so -1 means libzmq refused it.
static int s_send(broker_republish_t *self, const char *topic, zframe_t **payload_p)
{
    void *handle = zsock_resolve(self->pub);
    int rc = -1;
    if (*payload_p && zmq_send(handle, topic, strlen(topic), ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
        rc = zframe_send(payload_p, handle, ZFRAME_DONTWAIT);
    zframe_destroy(payload_p); //  zframe_send keeps the frame when it fails
    return rc;
}

void broker_republish_frame(broker_republish_t *self, const char *batch_id, const char *job_id,
                            lynx_value_t **record_p, const lynx_value_t *dropped)
{
    if (!self->pub) {
        lynx_value_destroy(record_p);
        return;
    }
    lynx_value_t *record = *record_p;
    lynx_msg_t *msg = lynx_msg_new(LYNX_MSG_TELEMETRY);
    int rc = msg && lynx_value_set_string(record, "job_id", job_id) == 0 &&
                     lynx_value_set_string(record, "batch_id", batch_id) == 0
                 ? 0
                 : -1;
    if (rc == 0 && lynx_value_type(dropped) == LYNX_VALUE_INT)
        rc = lynx_value_set_int(record, "dropped", lynx_value_as_int(dropped));
    if (rc == 0)
        rc = lynx_msg_set_body(msg, record_p);
    lynx_value_destroy(record_p);
    zframe_t *frame = rc == 0 ? lynx_msg_encode(msg, NULL) : NULL;
    lynx_msg_destroy(&msg);
    char topic[S_TOPIC_MAX];
    snprintf(topic, sizeof topic, "telemetry.%s.%s", batch_id, job_id);
    if (frame && s_send(self, topic, &frame) == 0)
        self->stats.frames_published++;
    else
        self->stats.frames_dropped++;
}

//  Publish {type, <id keys>: ids, status, time_ms, ...extra} on topic.
static int s_publish_state(broker_republish_t *self, const char *type, const char *topic,
                           const char *const keys[], const char *const ids[], size_t count,
                           const char *status, const lynx_value_t *extra)
{
    lynx_value_t *event = lynx_value_map();
    bool failed = !event || lynx_value_set_string(event, "type", type);
    for (size_t i = 0; i < count && !failed; i++)
        failed = lynx_value_set_string(event, keys[i], ids[i]) != 0;
    failed = failed || lynx_value_set_string(event, "status", status) ||
             lynx_value_set_int(event, "time_ms", lynx_time_now_ms());
    for (size_t i = 0; !failed && i < lynx_value_size(extra); i++) {
        const char *key = lynx_value_key_at(extra, i);
        if (!key || lynx_value_get(event, key))
            continue;
        failed = lynx_value_set_owned(event, key, lynx_value_dup(lynx_value_at(extra, i))) != 0;
    }
    unsigned char *packed = NULL;
    size_t size = 0;
    if (!failed && self->pub)
        failed = lynx_msgpack_pack(event, &packed, &size) != 0;
    lynx_value_destroy(&event);
    if (!failed && !self->pub)
        return 0;
    zframe_t *frame = failed ? NULL : zframe_new(packed, size);
    free(packed);
    int rc = frame ? s_send(self, topic, &frame) : -1;
    if (rc == 0)
        self->stats.events_published++;
    else
        self->stats.events_dropped++;
    return rc;
}

static int s_refuse_event(broker_republish_t *self)
{
    self->stats.events_dropped++;
    return -1;
}

static bool s_id_valid(const char *id)
{
    return id && broker_telemetry_config_id_valid(id, strlen(id));
}

int broker_republish_job_event(broker_republish_t *self, const char *batch_id, const char *job_id,
                               const char *status, const lynx_value_t *extra)
{
    if (!s_id_valid(batch_id) || !s_id_valid(job_id) || !status)
        return s_refuse_event(self);
    char topic[S_TOPIC_MAX];
    snprintf(topic, sizeof topic, "event.%s.%s", batch_id, job_id);
    const char *keys[] = {"batch_id", "job_id"}, *ids[] = {batch_id, job_id};
    return s_publish_state(self, "job", topic, keys, ids, 2, status, extra);
}

int broker_republish_batch_event(broker_republish_t *self, const char *batch_id, const char *status,
                                 const lynx_value_t *extra)
{
    if (!s_id_valid(batch_id) || !status)
        return s_refuse_event(self);
    char topic[S_TOPIC_MAX];
    snprintf(topic, sizeof topic, "event.%s", batch_id);
    const char *keys[] = {"batch_id"}, *ids[] = {batch_id};
    return s_publish_state(self, "batch", topic, keys, ids, 1, status, extra);
}

//  Any printable characters but spaces, at most BROKER_REPUBLISH_RUNNER_ID_MAX.
static bool s_runner_id_valid(const char *id)
{
    size_t len = id ? strlen(id) : 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)id[i] <= ' ' || (unsigned char)id[i] == 0x7f)
            return false;
    return len > 0 && len <= BROKER_REPUBLISH_RUNNER_ID_MAX;
}

int broker_republish_runner_event(broker_republish_t *self, const char *runner_id,
                                  const char *status, const lynx_value_t *extra)
{
    if (!s_runner_id_valid(runner_id) || !status)
        return s_refuse_event(self);
    char topic[S_TOPIC_MAX];
    snprintf(topic, sizeof topic, "runner.%s", runner_id);
    const char *keys[] = {"runner_id"}, *ids[] = {runner_id};
    return s_publish_state(self, "runner", topic, keys, ids, 1, status, extra);
}
