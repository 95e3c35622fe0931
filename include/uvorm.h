/* SPDX-License-Identifier: MIT */
/* uvorm — an asynchronous, connection-pooling ORM runtime for PostgreSQL on
 * libuv and libpq. This umbrella header includes every public header. */
#ifndef UVORM_H
#define UVORM_H

#include "uvorm/common.h"
#include "uvorm/async.h"
#include "uvorm/pool.h"
#include "uvorm/model.h"
#include "uvorm/migrate.h"
#include "uvorm/stream.h"
#include "uvorm/cluster.h"

#endif /* UVORM_H */
