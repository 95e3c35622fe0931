/* SPDX-License-Identifier: MIT */
/* The TechEmpower tables' models and the fortunes (see tfb.h). */
#include "tfb.h"

ORM_MODEL_DEFINE(world, "world", WORLD_FIELDS);
ORM_MODEL_DEFINE(fortune, "fortune", FORTUNE_FIELDS);

/* As in the TechEmpower specification: an HTML-escaping test (id 11), a
 * UTF-8 one (id 12, "framework benchmarks" in Japanese) and em dashes. */
const char *const tfb_fortune_messages[TFB_FORTUNES] = {
    "fortune: No such file or directory",
    "A computer scientist is someone who fixes things that aren't broken.",
    "After enough decimal places, nobody gives a damn.",
    "A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1",
    "A computer program does what you tell it to do, not what you want it to "
    "do.",
    "Emacs is a nice operating system, but I prefer UNIX. \u2014 Tom "
    "Christaensen",
    "Any program that runs right is obsolete.",
    "A list is only as strong as its weakest link. \u2014 Donald Knuth",
    "Feature: A bug with seniority.",
    "Computers make very fast, very accurate mistakes.",
    "<script>alert(\"This should not be displayed in a browser alert "
    "box.\");</script>",
    "\u30D5\u30EC\u30FC\u30E0\u30EF\u30FC\u30AF\u306E\u30D9\u30F3\u30C1\u30DE"
    "\u30FC\u30AF",
};
