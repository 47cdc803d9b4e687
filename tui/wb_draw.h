/* wb_draw.h: the workbench's pure drawing helpers. Everything here turns
 * numbers into cells and strings and never calls ncurses, so the unit test
 * (tests/unit/test_wb_draw.c) can check the rasterisation without a terminal.
 *
 * Plots use a dot canvas: each terminal cell holds 2x4 dots (a braille
 * character, U+2800 + bits) or, when the locale is not UTF-8, one ASCII glyph
 * chosen from which half of the cell the dots fall in. 2-D maps use one
 * cell per 1x2 source pixels at scale 1 (a cell is about twice as tall as it
 * is wide), shaded with block glyphs or an ASCII ramp. */
#ifndef LATHE_TUI_WB_DRAW_H
#define LATHE_TUI_WB_DRAW_H

#include <stddef.h>
#include <stdint.h>

/* ---- numbers ---- */

/* A compact number for tables and axes, at most ~9 characters: "-" for NaN,
 * "inf"/"-inf", %.4g below 1e5 in magnitude, else 1.23e+05 style. */
void wb_fmt_num(double v, char *buf, size_t cap);
/* A count with k/M/G suffixes: 999 -> "999", 1234 -> "1.23k", 1199882 -> "1.2M". */
void wb_fmt_count(double v, char *buf, size_t cap);
/* wb_fmt_num for a value that was measured (a loss, a layer's statistics):
 * NaN is "NaN", not the "-" of a value nobody knows. */
void wb_fmt_val(double v, char *buf, size_t cap);
/* Seconds as "MM:SS" or "H:MM:SS"; "--:--" when unknown or negative. */
void wb_fmt_dur(double s, char *buf, size_t cap);
/* One progress line as Keras and Lightning draw it, in at most width columns:
 * "<label> [=========>..........] k/n  pct%  <rate>  ETA mm:ss". The bar
 * takes the room the rest leaves (at least 10 columns, else no bar); rate is
 * left out when NULL or "", the ETA when eta is not finite. n <= 0: the bar
 * and count are left out ("<label>"). */
void wb_fmt_progress(char *buf, size_t cap, int width, const char *label, long k, long n, const char *rate, double eta);

/* ---- dot canvas for plots ---- */

typedef struct wb_canvas {
    int w, h;       /* cells; dots are 2w x 4h, y = 0 at the top */
    uint8_t *dots;  /* w*h braille bit masks */
    uint8_t *color; /* w*h: the colour index of the last dot drawn in the cell */
} wb_canvas;

int wb_canvas_init(wb_canvas *c, int w, int h); /* 0, or -1 when out of memory */
void wb_canvas_free(wb_canvas *c);
void wb_canvas_dot(wb_canvas *c, int x, int y, int color); /* clipped */
void wb_canvas_line(wb_canvas *c, int x0, int y0, int x1, int y1, int color);
/* The cell's glyph as a NUL-terminated string in out (UTF-8 braille or one
 * ASCII character; a space for an empty cell). Returns its length in bytes. */
int wb_canvas_cell(const wb_canvas *c, int cx, int cy, int utf8, char out[8]);

/* An axis: values in [lo, hi] map onto [0, npix - 1] dots; log axes map
 * log10(v) and treat v <= 0 as not drawable. */
typedef struct wb_axis {
    double lo, hi;
    int log;
} wb_axis;

/* The dot coordinate of v, or -1 when v cannot be drawn (NaN, <= 0 on a log
 * axis). y axes are flipped by the caller (top = high values). */
double wb_axis_pos(const wb_axis *a, double v, int npix);
/* The finite range of v[0..n) (positive values only when logscale), padded by
 * 5% so lines do not sit on the frame. Returns 0 when there is nothing to draw. */
int wb_range(const double *v, int n, int logscale, double *lo, double *hi);
/* Draws the polyline through (x[i], y[i]), skipping points that cannot be
 * drawn; y is flipped so that high values are at the top. A point with no
 * drawable neighbour to join (a single validation) is a small cross of five
 * dots, not one dot lost in the cell. */
void wb_plot_xy(wb_canvas *c, const double *x, const double *y, int n, const wb_axis *ax, const wb_axis *ay, int color);
/* A curve that changes in steps (the learning rate): the points (x[i], y[i])
 * with, where the value changed between two points and a change is known at
 * step at[j] (ascending) in (x[i-1], x[i]], the corner points (at[j], y[i-1])
 * and (at[j], y[i]) between them, so the line holds the old value up to the
 * change and the new one from it instead of ramping. ox and oy hold at least
 * 3n points. Returns the number written. */
int wb_step_points(const double *x, const double *y, int n, const double *at, int nat, double *ox, double *oy);
/* Debiased exponential moving average (TensorBoard's smoothing) with weight
 * w in [0, 1); NaNs are passed through and do not poison the average. */
void wb_smooth(const double *y, int n, double w, double *out);

/* ---- shading, bars, sparklines ---- */

/* Level 0..levels-1 of v within [lo, hi] (clamped); -1 for NaN. A flat range
 * (hi <= lo) gives the middle level for every finite value. */
int wb_shade_level(double v, double lo, double hi, int levels);
/* Shade levels and glyphs: UTF-8 " ░▒▓█" (5), ASCII " .:-=+*#%@" (10). */
int wb_shade_levels(int utf8);
const char *wb_shade_glyph(int level, int utf8);
/* The cell grid (rows, cols) for an sh x sw map in at most maxr x maxc cells:
 * the largest even integer zoom that fits (zoom z: z cols and z/2 rows per
 * source pixel, so pixels stay square), else the largest fractional scale
 * that fits (fewer than 2 cols per pixel, or a down-scale). */
void wb_map_fit(int sh, int sw, int maxr, int maxc, int *rows, int *cols);
/* The range a map of n values is shaded over: the finite values' [min, max].
 * A constant map has no range; it is drawn as what it is: blank for 0 (a dead
 * channel), full for a positive constant, blank for a negative one, and the
 * function returns 1 (else 0), so the caption can say which constant. */
int wb_map_range(const double *v, int n, double *lo, double *hi);
/* The shade level (wb_shade_level) of every cell of an sh x sw map drawn in
 * rows x cols cells (wb_map_fit), over wb_map_range: out[rows * cols]. */
void wb_map_shade(const double *v, int sh, int sw, int rows, int cols, int levels, int *out);
/* The caption under a map: "map HxW, shaded from min (blank) to max" or
 * "map HxW, constant 0 (blank)" ("..., truncated" when the values were cut). */
void wb_map_caption(const double *v, int h, int w, int truncated, char *buf, size_t cap);
/* Box-resamples src (sh x sw, row-major) onto dst (dh x dw); each destination
 * value is the mean of the finite source values its box covers (NaN if none). */
void wb_map_resample(const double *src, int sh, int sw, double *dst, int dh, int dw);

/* A horizontal bar of frac (clamped to [0, 1]) of width cells: eighth blocks
 * in UTF-8, '#' in ASCII, padded with spaces to width cells. */
void wb_bar(double frac, int width, int utf8, char *buf, size_t cap);
/* One glyph of a vertical bar chart: row r (0 = top) of rows for a bar of
 * height frac of the full height. */
const char *wb_vbar_glyph(double frac, int r, int rows, int utf8);
/* A sparkline of v[0..n) squeezed (by averaging) or stretched into width cells. */
void wb_sparkline(const double *v, int n, int width, int utf8, char *buf, size_t cap);

/* ---- the lr-find plot (lathe lr-find and the workbench's lr-find view) ---- */

#define WB_LRFIND_YLAB 9 /* columns of y labels left of the plot */
/* The smoothed loss against the lr (n points, lr rising) on a log axis, in a
 * canvas of w x h cells: a title row, h rows with y labels at the top, middle
 * and bottom, an x axis with a '+' at every power of ten and a '^' under the
 * suggestion (and, in UTF-8, a dotted line up from it; sugg_lr NaN: none),
 * and the axis labels. Lines end with '\n' in buf (cut at cap, always
 * NUL-terminated). Returns the number of lines, h + 3, or 0 when there is
 * nothing to draw. A line is WB_LRFIND_YLAB + 1 + w columns wide. */
int wb_lrfind_plot(const double *lr, const double *smoothed, int n, double sugg_lr, int w, int h, int utf8, char *buf,
                   size_t cap);

/* Display width of a UTF-8 string counted in code points (every glyph the
 * workbench draws is one column wide). */
int wb_utf8_width(const char *s);
/* Splits text into lines of at most width columns (a code point a column),
 * breaking at the last blank that fits, mid-word only when a word is wider:
 * line i is the len[i] bytes at start[i]. At most max lines (the last then
 * holds the rest); returns how many, at least 1. */
int wb_wrap(const char *text, int width, int *start, int *len, int max);
/* 1 when the current locale (after setlocale) is UTF-8 and LATHE_ASCII is unset:
 * braille and blocks may be drawn; else the ASCII fallback. */
int wb_locale_utf8(void);

#endif
