/* lathe/runlog_fmt.h: the text pieces of the run folder's files (numbers as Python
 * and PyYAML write them, YAML scalars, CSV fields, UTC timestamps) and their
 * lenient readers, shared by the run log writer and the run-folder reader
 * (lathe/runfolder.h). */
#ifndef LATHE_RUNLOG_FMT_H
#define LATHE_RUNLOG_FMT_H

#include <stddef.h>

/* The shortest decimal that reads back as v ("%.{p}g" for the least p), e.g.
 * 0.001, 1e-08, 0.30000000000000004; "nan"/"inf"/"-inf". */
char *lt_fmt_num(char *buf, size_t cap, double v);
/* A metric for a person to read: fixed with `decimals` places while
 * |v| < 1e6 (0.7919), else with `decimals` significant digits and an exponent
 * (7.321e+30) so that a diverging loss stays one short word; nan, inf, -inf. */
char *lt_fmt_metric(char *buf, size_t cap, double v, int decimals);

/* The same for a float32 value (fewer digits: 0.2345679). */
char *lt_fmt_f32(char *buf, size_t cap, float v);

/* A float as PyYAML's dump writes it: Python's repr (exponent when the
 * decimal exponent is < -4 or >= 16, else fixed with at least one decimal),
 * then "1e-08" -> "1.0e-08" so YAML 1.1 reads it as a float; .nan .inf -.inf. */
char *lt_fmt_yaml_float(char *buf, size_t cap, double v);

/* A string as a YAML scalar: plain when it cannot be read as anything but
 * that string, else single-quoted with ' doubled. Returns buf (truncated to
 * cap if it must be). */
char *lt_fmt_yaml_str(char *buf, size_t cap, const char *s);

/* Appends s to buf at *o as one CSV field (RFC 4180: quoted, " doubled, when
 * it holds , " CR or LF). Stops at cap - 1; returns 0, or -1 when cut. */
int lt_csv_field(char *buf, size_t cap, size_t *o, const char *s);

/* Current UTC time as 2024-05-01T12:34:56.789Z. */
char *lt_fmt_utc_now(char *buf, size_t cap);

/* Reads one `key: value` line of a flat YAML mapping: key and value are cut
 * out in place (the value unquoted from '..' or ".."; comments after plain
 * values dropped). Returns 0, or -1 when the line is not such a pair. */
int lt_yaml_line(char *line, char **key, char **value);

/* strtod that takes the whole (trimmed) string or fails: 0 and *out, or -1.
 * Also reads YAML's .nan .inf -.inf. */
int lt_parse_num(const char *s, double *out);

#endif
