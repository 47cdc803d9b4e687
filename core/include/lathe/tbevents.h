/* lathe/tbevents.h: TensorBoard event-file writer (scalars, text, histograms,
 * HParams) and the CRC-32C that TFRecord framing uses.
 *
 * A file is a sequence of records, integers little-endian:
 *   uint64 length | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)
 * where data is a serialized tensorflow.Event. The first record carries
 * file_version "brain.Event:2". Every Event's wall_time is the real Unix time
 * in seconds when it was logged.
 *
 * Writes are buffered in memory and reach the file on lt_tb_flush, at
 * lt_tb_close, when 64 KiB are pending, or when 2 s have passed since the last
 * flush (checked on each write). A failed write (disk full, quota) truncates
 * the file back to its last whole record, drops the pending events, returns
 * LT_EIO with a message, and leaves the writer usable, so the file never holds
 * a torn record in the middle. A writer is not thread-safe: one owner. */
#ifndef LATHE_TBEVENTS_H
#define LATHE_TBEVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "lathe/common.h"

/* ---- CRC-32C (Castagnoli, reflected poly 0x82F63B78) ---- */

/* CRC-32C of n bytes. lt_crc32c("123456789", 9) == 0xE3069283. */
uint32_t lt_crc32c(const void *data, size_t n);
/* Continues a CRC: lt_crc32c_update(lt_crc32c(a), b) == lt_crc32c(a ++ b). */
uint32_t lt_crc32c_update(uint32_t crc, const void *data, size_t n);
/* TFRecord's mask: ((crc >> 15) | (crc << 17)) + 0xA282EAD8, mod 2^32. */
uint32_t lt_crc32c_mask(uint32_t crc);
/* lt_crc32c_mask(lt_crc32c(data, n)). */
uint32_t lt_crc32c_masked(const void *data, size_t n);

/* ---- event writer ---- */

typedef struct lt_tb_writer lt_tb_writer;

/* Creates events.out.tfevents.<10-digit unix time>.<hostname>.<pid>.<n> in
 * dir (which must exist; n counts writers opened by this process and is
 * bumped past existing names) and writes the file_version record at once.
 * Returns NULL and fills err on failure. */
lt_tb_writer *lt_tb_open(const char *dir, lt_err *err);

/* Full path of the event file (owned by the writer). */
const char *lt_tb_path(const lt_tb_writer *w);

/* Scalar: Summary.Value{tag, simple_value}. The value is stored as float32,
 * as TensorBoard's simple_value is. */
int lt_tb_scalar(lt_tb_writer *w, const char *tag, int64_t step, double value, lt_err *err);

/* Text plugin: a DT_STRING tensor of shape [1] holding UTF-8 markdown. */
int lt_tb_text(lt_tb_writer *w, const char *tag, int64_t step, const char *markdown, lt_err *err);

/* HistogramProto of n values with TensorBoard's default bucket limits
 * (0, +-1e-12 * 1.1^k up to 1e20, +-DBL_MAX), runs of empty buckets merged as
 * TensorFlow does. Non-finite values are left out (num counts finite ones). */
int lt_tb_histogram(lt_tb_writer *w, const char *tag, int64_t step, const float *v, size_t n, lt_err *err);

/* ---- HParams plugin ---- */

/* Values match tensorboard.hparams.DataType. */
typedef enum { LT_TB_HP_STRING = 1, LT_TB_HP_BOOL = 2, LT_TB_HP_FLOAT64 = 3 } lt_tb_hp_type;

/* Values match tensorboard.hparams.Status. */
typedef enum { LT_TB_STATUS_SUCCESS = 1, LT_TB_STATUS_FAILURE = 2, LT_TB_STATUS_RUNNING = 3 } lt_tb_status;

typedef struct lt_tb_hp_info {
    const char *name;
    lt_tb_hp_type type;
} lt_tb_hp_info;

/* One hparam's value in a session: the field named by type is used
 * (number for FLOAT64, string for STRING, boolean for BOOL). */
typedef struct lt_tb_hp_value {
    const char *name;
    lt_tb_hp_type type;
    double number;
    const char *string;
    int boolean;
} lt_tb_hp_value;

/* Experiment: the hparam columns and the metric tags of the HParams table
 * (tag "_hparams_/experiment"). The metric tags must also be logged as
 * scalars for their values to show. */
int lt_tb_hparams_experiment(lt_tb_writer *w, const lt_tb_hp_info *hparams, int nhparams,
                             const char *const *metric_tags, int nmetrics, lt_err *err);

/* Session start (tag "_hparams_/session_start_info"): this run's hparam
 * values, its group name (may be NULL or "") and start time (Unix seconds). */
int lt_tb_hparams_session_start(lt_tb_writer *w, const lt_tb_hp_value *hparams, int nhparams, const char *group_name,
                                double start_time_secs, lt_err *err);

/* Session end (tag "_hparams_/session_end_info"). */
int lt_tb_hparams_session_end(lt_tb_writer *w, lt_tb_status status, double end_time_secs, lt_err *err);

/* Writes pending records to the file (no fsync). */
int lt_tb_flush(lt_tb_writer *w, lt_err *err);

/* Flushes, closes and frees; w may be NULL. Returns the flush/close status. */
int lt_tb_close(lt_tb_writer *w, lt_err *err);

#endif
