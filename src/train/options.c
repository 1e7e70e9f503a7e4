/* options.c: the one option table of `cser train` and `cser tune`: it feeds the
 * parser, --help (with every default), the printed resolved configuration, config.json
 * and the list of options a resumed run must share with its checkpoint. */
#include "train_impl.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    OPT_STR,       /* char[size]                       */
    OPT_INT,       /* int                              */
    OPT_LONG,      /* long                             */
    OPT_DOUBLE,    /* double                           */
    OPT_BOOL,      /* int, 0|1 (also yes/no/true/false) */
    OPT_FLAG,      /* int, set to 1, takes no value     */
    OPT_U64,       /* uint64_t                         */
    OPT_BANDWIDTH, /* double bits/s, "10G", "100M"     */
    OPT_LATENCY,   /* double seconds, "50us", "1ms"    */
    OPT_LRS,       /* lr_grid + n_lr_grid, "0.05,0.1"  */
    OPT_WARMUP     /* double epochs, or "auto" (schedule.c) */
} opt_type;

enum { SCOPE_TRAIN = CSER_CMD_TRAIN, SCOPE_TUNE = CSER_CMD_TUNE, SCOPE_BOTH = 3 };

typedef struct {
    const char *name; /* long option without the dashes                   */
    opt_type type;
    size_t offset;    /* field in cser_train_config                       */
    size_t size;      /* OPT_STR: field size                              */
    int scope;        /* SCOPE_*                                          */
    int trajectory;   /* 1: changes the run's numbers (checked on resume) */
    double lo, hi;    /* numeric range (inclusive)                        */
    const char *arg;  /* metavariable in --help                           */
    const char *help; /* one line                                         */
} opt_def;

#define F(field) offsetof(cser_train_config, field)
#define S(field) sizeof(((cser_train_config *)0)->field)
#define BIG      1e18

static const opt_def opts[] = {
    {"method", OPT_STR, F(method), S(method), SCOPE_BOTH, 1, 0, 0, "SPEC",
     "method name or spec (cser info lists them), e.g. cser:c1=grbs:4,c2=grbs:64,h=16"},
    {"rc", OPT_DOUBLE, F(rc), 0, SCOPE_BOTH, 1, 0, BIG, "R",
     "target overall ratio R_C >= 1 for a method name (0 = 256; not with a spec that "
     "names compressors)"},
    {"model", OPT_STR, F(model), S(model), SCOPE_BOTH, 1, 0, 0, "NAME",
     "model: mlp, cnn, resnet8, resnet20, cnn-wide"},
    {"dataset", OPT_STR, F(dataset), S(dataset), SCOPE_BOTH, 1, 0, 0, "NAME",
     "dataset: fashion-mnist, mnist, cifar10, cifar100, synthetic"},
    {"data-dir", OPT_STR, F(data_dir), S(data_dir), SCOPE_BOTH, 0, 0, 0, "DIR",
     "dataset directory (empty = the dataset's default)"},
    {"workers", OPT_INT, F(workers), 0, SCOPE_BOTH, 1, 0, 4096, "N",
     "workers n (0 = 8 on threads, the number of ranks on mpi)"},
    {"backend", OPT_STR, F(backend), S(backend), SCOPE_BOTH, 0, 0, 0, "B",
     "threads (workers in this process) or mpi (one worker per rank)"},
    {"threads", OPT_INT, F(threads), 0, SCOPE_BOTH, 0, 1, 256, "N",
     "compute (BLAS) threads per worker"},
    {"batch", OPT_INT, F(batch), 0, SCOPE_BOTH, 1, 1, 65536, "N", "batch per worker"},
    {"epochs", OPT_DOUBLE, F(epochs), 0, SCOPE_TRAIN, 1, 0, 1e6, "E",
     "run length in epochs (not with --steps)"},
    {"steps", OPT_LONG, F(steps), 0, SCOPE_TRAIN, 1, 0, 1e12, "T",
     "run length in steps (not with --epochs)"},
    {"lr", OPT_DOUBLE, F(lr), 0, SCOPE_TRAIN, 1, 0, BIG, "ETA",
     "base learning rate (not given: 0.05, or 0.001 where the method's inner optimizer "
     "is AdamW, e.g. diloco)"},
    {"momentum", OPT_DOUBLE, F(momentum), 0, SCOPE_BOTH, 1, 0, 0.999999, "BETA",
     "momentum beta in [0, 1)"},
    {"nesterov", OPT_BOOL, F(nesterov), 0, SCOPE_BOTH, 1, 0, 1, "0|1",
     "Nesterov momentum"},
    {"wd", OPT_DOUBLE, F(wd), 0, SCOPE_BOTH, 1, 0, 1, "LAMBDA", "weight decay"},
    {"lr-schedule", OPT_STR, F(lr_schedule), S(lr_schedule), SCOPE_BOTH, 1, 0, 0, "S",
     "const, cosine, or step:E1,E2,..:FACTOR (epochs)"},
    {"warmup", OPT_WARMUP, F(warmup), 0, SCOPE_BOTH, 1, 0, 1e6, "EPOCHS|auto",
     "linear learning-rate warm-up (auto: the authors' rule, docs/methods.md)"},
    {"split", OPT_STR, F(split), S(split), SCOPE_BOTH, 1, 0, 0, "S",
     "data split over workers: iid or dirichlet:ALPHA"},
    {"seed", OPT_U64, F(seed), 0, SCOPE_BOTH, 1, 0, 0, "S", "seed of everything random"},
    {"eval-every", OPT_LONG, F(eval_every), 0, SCOPE_TRAIN, 0, 0, 1e12, "STEPS",
     "evaluate every STEPS steps (0 = only at the end)"},
    {"out", OPT_STR, F(out_dir), S(out_dir), SCOPE_BOTH, 0, 0, 0, "DIR",
     "output directory: config.json, metrics.csv/.jsonl, curves.png, checkpoint.bin"},
    {"checkpoint-every", OPT_LONG, F(checkpoint_every), 0, SCOPE_TRAIN, 0, 0, 1e12,
     "STEPS", "checkpoint every STEPS steps (0 = only at the end; needs --out)"},
    {"resume", OPT_STR, F(resume), S(resume), SCOPE_TRAIN, 0, 0, 0, "DIR",
     "continue the run checkpointed in DIR (same options; --out defaults to DIR)"},
    {"net-bandwidth", OPT_BANDWIDTH, F(net_bandwidth), 0, SCOPE_BOTH, 0, 1, BIG, "BPS",
     "modeled network bandwidth, bits/s (10G, 1G, 100M)"},
    {"net-latency", OPT_LATENCY, F(net_latency), 0, SCOPE_BOTH, 0, 0, 1e3, "T",
     "modeled latency per message (50us, 1ms)"},
    {"net-framing", OPT_BOOL, F(net_framing), 0, SCOPE_BOTH, 0, 0, 1, "0|1",
     "modeled network charges TCP/IP, Ethernet and MPI headers (0: payload only, as "
     "runs recorded before docs/netlab.md)"},
    {"clip-norm", OPT_DOUBLE, F(clip_norm), 0, SCOPE_BOTH, 1, 0, BIG, "C",
     "clip each worker's gradient to L2 norm C (0 = off)"},
    {"train-subset", OPT_LONG, F(train_subset), 0, SCOPE_BOTH, 1, 0, 1e12, "N",
     "use the first N training examples (0 = all)"},
    {"test-subset", OPT_LONG, F(test_subset), 0, SCOPE_BOTH, 1, 0, 1e12, "N",
     "use the first N test examples (0 = all)"},
    {"stop-after", OPT_LONG, F(stop_after), 0, SCOPE_TRAIN, 0, 0, 1e12, "STEPS",
     "stop after STEPS steps of this invocation, as if interrupted (0 = off)"},
    {"timeout", OPT_DOUBLE, F(timeout), 0, SCOPE_BOTH, 0, 0, 1e6, "SEC",
     "fail a collective that waits longer than SEC for its peers (0 = never)"},
    {"measure-wait", OPT_BOOL, F(measure_wait), 0, SCOPE_BOTH, 0, 0, 1, "0|1",
     "time a barrier before each collective: waiting for peers apart from transfer"},
    {"quiet", OPT_FLAG, F(quiet), 0, SCOPE_BOTH, 0, 0, 1, "", "no progress lines"},
    {"budget-steps", OPT_LONG, F(budget_steps), 0, SCOPE_TUNE, 0, 1, 1e12, "N",
     "steps per candidate configuration"},
    {"lr-grid", OPT_LRS, F(lr_grid), 0, SCOPE_TUNE, 0, 0, BIG, "L1,L2,..",
     "learning rates tried for every configuration"},
};
#define NOPTS (sizeof opts / sizeof opts[0])

const char *const train_dataset_names[] = {"fashion-mnist", "mnist",     "cifar10",
                                           "cifar100",      "synthetic", NULL};

cser_train_config cser_train_default_config(void)
{
    cser_train_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.method, sizeof c.method, "cser");
    snprintf(c.model, sizeof c.model, "cnn");
    snprintf(c.dataset, sizeof c.dataset, "fashion-mnist");
    snprintf(c.backend, sizeof c.backend, "threads");
    snprintf(c.lr_schedule, sizeof c.lr_schedule, "cosine");
    snprintf(c.split, sizeof c.split, "iid");
    c.threads = 1;
    c.batch = 32;
    c.steps = 2000;
    c.lr = 0.05;
    c.momentum = 0.9;
    c.nesterov = 1;
    c.measure_wait = 1;
    /* a silent dead link (a pulled cable, a switch port down) makes TCP retransmit for
     * many minutes and MPI wait forever (docs/reliability.md): 300 s is far above any
     * legitimate wait for a peer (an evaluation or a checkpoint: seconds here) */
    c.timeout = 300;
    c.wd = 1e-4;
    c.warmup = 0.1;
    c.seed = 1;
    c.eval_every = 250;
    c.net_bandwidth = 10e9;
    c.net_latency = 50e-6;
    c.net_framing = 1;
    c.budget_steps = 60;
    c.lr_grid[0] = 0.02;
    c.lr_grid[1] = 0.05;
    c.lr_grid[2] = 0.1;
    c.n_lr_grid = 3;
    return c;
}

/* ---- value formatting ---- */

void train_format_bandwidth(double bps, char *buf, size_t n)
{
    static const char *suf[] = {"", "K", "M", "G", "T"};
    int k = 0;
    while (k < 4 && bps >= 1000.0 && fmod(bps, 1000.0) == 0.0) {
        bps /= 1000.0;
        k++;
    }
    snprintf(buf, n, "%.15g%s", bps, suf[k]);
}

void train_format_latency(double s, char *buf, size_t n)
{
    if (s == 0)
        snprintf(buf, n, "0");
    else if (s < 1e-3)
        snprintf(buf, n, "%.15gus", s * 1e6);
    else if (s < 1)
        snprintf(buf, n, "%.15gms", s * 1e3);
    else
        snprintf(buf, n, "%.15gs", s);
}

/* The shortest of %.15g, %.16g, %.17g that reads back as the same double. */
static void format_double(double x, char *buf, size_t n)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, x);
        if (strtod(buf, NULL) == x)
            return;
    }
}

static void format_value(const opt_def *o, const cser_train_config *c, char *buf,
                         size_t n)
{
    const char *p = (const char *)c + o->offset;
    switch (o->type) {
    case OPT_STR: snprintf(buf, n, "%s", p); break;
    case OPT_INT:
    case OPT_BOOL:
    case OPT_FLAG: snprintf(buf, n, "%d", *(const int *)p); break;
    case OPT_LONG: snprintf(buf, n, "%ld", *(const long *)p); break;
    case OPT_DOUBLE: format_double(*(const double *)p, buf, n); break;
    case OPT_U64:
        snprintf(buf, n, "%llu", (unsigned long long)*(const uint64_t *)p);
        break;
    case OPT_BANDWIDTH: train_format_bandwidth(*(const double *)p, buf, n); break;
    case OPT_LATENCY: train_format_latency(*(const double *)p, buf, n); break;
    case OPT_WARMUP: cser_warmup_format(*(const double *)p, buf, n); break;
    case OPT_LRS: {
        size_t used = 0;
        buf[0] = '\0';
        for (int i = 0; i < c->n_lr_grid && used < n; i++) {
            char one[40];
            format_double(c->lr_grid[i], one, sizeof one);
            used += (size_t)snprintf(buf + used, n - used, "%s%s", i ? "," : "", one);
        }
        break;
    }
    }
}

/* Shorter form for --help and the printed configuration (%g for doubles). */
static void format_short(const opt_def *o, const cser_train_config *c, char *buf,
                         size_t n)
{
    if (o->type == OPT_DOUBLE)
        snprintf(buf, n, "%g", *(const double *)((const char *)c + o->offset));
    else
        format_value(o, c, buf, n);
}

/* ---- value parsing ---- */

static cser_status bad(const opt_def *o, const char *v, const char *expected)
{
    return cser_error(CSER_ERR_INVALID, "--%s: expected %s, got '%s'", o->name, expected,
                      v);
}

static int parse_double(const char *v, double *out)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (end == v || errno == ERANGE || !isfinite(x))
        return -1;
    *out = x;
    return (int)(end - v);
}

/* "10G", "1.5G", "100M", "10e9", optionally followed by "bit", "bps" or "b/s". */
static int parse_bandwidth(const char *v, double *out)
{
    int k = parse_double(v, out);
    if (k < 0)
        return -1;
    const char *s = v + k;
    double mul = 1;
    switch (*s) {
    case 'k':
    case 'K':
        mul = 1e3;
        s++;
        break;
    case 'M':
        mul = 1e6;
        s++;
        break;
    case 'G':
        mul = 1e9;
        s++;
        break;
    case 'T':
        mul = 1e12;
        s++;
        break;
    default: break;
    }
    if (*s && strcmp(s, "bit") && strcmp(s, "bps") && strcmp(s, "b/s") &&
        strcmp(s, "bit/s"))
        return -1;
    *out *= mul;
    return 0;
}

/* "50us", "1ms", "2s", "100ns"; a bare number is seconds. */
static int parse_latency(const char *v, double *out)
{
    int k = parse_double(v, out);
    if (k < 0)
        return -1;
    const char *s = v + k;
    if (!strcmp(s, "us"))
        *out *= 1e-6;
    else if (!strcmp(s, "ms"))
        *out *= 1e-3;
    else if (!strcmp(s, "ns"))
        *out *= 1e-9;
    else if (*s && strcmp(s, "s"))
        return -1;
    return 0;
}

static cser_status range_check(const opt_def *o, const char *v, double x)
{
    if (x < o->lo || x > o->hi) {
        char want[96];
        if (o->hi >= BIG)
            snprintf(want, sizeof want, "a number >= %g", o->lo);
        else
            snprintf(want, sizeof want, "a number in [%g, %g]", o->lo, o->hi);
        return bad(o, v, want);
    }
    return CSER_OK;
}

static cser_status parse_integer(const opt_def *o, const char *v, long long *out)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end || errno == ERANGE)
        return bad(o, v, "an integer");
    CSER_CHECK(range_check(o, v, (double)x));
    *out = x;
    return CSER_OK;
}

static cser_status parse_lrs(const opt_def *o, const char *v, cser_train_config *c)
{
    char tmp[512];
    snprintf(tmp, sizeof tmp, "%s", v);
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(tmp, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        double x;
        int k = parse_double(tok, &x);
        if (k < 0 || tok[k] || x <= 0 || n >= CSER_TRAIN_MAX_LRS)
            return bad(o, v, "1 to 8 positive learning rates separated by commas");
        c->lr_grid[n++] = x;
    }
    if (n == 0)
        return bad(o, v, "1 to 8 positive learning rates separated by commas");
    c->n_lr_grid = n;
    return CSER_OK;
}

static cser_status parse_value(const opt_def *o, const char *v, cser_train_config *c)
{
    char *p = (char *)c + o->offset;
    long long ll;
    double x;
    switch (o->type) {
    case OPT_STR:
        if (strlen(v) >= o->size)
            return bad(o, v, "a shorter value");
        snprintf(p, o->size, "%s", v);
        return CSER_OK;
    case OPT_INT:
        CSER_CHECK(parse_integer(o, v, &ll));
        *(int *)p = (int)ll;
        return CSER_OK;
    case OPT_LONG:
        CSER_CHECK(parse_integer(o, v, &ll));
        *(long *)p = (long)ll;
        return CSER_OK;
    case OPT_U64: {
        char *end;
        errno = 0;
        unsigned long long u = strtoull(v, &end, 10);
        if (end == v || *end || errno == ERANGE || v[0] == '-')
            return bad(o, v, "a non-negative integer");
        *(uint64_t *)p = (uint64_t)u;
        return CSER_OK;
    }
    case OPT_BOOL:
        if (!strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "true"))
            *(int *)p = 1;
        else if (!strcmp(v, "0") || !strcmp(v, "no") || !strcmp(v, "false"))
            *(int *)p = 0;
        else
            return bad(o, v, "0 or 1");
        return CSER_OK;
    case OPT_FLAG: *(int *)p = 1; return CSER_OK;
    case OPT_DOUBLE: {
        int k = parse_double(v, &x);
        if (k < 0 || v[k])
            return bad(o, v, "a number");
        CSER_CHECK(range_check(o, v, x));
        *(double *)p = x;
        return CSER_OK;
    }
    case OPT_BANDWIDTH:
        /* the range also rejects what overflows to inf, e.g. 1e300T */
        if (parse_bandwidth(v, &x) < 0 || !(x >= o->lo && x <= o->hi))
            return bad(o, v, "a bandwidth of 1 to 1e18 bits/s such as 10G, 1G or 100M");
        *(double *)p = x;
        return CSER_OK;
    case OPT_LATENCY:
        if (parse_latency(v, &x) < 0 || x < 0 || x > o->hi)
            return bad(o, v, "a latency such as 50us, 1ms or 0");
        *(double *)p = x;
        return CSER_OK;
    case OPT_LRS: return parse_lrs(o, v, c);
    case OPT_WARMUP: return cser_warmup_parse(v, (double *)p);
    }
    return cser_error(CSER_ERR_INTERNAL, "--%s: unknown option type", o->name);
}

static const opt_def *find_opt(const char *name, size_t len, cser_train_cmd cmd)
{
    for (size_t i = 0; i < NOPTS; i++)
        if ((opts[i].scope & (int)cmd) && strlen(opts[i].name) == len &&
            !strncmp(opts[i].name, name, len))
            return &opts[i];
    return NULL;
}

cser_status cser_train_parse_args(cser_train_config *cfg, cser_train_cmd cmd, int argc,
                                  char **argv, int *help)
{
    int epochs_set = 0, steps_set = 0, lr_set = 0;
    *help = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            *help = 1;
            return CSER_OK;
        }
        if (strncmp(a, "--", 2) != 0 || !a[2])
            return cser_error(CSER_ERR_INVALID,
                              "unexpected argument '%s' (options are --NAME VALUE; see "
                              "--help)",
                              a);
        const char *eq = strchr(a + 2, '=');
        size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        const opt_def *o = find_opt(a + 2, len, cmd);
        if (!o)
            return cser_error(CSER_ERR_INVALID, "unknown option '%.*s' (see --help)",
                              (int)len + 2, a);
        const char *v = eq ? eq + 1 : NULL;
        if (o->type == OPT_FLAG && v)
            return bad(o, v, "no value");
        if (o->type != OPT_FLAG && !v) {
            if (i + 1 >= argc)
                return cser_error(CSER_ERR_INVALID, "--%s: missing value (expected %s)",
                                  o->name, o->arg);
            v = argv[++i];
        }
        CSER_CHECK(parse_value(o, v ? v : "", cfg));
        epochs_set |= !strcmp(o->name, "epochs");
        steps_set |= !strcmp(o->name, "steps");
        lr_set |= !strcmp(o->name, "lr");
    }
    if (epochs_set && steps_set)
        return cser_error(CSER_ERR_INVALID,
                          "--epochs and --steps conflict: give the run length once");
    if (epochs_set)
        cfg->steps = 0; /* --epochs replaces the default --steps */
    if (steps_set)
        cfg->epochs = 0;
    /* AdamW's step is about lr per coordinate whatever the gradient's scale, so SGD's
     * default rate is far too large for it; 0.001 is Adam's usual rate and the one the
     * DiLoCo comparison runs (docs/RESULTS.md). A method that does not resolve is left
     * to the validation below, which names the error. */
    cser_optim_config oc;
    if (!lr_set && cmd == CSER_CMD_TRAIN &&
        cser_optim_resolve(cfg->method, cfg->rc, &oc) == CSER_OK &&
        oc.inner == CSER_INNER_ADAMW)
        cfg->lr = CSER_TRAIN_ADAMW_LR;
    return cser_train_validate(cfg, cmd);
}

/* ---- validation ---- */

static int in_list(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(s, *list))
            return 1;
    return 0;
}

cser_status cser_train_resolve_method(const cser_train_config *cfg,
                                      cser_optim_config *out)
{
    cser_status s = cser_optim_resolve(cfg->method, cfg->rc, out);
    if (s != CSER_OK)
        return cser_error_context(s, "--method '%s'%s", cfg->method,
                                  cfg->rc != 0 ? " with --rc" : "");
    out->momentum = cfg->momentum;
    out->nesterov = cfg->nesterov;
    out->weight_decay = cfg->wd;
    out->seed = cfg->seed;
    return CSER_OK;
}

static cser_status validate_names(const cser_train_config *c)
{
    const char *const *models = cser_model_names();
    if (models && !in_list(c->model, models))
        return cser_error(CSER_ERR_INVALID,
                          "--model: unknown model '%s' (expected mlp, cnn, resnet8, "
                          "resnet20 or cnn-wide)",
                          c->model);
    if (!in_list(c->dataset, train_dataset_names))
        return cser_error(
            CSER_ERR_INVALID,
            "--dataset: unknown dataset '%s' (expected fashion-mnist, mnist, "
            "cifar10, cifar100 or synthetic)",
            c->dataset);
    if (strcmp(c->backend, "threads") && strcmp(c->backend, "mpi"))
        return cser_error(CSER_ERR_INVALID,
                          "--backend: expected threads or mpi, got '%s'", c->backend);
    if (!strcmp(c->backend, "mpi") && !cser_comm_mpi_available())
        return cser_error(CSER_ERR_INVALID,
                          "--backend mpi: this build has no MPI backend (rebuild with "
                          "MPI, or use --backend threads)");
    return CSER_OK;
}

cser_status train_plan_make(const cser_train_config *c, cser_train_cmd cmd,
                            train_plan *plan)
{
    /* ranges first (configs built in code do not pass through the parser) */
    for (size_t i = 0; i < NOPTS; i++) {
        const opt_def *o = &opts[i];
        const char *p = (const char *)c + o->offset;
        double x;
        if (o->type == OPT_INT)
            x = *(const int *)p;
        else if (o->type == OPT_LONG)
            x = (double)*(const long *)p;
        else if (o->type == OPT_DOUBLE || o->type == OPT_LATENCY ||
                 o->type == OPT_BANDWIDTH ||
                 (o->type == OPT_WARMUP && *(const double *)p != CSER_WARMUP_AUTO))
            x = *(const double *)p;
        else
            continue;
        if (!(x >= o->lo && x <= o->hi))
            return cser_error(CSER_ERR_INVALID,
                              "--%s: expected a value in [%g, %g], got %g", o->name,
                              o->lo, o->hi, x);
    }
    if (c->rc != 0 && c->rc < 1)
        return cser_error(CSER_ERR_INVALID, "--rc: expected a ratio >= 1, got %g", c->rc);
    if (!(c->lr > 0) && cmd == CSER_CMD_TRAIN)
        return cser_error(CSER_ERR_INVALID,
                          "--lr: expected a positive learning rate, got %g", c->lr);
    if (!(c->net_bandwidth > 0))
        return cser_error(CSER_ERR_INVALID,
                          "--net-bandwidth: expected a positive "
                          "bandwidth, got %g",
                          c->net_bandwidth);
    if (cmd == CSER_CMD_TRAIN && (c->steps > 0) == (c->epochs > 0))
        return cser_error(CSER_ERR_INVALID,
                          c->steps > 0 ? "--epochs and --steps conflict: give the run "
                                         "length once"
                                       : "--steps: expected a run length (--steps T >= 1 "
                                         "or --epochs E > 0)");
    if (c->checkpoint_every > 0 && !c->out_dir[0] && !c->resume[0])
        return cser_error(CSER_ERR_INVALID, "--checkpoint-every %ld: needs --out DIR",
                          c->checkpoint_every);
    if (cmd == CSER_CMD_TUNE && c->n_lr_grid < 1)
        return cser_error(CSER_ERR_INVALID, "--lr-grid: expected at least one rate");
    CSER_CHECK(validate_names(c));
    if (cser_split_parse(c->split, &plan->split) != CSER_OK)
        return cser_error_context(CSER_ERR_INVALID, "--split");
    if (cser_schedule_parse(c->lr_schedule, &plan->sched) != CSER_OK)
        return cser_error_context(CSER_ERR_INVALID, "--lr-schedule");
    CSER_CHECK(cser_train_resolve_method(c, &plan->method));
    cser_optim_format(&plan->method, plan->method_spec, sizeof plan->method_spec);
    return CSER_OK;
}

cser_status cser_train_validate(const cser_train_config *c, cser_train_cmd cmd)
{
    train_plan plan;
    return train_plan_make(c, cmd, &plan);
}

/* ---- help, printed configuration, JSON ---- */

void cser_train_print_help(FILE *f, cser_train_cmd cmd)
{
    cser_train_config d = cser_train_default_config();
    if (cmd == CSER_CMD_TRAIN)
        fprintf(f, "usage: cser train [OPTIONS]\n\nTrains a model with n workers and "
                   "prints a summary. With no options: the main job\n(cnn on "
                   "Fashion-MNIST, 8 in-process workers, CSER at R_C = 256).\n\n");
    else
        fprintf(f, "usage: cser tune [OPTIONS]\n\nRuns CSER configurations meeting the "
                   "target --rc with each learning rate of\n--lr-grid for --budget-steps "
                   "steps and ranks them; writes the best method spec.\n\n");
    fprintf(f, "options (default in brackets):\n");
    for (size_t i = 0; i < NOPTS; i++) {
        if (!(opts[i].scope & (int)cmd))
            continue;
        char v[256], head[64];
        format_short(&opts[i], &d, v, sizeof v);
        snprintf(head, sizeof head, "--%s %s", opts[i].name, opts[i].arg);
        fprintf(f, "  %-26s %s [%s]\n", head, opts[i].help, v);
    }
    fprintf(f, "\nexit status: 0 success, 1 runtime failure, 2 bad usage or input, "
               "3 diverged\n");
}

void train_print_config_plan(FILE *f, const cser_train_config *c, cser_train_cmd cmd,
                             const train_plan *plan)
{
    for (size_t i = 0; i < NOPTS; i++) {
        if (!(opts[i].scope & (int)cmd))
            continue;
        char v[256];
        format_short(&opts[i], c, v, sizeof v);
        fprintf(f, "  %-17s = %s\n", opts[i].name, v);
    }
    if (plan)
        fprintf(f, "  %-17s = %s\n", "resolved method", plan->method_spec);
}

void cser_train_print_config(FILE *f, const cser_train_config *c, cser_train_cmd cmd)
{
    train_plan plan;
    train_print_config_plan(f, c, cmd,
                            train_plan_make(c, cmd, &plan) == CSER_OK ? &plan : NULL);
}

static void json_string(char *buf, size_t n, size_t *used, const char *s)
{
    if (*used < n)
        *used += (size_t)snprintf(buf + *used, n - *used, "\"");
    for (; *s && *used < n; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            *used += (size_t)snprintf(buf + *used, n - *used, "\\%c", ch);
        else if (ch < 0x20)
            *used += (size_t)snprintf(buf + *used, n - *used, "\\u%04x", ch);
        else
            *used += (size_t)snprintf(buf + *used, n - *used, "%c", ch);
    }
    if (*used < n)
        *used += (size_t)snprintf(buf + *used, n - *used, "\"");
}

int cser_train_config_json(const cser_train_config *c, cser_train_cmd cmd, char *buf,
                           size_t n)
{
    train_plan plan;
    return train_config_json_plan(
        c, cmd, train_plan_make(c, cmd, &plan) == CSER_OK ? &plan : NULL, buf, n);
}

int train_config_json_plan(const cser_train_config *c, cser_train_cmd cmd,
                           const train_plan *plan, char *buf, size_t n)
{
    size_t used = 0;
    char v[512];
#define PUT(...)                                                                         \
    (used += (size_t)snprintf(buf + (used < n ? used : n), used < n ? n - used : 0,      \
                              __VA_ARGS__))
    PUT("{\n  \"version\": \"%s\",\n  \"command_line\": ", cser_version());
    json_string(buf, n, &used, c->command_line);
    if (plan) {
        PUT(",\n  \"resolved_method\": ");
        json_string(buf, n, &used, plan->method_spec);
    }
    for (size_t i = 0; i < NOPTS; i++) {
        const opt_def *o = &opts[i];
        if (!(o->scope & (int)cmd))
            continue;
        PUT(",\n  \"%s\": ", o->name);
        format_value(o, c, v, sizeof v);
        int numeric = o->type == OPT_INT || o->type == OPT_LONG ||
                      o->type == OPT_DOUBLE || o->type == OPT_BOOL ||
                      o->type == OPT_FLAG || o->type == OPT_U64 ||
                      (o->type == OPT_WARMUP && strcmp(v, "auto"));
        if (o->type == OPT_BANDWIDTH || o->type == OPT_LATENCY) {
            format_double(*(const double *)((const char *)c + o->offset), v, sizeof v);
            numeric = 1;
        }
        if (numeric)
            PUT("%s", v);
        else if (o->type == OPT_LRS)
            PUT("[%s]", v);
        else
            json_string(buf, n, &used, v);
    }
    PUT("\n}\n");
#undef PUT
    return (int)used;
}

int train_config_trajectory_text(const cser_train_config *c, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < NOPTS; i++) {
        if (!opts[i].trajectory)
            continue;
        char v[512];
        format_value(&opts[i], c, v, sizeof v);
        if (used < n)
            used += (size_t)snprintf(buf + used, n - used, "%s=%s\n", opts[i].name, v);
    }
    return (int)used;
}
