/* Text pieces of the run folder's files: numbers, YAML scalars, CSV fields,
 * timestamps, and lenient readers for the `lathe runs` scan. */
#include "lathe/runlog_fmt.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

char *lt_fmt_num(char *buf, size_t cap, double v) {
    if (isnan(v)) return snprintf(buf, cap, "nan"), buf;
    if (isinf(v)) return snprintf(buf, cap, v > 0 ? "inf" : "-inf"), buf;
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, cap, "%.*g", p, v);
        if (strtod(buf, NULL) == v) break;
    }
    return buf;
}

char *lt_fmt_metric(char *buf, size_t cap, double v, int decimals) {
    if (!isfinite(v)) return lt_fmt_num(buf, cap, v);
    snprintf(buf, cap, fabs(v) < 1e6 ? "%.*f" : "%.*g", decimals, v);
    return buf;
}

char *lt_fmt_f32(char *buf, size_t cap, float v) {
    if (!isfinite(v)) return lt_fmt_num(buf, cap, v);
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, cap, "%.*g", p, (double)v);
        if (strtof(buf, NULL) == v) break;
    }
    return buf;
}

char *lt_fmt_yaml_float(char *buf, size_t cap, double v) {
    if (isnan(v)) return snprintf(buf, cap, ".nan"), buf;
    if (isinf(v)) return snprintf(buf, cap, v > 0 ? ".inf" : "-.inf"), buf;
    /* the shortest round-trip significant digits, as Python's repr finds */
    char e[48];
    int p = 1;
    for (; p <= 17; p++) {
        snprintf(e, sizeof e, "%.*e", p - 1, v);
        if (strtod(e, NULL) == v) break;
    }
    if (p > 17) p = 17;
    char *ep = strchr(e, 'e');
    int ex = ep ? atoi(ep + 1) : 0;
    if (ep && (ex < -4 || ex >= 16)) {
        /* "1.5e-05", and "1e-08" -> "1.0e-08" (PyYAML adds the .0) */
        snprintf(buf, cap, "%.*s%se%c%02d", (int)(ep - e), e, p == 1 ? ".0" : "", ex < 0 ? '-' : '+',
                 ex < 0 ? -ex : ex);
    } else {
        int dec = p - 1 - ex;
        snprintf(buf, cap, "%.*f", dec < 1 ? 1 : dec, v);
    }
    return buf;
}

/* YAML 1.1 words a plain scalar would be read as (bools, null). */
static int yaml_special_word(const char *s) {
    static const char *const w[] = {"y", "n", "yes", "no", "true", "false", "on", "off", "null"};
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
        if (!strcasecmp(s, w[i])) return 1;
    return 0;
}

char *lt_fmt_yaml_str(char *buf, size_t cap, const char *s) {
    if (!s) s = "";
    int plain = isalpha((unsigned char)s[0]) || s[0] == '_';
    int ctrl = 0;
    for (const char *c = s; *c; c++) {
        unsigned char u = (unsigned char)*c;
        if (u < 0x20 || u == 0x7F) ctrl = 1;
        if (!isalnum(u) && u != '_' && u != '.' && u != '/' && u != '-') plain = 0;
    }
    if (plain && !yaml_special_word(s)) {
        snprintf(buf, cap, "%s", s);
        return buf;
    }
    size_t o = 0;
    char q = ctrl ? '"' : '\'';
    if (cap < 3) {
        if (cap) buf[0] = '\0';
        return buf;
    }
    buf[o++] = q;
    for (const char *c = s; *c && o + 5 < cap; c++) {
        unsigned char u = (unsigned char)*c;
        if (q == '\'') {
            if (u == '\'') buf[o++] = '\'';
            buf[o++] = (char)u;
        } else if (u == '"' || u == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)u;
        } else if (u == '\n') {
            buf[o++] = '\\', buf[o++] = 'n';
        } else if (u == '\t') {
            buf[o++] = '\\', buf[o++] = 't';
        } else if (u < 0x20 || u == 0x7F) {
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02X", u);
        } else {
            buf[o++] = (char)u;
        }
    }
    buf[o++] = q;
    buf[o] = '\0';
    return buf;
}

int lt_csv_field(char *buf, size_t cap, size_t *o, const char *s) {
    if (!s) s = "";
    int quote = strpbrk(s, ",\"\r\n") != NULL;
    size_t i = *o;
    if (cap == 0) return -1;
    int cut = 0;
#define PUT(ch)                                                                                                        \
    do {                                                                                                               \
        if (i + 1 >= cap) {                                                                                            \
            cut = 1;                                                                                                   \
            goto done;                                                                                                 \
        }                                                                                                              \
        buf[i++] = (ch);                                                                                               \
    } while (0)
    if (quote) PUT('"');
    for (const char *c = s; *c; c++) {
        if (*c == '"') PUT('"');
        PUT(*c);
    }
    if (quote) PUT('"');
#undef PUT
done:
    buf[i] = '\0';
    *o = i;
    return cut ? -1 : 0;
}

char *lt_fmt_utc_now(char *buf, size_t cap) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char s[32];
    strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, cap, "%s.%03dZ", s, (int)(ts.tv_nsec / 1000000));
    return buf;
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n')) s[--n] = '\0';
    return s;
}

int lt_yaml_line(char *line, char **key, char **value) {
    if (line[0] == '#' || line[0] == ' ' || line[0] == '\t' || line[0] == '-') return -1;
    char *c = line;
    while (*c && !(*c == ':' && (c[1] == ' ' || c[1] == '\0' || c[1] == '\r' || c[1] == '\n'))) c++;
    if (!*c) return -1;
    *c = '\0';
    *key = trim(line);
    if (!**key) return -1;
    char *v = trim(c + 1);
    if (v[0] == '\'' || v[0] == '"') {
        char q = v[0], *r = v + 1, *w = v;
        for (;;) {
            if (!*r) return -1; /* unterminated */
            if (*r == q) {
                if (q == '\'' && r[1] == '\'') {
                    *w++ = '\'';
                    r += 2;
                    continue;
                }
                break;
            }
            if (q == '"' && *r == '\\' && r[1]) {
                r++;
                *w++ = *r == 'n' ? '\n' : *r == 't' ? '\t' : *r;
                r++;
                continue;
            }
            *w++ = *r++;
        }
        *w = '\0';
    } else {
        char *h = strstr(v, " #");
        if (h) *h = '\0';
        v = trim(v);
    }
    *value = v;
    return 0;
}

int lt_parse_num(const char *s, double *out) {
    while (*s == ' ' || *s == '\t') s++;
    if (!strcasecmp(s, ".nan")) return *out = NAN, 0;
    if (!strcasecmp(s, ".inf") || !strcasecmp(s, "+.inf")) return *out = INFINITY, 0;
    if (!strcasecmp(s, "-.inf")) return *out = -INFINITY, 0;
    if (!*s) return -1;
    char *end;
    double v = strtod(s, &end);
    while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n') end++;
    if (end == s || *end) return -1;
    *out = v;
    return 0;
}
