//  lynx_fsm: the pieces every protocol table shares (state x event -> action, as malamute's
//  brokers are written; broker/dispatch/broker_protocol.c and worker/runner.c). An action
//  entry keeps the name proto/PROTOCOL.md prints beside the function that runs, and names are
//  looked up without ever indexing out of range.
#ifndef LYNX_FSM_H_INCLUDED
#define LYNX_FSM_H_INCLUDED

#include <stddef.h>

//  Declare an action entry type for handlers of type fn_type: {name, run}.
#define LYNX_FSM_ACTION_TYPE(type_name, fn_type)                                                   \
    typedef struct {                                                                               \
        const char *name;                                                                          \
        fn_type *run;                                                                              \
    } type_name

//  An entry for the file-local function s_<name>, shown as "<name>".
#define LYNX_FSM_ACTION(fn)                                                                        \
    {                                                                                              \
        &(#fn)[2], fn                                                                              \
    }

//  names[index], or "?" past count (a state or event the table does not have).
static inline const char *lynx_fsm_name(const char *const names[], size_t count, size_t index)
{
    return index < count ? names[index] : "?";
}

//  The name of table[state][event] (entries whose first member is the name, as
//  LYNX_FSM_ACTION_TYPE declares), or "?" for a state or event out of range.
static inline const char *lynx_fsm_action_name(const void *table, size_t entry_size,
                                               size_t state_count, size_t event_count, size_t state,
                                               size_t event)
{
    if (state >= state_count || event >= event_count)
        return "?";
    const char *entry = (const char *)table + (state * event_count + event) * entry_size;
    return *(const char *const *)entry;
}

#endif
