/* lathe/train.h: experiments and the trainer, in the spirit of PyTorch
 * Lightning. An experiment (an lt_experiment table of hooks, one file under
 * experiments/) says WHAT: the model, the training/validation/test steps, the
 * optimizer, the data. The trainer (lt_trainer) does HOW: the loop, validation
 * scheduling, limits, metrics, progress. The trainer runs on whatever thread
 * calls lt_trainer_fit(); it never prints: it reports through callbacks. */
#ifndef LATHE_TRAIN_H
#define LATHE_TRAIN_H

#include <stdint.h>

#include "lathe/data.h"
#include "lathe/nn.h"
#include "lathe/optim.h"
#include "lathe/precision.h"
#include "lathe/tensor.h"

/* ---- configuration: the trainer's flags, named like Lightning's ---- */
typedef struct lt_limit {
    double value; /* a fraction of the set when is_fraction, else a batch count */
    int is_fraction;
} lt_limit;

typedef struct lt_config {
    int max_epochs; /* -1: the experiment's default */
    long max_steps; /* -1: no limit */
    lt_limit limit_train_batches, limit_val_batches, limit_test_batches;
    lt_limit val_check_interval; /* fraction of an epoch, or every N training batches */
    int log_every_n_steps;
    uint64_t seed;
    int batch_size;       /* 0: the experiment's default */
    double lr;            /* < 0: the experiment's default */
    int threads;          /* BLAS threads; 0: all cores */
    char data_dir[1024];  /* "" : the experiment's default */
    char accelerator[16]; /* cpu | gpu | auto */
    int devices;
    /* data parallel (Lightning's names): "auto" or "ddp"; the world is
       devices x num_nodes ranks, one process each, launched by mpirun or srun */
    char strategy[8];
    int num_nodes;
    double val_split; /* fraction of the training set held out for validation */
    int prefetch;     /* background data loading */
    int run_test;     /* run a test pass after fit */
    /* ModelCheckpoint: written under ckpt_dir (set by whoever makes the run folder; "" : none) */
    char ckpt_dir[1024];
    char ckpt_monitor[32]; /* "" : keep the newest */
    int ckpt_mode_max;
    int save_top_k;
    int save_last;
    int ckpt_every_n_epochs;
    long ckpt_every_n_train_steps;
    /* EarlyStopping ("" monitor: off) */
    char es_monitor[32];
    int es_mode_max;
    int es_patience;
    double es_min_delta;
    double es_stopping_threshold;   /* NAN: off */
    double es_divergence_threshold; /* NAN: off */
    int es_check_finite;
    /* gradient clipping (0: off) and accumulation */
    double gradient_clip_val;
    int gradient_clip_by_value;  /* 0: norm, 1: value */
    int accumulate_grad_batches; /* 1: step after every batch */
    int precision;               /* lt_precision (precision.h) */
    int matmul_precision;        /* lt_matmul_precision: highest (f32), high | medium (TF32 on a GPU) */
    int check_val_every_n_epoch; /* validate in epochs where (epoch+1) % n == 0 */
    int num_sanity_val_steps;    /* validation batches before training (-1: all) */
    int fast_dev_run;            /* >0: that many batches of each loop, one epoch, no checkpoints */
    lt_limit overfit_batches;    /* >0: train and validate on the same first batches */
    double max_time;             /* seconds; 0: no limit */
    int deterministic;
    int detect_anomaly;
    char lr_scheduler[256];   /* scheduler spec (sched.h); "" : constant lr */
    int truncated_bptt_steps; /* sequence experiments: chunk length K; 0: the experiment's */
    int profiler;             /* 1: --profiler simple */
    /* resume from this checkpoint file after init ("" : start fresh) */
    char resume[1024];
    /* hparams set after init and after resume's checkpoint (whose hparams
       they override): "name=value" pairs separated by commas ("" : none) */
    char set_hparams[512];
    /* a fork: the run folder resume's checkpoint came from ("" : not a fork).
       The run's run.yaml names it as parent, with the checkpoint's step as
       parent_step and set_hparams as forked_hparams. */
    char fork_parent[1024];
    /* tests only, never set from the command line: the backend to train on
       instead of --accelerator's (tests/unit/test_hostless.c puts its
       host-inaccessible test backend here); NULL: --accelerator decides */
    const lt_backend *backend;
} lt_config;

void lt_config_defaults(lt_config *c);

/* ---- metrics an experiment logs (self.log in Lightning) ---- */
#define LT_MAX_METRICS 16
typedef struct lt_metric {
    char name[32];
    double sum, weight; /* epoch aggregate: weighted mean = sum / weight */
    double last;        /* the last value logged */
} lt_metric;

typedef enum lt_stage { LT_STAGE_TRAIN = 0, LT_STAGE_VAL = 1, LT_STAGE_TEST = 2 } lt_stage;

typedef struct lt_experiment lt_experiment;

/* ---- the data-parallel hook (Lightning's configure_ddp) ----
 * Under --strategy ddp the trainer averages the gradients over the ranks in
 * flat buckets. An experiment's configure_ddp may change that once at setup:
 * leave parameters out of the synchronisation (by name: their gradients stay
 * this rank's own), and install a communication hook that every bucket goes
 * through around its all-reduce (as PyTorch DDP's comm hooks). Default: every
 * parameter, plain averaging. */
typedef struct lt_ddp_bucket {
    float *grad; /* the bucket's gradients, flat (host memory) */
    size_t n;
    int index; /* 0: the last layers' bucket (the first one started) */
} lt_ddp_bucket;
typedef struct lt_ddp_comm_hook {
    const char *name;
    void (*before)(lt_ddp_bucket *b); /* before the all-reduce (sum) */
    void (*after)(lt_ddp_bucket *b);  /* after it, before the division by the world size */
} lt_ddp_comm_hook;
/* bf16 compression (PyTorch's bf16_compress_hook): the bucket is rounded to
 * bf16 before the all-reduce and its sum rounded to bf16 after. The values
 * sent are bf16 values; MPI has no bf16 sum, so they travel as f32. */
extern const lt_ddp_comm_hook lt_ddp_hook_bf16_compress;
#define LT_DDP_MAX_EXCLUDE 16
typedef struct lt_ddp_setup {
    int world;                               /* read only */
    const char *exclude[LT_DDP_MAX_EXCLUDE]; /* parameter names (lathe summary's) */
    int nexclude;
    const lt_ddp_comm_hook *comm_hook; /* NULL: plain averaging */
} lt_ddp_setup;

/* The live experiment: its model and data plus whatever the experiment keeps. */
typedef struct lt_module {
    const lt_experiment *exp;
    const lt_config *cfg;
    lt_model model;
    lt_dataset train_data, test_data; /* as loaded */
    lt_subset train_set, val_set, test_set;
    int in_ndim, in_shape[3]; /* per-sample input shape */
    lt_stage stage;
    lt_metric metrics[LT_MAX_METRICS];
    int nmetrics;
    void *user; /* experiment-owned state */
} lt_module;

/* Logs a value for the current stage; weight is the number of samples it
 * stands for (epoch values are weighted means). */
void lt_log(lt_module *m, const char *name, double value, double weight);
const lt_metric *lt_metric_find(const lt_module *m, const char *name);
void lt_metrics_reset(lt_module *m);

struct lt_experiment {
    const char *name;
    const char *description;
    /* defaults the flags override */
    int batch_size;
    int max_epochs;
    double lr;
    /* the input it expects per sample and its classes (for a summary without data) */
    int input_ndim;
    int input_shape[3];
    int num_classes;
    /* the model: add layers to m->model (the trainer finalizes it) */
    int (*build)(lt_module *m, lt_err *err);
    /* optional; default: every layer in order */
    lt_tensor *(*forward)(lt_module *m, lt_graph *g, lt_tensor *x, lt_err *err);
    /* returns the loss to minimise; may lt_log() */
    lt_tensor *(*training_step)(lt_module *m, lt_graph *g, const lt_batch *b, lt_tensor *x, lt_err *err);
    /* lt_log() what to aggregate; return 0 or an error */
    int (*validation_step)(lt_module *m, lt_graph *g, const lt_batch *b, lt_tensor *x, lt_err *err);
    int (*test_step)(lt_module *m, lt_graph *g, const lt_batch *b, lt_tensor *x, lt_err *err);
    /* returns the optimizer over m->model's parameters (lr already chosen: lr) */
    lt_optim *(*configure_optimizers)(lt_module *m, double lr, lt_err *err);
    /* fills train_set, val_set and test_set (and the input shape) */
    int (*setup_data)(lt_module *m, lt_err *err);
    /* optional: answer `feed text "<prompt>"` with key=value lines (sequence models) */
    int (*feed_text)(lt_module *m, lt_graph *g, const char *prompt, int length, char *out, size_t cap, lt_err *err);
    /* 1: keep the training set's order (contiguous streams for truncated BPTT) */
    int sequential;
    /* 1: manual optimization (Lightning's automatic_optimization = False): the
       training_step runs backward and its optimizers' steps itself (e.g. a GAN
       with two optimizers); the trainer only counts the step */
    int manual_optimization;
    /* optional hooks, named as Lightning's */
    /* the precision plugin (Lightning's configure_apex once): called once at
       setup, after the model is built, with p holding the defaults; may change
       the loss scaler's values and name layers that stay in fp32. The trainer
       refuses bad values (and unknown layers) with a one-line error. */
    int (*configure_precision)(lt_module *m, lt_precision_setup *p, lt_err *err);
    /* data parallel (world > 1): called once at setup with the defaults; the
       trainer refuses unknown parameter names with one line */
    int (*configure_ddp)(lt_module *m, lt_ddp_setup *d, lt_err *err);
    void (*on_fit_start)(lt_module *m);
    void (*on_train_epoch_start)(lt_module *m, size_t epoch);
    void (*on_train_epoch_end)(lt_module *m, size_t epoch);
    void (*on_train_batch_start)(lt_module *m, const lt_batch *b);
    void (*on_train_batch_end)(lt_module *m, const lt_batch *b, double loss);
    void (*on_before_backward)(lt_module *m, lt_tensor *loss);
    /* replaces the trainer's backward (lt_backward_scaled with the given seed) */
    int (*backward)(lt_module *m, lt_graph *g, lt_tensor *loss, float seed, lt_err *err);
    void (*on_after_backward)(lt_module *m);
    void (*on_before_optimizer_step)(lt_module *m, lt_optim *opt);
    /* replaces the trainer's lt_optim_step */
    int (*optimizer_step)(lt_module *m, lt_optim *opt, lt_err *err);
    void (*on_before_zero_grad)(lt_module *m, lt_optim *opt);
    void (*on_validation_epoch_end)(lt_module *m);
    void (*teardown)(lt_module *m);
};

/* ---- the registry of experiments (experiments/registry.c) ---- */
int lt_experiment_count(void);
const lt_experiment *lt_experiment_at(int i);
const lt_experiment *lt_experiment_find(const char *name);

/* Reusable pieces for classification experiments: cross-entropy from logits,
 * logging "<stage>_loss" and "<stage>_acc". */
lt_tensor *lt_classify_step(lt_module *m, lt_graph *g, const lt_batch *b, lt_tensor *x, lt_err *err);
int lt_classify_eval_step(lt_module *m, lt_graph *g, const lt_batch *b, lt_tensor *x, lt_err *err);
/* An optimizer of the given kind over every parameter of m's model, at lr. */
lt_optim *lt_module_optimizer(lt_module *m, const char *kind, double lr, lt_err *err);
/* MNIST-style data from cfg->data_dir (default Fashion-MNIST) with a seeded validation split. */
int lt_mnist_setup_data(lt_module *m, lt_err *err);

/* ---- the trainer ---- */
typedef enum lt_run_state {
    LT_RUN_IDLE,
    LT_RUN_RUNNING,
    LT_RUN_PAUSED,
    LT_RUN_STEPPING,
    LT_RUN_VALIDATING,
    LT_RUN_TESTING,
    /* how a run ends (the last four): done (its epochs, max_steps, max_time or
       early stopping), failed (an error), stopped (a `stop` command), or
       interrupted (a signal: SIGINT, SIGTERM, SIGHUP) */
    LT_RUN_DONE,
    LT_RUN_FAILED,
    LT_RUN_STOPPED,
    LT_RUN_INTERRUPTED,
} lt_run_state;

/* "idle" "running" ... "done" "failed" "stopped" "interrupted": the name the
 * summary line, status replies, run.yaml, `lathe runs` and the workbench show. */
const char *lt_run_state_name(lt_run_state s);
/* 1 for the four end states. */
int lt_run_state_ended(lt_run_state s);
/* Lightning's TrainerStatus for run.yaml's `status:`: FINISHED (done,
 * stopped), INTERRUPTED, FAILED; RUNNING before the end. */
const char *lt_run_state_status(lt_run_state s);
/* The process exit status for a run that ended in s: 0 done or stopped, 1
 * failed, 128 + signo interrupted (130 SIGINT, 143 SIGTERM, 129 SIGHUP, as
 * shells and Lightning report them; 130 when signo is unknown). */
int lt_run_exit_status(lt_run_state s, int signo);
/* "SIGINT", "SIGTERM", "SIGHUP", else "signal N" (into buf). */
const char *lt_signal_name(int signo, char *buf, size_t len);

/* A non-finite value found after a step (lt_trainer_find_anomaly). */
struct lt_anomaly {
    int layer;     /* index into the model's layers; -1 for the loss */
    char what[16]; /* loss | output | grad | weight_grad */
    size_t count;  /* non-finite values there */
    long step;
    size_t epoch;
    char message[256];
};
typedef struct lt_anomaly lt_anomaly;

typedef struct lt_trainer lt_trainer;

typedef struct lt_trainer_callbacks {
    void *user;
    /* after every optimizer step (cheap; called on the trainer thread) */
    void (*on_step)(lt_trainer *t, void *user);
    /* before and after a validation or test pass */
    void (*on_eval_start)(lt_trainer *t, lt_stage stage, void *user);
    void (*on_eval_end)(lt_trainer *t, lt_stage stage, void *user);
    /* after every batch of a validation or test pass (eval_batch of eval_batches) */
    void (*on_eval_batch)(lt_trainer *t, lt_stage stage, void *user);
    /* before (begin 1) and after (begin 0) a checkpoint is written */
    void (*on_checkpoint)(lt_trainer *t, int begin, void *user);
    void (*on_epoch_end)(lt_trainer *t, void *user);
    /* a non-finite loss, or with --detect-anomaly any non-finite output or
       gradient: return 1 when handled (the run pauses at the next safe point
       and the bad step is not applied), 0 to fail the run */
    int (*on_anomaly)(lt_trainer *t, const struct lt_anomaly *a, void *user);
    /* between optimizer steps: the safe point to run commands. Return non-zero to stop. */
    int (*safe_point)(lt_trainer *t, void *user);
    /* a problem the run carries on through (a failed checkpoint write), as it
       happens; t->warning holds msg and t->warnings counts it */
    void (*on_warning)(lt_trainer *t, const char *msg, void *user);
} lt_trainer_callbacks;

struct lt_trainer {
    lt_config cfg;
    const lt_experiment *exp;
    lt_module mod;
    lt_graph graph;      /* training steps; each layer's `out` points here */
    lt_graph eval_graph; /* validation and test passes, so they leave the
                            last training batch's layer outputs readable */
    lt_rng rng;          /* init, dropout */
    /* --accelerator's backend (lt_backend_for): owns the model's and the
       optimizer's memory, runs both graphs and the training-state ops */
    const lt_backend *be;
    /* batches on a device (a graph whose data is not host memory): two input
       buffers on the device and two pinned staging buffers, used in turn, and
       the side stream the uploads run on, so that a batch travels while the
       previous step's queued work still runs on the default stream */
    struct {
        float *dev[2], *stage[2];
        size_t floats; /* of each buffer */
        int next;      /* the pair the next batch takes */
        lt_stream *stream;
        int have_stream;
    } upload;
    lt_optim *opt;
    lt_loader *train_loader;
    lt_trainer_callbacks cb;
    lt_run_state state;
    int batch_size;
    double lr;
    int max_epochs;
    size_t epoch;                  /* current epoch, 0-based */
    long step;                     /* optimizer steps taken */
    long start_step;               /* step after init: 0, or the resumed checkpoint's */
    long samples;                  /* training samples seen */
    size_t batches_per_epoch;      /* after limit_train_batches */
    size_t epoch_batch;            /* batches of the current epoch done (of batches_per_epoch) */
    long eval_batch, eval_batches; /* the validation or test pass in progress: batches done, of */
    double fit_start, fit_seconds;
    double fit_end;           /* when the fit and its test pass ended; 0 before */
    double samples_per_s;     /* smoothed */
    double grad_norm;         /* L2 norm of all gradients before clipping, last step (when clipping) */
    int accum_count;          /* batches accumulated toward the next optimizer step */
    lt_grad_scaler scaler;    /* 16-mixed: dynamic loss scaling */
    lt_math math;             /* what the backend computes GEMMs in (lt_dev_set_math) */
    char kernels[48];         /* which kernels run them: "cpu amx-bf16", "cpu f32 (bf16 emulated by rounding)" */
    struct lt_sched *sched;   /* --lr-scheduler; NULL: constant lr */
    lt_anomaly anomaly;       /* the last one found (step -1: none) */
    int early_stopped;        /* EarlyStopping ended the fit (the test pass still runs) */
    int in_sanity;            /* the sanity validation before training: nothing is recorded */
    int val_pending;          /* a validation is due after the step just taken (a checkpoint keeps it) */
    int epoch_end_pending;    /* the epoch's last step is taken, its end not yet run (a checkpoint keeps it) */
    struct lt_profiler *prof; /* --profiler simple; NULL when off */
    double train_loss;        /* last logged */
    double val_loss, val_acc, test_loss, test_acc; /* NAN until measured */
    int stop_requested;
    int end_signal;        /* the signal that interrupted the run (LT_RUN_INTERRUPTED); 0: none */
    char stop_reason[320]; /* why the fit stopped early (early stopping, a command) */
    char failure[LT_ERR_MSG_MAX];
    void *callbacks;              /* checkpoint and early-stopping state (train/trainer_callbacks.c) */
    char last_ckpt[1100];         /* path of the newest checkpoint written, "" when none */
    char warning[LT_ERR_MSG_MAX]; /* the last problem the run carried on through (a failed checkpoint write) */
    char note[LT_ERR_MSG_MAX];    /* a remark on the settings, for the front end to say once ("" : none) */
    long warnings;                /* how many such problems so far */
    long ckpt_saved, ckpt_failed; /* checkpoint writes that succeeded, that failed */
    /* data parallel (lathe/dist.h): this process's rank and the world size
       (1: one process, as without --strategy ddp) */
    int rank, world;
    uint32_t weights_crc; /* CRC-32C of the parameters after the last epoch */
    int ranks_agree;      /* every rank's weights_crc equal (1 in a world of 1) */
    double dist_last[32]; /* the hparams as last broadcast (rank 0's commands) */
    int dist_nhp;
    /* the init failed on a problem every rank finds the same (flags that differ
       between the ranks, a set too small to share): rank 0 says it, alone */
    int dist_shared_error;
    /* this rank's heartbeat to rank 0 (lathe/dist.h): its last report (NULL
       in a world of 1), and when it last measured its rates, at how many
       samples and after how long in collectives (lt_dist_waited) */
    struct lt_dist_report *dist_mine;
    double dist_rep_time;
    long dist_rep_samples;
    double dist_rep_wait;
    struct lt_ddp_buckets *ddp; /* the gradient buckets (train/trainer_dist.c); NULL until the first step */
    /* time spent waiting for the buckets' all-reduce after the backward, and
       the time of those steps (allreduce_wait_share = their ratio) */
    double allreduce_wait_s, allreduce_step_s;
};

/* Builds only the model, from the experiment's declared input shape (no data):
 * for summaries and dry runs. The caller frees m->model with lt_model_free. */
int lt_module_build_model(lt_module *m, const lt_experiment *exp, const lt_config *cfg, lt_rng *rng, lt_err *err);

/* Builds the module, its data, the model and the optimizer. */
int lt_trainer_init(lt_trainer *t, const lt_experiment *exp, const lt_config *cfg, lt_err *err);
void lt_trainer_free(lt_trainer *t);
int lt_trainer_fit(lt_trainer *t, lt_err *err);
/* One optimizer step on batch b outside the fit loop (for the learning-rate
 * finder): the experiment's training_step, backward, clipping and the optimizer
 * step at the current hparams, without callbacks and without accumulation (the
 * batch is a whole step; a partly accumulated one is dropped). Counts step and
 * samples as the fit loop does; *loss (may be NULL) gets the batch's loss.
 * Returns LT_OK, 1 when the loss is not finite (then nothing was updated), or
 * a negative LT_E* code. */
int lt_trainer_train_batch(lt_trainer *t, const lt_batch *b, double *loss, lt_err *err);
/* One pass over the validation (or test) set in eval mode, on its own graph:
 * afterwards every layer's `out` again points at the last training batch's
 * output (or is NULL before the first step). */
int lt_trainer_evaluate(lt_trainer *t, lt_stage stage, lt_err *err);
/* Validation asked for between two steps (the `validate` command, on the
 * trainer's thread at its safe point): lt_trainer_evaluate, and in a world of
 * more than one rank 0's step broadcast first tells every rank to evaluate its
 * share at this step boundary (call it on rank 0 only, inside the fit). */
int lt_trainer_validate_now(lt_trainer *t, lt_err *err);
/* A monitored value by name (val_loss, val_acc, train_loss, or any logged
 * metric's epoch mean); NaN when not measured. ModelCheckpoint, EarlyStopping
 * and plateau schedules read through here. */
double lt_trainer_metric(const lt_trainer *t, const char *name);
/* Total steps the fit will take (for ETA), given the limits. */
long lt_trainer_total_steps(const lt_trainer *t);

/* Live hyperparameters: the optimizer's (lr, rho, ...), each dropout layer's
 * rate as "<layer>.p", and "batch_size" (from the next epoch). set validates
 * and changes nothing on refusal. name() writes into buf when it must. */
int lt_trainer_hparam_count(const lt_trainer *t);
const char *lt_trainer_hparam_name(const lt_trainer *t, int i, char *buf, size_t len);
int lt_trainer_hparam_get(lt_trainer *t, const char *name, double *out, lt_err *err);
int lt_trainer_hparam_set(lt_trainer *t, const char *name, double v, lt_err *err);

/* The trainer's built-in callbacks (ModelCheckpoint, EarlyStopping), called by
 * the fit loop; exposed for a `save` command: writes a checkpoint now. */
int lt_trainer_save_checkpoint(lt_trainer *t, const char *path, lt_err *err);
/* Where ModelCheckpoint writes (made when missing); set once the run folder exists. */
int lt_trainer_set_checkpoint_dir(lt_trainer *t, const char *dir, lt_err *err);

/* --detect-anomaly: the first non-finite value after a step, in the order the
 * values were made: layer outputs (forward), the loss, the gradients of layer
 * outputs (backward), parameter gradients. Returns 1 and fills a when found. */
int lt_trainer_find_anomaly(const lt_trainer *t, lt_anomaly *a);

#endif
