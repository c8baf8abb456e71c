//  broker_ids: time-ordered UUIDs (see the header).
#include "broker_ids.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "broker_rng.h"
#include "lynx_time.h"

struct _broker_ids_t {
    broker_rng_t rng;
    int64_t last_ms;  //  time part of the last id issued
    int64_t sequence; //  ids issued in that millisecond
};

broker_ids_t *broker_ids_new(uint64_t seed)
{
    broker_ids_t *self = (broker_ids_t *)calloc(1, sizeof *self);
    if (self)
        broker_rng_seed(&self->rng, seed);
    return self;
}

void broker_ids_destroy(broker_ids_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free(*self_p);
    *self_p = NULL;
}

void broker_ids_next(broker_ids_t *self, char *id)
{
    int64_t now_ms = lynx_time_now_ms();
    if (now_ms > self->last_ms) {
        self->last_ms = now_ms;
        self->sequence = 0;
    } else if (++self->sequence > 0xfff) { //  4096 ids this millisecond: borrow the next one
        self->last_ms++;
        self->sequence = 0;
    }
    uint64_t high = ((uint64_t)self->last_ms << 16) | 0x7000u | (uint64_t)self->sequence;
    uint64_t low = (broker_rng_next(&self->rng) >> 2) | (0x2ull << 62); //  RFC variant
    snprintf(id, BROKER_ID_SIZE, "%08x-%04x-%04x-%04x-%012" PRIx64, (unsigned)(high >> 32),
             (unsigned)((high >> 16) & 0xffff), (unsigned)(high & 0xffff), (unsigned)(low >> 48),
             (uint64_t)(low & 0xffffffffffffull));
}
