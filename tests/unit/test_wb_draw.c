/* The workbench's pure helpers: number formatting, braille/ASCII plot
 * rasterisation, 2-D map shading and resampling, bars, and the parsing of
 * protocol text into the workbench's model. The helper files are compiled
 * into this test: they use no ncurses. */
#include "../../tui/wb_draw.c"
#include "../../tui/wb_model.c"
#include "../../tui/wb_status_text.c"

#include "check.h"

static void test_numbers(void) {
    char b[32];
    wb_fmt_num(NAN, b, sizeof b);
    CHECK(!strcmp(b, "-"));
    wb_fmt_num(0.5, b, sizeof b);
    CHECK(!strcmp(b, "0.5"));
    wb_fmt_num(2.302585, b, sizeof b);
    CHECK(!strcmp(b, "2.303"));
    wb_fmt_num(1234567, b, sizeof b);
    CHECK_MSG(!strcmp(b, "1.23e+06"), "%s", b);
    wb_fmt_num(0.00001234, b, sizeof b);
    CHECK_MSG(!strcmp(b, "1.23e-05"), "%s", b);
    wb_fmt_num(-INFINITY, b, sizeof b);
    CHECK(!strcmp(b, "-inf"));
    wb_fmt_count(999, b, sizeof b);
    CHECK(!strcmp(b, "999"));
    wb_fmt_count(1234, b, sizeof b);
    CHECK_MSG(!strcmp(b, "1.23k"), "%s", b);
    wb_fmt_count(1199882, b, sizeof b);
    CHECK_MSG(!strcmp(b, "1.20M"), "%s", b);
    wb_fmt_count(45600, b, sizeof b);
    CHECK_MSG(!strcmp(b, "45.6k"), "%s", b);
    wb_fmt_dur(83, b, sizeof b);
    CHECK(!strcmp(b, "01:23"));
    wb_fmt_dur(3723, b, sizeof b);
    CHECK(!strcmp(b, "1:02:03"));
    wb_fmt_dur(NAN, b, sizeof b);
    CHECK(!strcmp(b, "--:--"));
    wb_fmt_dur(-1, b, sizeof b);
    CHECK(!strcmp(b, "--:--"));
}

static void test_canvas(void) {
    wb_canvas c;
    CHECK(wb_canvas_init(&c, 3, 2) == 0);
    char out[8];
    CHECK(wb_canvas_cell(&c, 0, 0, 1, out) == 1 && !strcmp(out, " "));
    wb_canvas_dot(&c, 0, 0, 1); /* dot 1 of cell (0,0): U+2801 */
    CHECK(wb_canvas_cell(&c, 0, 0, 1, out) == 3 && !strcmp(out, "\xE2\xA0\x81"));
    CHECK(wb_canvas_cell(&c, 0, 0, 0, out) == 1 && !strcmp(out, "'"));
    wb_canvas_dot(&c, 1, 3, 1); /* dot 8: U+2881 */
    CHECK(!strcmp((wb_canvas_cell(&c, 0, 0, 1, out), out), "\xE2\xA2\x81"));
    CHECK(!strcmp((wb_canvas_cell(&c, 0, 0, 0, out), out), ":"));
    /* all eight dots: U+28FF */
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 2; x++) wb_canvas_dot(&c, 2 + x, 4 + y, 2);
    CHECK(!strcmp((wb_canvas_cell(&c, 1, 1, 1, out), out), "\xE2\xA3\xBF"));
    CHECK(c.color[1 * 3 + 1] == 2);
    /* bottom half only in ASCII is '.' */
    wb_canvas_dot(&c, 4, 7, 1);
    CHECK(!strcmp((wb_canvas_cell(&c, 2, 1, 0, out), out), "."));
    /* out-of-range dots are clipped, not written */
    wb_canvas_dot(&c, -1, 0, 1);
    wb_canvas_dot(&c, 6, 0, 1);
    wb_canvas_dot(&c, 0, 8, 1);
    CHECK(c.dots[2] == 0);
    wb_canvas_free(&c);
}

/* A rising diagonal from (0, 0) to (1, 1) lights the bottom-left and
 * top-right cells and every column in between. */
static void test_plot(void) {
    wb_canvas c;
    CHECK(wb_canvas_init(&c, 10, 4) == 0);
    double x[2] = {0, 1}, y[2] = {0, 1};
    wb_axis ax = {0, 1, 0}, ay = {0, 1, 0};
    wb_plot_xy(&c, x, y, 2, &ax, &ay, 3);
    CHECK(c.dots[3 * 10 + 0] & 0x40); /* bottom-left dot of the bottom-left cell */
    CHECK(c.dots[0 * 10 + 9] & 0x08); /* top-right dot of the top-right cell */
    for (int col = 0; col < 10; col++) {
        int any = 0;
        for (int row = 0; row < 4; row++) any |= c.dots[row * 10 + col] != 0;
        CHECK_MSG(any, "column %d empty", col);
    }
    CHECK(c.dots[0] == 0 && c.dots[3 * 10 + 9] == 0); /* the other corners stay empty */
    /* log axis: non-positive values are gaps, not garbage */
    wb_axis lg = {0.01, 100, 1};
    CHECK(wb_axis_pos(&lg, 0, 100) < 0);
    CHECK_NEAR(wb_axis_pos(&lg, 1, 101), 50, 1e-9);
    double lo, hi, v[4] = {NAN, 1, 3, -2};
    CHECK(wb_range(v, 4, 0, &lo, &hi) && lo < -2 && hi > 3);
    CHECK(wb_range(v, 4, 1, &lo, &hi) && lo > 0 && lo < 1 && hi > 3);
    CHECK(!wb_range(v, 1, 0, &lo, &hi));
    double sm[3], raw[3] = {1, NAN, 3};
    wb_smooth(raw, 3, 0.5, sm);
    CHECK_NEAR(sm[0], 1, 1e-12);
    CHECK(isnan(sm[1]));
    CHECK_NEAR(sm[2], (0.25 * 1 + 0.5 * 3) / 0.75, 1e-12);
    wb_canvas_free(&c);
}

/* A lone point is a cross of five dots; the first point of a line is one dot. */
static void test_lone_point(void) {
    wb_canvas c;
    CHECK(wb_canvas_init(&c, 10, 4) == 0);
    double x[1] = {5}, y[1] = {0.5};
    wb_axis ax = {0, 10, 0}, ay = {0, 1, 0};
    wb_plot_xy(&c, x, y, 1, &ax, &ay, 3);
    int dots = 0;
    for (int i = 0; i < 40; i++) dots += __builtin_popcount(c.dots[i]);
    CHECK_MSG(dots == 5, "a lone point drew %d dots", dots);
    wb_canvas_free(&c);
    /* a point beside an undrawable one (NaN) is lone too */
    CHECK(wb_canvas_init(&c, 10, 4) == 0);
    double x2[2] = {1, 5}, y2[2] = {NAN, 0.5};
    wb_plot_xy(&c, x2, y2, 2, &ax, &ay, 3);
    dots = 0;
    for (int i = 0; i < 40; i++) dots += __builtin_popcount(c.dots[i]);
    CHECK_MSG(dots == 5, "a point after a gap drew %d dots", dots);
    wb_canvas_free(&c);
}

/* The lr holds its old value up to the change and the new one from it:
 * points at steps 0 and 10, a change at step 4. */
static void test_step_curve(void) {
    double x[3] = {0, 10, 20}, y[3] = {0.1, 0.01, 0.01}, at[2] = {4, 15}, ox[9], oy[9];
    int k = wb_step_points(x, y, 3, at, 2, ox, oy);
    CHECK_MSG(k == 5, "%d points", k);
    double wx[5] = {0, 4, 4, 10, 20}, wy[5] = {0.1, 0.1, 0.01, 0.01, 0.01};
    for (int i = 0; i < k && i < 5; i++)
        CHECK_MSG(ox[i] == wx[i] && oy[i] == wy[i], "point %d: (%g, %g)", i, ox[i], oy[i]);
    /* without a known change between the points the line joins them as before */
    CHECK(wb_step_points(x, y, 3, NULL, 0, ox, oy) == 3);
    /* drawn: the columns after the change sit at the bottom, those before it at the top */
    wb_canvas c;
    CHECK(wb_canvas_init(&c, 10, 4) == 0);
    k = wb_step_points(x, y, 2, at, 1, ox, oy);
    wb_axis ax = {0, 10, 0}, ay = {0.01, 0.1, 0};
    wb_plot_xy(&c, ox, oy, k, &ax, &ay, 3);
    for (int col = 5; col < 10; col++) /* steps 5..10: only the bottom row */
        CHECK_MSG(c.dots[col] == 0 && c.dots[10 + col] == 0 && c.dots[20 + col] == 0 && c.dots[30 + col],
                  "column %d is not at the new value", col);
    for (int col = 0; col < 3; col++) /* steps 0..3: only the top row */
        CHECK_MSG(c.dots[col] && c.dots[30 + col] == 0, "column %d is not at the old value", col);
    wb_canvas_free(&c);
}

/* The inspector says what its statistics cover: one sample, the probe, a whole parameter. */
static void test_inspect_scope(void) {
    wb_inspect in = {.sample = 3};
    char b[64];
    snprintf(in.what, sizeof in.what, "output");
    snprintf(in.source, sizeof in.source, "batch");
    wb_inspect_scope(&in, b, sizeof b);
    CHECK_MSG(!strcmp(b, "stats: sample 3 of the batch"), "%s", b);
    snprintf(in.source, sizeof in.source, "probe");
    wb_inspect_scope(&in, b, sizeof b);
    CHECK_MSG(!strcmp(b, "stats: the probed input"), "%s", b);
    in.sample = -1;
    snprintf(in.what, sizeof in.what, "weight");
    snprintf(in.source, sizeof in.source, "model");
    wb_inspect_scope(&in, b, sizeof b);
    CHECK_MSG(!strcmp(b, "stats: the whole weight"), "%s", b);
    CHECK(strlen("stats: sample 999 of the batch") <= 30); /* fits the stats column */
}

/* Long log lines wrap at blanks (inspect's list of layers read whole at 120 columns). */
static void test_wrap(void) {
    int st[16], ln[16];
    const char *t = "inspect: no layer 'nope' (layers: conv2d_1, conv2d_2, dense_1)";
    int k = wb_wrap(t, 30, st, ln, 16);
    CHECK_MSG(k == 3, "%d lines", k);
    char got[3][64];
    for (int i = 0; i < k && i < 3; i++) snprintf(got[i], sizeof got[i], "%.*s", ln[i], t + st[i]);
    CHECK_MSG(!strcmp(got[0], "inspect: no layer 'nope'"), "'%s'", got[0]);
    CHECK_MSG(!strcmp(got[1], "(layers: conv2d_1, conv2d_2,"), "'%s'", got[1]);
    CHECK_MSG(!strcmp(got[2], "dense_1)"), "'%s'", got[2]);
    CHECK(wb_wrap("short", 30, st, ln, 16) == 1 && ln[0] == 5);
    CHECK(wb_wrap("", 30, st, ln, 16) == 1 && ln[0] == 0);
    /* a word wider than the line is cut; UTF-8 is counted in code points, never split */
    k = wb_wrap("abcdefghij", 4, st, ln, 16);
    CHECK(k == 3 && ln[0] == 4 && ln[1] == 4 && ln[2] == 2);
    k = wb_wrap("\xC3\xA9\xC3\xA9\xC3\xA9", 2, st, ln, 16);
    CHECK(k == 2 && ln[0] == 4 && st[1] == 4 && ln[1] == 2);
    /* out of lines: the last holds the rest */
    k = wb_wrap("aa bb cc dd", 2, st, ln, 2);
    CHECK(k == 2 && st[1] == 3 && ln[1] == 8);
}

static void test_map(void) {
    CHECK(wb_shade_level(NAN, 0, 1, 5) == -1);
    CHECK(wb_shade_level(0, 0, 1, 5) == 0);
    CHECK(wb_shade_level(1, 0, 1, 5) == 4);
    CHECK(wb_shade_level(0.5, 0, 1, 5) == 2);
    CHECK(wb_shade_level(7, 3, 3, 5) == 2);
    CHECK(!strcmp(wb_shade_glyph(4, 1), "\xE2\x96\x88"));
    CHECK(!strcmp(wb_shade_glyph(9, 0), "@"));
    int r, c;
    wb_map_fit(28, 28, 14, 40, &r, &c); /* one column, half a row per pixel */
    CHECK(r == 14 && c == 28);
    wb_map_fit(28, 28, 19, 40, &r, &c); /* 80x24: scaled up by 19/14, aspect kept */
    CHECK_MSG(r == 19 && c == 38, "%dx%d", r, c);
    wb_map_fit(24, 24, 60, 100, &r, &c);
    CHECK(r == 48 && c == 96);          /* zoom 4 */
    wb_map_fit(28, 28, 5, 100, &r, &c); /* down-scaled, aspect kept */
    CHECK(r == 5 && c == 10);
    /* A 28x28 image of a vertical bar in columns 12..15 keeps its bar when
     * resampled onto 14x28 cells and shaded. */
    double img[28 * 28], out[14 * 28];
    for (int i = 0; i < 28 * 28; i++) img[i] = (i % 28 >= 12 && i % 28 < 16) ? 1 : 0;
    wb_map_resample(img, 28, 28, out, 14, 28);
    for (int y = 0; y < 14; y++) {
        char row[29];
        for (int x = 0; x < 28; x++) row[x] = wb_shade_glyph(wb_shade_level(out[y * 28 + x], 0, 1, 10), 0)[0];
        row[28] = 0;
        CHECK_MSG(!strcmp(row, "            @@@@            "), "row %d: '%s'", y, row);
    }
    /* a 2x2 box average */
    double sq[4] = {0, 1, 2, NAN}, one;
    wb_map_resample(sq, 2, 2, &one, 1, 1);
    CHECK_NEAR(one, 1, 1e-12);
}

/* A constant map is drawn as what it is: an all-zero channel (a dead one)
 * blank, not the mid-grey a live map's middle would be, and the caption says
 * which constant; a positive constant full, a negative one blank. */
static void test_map_constant(void) {
    double zero[24 * 24] = {0}, half[24 * 24], neg[24 * 24], ramp[24 * 24];
    for (int i = 0; i < 24 * 24; i++) half[i] = 0.5, neg[i] = -2, ramp[i] = i;
    int r, c;
    wb_map_fit(24, 24, 17, 48, &r, &c);
    CHECK(r > 0 && c > 0);
    int *lv = malloc((size_t)r * c * sizeof *lv);
    const double *maps[3] = {zero, half, neg};
    const int want[3] = {0, 4, 0};
    for (int m = 0; m < 3; m++) {
        wb_map_shade(maps[m], 24, 24, r, c, 5, lv);
        int same = 1;
        for (int i = 0; i < r * c; i++) same &= lv[i] == want[m];
        CHECK_MSG(same, "map %d: cell 0 at level %d, not %d", m, lv[0], want[m]);
    }
    wb_map_shade(zero, 24, 24, r, c, 5, lv);
    CHECK(!strcmp(wb_shade_glyph(lv[0], 1), " ") && !strcmp(wb_shade_glyph(lv[0], 0), " "));
    wb_map_shade(ramp, 24, 24, r, c, 5, lv);
    CHECK(lv[0] == 0 && lv[r * c - 1] == 4);
    free(lv);
    double lo, hi;
    CHECK(wb_map_range(zero, 24 * 24, &lo, &hi) == 1 && lo == 0 && hi == 1);
    CHECK(wb_map_range(ramp, 24 * 24, &lo, &hi) == 0 && lo == 0 && hi == 575);
    char cap[96];
    wb_map_caption(zero, 24, 24, 0, cap, sizeof cap);
    CHECK_MSG(!strcmp(cap, "map 24x24, constant 0 (blank)"), "'%s'", cap);
    wb_map_caption(half, 24, 24, 1, cap, sizeof cap);
    CHECK_MSG(!strcmp(cap, "map 24x24, constant 0.5, truncated"), "'%s'", cap);
    wb_map_caption(ramp, 24, 24, 0, cap, sizeof cap);
    CHECK_MSG(!strcmp(cap, "map 24x24, shaded from min (blank) to max"), "'%s'", cap);
}

/* The lr-find plot the CLI prints and the workbench's lr-find view draws,
 * and the reply the view reads: with a suggestion a '^' under it, without
 * one none, and the reason kept. */
static void test_lrfind_plot(void) {
    double lr[60], sm[60];
    for (int i = 0; i < 60; i++) lr[i] = 1e-6 * pow(1e6, i / 59.0), sm[i] = 2.3 - 1.5 / (1 + exp(-(i - 30) / 4.0));
    char buf[8192];
    CHECK(wb_lrfind_plot(lr, sm, 60, lr[30], 40, 8, 0, buf, sizeof buf) == 11);
    int lines = 0;
    for (const char *p = buf; *p; p++) lines += *p == '\n';
    CHECK(lines == 11);
    CHECK_STR_CONTAINS(buf, "smoothed training loss");
    CHECK_STR_CONTAINS(buf, "lr (log)");
    const char *axis = strstr(buf, " +");
    CHECK(axis && strchr(axis, '^') && strchr(axis, '^') < strchr(axis, '\n'));
    CHECK(wb_lrfind_plot(lr, sm, 60, NAN, 40, 8, 0, buf, sizeof buf) == 11 && !strchr(buf, '^'));
    CHECK(wb_lrfind_plot(lr, sm, 60, lr[30], 40, 8, 1, buf, sizeof buf) == 11 && strstr(buf, "\xE2\x94\x82"));
    CHECK(wb_lrfind_plot(lr, sm, 0, NAN, 40, 8, 0, buf, sizeof buf) == 0);

    wb_model m;
    wb_model_init(&m);
    CHECK(wb_model_lrfind(&m, "suggested_lr=none\nreason=no clear descent: flat\nsteps=2\nstopped_early=0\n"
                              "min_loss=0.3\npoint=1e-08 0.31 0.31\npoint=1e-07 0.29 0.3\n") == 0);
    CHECK(m.lrf.valid && isnan(m.lrf.suggested_lr) && m.lrf.npoints == 2 && m.lrf.smoothed[1] == 0.3);
    CHECK(!strcmp(m.lrf.reason, "no clear descent: flat"));
    CHECK(wb_model_lrfind(&m, "suggested_lr=oops\n") == -1 && m.lrf.npoints == 2); /* kept */
    CHECK(wb_model_lrfind(&m, "suggested_lr=0.003\nsteps=0\nstopped_early=1\nmin_loss=0.3\n") == 0);
    CHECK(m.lrf.suggested_lr == 0.003 && m.lrf.reason[0] == 0 && m.lrf.stopped_early && m.lrf.npoints == 0);
    wb_model_free(&m);
}

static void test_bars(void) {
    char b[128];
    wb_bar(0.5, 4, 0, b, sizeof b);
    CHECK(!strcmp(b, "##  "));
    wb_bar(1.5, 3, 0, b, sizeof b);
    CHECK(!strcmp(b, "###"));
    wb_bar(0.5625, 2, 1, b, sizeof b); /* 9 eighths: a full block and one eighth */
    CHECK(!strcmp(b, "\xE2\x96\x88\xE2\x96\x8F"));
    CHECK(wb_utf8_width(b) == 2);
    wb_bar(NAN, 2, 1, b, sizeof b);
    CHECK(!strcmp(b, "  "));
    CHECK(!strcmp(wb_vbar_glyph(1, 0, 2, 1), "\xE2\x96\x88"));
    CHECK(!strcmp(wb_vbar_glyph(0.25, 0, 2, 1), " "));
    CHECK(!strcmp(wb_vbar_glyph(0.25, 1, 2, 1), "\xE2\x96\x84"));
    double v[4] = {0, 1, 2, 3};
    wb_sparkline(v, 4, 4, 0, b, sizeof b);
    CHECK(!strcmp(b, "_-~^") || !strcmp(b, "_.~^"));
    CHECK(b[0] == '_' && b[3] == '^');
    wb_sparkline(v, 4, 2, 1, b, sizeof b);
    CHECK(wb_utf8_width(b) == 2);
}

static void test_model(void) {
    wb_model m;
    wb_model_init(&m);
    wb_model_status(&m, "state=running\nexperiment=mnist_cnn\nepoch=1\nmax_epochs=12\nstep=42\nlr=nan\n");
    CHECK(!strcmp(m.st.state, "running") && !strcmp(m.st.experiment, "mnist_cnn"));
    CHECK(m.st.step == 42 && m.st.max_epochs == 12 && isnan(m.st.lr) && isnan(m.st.eta));
    /* a body that does not decode changes nothing and says why in the log */
    wb_model_status(&m, "state=paused\nstep=43\nbogus\n");
    CHECK(!strcmp(m.st.state, "running") && m.st.step == 42);
    CHECK(wb_model_log_line(&m, 0) && strstr(wb_model_log_line(&m, 0)->text, "bogus"));
    wb_model_hparams(&m, "lr=1\nrho=0.9\ndropout_1.p=0.25\nbatch_size=128\n");
    CHECK(m.nhp == 4 && !strcmp(wb_model_hparam(&m, "rho"), "0.9"));
    wb_model_hparams(&m, "lr=2\nno equals sign\n"); /* refused whole: the table stays */
    CHECK(m.nhp == 4 && !strcmp(wb_model_hparam(&m, "lr"), "1"));
    wb_model_event(&m, "hparam lr 1 -> 0.5 step=210 client=3");
    CHECK(!strcmp(wb_model_hparam(&m, "lr"), "0.5"));
    CHECK(m.nch == 1 && m.ch[0].step == 210 && !strcmp(m.ch[0].client, "3") && !strcmp(m.ch[0].old, "1"));
    wb_model_event(&m, "point train_loss 10 2.25");
    wb_model_event(&m, "point train_loss x 2.25"); /* bad step: refused */
    CHECK(strstr(wb_model_log_line(&m, 0)->text, "'x' is not a whole number"));
    wb_model_event(&m, "point nosuch 10 1"); /* a series not drawn: ignored */
    wb_model_event(&m, "state paused");
    CHECK(m.series[WB_S_TRAIN_LOSS].n == 1 && m.series[WB_S_TRAIN_LOSS].y[0] == 2.25);
    CHECK(!strcmp(m.st.state, "paused"));
    wb_model_history(&m, "point=train_loss 0 2.3\npoint=train_loss 10 2.2\npoint=val_acc 10 0.5\n"
                         "change=step=5 time=1700000000 name=lr old=1 new=0.5 client=2\n");
    CHECK(m.series[WB_S_TRAIN_LOSS].n == 2 && m.series[WB_S_VAL_ACC].n == 1 && m.nch == 1);
    CHECK(m.ch[0].step == 5 && !strcmp(m.ch[0].now, "0.5"));
    for (int i = 0; i < 10000; i++) wb_series_add(&m.series[WB_S_LR], i, i);
    CHECK(m.series[WB_S_LR].n <= 4096 && m.series[WB_S_LR].x[m.series[WB_S_LR].n - 1] == 9999);
    wb_model_layers(&m, "layer=conv2d_1 type=Conv2D shape=32x26x26 params=320 mean=0.1 std=0.2 min=0 max=1 zeros=0.5 "
                        "nonfinite=0 dead=3 weight_norm=3 grad_norm=0.1 update_ratio=0.03\n"
                        "layer=flatten type=Flatten shape=9216 params=0 mean=0 std=0 min=0 max=0 zeros=1 nonfinite=0 "
                        "dead= weight_norm= grad_norm= update_ratio=\n");
    CHECK(m.nly == 2 && !strcmp(m.ly[0].shape, "32x26x26") && m.ly[0].params == 320 && isnan(m.ly[1].grad_norm));
    CHECK(m.ly[0].dead == 3 && isnan(m.ly[1].dead)); /* dead channels; none to count without channels */
    const char *insp = "layer=conv2d_2\nwhat=output\nsource=batch\nsample=0\nchannel=0\nshape=2x3\nfull_shape=1x2x3\n"
                       "mean=0\nstd=1\nmin=0\nmax=6\nzeros=0\nnonfinite=0\nhist_min=0\nhist_max=6\nhist=1,2,3\n"
                       "map_h=2\nmap_w=3\nvalues=1,2,3,4,5,6\ntruncated=0\n";
    wb_model_inspect(&m, insp);
    CHECK(m.insp.valid && m.insp.map_h == 2 && m.insp.nvalues == 6 && m.insp.values[5] == 6 && m.insp.nhist == 3);
    char big[1024]; /* a map larger than its values is refused whole */
    snprintf(big, sizeof big, "%.*smap_h=30\nmap_w=30\nvalues=1,2\ntruncated=0\n", (int)(strstr(insp, "map_h") - insp),
             insp);
    wb_model_inspect(&m, big);
    CHECK(m.insp.map_h == 2 && m.insp.nvalues == 6);
    wb_model_probe(&m, "source=test:3\nlabel=7\nlabel_name=7\npred=1\npred_name=1\ntop=1:0.6,7:0.3,a:b:0.1\n"
                       "prob_sum=1\ninput_shape=1x2x2\ninput=0,1,1,0\nlayers=a,b\n");
    CHECK(m.probe.label == 7 && m.probe.pred == 1 && m.probe.ntop == 3 && m.probe.in_h == 2 && m.probe.in_w == 2);
    CHECK(!strcmp(m.probe.top[2].cls, "a:b") && m.probe.top[2].prob == 0.1);
    wb_model_probe(&m, "source=test:3\nlabel=7\nlabel_name=7\npred=1\npred_name=1\ntop=1:1\nprob_sum=1\n"
                       "input_shape=4\ninput=1,2,3,4\nlayers=a\n");
    CHECK(m.probe.in_h == 2 && m.probe.in_w == 2);
    /* garbage does not crash and leaves the picture as it was */
    wb_model_probe(&m, "input_shape=99999x99999\ninput=,,,\ntop=::,\n");
    CHECK(m.probe.in_h == 2 && m.probe.ninput == 4);
    wb_model_status(&m, "");
    wb_model_event(&m, "hparam");
    wb_model_event(&m, "log client 4 dropped: too slow");
    const char *first = wb_model_log_line(&m, 0) ? wb_model_log_line(&m, 0)->text : "";
    CHECK(!strcmp(first, "client 4 dropped: too slow"));
    for (int i = 0; i < 300; i++) wb_model_log(&m, 0, "line %d", i);
    first = wb_model_log_line(&m, 0) ? wb_model_log_line(&m, 0)->text : "";
    CHECK(!strcmp(first, "line 299") && wb_model_log_line(&m, WB_LOG_MAX) == NULL);
    wb_model_free(&m);
}

/* The progress bar, Keras and Lightning style, and the status bar's texts. */
static void test_progress(void) {
    char b[256];
    wb_fmt_progress(b, sizeof b, 80, "Epoch 2/5", 120, 469, "334 samples/s", 12);
    CHECK_MSG(!strncmp(b, "Epoch 2/5 [", 11) && strstr(b, "] 120/469   25%  334 samples/s  ETA 00:12"), "%s", b);
    CHECK_MSG(strlen(b) <= 80 && strchr(b, '>') && strstr(b, "=>."), "%s", b);
    wb_fmt_progress(b, sizeof b, 80, "Validating", 10, 10, NULL, NAN);
    CHECK_MSG(strstr(b, "=] 10/10  100%") && !strchr(b, '>') && !strstr(b, "ETA"), "%s", b);
    wb_fmt_progress(b, sizeof b, 30, "Validating", 0, 10, NULL, NAN); /* too narrow for a bar */
    CHECK_MSG(!strcmp(b, "Validating 0/10    0%"), "%s", b);
    wb_fmt_progress(b, sizeof b, 80, "Testing", 3, 0, NULL, NAN);
    CHECK(!strcmp(b, "Testing"));

    wb_model m;
    wb_model_init(&m);
    wb_model_status(&m, "state=running\nexperiment=mnist_cnn\nepoch=2\nmax_epochs=5\nstep=589\ntotal_steps=2345\n"
                        "samples=18848\nsamples_per_s=334\nelapsed=61\neta=30\nclients=1\ndevice=cpu\n"
                        "batch=120\nbatches=469\npaused=0\n");
    double now = m.st.received + 5, el, pa;
    wb_status_clock(&m.st, now, &el, &pa);
    CHECK(el == 66 && pa == 0);                   /* the clock runs on between statuses */
    wb_status_facts(&m.st, now, 60, b, sizeof b); /* 80 columns: terse, with units */
    CHECK_MSG(!strcmp(b, "ep 2/5 step 589/2345 334 samples/s 01:06 ETA 00:30 1 client"), "%s", b);
    wb_status_facts(&m.st, now, 200, b, sizeof b);
    CHECK_MSG(!strcmp(b, "epoch 2/5  step 589/2345  334 samples/s  elapsed 01:06  ETA 00:30  1 client  cpu"), "%s", b);
    wb_status_progress(&m.st, 100, b, sizeof b);
    CHECK_MSG(!strncmp(b, "Epoch 2/5 [", 11) && strstr(b, "120/469   25%  334 samples/s  ETA "), "%s", b);
    /* a lower precision and the kernels that run it close the facts */
    wb_model_status(&m, "state=running\nstep=589\nclients=1\ndevice=cpu\nprecision=bf16-mixed\n"
                        "kernels=cpu amx-bf16\n");
    CHECK_MSG(!strcmp(m.st.toolbox, "bf16-mixed: cpu amx-bf16"), "%s", m.st.toolbox);
    wb_status_facts(&m.st, m.st.received, 200, b, sizeof b);
    CHECK_MSG(strstr(b, "  cpu  bf16-mixed: cpu amx-bf16") != NULL, "%s", b);
    wb_model_status(&m, "state=running\nstep=589\nprecision=bf16-mixed\n"); /* a run that names none */
    CHECK_MSG(!strcmp(m.st.toolbox, "bf16-mixed"), "%s", m.st.toolbox);
    wb_model_status(&m, "state=running\nexperiment=mnist_cnn\nepoch=2\nmax_epochs=5\nstep=589\ntotal_steps=2345\n"
                        "samples=18848\nsamples_per_s=334\nelapsed=61\neta=30\nclients=1\ndevice=cpu\n"
                        "batch=120\nbatches=469\npaused=0\n");
    /* paused: the pause's time grows, elapsed is wall time and includes it */
    wb_model_status(&m, "state=paused\nepoch=2\nmax_epochs=5\nelapsed=70\npaused=4\nbatch=121\nbatches=469\n");
    wb_status_clock(&m.st, m.st.received + 10, &el, &pa);
    CHECK(el == 80 && pa == 14);
    wb_status_facts(&m.st, m.st.received + 10, 200, b, sizeof b);
    CHECK_MSG(strstr(b, "elapsed 01:20 (paused 00:14)"), "%s", b);
    wb_status_progress(&m.st, 100, b, sizeof b);
    CHECK_MSG(strstr(b, "121/469") && strstr(b, "paused"), "%s", b);
    wb_model_status(&m, "state=validating\nbatch=3\nbatches=10\n");
    wb_status_progress(&m.st, 100, b, sizeof b);
    CHECK_MSG(!strncmp(b, "Validating [", 12) && strstr(b, "3/10   30%"), "%s", b);
    /* ended: the clock stops, the line shows the final metrics and the test's */
    wb_model_status(&m, "state=done\nelapsed=90\ntrain_loss=0.25\nval_loss=0.5\nval_acc=0.875\n"
                        "test_loss=0.375\ntest_acc=0.8125\n");
    wb_status_clock(&m.st, m.st.received + 100, &el, &pa);
    CHECK(el == 90);
    wb_status_facts(&m.st, m.st.received + 100, 200, b, sizeof b);
    CHECK_MSG(!strstr(b, "ETA"), "%s", b);
    wb_status_progress(&m.st, 200, b, sizeof b);
    CHECK_MSG(!strcmp(b, "final: train_loss 0.25  val_loss 0.5  val_acc 0.875  test_loss 0.375  test_acc 0.8125"), "%s",
              b);
    wb_fmt_val(NAN, b, sizeof b); /* a measured NaN says so; an unknown value is a dash */
    CHECK(!strcmp(b, "NaN"));
    wb_fmt_val(0.5, b, sizeof b);
    CHECK(!strcmp(b, "0.5"));
    wb_model_status(&m, "state=failed\ntrain_loss=nan\n");
    wb_status_progress(&m.st, 200, b, sizeof b);
    CHECK_MSG(strstr(b, "train_loss NaN  val_loss -"), "%s", b);
    wb_model_status(&m, "state=stopped\ntrain_loss=0.25\n");
    wb_status_progress(&m.st, 200, b, sizeof b);
    CHECK_MSG(strstr(b, "(no test pass)"), "%s", b);
    CHECK(wb_state_live("lr-find") && wb_state_live("checkpointing") && !wb_state_live("done"));
    wb_model_free(&m);
}

int main(void) {
    RUN(test_numbers);
    RUN(test_canvas);
    RUN(test_plot);
    RUN(test_lone_point);
    RUN(test_step_curve);
    RUN(test_inspect_scope);
    RUN(test_wrap);
    RUN(test_map);
    RUN(test_map_constant);
    RUN(test_lrfind_plot);
    RUN(test_bars);
    RUN(test_model);
    RUN(test_progress);
    return check_done();
}
