//  broker_ids: batch and job ids, time-ordered (version 7, RFC 9562) UUIDs: 48 bits of Unix
//  milliseconds, a 12-bit sequence that keeps ids from one millisecond in order, then 62
//  random bits from a generator seeded once. Ordered ids make a million-job insert append to
//  the store's id index instead of scattering over it, and need no system call per id.
#ifndef BROKER_IDS_H_INCLUDED
#define BROKER_IDS_H_INCLUDED

#include <stdint.h>

#include "broker_store.h"

typedef struct _broker_ids_t broker_ids_t;

//  A generator seeded with seed (the broker passes bytes from the OS). NULL on out-of-memory.
broker_ids_t *broker_ids_new(uint64_t seed);
//  Destroy; sets *self_p to NULL. NULL-safe.
void broker_ids_destroy(broker_ids_t **self_p);
//  The next id into id (BROKER_ID_SIZE bytes): after every id this generator gave before.
void broker_ids_next(broker_ids_t *self, char *id);

#endif
