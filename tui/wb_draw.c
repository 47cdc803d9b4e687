/* wb_draw.c: pure drawing helpers of the workbench (see wb_draw.h). No
 * ncurses here: callers put the returned glyphs on the screen. */
#include "wb_draw.h"

#include <langinfo.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- numbers ---- */

void wb_fmt_num(double v, char *buf, size_t cap) {
    if (isnan(v)) {
        snprintf(buf, cap, "-");
    } else if (isinf(v)) {
        snprintf(buf, cap, v > 0 ? "inf" : "-inf");
    } else if (v == 0) {
        snprintf(buf, cap, "0");
    } else if (fabs(v) >= 1e5 || fabs(v) < 1e-4) {
        snprintf(buf, cap, "%.2e", v);
    } else {
        snprintf(buf, cap, "%.4g", v);
    }
}

void wb_fmt_val(double v, char *buf, size_t cap) {
    if (isnan(v))
        snprintf(buf, cap, "NaN");
    else
        wb_fmt_num(v, buf, cap);
}

void wb_fmt_count(double v, char *buf, size_t cap) {
    static const char suffix[] = " kMGTP";
    if (!isfinite(v)) {
        wb_fmt_num(v, buf, cap);
        return;
    }
    double a = fabs(v);
    int i = 0;
    while (a >= 999.5 && i < 5) {
        a /= 1000;
        v /= 1000;
        i++;
    }
    if (i == 0)
        snprintf(buf, cap, "%.0f", v);
    else if (a < 9.995)
        snprintf(buf, cap, "%.2f%c", v, suffix[i]);
    else if (a < 99.95)
        snprintf(buf, cap, "%.1f%c", v, suffix[i]);
    else
        snprintf(buf, cap, "%.0f%c", v, suffix[i]);
}

void wb_fmt_dur(double s, char *buf, size_t cap) {
    if (!isfinite(s) || s < 0 || s > 1e8) {
        snprintf(buf, cap, "--:--");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, cap, "%02ld:%02ld", t / 60, t % 60);
}

void wb_fmt_progress(char *buf, size_t cap, int width, const char *label, long k, long n, const char *rate,
                     double eta) {
    if (!cap) return;
    if (n <= 0) {
        snprintf(buf, cap, "%s", label);
        return;
    }
    if (k < 0) k = 0;
    if (k > n) k = n;
    char tail[128], e[32] = "";
    if (isfinite(eta)) {
        char d[12];
        wb_fmt_dur(eta, d, sizeof d);
        snprintf(e, sizeof e, "  ETA %s", d);
    }
    snprintf(tail, sizeof tail, " %ld/%ld  %3d%%%s%s%s", k, n, (int)(100.0 * (double)k / (double)n),
             rate && *rate ? "  " : "", rate && *rate ? rate : "", e);
    int lab = (int)strlen(label), room = width - lab - 1 - (int)strlen(tail) - 2;
    if (room > 40) room = 40;
    if (room < 10) {
        snprintf(buf, cap, "%s%s", label, tail);
        return;
    }
    char bar[48];
    int fill = (int)((double)room * (double)k / (double)n);
    for (int i = 0; i < room; i++) bar[i] = i < fill ? '=' : '.';
    if (fill < room && k > 0) bar[fill] = '>';
    bar[room] = 0;
    snprintf(buf, cap, "%s [%s]%s", label, bar, tail);
}

/* ---- dot canvas ---- */

int wb_canvas_init(wb_canvas *c, int w, int h) {
    if (w < 1) w = 1;
    if (h < 1) h = 1;
    c->w = w;
    c->h = h;
    c->dots = calloc((size_t)w * h, 1);
    c->color = calloc((size_t)w * h, 1);
    if (!c->dots || !c->color) {
        wb_canvas_free(c);
        return -1;
    }
    return 0;
}

void wb_canvas_free(wb_canvas *c) {
    free(c->dots);
    free(c->color);
    c->dots = c->color = NULL;
    c->w = c->h = 0;
}

/* Braille dot bits by (column, row) inside a cell (Unicode's dot numbering:
 * 1 2 3 7 down the left column, 4 5 6 8 down the right). */
static const uint8_t braille_bit[2][4] = {{0x01, 0x02, 0x04, 0x40}, {0x08, 0x10, 0x20, 0x80}};

void wb_canvas_dot(wb_canvas *c, int x, int y, int color) {
    if (!c->dots || x < 0 || y < 0 || x >= 2 * c->w || y >= 4 * c->h) return;
    size_t i = (size_t)(y / 4) * c->w + x / 2;
    c->dots[i] |= braille_bit[x & 1][y & 3];
    c->color[i] = (uint8_t)color;
}

void wb_canvas_line(wb_canvas *c, int x0, int y0, int x1, int y1, int color) {
    /* Bresenham; lines longer than the canvas are clipped dot by dot, which
     * is cheap at terminal sizes (a few thousand dots at most). */
    int dx = abs(x1 - x0), sx = x0 < x1 ? 1 : -1;
    int dy = -abs(y1 - y0), sy = y0 < y1 ? 1 : -1;
    int e = dx + dy;
    int guard = 4 * (2 * c->w + 4 * c->h) + 8;
    for (;;) {
        wb_canvas_dot(c, x0, y0, color);
        if ((x0 == x1 && y0 == y1) || --guard < 0) break;
        int e2 = 2 * e;
        if (e2 >= dy) {
            e += dy;
            x0 += sx;
        }
        if (e2 <= dx) {
            e += dx;
            y0 += sy;
        }
    }
}

int wb_canvas_cell(const wb_canvas *c, int cx, int cy, int utf8, char out[8]) {
    uint8_t b = 0;
    if (c->dots && cx >= 0 && cy >= 0 && cx < c->w && cy < c->h) b = c->dots[(size_t)cy * c->w + cx];
    if (!b) {
        out[0] = ' ';
        out[1] = 0;
        return 1;
    }
    if (utf8) {
        unsigned cp = 0x2800u + b; /* 3-byte UTF-8: 1110xxxx 10xxxxxx 10xxxxxx */
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        out[3] = 0;
        return 3;
    }
    int top = (b & (0x01 | 0x02 | 0x08 | 0x10)) != 0;    /* dot rows 0-1 */
    int bottom = (b & (0x04 | 0x40 | 0x20 | 0x80)) != 0; /* dot rows 2-3 */
    out[0] = top && bottom ? ':' : top ? '\'' : '.';
    out[1] = 0;
    return 1;
}

/* ---- plots ---- */

double wb_axis_pos(const wb_axis *a, double v, int npix) {
    double lo = a->lo, hi = a->hi;
    if (!isfinite(v)) return -1;
    if (a->log) {
        if (v <= 0 || lo <= 0 || hi <= 0) return -1;
        v = log10(v);
        lo = log10(lo);
        hi = log10(hi);
    }
    if (!(hi > lo)) return (npix - 1) / 2.0;
    double t = (v - lo) / (hi - lo);
    if (t < 0) t = 0;
    if (t > 1) t = 1;
    return t * (npix - 1);
}

int wb_range(const double *v, int n, int logscale, double *lo, double *hi) {
    double a = INFINITY, b = -INFINITY;
    for (int i = 0; i < n; i++) {
        if (!isfinite(v[i]) || (logscale && v[i] <= 0)) continue;
        if (v[i] < a) a = v[i];
        if (v[i] > b) b = v[i];
    }
    if (a > b) return 0;
    if (logscale) {
        double la = log10(a), lb = log10(b), pad = (lb - la) * 0.05;
        if (pad == 0) pad = 0.5;
        *lo = pow(10, la - pad);
        *hi = pow(10, lb + pad);
    } else {
        double pad = (b - a) * 0.05;
        if (pad == 0) pad = fabs(a) > 0 ? fabs(a) * 0.1 : 1;
        *lo = a - pad;
        *hi = b + pad;
    }
    return 1;
}

void wb_plot_xy(wb_canvas *c, const double *x, const double *y, int n, const wb_axis *ax, const wb_axis *ay,
                int color) {
    int W = 2 * c->w, H = 4 * c->h, have = 0, px = 0, py = 0;
    for (int i = 0; i < n; i++) {
        double fx = wb_axis_pos(ax, x[i], W), fy = wb_axis_pos(ay, y[i], H);
        if (fx < 0 || fy < 0) {
            have = 0; /* a gap in the line at an undrawable value */
            continue;
        }
        int qx = (int)lround(fx), qy = H - 1 - (int)lround(fy);
        if (have) {
            wb_canvas_line(c, px, py, qx, qy, color);
        } else if (i + 1 < n && wb_axis_pos(ax, x[i + 1], W) >= 0 && wb_axis_pos(ay, y[i + 1], H) >= 0) {
            wb_canvas_dot(c, qx, qy, color); /* the line starts here */
        } else {                             /* a lone point (one validation so far): a small cross, not one dot */
            for (int d = -1; d <= 1; d++) {
                wb_canvas_dot(c, qx + d, qy, color);
                wb_canvas_dot(c, qx, qy + d, color);
            }
        }
        px = qx;
        py = qy;
        have = 1;
    }
}

int wb_step_points(const double *x, const double *y, int n, const double *at, int nat, double *ox, double *oy) {
    int k = 0, j = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0 && y[i] != y[i - 1] && isfinite(y[i]) && isfinite(y[i - 1])) {
            while (j < nat && !(at[j] > x[i - 1])) j++; /* the first change after the previous point */
            if (j < nat && at[j] <= x[i]) {
                ox[k] = at[j];
                oy[k++] = y[i - 1];
                ox[k] = at[j];
                oy[k++] = y[i];
            }
        }
        ox[k] = x[i];
        oy[k++] = y[i];
    }
    return k;
}

void wb_smooth(const double *y, int n, double w, double *out) {
    double acc = 0, norm = 0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(y[i])) {
            out[i] = y[i];
            continue;
        }
        acc = acc * w + (1 - w) * y[i];
        norm = norm * w + (1 - w);
        out[i] = acc / norm;
    }
}

/* ---- shading ---- */

static const char *const shade_utf8[] = {" ", "\xE2\x96\x91", "\xE2\x96\x92", "\xE2\x96\x93", "\xE2\x96\x88"};
static const char *const shade_ascii[] = {" ", ".", ":", "-", "=", "+", "*", "#", "%", "@"};

int wb_shade_levels(int utf8) { return utf8 ? 5 : 10; }

const char *wb_shade_glyph(int level, int utf8) {
    int n = wb_shade_levels(utf8);
    if (level < 0) return "?";
    if (level >= n) level = n - 1;
    return utf8 ? shade_utf8[level] : shade_ascii[level];
}

int wb_shade_level(double v, double lo, double hi, int levels) {
    if (isnan(v)) return -1;
    if (!(hi > lo)) return levels / 2;
    double t = (v - lo) / (hi - lo);
    if (t < 0) t = 0;
    if (t > 1) t = 1;
    int l = (int)(t * levels);
    return l >= levels ? levels - 1 : l;
}

void wb_map_fit(int sh, int sw, int maxr, int maxc, int *rows, int *cols) {
    if (sh < 1 || sw < 1 || maxr < 1 || maxc < 1) {
        *rows = *cols = 0;
        return;
    }
    /* zoom z: z cols per source column, z/2 rows per source row (square pixels). */
    for (int z = 8; z >= 2; z -= 2)
        if (sw * z <= maxc && sh * z / 2 <= maxr) {
            *cols = sw * z;
            *rows = sh * z / 2;
            return;
        }
    /* Any other scale (up below zoom 2, or down) keeping the aspect:
     * cols / rows = 2 * sw / sh. */
    double s = fmin((double)maxc / sw, (double)maxr * 2 / sh);
    *cols = (int)(sw * s);
    *rows = (int)(sh * s / 2);
    if (*cols < 1) *cols = 1;
    if (*rows < 1) *rows = 1;
}

void wb_map_resample(const double *src, int sh, int sw, double *dst, int dh, int dw) {
    for (int r = 0; r < dh; r++) {
        int r0 = r * sh / dh, r1 = (r + 1) * sh / dh;
        if (r1 <= r0) r1 = r0 + 1;
        for (int c = 0; c < dw; c++) {
            int c0 = c * sw / dw, c1 = (c + 1) * sw / dw;
            if (c1 <= c0) c1 = c0 + 1;
            double s = 0;
            int k = 0;
            for (int i = r0; i < r1 && i < sh; i++)
                for (int j = c0; j < c1 && j < sw; j++)
                    if (isfinite(src[(size_t)i * sw + j])) {
                        s += src[(size_t)i * sw + j];
                        k++;
                    }
            dst[(size_t)r * dw + c] = k ? s / k : NAN;
        }
    }
}

/* The finite values' [min, max] of v[n]: 1, or 0 when none is finite. */
static int finite_range(const double *v, int n, double *lo, double *hi) {
    double a = INFINITY, b = -INFINITY;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i])) a = fmin(a, v[i]), b = fmax(b, v[i]);
    *lo = a, *hi = b;
    return a <= b;
}

int wb_map_range(const double *v, int n, double *lo, double *hi) {
    double a, b;
    if (!finite_range(v, n, &a, &b)) { /* NaN cells draw as '?' whatever the range */
        *lo = 0, *hi = 1;
        return 0;
    }
    if (a < b) {
        *lo = a, *hi = b;
        return 0;
    }
    /* mid-grey for a flat map would look like a live one: shade against 0 */
    *lo = a > 0 ? 0 : a;
    *hi = a > 0 ? a : a < 0 ? 0 : 1;
    return 1;
}

void wb_map_shade(const double *v, int sh, int sw, int rows, int cols, int levels, int *out) {
    double lo, hi, *grid = malloc((size_t)rows * cols * sizeof *grid + 1);
    if (!grid) return;
    wb_map_range(v, sh * sw, &lo, &hi);
    wb_map_resample(v, sh, sw, grid, rows, cols);
    for (int i = 0; i < rows * cols; i++) out[i] = wb_shade_level(grid[i], lo, hi, levels);
    free(grid);
}

void wb_map_caption(const double *v, int h, int w, int truncated, char *buf, size_t cap) {
    double lo, hi;
    char what[64] = "shaded from min (blank) to max";
    if (finite_range(v, h * w, &lo, &hi) && lo == hi) {
        char c[32];
        wb_fmt_num(lo, c, sizeof c);
        snprintf(what, sizeof what, "constant %s%s", c, lo > 0 ? "" : " (blank)");
    }
    snprintf(buf, cap, "map %dx%d, %s%s", h, w, what, truncated ? ", truncated" : "");
}

/* ---- bars ---- */

static const char *const eighth_h[] = {"",
                                       "\xE2\x96\x8F",
                                       "\xE2\x96\x8E",
                                       "\xE2\x96\x8D",
                                       "\xE2\x96\x8C",
                                       "\xE2\x96\x8B",
                                       "\xE2\x96\x8A",
                                       "\xE2\x96\x89",
                                       "\xE2\x96\x88"};
static const char *const eighth_v[] = {" ",
                                       "\xE2\x96\x81",
                                       "\xE2\x96\x82",
                                       "\xE2\x96\x83",
                                       "\xE2\x96\x84",
                                       "\xE2\x96\x85",
                                       "\xE2\x96\x86",
                                       "\xE2\x96\x87",
                                       "\xE2\x96\x88"};

static void append(char *buf, size_t cap, size_t *len, const char *s) {
    size_t n = strlen(s);
    if (*len + n + 1 > cap) return;
    memcpy(buf + *len, s, n + 1);
    *len += n;
}

void wb_bar(double frac, int width, int utf8, char *buf, size_t cap) {
    size_t len = 0;
    if (cap) buf[0] = 0;
    if (!isfinite(frac) || frac < 0) frac = 0;
    if (frac > 1) frac = 1;
    int eighths = (int)lround(frac * width * 8), used = 0;
    if (utf8) {
        for (; eighths >= 8; eighths -= 8, used++) append(buf, cap, &len, eighth_h[8]);
        if (eighths > 0) {
            append(buf, cap, &len, eighth_h[eighths]);
            used++;
        }
    } else {
        for (int k = (eighths + 4) / 8; k > 0; k--, used++) append(buf, cap, &len, "#");
    }
    for (; used < width; used++) append(buf, cap, &len, " ");
}

const char *wb_vbar_glyph(double frac, int r, int rows, int utf8) {
    if (!isfinite(frac) || frac < 0) frac = 0;
    if (frac > 1) frac = 1;
    int total = (int)lround(frac * rows * 8); /* eighths of a cell, from the bottom */
    int below = (rows - 1 - r) * 8;           /* eighths under this cell */
    int here = total - below;
    if (here <= 0) return " ";
    if (here > 8) here = 8;
    if (!utf8) return here >= 4 ? "#" : (here >= 1 && total < 4 && r == rows - 1 ? "_" : " ");
    return eighth_v[here];
}

void wb_sparkline(const double *v, int n, int width, int utf8, char *buf, size_t cap) {
    static const char ramp_ascii[] = "_.-~^";
    size_t len = 0;
    if (cap) buf[0] = 0;
    if (n <= 0 || width <= 0) return;
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < n; i++)
        if (isfinite(v[i])) {
            lo = fmin(lo, v[i]);
            hi = fmax(hi, v[i]);
        }
    for (int c = 0; c < width; c++) {
        int i0 = (int)((long)c * n / width), i1 = (int)((long)(c + 1) * n / width);
        if (i1 <= i0) i1 = i0 + 1;
        double s = 0;
        int k = 0;
        for (int i = i0; i < i1 && i < n; i++)
            if (isfinite(v[i])) {
                s += v[i];
                k++;
            }
        if (!k) {
            append(buf, cap, &len, " ");
            continue;
        }
        double t = hi > lo ? (s / k - lo) / (hi - lo) : 0.5;
        if (utf8) {
            append(buf, cap, &len, eighth_v[1 + (int)(t * 7.999)]);
        } else {
            char g[2] = {ramp_ascii[(int)(t * 4.999)], 0};
            append(buf, cap, &len, g);
        }
    }
}

int wb_utf8_width(const char *s) {
    int w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) w++;
    return w;
}

int wb_wrap(const char *text, int width, int *start, int *len, int max) {
    int n = 0, pos = 0, total = (int)strlen(text);
    if (width < 1) width = 1;
    while (n < max) {
        /* the bytes of at most width code points from pos, and the last space among them */
        int b = pos, cols = 0, space = -1;
        while (text[b] && cols < width) {
            if (text[b] == ' ') space = b;
            b++;
            while (((unsigned char)text[b] & 0xC0) == 0x80) b++; /* the rest of a UTF-8 sequence */
            cols++;
        }
        if (text[b] && text[b] != ' ' && space > pos) b = space; /* break at a space, not in a word */
        start[n] = pos;
        len[n++] = b - pos;
        while (text[b] == ' ') b++; /* a continuation line does not start with the blank it broke at */
        if (!text[b]) break;
        if (n == max) { /* no room: the last line takes the rest (wb_put clips it) */
            len[n - 1] = total - start[n - 1];
            break;
        }
        pos = b;
    }
    return n;
}

int wb_locale_utf8(void) {
    const char *cs = nl_langinfo(CODESET);
    int u = cs && (!strcmp(cs, "UTF-8") || !strcmp(cs, "utf8"));
    return u && !getenv("LATHE_ASCII");
}

/* ---- the lr-find plot ---- */

/* Puts s into row at column col when it fits inside [0, w) and does not run
 * over text already there (spaces are free). */
static void place(char *row, int w, int col, const char *s) {
    int n = (int)strlen(s);
    if (col < 0) col = 0;
    if (col + n > w) col = w - n;
    if (col < 0) return;
    for (int i = -1; i <= n; i++)
        if (col + i >= 0 && col + i < w && row[col + i] != ' ') return;
    memcpy(row + col, s, (size_t)n);
}

int wb_lrfind_plot(const double *lr, const double *smoothed, int n, double sugg_lr, int w, int h, int utf8, char *buf,
                   size_t cap) {
    wb_canvas c;
    size_t len = 0;
    if (cap) buf[0] = 0;
    if (n < 1 || w < 8 || h < 2 || !(lr[0] > 0) || wb_canvas_init(&c, w, h)) return 0;
    wb_axis ax = {lr[0], lr[n - 1] > lr[0] ? lr[n - 1] : lr[0] * 10, 1}, ay = {0, 1, 0};
    int have = wb_range(smoothed, n, 0, &ay.lo, &ay.hi);
    int sx = -1; /* the suggestion's dot column */
    if (isfinite(sugg_lr)) {
        sx = (int)lround(wb_axis_pos(&ax, sugg_lr, 2 * w));
        /* a dotted vertical line (braille only: in ASCII it would look like the curve) */
        for (int py = 0; utf8 && py < 4 * h; py += 3) wb_canvas_dot(&c, sx, py, 1);
    }
    if (have) wb_plot_xy(&c, lr, smoothed, n, &ax, &ay, 0);
    char line[64];
    snprintf(line, sizeof line, "%*s smoothed training loss\n", WB_LRFIND_YLAB, "");
    append(buf, cap, &len, line);
    for (int cy = 0; cy < h; cy++) {
        char lab[32] = "", cell[8];
        if (have && (cy == 0 || cy == h - 1 || cy == h / 2)) /* the value at the cell row's middle */
            wb_fmt_num(ay.hi - (ay.hi - ay.lo) * (cy + 0.5) / h, lab, sizeof lab);
        snprintf(line, sizeof line, "%*s %s", WB_LRFIND_YLAB - 1, lab, utf8 ? "\xE2\x94\x82" : "|");
        append(buf, cap, &len, line);
        for (int cx = 0; cx < w; cx++) {
            wb_canvas_cell(&c, cx, cy, utf8, cell);
            append(buf, cap, &len, cell);
        }
        append(buf, cap, &len, "\n");
    }
    /* the x axis: ticks at powers of ten, labelled where the labels fit */
    char *axis = malloc((size_t)w + 1), *labels = malloc((size_t)w + 1);
    if (axis && labels) {
        memset(axis, '-', (size_t)w);
        memset(labels, ' ', (size_t)w);
        axis[w] = labels[w] = 0;
        for (int e = (int)ceil(log10(ax.lo) - 1e-9); e <= (int)floor(log10(ax.hi) + 1e-9); e++) {
            int col = (int)(wb_axis_pos(&ax, pow(10, e), 2 * w) / 2);
            if (col < 0 || col >= w) continue;
            axis[col] = '+';
            char s[16];
            snprintf(s, sizeof s, e ? "1e%d" : "1", e);
            place(labels, w, col - (int)strlen(s) / 2, s);
        }
        if (sx >= 0 && sx / 2 < w) axis[sx / 2] = '^';
        snprintf(line, sizeof line, "%*s +", WB_LRFIND_YLAB - 1, "");
        append(buf, cap, &len, line);
        append(buf, cap, &len, axis);
        snprintf(line, sizeof line, "\n%*s  ", WB_LRFIND_YLAB - 1, "");
        append(buf, cap, &len, line);
        append(buf, cap, &len, labels);
        append(buf, cap, &len, "  lr (log)\n");
    }
    free(axis);
    free(labels);
    wb_canvas_free(&c);
    return h + 3;
}
