//  broker_study_check_internal: what the two halves of broker_study_check share.
//  broker_study_check.c checks the config section by section; broker_dist_check.c checks each
//  dispersion's distribution. Both report through a lynx_check_t and read members with the
//  typed getters below. Only those two files include this header.
#ifndef BROKER_STUDY_CHECK_INTERNAL_H_INCLUDED
#define BROKER_STUDY_CHECK_INTERNAL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker_study_check.h"
#include "lynx_check.h"
#include "lynx_value.h"

//  Check a dispersion's distribution object at path into dimension->spec (and, for choice and
//  constant, dimension->weights and dimension->values). Problems are reported in check.
//  Defined in broker_dist_check.c.
void broker_dist_check(lynx_check_t *check, broker_study_dimension_t *dimension,
                       const lynx_value_t *map, const char *path);

#endif
