/* The distributed layer without MPI: a world of 1 (the collectives copy or
 * do nothing, the heartbeats too) and the marking of slow and silent ranks. */
#include <math.h>
#include <string.h>

#include "lathe/dist.h"
#include <stdio.h>

#include "check.h"

static void test_world_of_one(void) {
    lt_dist_report mine, all[1];
    memset(&mine, 0, sizeof mine);
    mine.rank = 0;
    mine.step = 7;
    mine.samples_per_s = 123.5;
    snprintf(mine.host, sizeof mine.host, "h");
    lt_err err = {0};
    CHECK(lt_dist_world() == 1);
    CHECK(lt_dist_allgather_bytes(&mine, sizeof mine, all, &err) == LT_OK);
    CHECK(all[0].step == 7 && all[0].samples_per_s == 123.5 && !strcmp(all[0].host, "h"));
    /* heartbeats: nothing to send, no table, no time in collectives */
    lt_dist_report table[2];
    double seen[2] = {-1, -1};
    CHECK(lt_dist_beat(&mine, &err) == LT_OK);
    CHECK(lt_dist_reports(table, seen, 2) == 0 && seen[0] == -1);
    CHECK(lt_dist_waited() == 0);
    /* no other rank to ask */
    char *ans = (char *)&err;
    size_t n = 7;
    CHECK(lt_dist_ask(1, "inspect", 8, &ans, &n, 1.0, &err) == LT_EINVAL);
    CHECK(ans == NULL && n == 0 && strstr(err.msg, "a run of one process has no rank 1"));
}

static void test_mark(void) {
    int slow[5], silent[5];
    /* median 100: 79 is below 0.8 x 100, 80 is not */
    double rate[5] = {100, 79, 120, 80, 100}, age[5] = {0.1, 0.1, 6, LT_DIST_SILENT_S, 0};
    lt_dist_mark(rate, age, 5, LT_DIST_SILENT_S, slow, silent);
    CHECK(!slow[0] && slow[1] && !slow[2] && !slow[3] && !slow[4]);
    CHECK(!silent[0] && !silent[1] && silent[2] && !silent[3] && !silent[4]);
    /* two ranks: the median is their mean */
    double r2[2] = {200, 100}, a2[2] = {0, 0};
    lt_dist_mark(r2, a2, 2, LT_DIST_SILENT_S, slow, silent);
    CHECK(!slow[0] && slow[1] && !silent[0] && !silent[1]);
    /* nothing measured yet, or a world of one: none slow; an infinite bound: none silent */
    double r0[2] = {0, 0}, a0[2] = {INFINITY, 1e9};
    lt_dist_mark(r0, a0, 2, INFINITY, slow, silent);
    CHECK(!slow[0] && !slow[1] && !silent[0] && !silent[1]);
    double r1[1] = {1}, a1[1] = {0};
    lt_dist_mark(r1, a1, 1, LT_DIST_SILENT_S, slow, silent);
    CHECK(!slow[0] && !silent[0]);
    /* a rank without a figure (NaN) is not counted in the median, nor marked slow */
    double rn[3] = {NAN, 100, 50}, an[3] = {0, 0, 0};
    lt_dist_mark(rn, an, 3, LT_DIST_SILENT_S, slow, silent);
    CHECK(!slow[0] && !slow[1] && slow[2]);
}

int main(void) {
    RUN(test_world_of_one);
    RUN(test_mark);
    return check_done();
}
