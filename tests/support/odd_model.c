/* SPDX-License-Identifier: MIT */
#include "odd_model.h"

#include <stddef.h>

const orm_field_t odd_fields[4] = {
    {"Key", ORM_T_INT8, offsetof(odd_t, key), sizeof(int64_t), ORM_F_PK},
    {"la\"bel", ORM_T_TEXT, offsetof(odd_t, label), sizeof(char *),
     ORM_F_UNIQUE},
    {"small one", ORM_T_INT2, offsetof(odd_t, small), sizeof(int16_t), 0},
    {"flag", ORM_T_BOOL, offsetof(odd_t, flag), sizeof(bool), 0},
};

const orm_model_t odd_model = {
    .schema = "my\"schema",
    .table = "we\"ird table",
    .fields = odd_fields,
    .nfields = 4,
    .struct_size = sizeof(odd_t),
    .nulls_offset = offsetof(odd_t, nulls),
};
