/* train/trainer_callbacks.h: the built-in callbacks the fit loop calls
 * (ModelCheckpoint, EarlyStopping, terminate-on-NaN). Private to core/train. */
#ifndef LATHE_TRAIN_TRAINER_CALLBACKS_H
#define LATHE_TRAIN_TRAINER_CALLBACKS_H

#include "lathe/safetensors.h"
#include "lathe/train.h"

int lt_tcb_init(lt_trainer *t, lt_err *err);
void lt_tcb_free(lt_trainer *t);
/* Removes the temporary files killed writes left in dir (lt_afile_clean_stale), noted in t->note. */
void lt_tcb_clean_stale(lt_trainer *t, const char *dir);
/* after an optimizer step: checkpoints every n train steps */
void lt_tcb_after_step(lt_trainer *t);
/* after a validation pass: early stopping (sets stop_requested) */
void lt_tcb_after_val(lt_trainer *t);
/* at the end of a training epoch (after its validation): checkpoints every n epochs */
void lt_tcb_epoch_end(lt_trainer *t);
/* the loss went non-finite: keep the last good state as last.safetensors */
void lt_tcb_nonfinite(lt_trainer *t);

/* The callbacks' state in a checkpoint's metadata: save hands each key and
 * value to put; parse reads a file's into a copy (nothing changes on error),
 * which apply then takes (and frees; NULL: nothing to apply). */
typedef void (*lt_tcb_put)(void *ctx, const char *key, const char *value);
void lt_tcb_state_save(const lt_trainer *t, lt_tcb_put put, void *ctx);
int lt_tcb_state_parse(const lt_trainer *t, const lt_st_file *f, const char *path, void **out, lt_err *err);
void lt_tcb_state_apply(lt_trainer *t, void *parsed);

#endif
