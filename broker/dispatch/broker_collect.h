//  broker_collect: a FINISHED and the files that come with it. The attempt's result is in, but
//  the job ends only once its files are on the broker's disk: the files the FINISHED lists are
//  fetched from the runner (broker_artifacts), then the attempt ends with them recorded, and
//  the ACK goes out once that is durable. A runner that never sends the files, or sends bad
//  ones, gets an ERROR and no ACK: it sends the FINISHED again later and the transfer restarts.
#ifndef BROKER_COLLECT_H_INCLUDED
#define BROKER_COLLECT_H_INCLUDED

#include "broker_core.h"

//  A FINISHED from runner (its route routing_id).
void broker_collect_finished(broker_core_t *core, broker_runner_t *runner, zframe_t *routing_id,
                             const lynx_value_t *body);
//  A CHUNK from runner.
void broker_collect_chunk(broker_core_t *core, broker_runner_t *runner, zframe_t *routing_id,
                          const lynx_value_t *body);
//  The tick: transfers silent too long are abandoned (their runners are told).
void broker_collect_tick(broker_core_t *core, int64_t now_mono_ms);

#endif
