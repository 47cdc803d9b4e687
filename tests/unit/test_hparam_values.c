/* The values `set` takes: the strict decimal reader (lt_parse_decimal) and
 * the optimizer's check of the value its float update uses, so that nothing
 * accepted can fail the next step (rho 0.99999999 is 1.0 as a float, lr 1e300
 * is inf). The trainer-level cases (a dropout rate stored as a float) run in
 * test_session.c through the `set` command. */
#include <float.h>
#include <stdlib.h>

#include "check.h"
#include "lathe/optim.h"

static void test_parse_decimal(void) {
    static const struct {
        const char *s;
        double v;
    } good[] = {{"0.05", 0.05}, {"1", 1},      {"-2.5", -2.5}, {"+3", 3},  {".5", 0.5},   {"5.", 5},
                {"1e-3", 1e-3}, {"2E+2", 200}, {"-0", 0},      {"0e0", 0}, {"1e-320", 0}, {"1.5e308", 1.5e308}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        double v = -1;
        int tiny = -1;
        lt_err err = {0};
        CHECK_MSG(lt_parse_decimal(good[i].s, "x", &v, &tiny, &err) == LT_OK, "'%s': %s", good[i].s, err.msg);
        if (strcmp(good[i].s, "1e-320")) CHECK_MSG(v == good[i].v, "'%s' read as %g", good[i].s, v);
        CHECK_MSG(tiny == 0, "'%s' flagged as underflow", good[i].s);
    }
    double v = 1;
    int tiny = 0;
    lt_err err = {0};
    CHECK(lt_parse_decimal("-0", "x", &v, NULL, &err) == LT_OK && v == 0 && !signbit(v)); /* never -0 */
    CHECK(lt_parse_decimal("1e-400", "x", &v, &tiny, &err) == LT_OK && v == 0 && !signbit(v) && tiny == 1);
    CHECK(lt_parse_decimal("-1e-400", "x", &v, &tiny, &err) == LT_OK && v == 0 && !signbit(v) && tiny == 1);
    CHECK(lt_parse_decimal("0.000e-999", "x", &v, &tiny, &err) == LT_OK && v == 0 && tiny == 0);
    static const char *const bad[] = {"0x10", "inf", "-inf", "nan", "infinity", "1e",  "e5",    "",   " 1",
                                      "1 ",   "1,5", "--1",  "+-1", ".",        "1e+", "0x1p3", "1d", "١"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err.msg[0] = 0;
        CHECK_MSG(lt_parse_decimal(bad[i], "set lr", &v, &tiny, &err) == LT_EINVAL, "'%s' accepted", bad[i]);
        CHECK_STR_CONTAINS(err.msg, "set lr: '");
        CHECK_STR_CONTAINS(err.msg, "is not a decimal number");
    }
    CHECK(lt_parse_decimal("1e400", "set lr", &v, &tiny, &err) == LT_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "too large");
}

/* One parameter; the optimizer's hparams are checked as float too. */
static void test_optim_float_values(void) {
    float w[4] = {0}, g[4] = {0};
    lt_param p = {"w", w, g, 4};
    lt_err err = {0};
    lt_optim *o = lt_optim_create("adadelta", &p, 1, &err);
    CHECK(o != NULL);
    if (!o) return;
    double v;
    /* below 1 as a double, 1.0 as the float the update uses */
    CHECK(lt_optim_set(o, "rho", 0.99999999, &err) == LT_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "as a float");
    CHECK(lt_optim_get(o, "rho", &v, NULL) == LT_OK && v == 0.9);
    CHECK(lt_optim_set(o, "rho", 0.9999999, &err) == LT_OK); /* 0.99999988 as a float */
    /* beyond the float range: inf in the update */
    static const char *const names[] = {"lr", "lr", "eps", "weight_decay"};
    static const double vals[] = {1e300, 3.5e38, 1e300, 1e300};
    for (int i = 0; i < 4; i++) {
        CHECK_MSG(lt_optim_set(o, names[i], vals[i], &err) == LT_EINVAL, "%s %g accepted", names[i], vals[i]);
        CHECK_STR_CONTAINS(err.msg, "float");
    }
    CHECK(lt_optim_set(o, "lr", FLT_MAX, &err) == LT_OK);
    /* eps 1e-50 is 0 as a float, and eps must be > 0; lr 1e-50 is 0, which lr may be */
    CHECK(lt_optim_set(o, "eps", 1e-50, &err) == LT_EINVAL);
    CHECK_STR_CONTAINS(err.msg, "eps must be > 0");
    CHECK(lt_optim_set(o, "lr", 1e-50, &err) == LT_OK);
    /* -0 is stored as 0 */
    CHECK(lt_optim_set(o, "weight_decay", -0.0, &err) == LT_OK);
    CHECK(lt_optim_get(o, "weight_decay", &v, NULL) == LT_OK && v == 0 && !signbit(v));
    lt_optim_free(o);

    o = lt_optim_create("adam", &p, 1, &err);
    CHECK(o && lt_optim_set(o, "beta2", 0.999999999, &err) == LT_EINVAL);
    CHECK(o && lt_optim_set(o, "beta2", 0.999, &err) == LT_OK);
    lt_optim_free(o);
}

int main(void) {
    RUN(test_parse_decimal);
    RUN(test_optim_float_values);
    return check_done();
}
