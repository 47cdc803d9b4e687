/* lathe/checkpoint.h: checkpoints as one safetensors file.
 *
 * Tensors: every parameter and buffer under the name a PyTorch state_dict of
 * the same model uses ("conv2d_1.weight", "bn.running_mean"), and the
 * optimizer's state under "optimizer.<param>.<slot>" (drop those keys to load
 * the rest into a PyTorch model with strict key matching).
 * __metadata__ (all strings): format=lathe.checkpoint, format_version, the
 * experiment, the trainer state (epoch, step, samples, the loader's position,
 * the RNG state), the optimizer kind and step count, every hparam as it is at
 * that moment (live changes included) as hparam.<name>, what the fit loop
 * still owed after the step (val_pending, epoch_end_pending), the last
 * train_loss, the callbacks' state (early_stopping.*, model_checkpoint.*:
 * restored when the resumed run monitors the same metric), and crc32: the zlib
 * CRC-32 of every tensor's bytes taken in name order, then of every other
 * metadata entry (key NUL value NUL, in key order), checked on load (files of
 * format_version 1 covered the tensors only and still load).
 * Weights that are not finite are never written (a save after an update that
 * made NaN or inf fails and leaves the previous file as it was) and never
 * loaded.
 * Files are written atomically (temporary file, fsync, rename, fsync of the
 * folder): a failed write leaves any previous file intact. */
#ifndef LATHE_CHECKPOINT_H
#define LATHE_CHECKPOINT_H

#include "lathe/train.h"

#define LT_CKPT_FORMAT "lathe.checkpoint"
#define LT_CKPT_VERSION 2

/* Writes the trainer's current state to path (call at a safe point). */
int lt_checkpoint_save(lt_trainer *t, const char *path, lt_err *err);

/* Restores weights, buffers, optimizer state, hparams and the trainer's
 * position from path into an initialised trainer of the same experiment.
 * Everything is validated before anything is changed: on error the trainer is
 * as it was and the message names the file and the problem. */
int lt_checkpoint_load(lt_trainer *t, const char *path, lt_err *err);

/* Whether a run of `world` ranks can resume from path: one written by another
 * world size only from an epoch boundary (lt_checkpoint_load checks the same);
 * else the one-line reason naming both. */
int lt_checkpoint_check_world(const char *path, int world, lt_err *err);

/* Loads only the model's weights and buffers (for `lathe test --ckpt`). */
int lt_checkpoint_load_weights(lt_trainer *t, const char *path, lt_err *err);

/* `--resume last`: the newest (by modification time) <root>/<name>/version_*
 * /checkpoints/last.safetensors. */
int lt_checkpoint_find_last(const char *root, const char *name, char *out, size_t cap, lt_err *err);

#endif
