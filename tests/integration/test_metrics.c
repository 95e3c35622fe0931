/* SPDX-License-Identifier: MIT */
/* orm_pool_metrics: the Prometheus text is parsed back line by line
 * against the exposition format, and its numbers checked against what the
 * test did: queries, errors, prepared-statement hits and misses, latency
 * histograms per operation (cumulative, +Inf equal to the count). */
#include "fixture.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain.h"

#define SCHEMA "metrics_test"

/* A sample's name, its label text (inside the braces) and value. */
typedef struct {
  char name[96];
  char labels[256];
  double value;
} sample_t;

static bool name_char(char c, bool first) {
  return isalpha((unsigned char)c) || c == '_' || c == ':' ||
         (!first && isdigit((unsigned char)c));
}

/* Parses one line of the text; fails the test on anything malformed.
 * Returns true for a sample (filled in), false for a comment. */
static bool parse_line(const char *line, sample_t *s) {
  if (line[0] == '#') {
    char kind[8], name[96], type[16];
    if (sscanf(line, "# %7s %95s %15s", kind, name, type) != 3)
      fail_msg("bad comment line: %s", line);
    if (strcmp(kind, "TYPE") == 0 && strcmp(type, "gauge") != 0 &&
        strcmp(type, "counter") != 0 && strcmp(type, "histogram") != 0)
      fail_msg("bad type: %s", line);
    if (strcmp(kind, "HELP") != 0 && strcmp(kind, "TYPE") != 0)
      fail_msg("bad comment: %s", line);
    return false;
  }
  const char *p = line;
  size_t n = 0;
  while (name_char(*p, n == 0) && n + 1 < sizeof s->name)
    s->name[n++] = *p++;
  s->name[n] = '\0';
  if (n == 0)
    fail_msg("no metric name: %s", line);
  s->labels[0] = '\0';
  if (*p == '{') {
    const char *end = strrchr(p, '}');
    if (end == NULL || (size_t)(end - p - 1) >= sizeof s->labels)
      fail_msg("labels not closed: %s", line);
    memcpy(s->labels, p + 1, (size_t)(end - p - 1));
    s->labels[end - p - 1] = '\0';
    /* name="value" pairs */
    for (const char *l = s->labels; *l;) {
      if (!name_char(*l, true))
        fail_msg("bad label name: %s", line);
      while (name_char(*l, false))
        l++;
      if (l[0] != '=' || l[1] != '"')
        fail_msg("bad label: %s", line);
      l += 2;
      while (*l != '"') { /* escapes: \\ \" \n */
        if (*l == '\0')
          fail_msg("label value not closed: %s", line);
        l += *l == '\\' ? 2 : 1;
      }
      l++;
      if (*l == ',')
        l++;
      else if (*l != '\0')
        fail_msg("junk after a label: %s", line);
    }
    p = end + 1;
  }
  if (*p != ' ')
    fail_msg("no space before the value: %s", line);
  char *end;
  s->value = strtod(p + 1, &end);
  if (end == p + 1 || *end != '\0')
    fail_msg("bad value: %s", line);
  return true;
}

/* The value of the sample `name` whose labels contain `has` (NULL: any). */
static double value_of(char *text, const char *name, const char *has) {
  char *copy = strdup(text), *save = NULL;
  double v = -1;
  for (char *line = strtok_r(copy, "\n", &save); line != NULL;
       line = strtok_r(NULL, "\n", &save)) {
    sample_t s;
    if (parse_line(line, &s) && strcmp(s.name, name) == 0 &&
        (has == NULL || strstr(s.labels, has) != NULL)) {
      v = s.value;
      break;
    }
  }
  free(copy);
  if (v < 0)
    fail_msg("no sample %s{%s}", name, has != NULL ? has : "");
  return v;
}

static char *metrics(orm_fx_t *fx, const char *labels) {
  int n = orm_pool_metrics(fx->pool, labels, NULL, 0);
  assert_true(n > 0);
  char small[16];
  assert_int_equal(orm_pool_metrics(fx->pool, labels, small, sizeof small), n);
  assert_int_equal(strlen(small), sizeof small - 1); /* cut, terminated */
  char *text = malloc((size_t)n + 1);
  assert_non_null(text);
  assert_int_equal(orm_pool_metrics(fx->pool, labels, text, (size_t)n + 1), n);
  assert_int_equal(strlen(text), (size_t)n);
  /* Every line parses; every sample has the caller's labels. */
  char *copy = strdup(text), *save = NULL;
  for (char *line = strtok_r(copy, "\n", &save); line != NULL;
       line = strtok_r(NULL, "\n", &save)) {
    sample_t s;
    if (parse_line(line, &s) && labels != NULL)
      assert_non_null(strstr(s.labels, labels));
  }
  free(copy);
  return text;
}

static void run(orm_fx_t *fx, const char *sql) {
  orm_step_t s = {0};
  assert_int_equal(orm_query_async(fx->pool, sql, NULL, 0, orm_fx_on_step, &s, NULL), 0);
  orm_fx_wait(fx, &s, 1);
}

static void test_metrics(void **state) {
  (void)state;
  orm_fx_t fx;
  orm_fx_open(&fx, SCHEMA, 1, &(orm_pool_config_t){.metrics = true, .max_conns = 1});
  for (int i = 0; i < 5; i++)
    run(&fx, "SELECT 1");
  run(&fx, "SELECT 1 / 0");
  orm_step_t f = {0};
  assert_int_equal(orm_find_async(fx.pool, user_model(), ORM_INT8(1), orm_fx_on_step, &f, NULL), 0);
  orm_fx_wait(&fx, &f, 1);
  assert_int_equal(f.status, ORM_ENOTFOUND);

  char *text = metrics(&fx, "pool=\"main\",app=\"t\\\"1\"");
  assert_true(value_of(text, "uvorm_queries_total", NULL) >= 7);
  assert_true(value_of(text, "uvorm_errors_total", NULL) >= 1);
  assert_int_equal((int)value_of(text, "uvorm_connections", "state=\"idle\""), 1);
  /* One connection: SELECT 1 was prepared once, then hit four times. */
  assert_true(value_of(text, "uvorm_prepared_statements_total", "result=\"hit\"") >= 4);
  assert_true(value_of(text, "uvorm_prepared_statements_total", "result=\"miss\"") >= 2);
  /* Six raw statements, one find; cumulative buckets end at the count. */
  double raw = value_of(text, "uvorm_query_duration_seconds_count", "operation=\"query\"");
  assert_int_equal((int)raw, 6);
  assert_int_equal((int)value_of(text, "uvorm_query_duration_seconds_count",
                                 "operation=\"find\""),
                   1);
  assert_int_equal((int)value_of(text, "uvorm_query_duration_seconds_bucket",
                                 "operation=\"query\",le=\"+Inf\""),
                   6);
  double last = 0;
  const char *les[] = {"le=\"0.0001\"", "le=\"0.001\"", "le=\"0.01\"", "le=\"0.1\"",
                       "le=\"1\"", "le=\"10\"", "le=\"+Inf\""};
  for (size_t i = 0; i < sizeof les / sizeof les[0]; i++) {
    char has[64];
    snprintf(has, sizeof has, "operation=\"query\",%s", les[i]);
    double v = value_of(text, "uvorm_query_duration_seconds_bucket", has);
    assert_true(v >= last);
    last = v;
  }
  assert_true(value_of(text, "uvorm_query_duration_seconds_sum", "operation=\"query\"") > 0);
  assert_int_equal((int)value_of(text, "uvorm_queue_wait_seconds_count", NULL), 7);
  free(text);

  /* Bad labels are refused; no labels are fine. */
  char buf[64];
  assert_int_equal(orm_pool_metrics(fx.pool, "pool=main", buf, sizeof buf), ORM_EINVAL);
  assert_int_equal(orm_pool_metrics(fx.pool, "pool=\"a\nb\"", buf, sizeof buf), ORM_EINVAL);
  assert_int_equal(orm_pool_metrics(fx.pool, "1x=\"a\"", buf, sizeof buf), ORM_EINVAL);
  assert_int_equal(orm_pool_metrics(fx.pool, "pool=\"a\",", buf, sizeof buf), ORM_EINVAL);
  assert_int_equal(orm_pool_metrics(fx.pool, "pool=\"a\",,b=\"c\"", buf, sizeof buf),
                   ORM_EINVAL);
  assert_int_equal(orm_pool_metrics(fx.pool, "pool=\"a\\q\"", buf, sizeof buf), ORM_EINVAL);
  /* Names uvorm or Prometheus write themselves. */
  assert_int_equal(orm_pool_metrics(fx.pool, "le=\"1\"", buf, sizeof buf), ORM_EINVAL);
  assert_int_equal(orm_pool_metrics(fx.pool, "pool=\"a\",operation=\"x\"", buf, sizeof buf),
                   ORM_EINVAL);
  assert_int_equal(orm_pool_metrics(fx.pool, "state=\"x\"", buf, sizeof buf), ORM_EINVAL);
  assert_int_equal(orm_pool_metrics(fx.pool, "__name__=\"x\"", buf, sizeof buf), ORM_EINVAL);
  assert_true(orm_pool_metrics(fx.pool, "pool=\"a\",le_x=\"\\\"q\\n\"", buf, sizeof buf) > 0);
  assert_true(orm_pool_metrics(fx.pool, "", buf, sizeof buf) > 0);
  assert_int_equal(orm_pool_metrics(NULL, NULL, buf, sizeof buf), ORM_EINVAL);
  assert_int_equal(orm_pool_metrics(fx.pool, NULL, NULL, 5), ORM_EINVAL);
  text = metrics(&fx, NULL);
  assert_non_null(strstr(text, "\nuvorm_queue_depth 0\n"));
  free(text);
  orm_fx_close(&fx);

  /* Without the setting: the stats, no histograms. */
  orm_fx_open(&fx, NULL, 0, NULL);
  run(&fx, "SELECT 1");
  text = metrics(&fx, NULL);
  assert_null(strstr(text, "uvorm_query_duration_seconds"));
  assert_non_null(strstr(text, "uvorm_queries_total 1\n"));
  free(text);
  orm_fx_close(&fx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_metrics),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
