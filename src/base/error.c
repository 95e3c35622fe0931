/* SPDX-License-Identifier: MIT */
#include <stdio.h>

#include "uvorm/common.h"

/* NULL for a code outside the table. */
static const char *err_message(int code) {
  switch (code) {
#define ORM__ERR_MESSAGE_CASE_(name, value, msg)                                \
  case ORM_##name:                                                             \
    return msg;
    ORM_ERRNO_MAP(ORM__ERR_MESSAGE_CASE_)
#undef ORM__ERR_MESSAGE_CASE_
  case 0:
    return "success";
  default:
    return NULL;
  }
}

const char *orm_strerror(int code) {
  const char *msg = err_message(code);
  return msg != NULL ? msg : "unknown error";
}

const char *orm_err_name(int code) {
  switch (code) {
#define ORM__ERR_NAME_CASE_(name, value, msg)                                   \
  case ORM_##name:                                                             \
    return "ORM_" #name;
    ORM_ERRNO_MAP(ORM__ERR_NAME_CASE_)
#undef ORM__ERR_NAME_CASE_
  case 0:
    return "ORM_OK";
  default:
    return "ORM_UNKNOWN";
  }
}

char *orm_strerror_r(int code, char *buf, size_t len) {
  if (buf == NULL || len == 0)
    return buf;
  const char *msg = err_message(code);
  if (msg != NULL)
    snprintf(buf, len, "%s", msg);
  else
    snprintf(buf, len, "unknown error %d", code);
  return buf;
}
