/* lathe/text.h: a character (byte) corpus for language models, read from the
 * fortune files of Debian's fortunes packages, with its vocabulary, a seeded
 * train/validation split by entry, and a batcher for truncated
 * backpropagation through time.
 *
 * Fortune files (/usr/share/games/fortunes) are plain text whose entries are
 * separated by lines holding only "%". The corpus keeps that shape: every entry
 * is its text (each line ending in '\n') followed by "%\n", so a model learns
 * where entries end and sampled text reads like a fortune file. Lines are
 * cleaned as `col -b` would: backspace overstriking keeps the last character
 * written to a column, '\r' and other control bytes (all but '\t' and '\n') are
 * dropped. Entries left empty are skipped. Bytes >= 0x80 are kept as they are.
 *
 * The vocabulary is the set of bytes present, sorted ascending; a byte's id is
 * its rank. */
#ifndef LATHE_TEXT_H
#define LATHE_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "lathe/common.h"

/* Largest corpus accepted (cleaned bytes over all files). */
#define LT_TEXT_MAX_BYTES ((size_t)256 << 20)

typedef struct lt_text {
    int vocab_size;     /* distinct bytes, 1..256 */
    uint8_t chars[256]; /* id -> byte, ascending; [vocab_size..] unused */
    int16_t id_of[256]; /* byte -> id, -1 for a byte not in the corpus */
    int32_t *ids;       /* [n] the encoded corpus */
    size_t n;
    size_t *entry_off; /* [n_entries + 1]: entry k is ids[entry_off[k] .. entry_off[k+1]) */
    size_t n_entries;
    int n_files; /* files read */
} lt_text;

/* Reads every fortune file directly inside dir, in name order: regular files
 * (symlinks followed), skipping dot-files, the strfile indexes "*.dat", the
 * "*.u8" names and any second name of a file already read, sub-folders (such
 * as "off") and files holding NUL bytes (not text). *out is zeroed first and
 * holds nothing to free on error. LT_ENOTFOUND when no entry was found. */
int lt_text_load_fortunes(const char *dir, lt_text *out, lt_err *err);
/* The same from one file's bytes in memory (NUL bytes: LT_EFORMAT). */
int lt_text_from_fortune_bytes(const char *bytes, size_t len, lt_text *out, lt_err *err);
void lt_text_free(lt_text *t);

/* Encodes len bytes into out [len]; LT_EINVAL naming the first byte that is not
 * in the vocabulary. */
int lt_text_encode(const lt_text *t, const char *s, size_t len, int32_t *out, lt_err *err);
/* Writes the bytes of ids [n] into buf (at most cap - 1 of them, then a NUL;
 * an id out of range becomes '?'). Returns n. */
size_t lt_text_decode(const lt_text *t, const int32_t *ids, size_t n, char *buf, size_t cap);

/* ---- train / validation split by entry ----
 * A stream is the concatenation of whole entries, in corpus order. val gets
 * n_entries - floor(n_entries * (1 - val_fraction)) entries chosen by a
 * permutation seeded by seed (lt_split's arithmetic); same inputs, same split.
 * 0 <= val_fraction < 1; train must not be empty. */
typedef struct lt_text_stream {
    int32_t *ids;
    size_t n;
    size_t n_entries;
} lt_text_stream;

int lt_text_split(const lt_text *t, double val_fraction, uint64_t seed, lt_text_stream *train, lt_text_stream *val,
                  lt_err *err);
void lt_text_stream_free(lt_text_stream *s);

/* ---- the truncated-BPTT batcher (classic char-rnn) ----
 * An epoch cuts the stream, from an offset o, into B contiguous rows of
 * L = (n - o) / B ids (the remainder is dropped) and walks them in chunks of T
 * steps: chunk k gives the window [B, T+1] with row b = ids[o + b*L + k*T ..
 * + T + 1), inputs its first T columns and targets its last T. Chunk k+1 row b
 * starts where chunk k row b's inputs ended, so a hidden state carried from
 * chunk to chunk (detached) continues the same text. An epoch has (L - 1) / T
 * chunks. o is 0, or with jitter a value in [0, T) drawn from (seed, epoch), so
 * chunk boundaries move from epoch to epoch. */
typedef struct lt_text_batcher lt_text_batcher;

typedef struct lt_text_window {
    const int32_t *ids; /* [B, T+1], valid until the next call on the batcher */
    int B, T;
    size_t epoch;
    size_t index; /* chunk within the epoch; 0: the streams restart, reset the carried state */
} lt_text_window;

/* Copies ids. Fails (LT_EINVAL) when B < 1, T < 1 or the stream is too short
 * for one chunk: n >= B * (T + 1), plus T - 1 with jitter. */
lt_text_batcher *lt_text_batcher_create(const int32_t *ids, size_t n, int B, int T, int jitter, uint64_t seed,
                                        lt_err *err);
/* 1 with the next window, or 0 once at the end of each epoch (the following
 * call starts the next epoch at chunk 0). */
int lt_text_batcher_next(lt_text_batcher *b, lt_text_window *w);
/* Chunks in the current epoch (the one the next window belongs to). */
size_t lt_text_batcher_chunks(const lt_text_batcher *b);
/* Positions the batcher so the next window is chunk `index` of `epoch`
 * (index == chunks means "at the end": next returns 0 first). */
int lt_text_batcher_seek(lt_text_batcher *b, size_t epoch, size_t index, lt_err *err);
void lt_text_batcher_position(const lt_text_batcher *b, size_t *epoch, size_t *index);
void lt_text_batcher_free(lt_text_batcher *b);

#endif
