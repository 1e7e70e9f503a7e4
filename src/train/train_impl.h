/* train_impl.h: private interfaces between the trainer's files (options, metrics,
 * checkpoints, plots, progress, the run loop). Not installed. */
#ifndef CSER_TRAIN_IMPL_H
#define CSER_TRAIN_IMPL_H

#include <stdint.h>
#include <stdio.h>

#include "cser/cser.h"
#include "cser/train.h"

/* ---- options.c ---- */

/* A configuration resolved once: what the run reads instead of re-parsing the text
 * fields (--method with --rc and the optimizer options, --lr-schedule, --split). */
typedef struct {
    cser_optim_config method;   /* resolved method                              */
    char method_spec[512];      /* its canonical spec (cser_optim_format)       */
    cser_schedule sched;        /* parsed --lr-schedule                         */
    cser_split split;           /* parsed --split                               */
} train_plan;

/* Validates cfg (as cser_train_validate) and resolves it into *plan. */
cser_status train_plan_make(const cser_train_config *cfg, cser_train_cmd cmd,
                            train_plan *plan);
/* cser_train_print_config / cser_train_config_json for an already made plan. */
void train_print_config_plan(FILE *f, const cser_train_config *cfg, cser_train_cmd cmd,
                             const train_plan *plan);
int train_config_json_plan(const cser_train_config *cfg, cser_train_cmd cmd,
                           const train_plan *plan, char *buf, size_t n);

/* "key=value\n" lines of the options that change the trajectory of a run (compared
 * when resuming): snprintf semantics. */
int train_config_trajectory_text(const cser_train_config *cfg, char *buf, size_t n);

/* Formats a bandwidth in bits/s as "10G" / "100M" / "1.5G"; a latency as "50us". */
void train_format_bandwidth(double bps, char *buf, size_t n);
void train_format_latency(double s, char *buf, size_t n);

/* Dataset choices accepted by --dataset, NULL-terminated. */
extern const char *const train_dataset_names[];

/* ---- io helpers (fileio.c) ---- */

/* Writes a whole file atomically: temp file, fflush, fsync, rename. */
cser_status train_write_atomic(const char *path, const void *data, size_t bytes);
/* The same, calling before_rename(path) (when not NULL) between the complete, fsynced
 * temporary file and its rename (checkpoint.c's test hook). */
cser_status train_write_atomic_hook(const char *path, const void *data, size_t bytes,
                                    void (*before_rename)(const char *path));
/* Reads a whole file (malloc'd, NUL-terminated); fails with CSER_ERR_IO naming it. */
cser_status train_read_file(const char *path, char **data, size_t *bytes);
/* CSER_ERR_IO with "WHAT 'PATH': strerror(errno)". */
cser_status train_io_error(const char *what, const char *path);
/* Creates a directory (and its parents) if missing. */
cser_status train_mkdir_p(const char *path);

/* One row of the metrics files. */
typedef struct {
    const char *event;    /* "eval", "final", "diverged"        */
    long step;            /* steps completed                    */
    double epoch;         /* epochs completed                   */
    double lr;            /* learning rate of the last step     */
    double train_loss;    /* mean over workers and the interval */
    double test_loss;     /* NaN when not evaluated             */
    double test_acc;      /* NaN when not evaluated             */
    uint64_t bytes_up, bytes_down, messages; /* worker 0, cumulative */
    double compute_s, comm_s, modeled_comm_s, wall_s;
} train_row;

typedef struct train_metrics train_metrics;

/* Opens DIR/metrics.csv and DIR/metrics.jsonl. resume_step >= 0: keeps the rows of
 * existing files up to that step (rewritten atomically) and appends after them;
 * resume_step < 0 starts new files. */
cser_status train_metrics_open(const char *dir, long resume_step, train_metrics **out);
/* Appends one row to both files and flushes them. */
cser_status train_metrics_write(train_metrics *m, const train_row *r);
/* The value of the last column, peak_bytes_step (worker 0's cser_optim_stats
 * peak_bytes_step), for the rows written from now on; 0 until set. */
void train_metrics_set_peak(train_metrics *m, uint64_t peak_bytes_step);
void train_metrics_close(train_metrics *m);

/* Column names of metrics.csv, in order, NULL-terminated. */
extern const char *const train_metric_columns[];

/* ---- progress.c ---- */

typedef struct {
    FILE *f;         /* NULL = silent                                  */
    int tty;         /* one rewritten line (1) or plain lines (0)      */
    long total;      /* steps of the run                               */
    long first;      /* step the run (or resume) started from          */
    double t0;       /* start time                                     */
    double last_t;   /* time of the last printed line                  */
    int open_line;   /* a TTY line is open (needs a newline)           */
} train_progress;

void train_progress_init(train_progress *p, FILE *f, long first, long total);
/* Step `step` done; prints at most a few times a second (TTY) or every ~10% / 30 s. */
void train_progress_step(train_progress *p, long step, double epoch, double loss);
/* Prints a full line (ends an open TTY line first). */
void train_progress_line(train_progress *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void train_progress_end(train_progress *p);

/* ---- checkpoint.c ---- */

#define TRAIN_CKPT_NAME "checkpoint.bin"

/* Trainer-level state saved with the workers' states (rank 0's counters). */
typedef struct {
    uint64_t step;            /* steps completed                            */
    uint64_t bytes_up, bytes_down, messages;
    double compute_s, comm_s, modeled_comm_s, wall_s;
    double loss_sum;          /* training loss accumulated since last eval  */
    uint64_t loss_count;      /* steps accumulated                          */
    double last_train_loss;   /* last reported interval loss                */
} train_ckpt_head;

/* One worker's saved state. */
typedef struct {
    void *optim;             /* cser_optim_save bytes                  */
    size_t optim_bytes;
    float *buffers;          /* BN running statistics                  */
    size_t nbuffers;
    cser_loader_state loader;
} train_ckpt_worker;

/* Serializes a checkpoint: header, trajectory text, head, n workers, crc32. */
cser_status train_ckpt_write(const char *path, const char *config_text,
                             const train_ckpt_head *head, const train_ckpt_worker *w,
                             int n);
/* Reads and verifies a checkpoint (magic, version, crc32, configuration: the first
 * differing option is named). On success *w is an array of n workers, each pointing
 * into *blob (free both with train_ckpt_release). */
cser_status train_ckpt_read(const char *path, const char *config_text, int n,
                            train_ckpt_head *head, train_ckpt_worker **w, void **blob);
void train_ckpt_release(train_ckpt_worker *w, int n, void *blob);

/* ---- the run (trainer.c, worker.c, evaluate.c, ckpt_sync.c) ---- */

/* What every worker of a run shares (read-only once workers start, except the fields
 * marked rank 0). */
typedef struct {
    cser_train_config cfg;      /* resolved: workers, out_dir filled in            */
    train_plan plan;            /* method, schedule and split, resolved once       */
    const cser_dataset *train;  /* shared, read-only                               */
    const cser_dataset *test;
    int n;                      /* workers                                         */
    long total_steps;           /* steps of the whole run                          */
    double steps_per_epoch;     /* N_train / (n * batch)                           */
    double warmup_epochs;       /* --warmup, resolved (auto: the authors' rule)     */
    int augment;                /* CIFAR augmentation                              */
    char traj[8192];            /* trajectory options, compared on resume          */
    char ckpt_path[CSER_TRAIN_PATH + 32]; /* "" = no checkpoints                   */
    char resume_path[CSER_TRAIN_PATH + 32];
    FILE *log;                  /* rank 0's text output, NULL = silent             */
    cser_train_result *result;  /* rank 0 fills it                                 */
} train_shared;

/* One worker: its communicator, model, optimizer, loader and scratch. */
typedef struct {
    const train_shared *sh;
    int rank;
    cser_comm_t *comm;
    cser_model_t *model;
    cser_optim_t *opt;
    cser_loader_t *loader;
    size_t d;
    float *images;            /* [batch * c * h * w]                              */
    int32_t *labels;          /* [batch]                                          */
    float *eval_x;            /* [d] the evaluated model                          */
    float *bn_save;           /* [nbuffers] this worker's BN statistics           */
    /* counters of the run (rank 0's are reported) */
    long step;                /* steps completed                                  */
    train_ckpt_head base;     /* counters restored from a checkpoint              */
    cser_optim_stats stats0;  /* optimizer stats right after set-up or resume     */
    double wait0;             /* communicator wait_s right after set-up or resume */
    double compute_s;         /* this invocation's compute seconds                */
    double t_start;           /* this invocation's start                          */
    double paused_s;          /* this invocation's seconds in evaluations and
                                 checkpoints: not training, not in wall_s         */
    double loss_sum;          /* mean training loss summed since the last row     */
    uint64_t loss_count;
    double last_train_loss;
    double lr;                /* last learning rate                               */
    long last_ckpt;           /* step of the last good checkpoint (-1 none)       */
    train_metrics *metrics;   /* rank 0 with --out                                */
    train_progress progress;  /* rank 0                                           */
} train_worker;

/* Runs one worker from set-up to the end (worker.c). */
cser_status train_worker_run(const train_shared *sh, cser_comm_t *comm, int rank);

/* Evaluation (evaluate.c): the evaluated model on this worker's slice of the test
 * set, summed over workers (uncounted). Sets *finite to 0 if the model has a NaN/Inf. */
cser_status train_evaluate(train_worker *w, double *test_loss, double *test_acc,
                           int *finite);

/* Current cumulative counters of this worker (base + since set-up) (ckpt_sync.c). */
void train_worker_counters(const train_worker *w, train_ckpt_head *out);

/* Collective checkpoint save to sh->ckpt_path (rank 0 writes) and load from
 * sh->resume_path (rank 0 reads, every worker restores its part) (ckpt_sync.c). */
cser_status train_ckpt_save(train_worker *w);
cser_status train_ckpt_load(train_worker *w);

/* Uncounted collective helpers. */
cser_status train_allreduce_uncounted(cser_comm_t *c, float *v, size_t n,
                                      cser_reduce_op op);
cser_status train_bcast_uncounted(cser_comm_t *c, void *buf, size_t bytes, int root);

#endif
