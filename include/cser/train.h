/* train.h: the trainer: n workers (threads of one process, or one per MPI rank) train a
 * model with one of the methods of optim.h, with evaluation, metrics, checkpoints,
 * learning-rate schedules, a modeled network and a configuration tuner.
 *
 * A run is described by one value struct, cser_train_config, that the `cser train`
 * options fill (one option table: parsing, --help, the printed configuration and
 * config.json all come from it). cser_train_run executes the whole run and returns a
 * cser_train_result; it writes files only under cfg->out_dir, and text (the resolved
 * configuration, progress lines, warnings) only to the FILE the caller passes.
 *
 * Determinism: the same configuration and seed give bitwise the same models and the
 * same non-timing metrics on the threads and the MPI backend, and a run stopped and
 * resumed from a checkpoint ends bitwise where the uninterrupted run ends.
 */
#ifndef CSER_TRAIN_H
#define CSER_TRAIN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cser/optim.h"
#include "cser/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CSER_TRAIN_STR 256  /* text fields of the configuration */
#define CSER_TRAIN_PATH 1024 /* path fields                       */
#define CSER_TRAIN_MAX_LRS 8 /* learning rates in a tune grid     */
/* The CLI's --lr when none is given and the method's inner optimizer is AdamW
 * (cser_train_parse_args; otherwise the default config's 0.05). */
#define CSER_TRAIN_ADAMW_LR 0.001

/* Everything a run needs. Defaults (cser_train_default_config) are the main job:
 * cnn on Fashion-MNIST, 8 in-process workers, CSER at R_C = 256. */
typedef struct {
    char method[CSER_TRAIN_STR];   /* method name or spec (optim.h)                    */
    double rc;                     /* target R_C; 0 = default 256 when the method spec
                                      names no compressor (c=, c1=, c2=)               */
    char model[64];                /* mlp, cnn, resnet8, resnet20                      */
    char dataset[64];              /* fashion-mnist, mnist, cifar10, cifar100,
                                      synthetic                                        */
    char data_dir[CSER_TRAIN_PATH];/* "" = the dataset's default directory            */
    int workers;                   /* n; 0 = 8 on threads, the number of ranks on mpi  */
    char backend[16];              /* threads | mpi                                    */
    int threads;                   /* BLAS threads per worker (default 1)              */
    int batch;                     /* per-worker batch                                 */
    double epochs;                 /* run length in epochs (0 = use steps)             */
    long steps;                    /* run length in steps (0 = use epochs)             */
    double lr;                     /* base learning rate                               */
    double momentum;               /* beta                                             */
    int nesterov;                  /* 1 = Nesterov                                     */
    double wd;                     /* weight decay lambda                              */
    char lr_schedule[CSER_TRAIN_STR]; /* const | step:E1,E2,..:F | cosine             */
    double warmup;                 /* linear warm-up, epochs                           */
    char split[64];                /* iid | dirichlet:ALPHA                            */
    uint64_t seed;                 /* everything random derives from it                */
    long eval_every;               /* evaluate every this many steps (0 = at the end)  */
    char out_dir[CSER_TRAIN_PATH]; /* outputs (config, metrics, plot, checkpoint); ""
                                      = none (with resume: the resume directory)      */
    long checkpoint_every;         /* checkpoint every this many steps (0 = end only)  */
    char resume[CSER_TRAIN_PATH];  /* continue the run checkpointed in this directory  */
    double net_bandwidth;          /* modeled network, bits per second                 */
    double net_latency;            /* modeled latency per message, seconds             */
    int net_framing;               /* 1: the model charges TCP/IP, Ethernet and MPI
                                      headers (cser_netmodel.tcp_framing; default)     */
    double clip_norm;              /* clip each worker's gradient to this L2 norm
                                      (0 = off)                                        */
    long train_subset;             /* keep the first N training examples (0 = all)     */
    long test_subset;              /* keep the first N test examples (0 = all)         */
    long stop_after;               /* stop after this many steps of this invocation, as
                                      if interrupted (tests of resume; 0 = off)       */
    int quiet;                     /* no progress lines                                */
    double timeout;                /* collective watchdog seconds (0 = none; 300)      */
    int measure_wait;              /* 1: a timed barrier before each counted collective
                                      separates waiting for peers from transfer      */
    /* cser tune only */
    long budget_steps;             /* steps per candidate                              */
    double lr_grid[CSER_TRAIN_MAX_LRS]; /* learning rates tried                         */
    int n_lr_grid;                 /* entries of lr_grid                               */
    char command_line[CSER_TRAIN_PATH]; /* recorded in config.json (set by the CLI)    */
} cser_train_config;

cser_train_config cser_train_default_config(void);

/* Which command an option belongs to. */
typedef enum { CSER_CMD_TRAIN = 1, CSER_CMD_TUNE = 2 } cser_train_cmd;

/* Parses long options (argv[0] is the command name and is skipped) into cfg, which
 * should hold the defaults. Sets *help when --help was given (and stops). Fails with
 * CSER_ERR_INVALID and a one-line message naming the option, the value and what is
 * expected; then validates the result with cser_train_validate. */
cser_status cser_train_parse_args(cser_train_config *cfg, cser_train_cmd cmd, int argc,
                                  char **argv, int *help);

/* Writes the --help text of a command (every option with its default) to f. */
void cser_train_print_help(FILE *f, cser_train_cmd cmd);

/* Checks every value and their combinations (message names the option). Does not
 * touch files or datasets. */
cser_status cser_train_validate(const cser_train_config *cfg, cser_train_cmd cmd);

/* The optimizer configuration a train config resolves to (method spec, --rc and the
 * --momentum/--nesterov/--wd/--seed options), by cser_optim_resolve: --rc applies to
 * a method name or a spec that leaves a compressor's ratio open; a spec fixing every
 * compressor's ratio together with an explicit --rc is ambiguous and rejected. */
cser_status cser_train_resolve_method(const cser_train_config *cfg,
                                      cser_optim_config *out);

/* Writes "option = value" lines of the resolved configuration to f. */
void cser_train_print_config(FILE *f, const cser_train_config *cfg, cser_train_cmd cmd);

/* The configuration as a JSON object into buf (snprintf semantics). */
int cser_train_config_json(const cser_train_config *cfg, cser_train_cmd cmd, char *buf,
                           size_t n);

/* ---- learning-rate schedules ---- */

typedef enum { CSER_SCHED_CONST = 0, CSER_SCHED_STEP, CSER_SCHED_COSINE } cser_sched_kind;

#define CSER_SCHED_MAX_MILESTONES 16

typedef struct {
    cser_sched_kind kind;
    int nmilestones;                              /* step: number of milestones */
    double milestones[CSER_SCHED_MAX_MILESTONES]; /* step: epochs, increasing   */
    double factor;                                /* step: multiplier, (0, 1]   */
    int warmup_multiplies; /* 1: the warm-up ramp multiplies a schedule that spans the
                              whole run (the authors' composition; --warmup auto)      */
} cser_schedule;

/* "const", "cosine" or "step:E1,E2,...:F" (epochs, increasing; factor F). */
cser_status cser_schedule_parse(const char *spec, cser_schedule *out);

/* Learning rate of step t (0-based) of a run of total_steps steps with steps_per_epoch
 * steps per epoch and a linear warm-up over warmup_epochs (lr*(t+1)/W for t < W steps);
 * cosine decays from base_lr to 0 over the steps after the warm-up. */
double cser_schedule_lr(const cser_schedule *s, double base_lr, long t, long total_steps,
                        double steps_per_epoch, double warmup_epochs);

/* --warmup auto: the authors' warm-up rule (their CIFAR scripts), scaled from their
 * 200 epochs to a run of run_epochs: W = run_epochs * min(200, max(4, rint(R * 5/128 *
 * lr/0.05 * 2))) / 200 epochs, R = cser_optim_warmup_ratio(method), the ramp
 * multiplying the schedule; a method without a rule (R = 0: SGD, whose authors' runs
 * had none, and the DiLoCo presets) keeps the fixed CSER_WARMUP_SGD epochs (ramp, then
 * the schedule) (docs/methods.md). */
#define CSER_WARMUP_AUTO (-1.0) /* cser_train_config.warmup: resolve with the rule */
#define CSER_WARMUP_SGD  0.1    /* epochs: SGD's fixed warm-up (the default --warmup) */

double cser_warmup_auto_epochs(const cser_optim_config *method, double lr,
                               double run_epochs);

/* "--warmup" values: a number of epochs >= 0, or "auto" (CSER_WARMUP_AUTO). */
cser_status cser_warmup_parse(const char *v, double *out);
void cser_warmup_format(double warmup, char *buf, size_t n);

/* ---- running ---- */

typedef struct {
    double test_acc;          /* top-1 accuracy of the evaluated model, [0,1]           */
    double test_loss;         /* mean cross-entropy on the test set                    */
    double train_loss;        /* mean training loss over the last evaluation interval  */
    long steps;               /* steps completed                                       */
    double epochs;            /* epochs completed                                      */
    int workers;              /* n                                                     */
    int rank;                 /* this process's rank (0 on threads)                    */
    size_t d;                 /* model size                                            */
    uint64_t bytes_up;        /* bytes worker 0 sent, cumulative                       */
    uint64_t bytes_down;      /* bytes worker 0 received, cumulative                   */
    uint64_t messages;        /* messages worker 0 sent                                */
    double nominal_rc;        /* R_C of the configuration                              */
    double actual_rc;         /* SGD's dense allreduce bytes over bytes moved (0 = n/a) */
    double compute_s;         /* worker 0's measured seconds outside collectives       */
    double comm_s;            /* worker 0's measured seconds inside collectives        */
    double modeled_comm_s;    /* communication time on the modeled network             */
    double wall_s;            /* measured wall seconds of the run                       */
    int diverged;             /* 1 if the run ended on a NaN or Inf                    */
    int stopped;              /* 1 if stop_after ended the run early                   */
    char method[CSER_TRAIN_STR]; /* resolved method spec                              */
    char evaluated[64];       /* which model was tested                                */
    uint64_t model_hash;      /* FNV-1a of every worker's model, in rank order         */
    /* worker 0, this invocation only (not carried over a resume): */
    double wait_s;            /* waiting for peers before collectives (measure_wait)  */
    double phase_comm_s[CSER_PHASE_COUNT];    /* comm_s per phase of optim.h        */
    double phase_modeled_s[CSER_PHASE_COUNT]; /* modeled_comm_s per phase           */
    uint64_t peak_bytes_step; /* most bytes worker 0 sent in one step, the whole run */
} cser_train_result;

/* Runs a whole training. log: resolved configuration, progress and warnings (rank 0
 * only; NULL = silent). Returns CSER_ERR_DIVERGED (with result->diverged set) when the
 * run diverged, CSER_ERR_INVALID/IO/FORMAT/MISMATCH for bad input or checkpoints. */
cser_status cser_train_run(const cser_train_config *cfg, FILE *log,
                           cser_train_result *result);

/* ---- tuner ---- */

typedef struct {
    char method[CSER_TRAIN_STR]; /* method spec                                  */
    double r_c1, r_c2;           /* compressor ratios (r_c2 = 0: C2 = zero)       */
    int h;                       /* period                                       */
    double lr;                   /* learning rate                                */
    double nominal_rc;           /* R_C = 1/(1/(R_C1*H) + 1/R_C2)                */
    double actual_rc;            /* measured                                     */
    double train_loss;           /* mean training loss over the budget (NaN: diverged) */
    double test_loss;            /* final test loss of the evaluated model       */
    double test_acc;             /* final accuracy                               */
    int diverged;                /* 1 if it diverged                             */
} cser_tune_candidate;

typedef struct {
    cser_tune_candidate *cand; /* [ncand], ranked best first (owned)   */
    int ncand;
    int best;                  /* index of the best (0) or -1 if all diverged */
} cser_tune_result;

/* Enumerates CSER configurations (R_C1, R_C2, H) that meet the target ratio cfg->rc
 * (the authors' rule R_C1*H = R_C2 and others) times cfg->lr_grid, trains each for
 * cfg->budget_steps steps, and ranks them by the final test loss of the evaluated
 * model (diverged last).
 * With cfg->out_dir, writes tune.csv and best_method.txt there. */
cser_status cser_tune_run(const cser_train_config *cfg, FILE *log, cser_tune_result *out);
void cser_tune_result_free(cser_tune_result *r);

/* ---- the ABI of the public structs, for bindings (src/train/abi.c) ----
 * A binding that mirrors a struct (python/cser/_lib.py with ctypes) checks its
 * mirror against the compiler's layout when it loads the library. Types are named as
 * in C ("cser_optim_config"); covered: cser_tensor, cser_params, cser_draw, cser_run,
 * cser_support, cser_compressor_params, cser_comm_stats, cser_netmodel,
 * cser_optim_config, cser_optim_stats. Here because train.h sees every header. */
size_t cser_abi_sizeof(const char *type);                    /* 0: unknown type      */
size_t cser_abi_offsetof(const char *type, const char *field); /* SIZE_MAX: unknown  */
size_t cser_abi_fieldsize(const char *type, const char *field); /* 0: unknown        */

#ifdef __cplusplus
}
#endif
#endif
