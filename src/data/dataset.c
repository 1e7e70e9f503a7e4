/* dataset.c: datasets by name: file names, default directories and normalization
 * constants, and the dispatch to the readers (idx.c, cifar.c, synthetic.c). */
#include "data/data_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DATA_PATH_MAX 4096

/* Standard per-channel statistics of the training sets (pixels scaled to [0, 1]);
 * the same constants normalize the train and the test split. */
typedef struct {
    const char *name; /* dataset name                              */
    int nclasses;     /* classes                                   */
    int channels;     /* 1 or 3                                    */
    float mean[3];    /* per-channel mean                          */
    float std[3];     /* per-channel standard deviation            */
} data_named;

static const data_named named_sets[] = {
    {"fashion-mnist", 10, 1, {0.2860f, 0.2860f, 0.2860f}, {0.3530f, 0.3530f, 0.3530f}},
    {"mnist", 10, 1, {0.1307f, 0.1307f, 0.1307f}, {0.3081f, 0.3081f, 0.3081f}},
    {"cifar10", 10, 3, {0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f}},
    {"cifar100", 100, 3, {0.5071f, 0.4865f, 0.4409f}, {0.2673f, 0.2564f, 0.2762f}},
};

static const data_named *data_find(const char *name)
{
    for (size_t i = 0; i < sizeof named_sets / sizeof named_sets[0]; i++)
        if (strcmp(named_sets[i].name, name) == 0)
            return &named_sets[i];
    return NULL;
}

const char *cser_data_default_dir(const char *name)
{
    if (name && strcmp(name, "fashion-mnist") == 0)
        return "/usr/share/datasets/fashion-mnist";
    return NULL;
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static cser_status join(char *buf, const char *dir, const char *file)
{
    int n = snprintf(buf, DATA_PATH_MAX, "%s/%s", dir, file);
    if (n < 0 || n >= DATA_PATH_MAX)
        return cser_error(CSER_ERR_INVALID, "path '%s/%s' is longer than %d bytes", dir,
                          file, DATA_PATH_MAX - 1);
    return CSER_OK;
}

/* ---- IDX sets: <split>-images-idx3-ubyte[.gz], <split>-labels-idx1-ubyte[.gz] ---- */

static cser_status find_idx(const char *name, const char *dir, const char *split,
                            const char *kind, char *path)
{
    char file[256];
    for (int i = 0; i < 2; i++) { /* gzip first, then raw */
        snprintf(file, sizeof file, "%s-%s-ubyte%s", split, kind, i == 0 ? ".gz" : "");
        CSER_CHECK(join(path, dir, file));
        if (is_file(path))
            return CSER_OK;
    }
    return cser_error(CSER_ERR_IO,
                      "dataset '%s': expected file '%s/%s-%s-ubyte.gz' or '%s/%s-%s-ubyte', "
                      "found neither%s",
                      name, dir, split, kind, dir, split, kind,
                      is_dir(dir) ? "" : " (the directory does not exist)");
}

static cser_status load_idx_named(const data_named *d, const char *dir, int train,
                                  cser_dataset *out)
{
    char *img = malloc(DATA_PATH_MAX), *lab = malloc(DATA_PATH_MAX);
    cser_status s = (img && lab) ? CSER_OK : cser_error(CSER_ERR_NOMEM, "out of memory");
    const char *split = train ? "train" : "t10k";
    if (s == CSER_OK)
        s = find_idx(d->name, dir, split, "images-idx3", img);
    if (s == CSER_OK)
        s = find_idx(d->name, dir, split, "labels-idx1", lab);
    if (s == CSER_OK)
        s = cser_data_load_idx_classes(img, lab, d->nclasses, out);
    free(img);
    free(lab);
    return s;
}

/* ---- CIFAR sets: in dir or in its standard subdirectory ---- */

static cser_status load_cifar_named(const data_named *d, const char *dir, int train,
                                    cser_dataset *out)
{
    int c10 = d->nclasses == 10;
    const char *sub = c10 ? "cifar-10-batches-bin" : "cifar-100-binary";
    const char *probe = c10 ? (train ? "data_batch_1.bin" : "test_batch.bin")
                            : (train ? "train.bin" : "test.bin");
    char *base = malloc(DATA_PATH_MAX), *paths = malloc(5 * (size_t)DATA_PATH_MAX);
    const char *list[5];
    int n = c10 && train ? 5 : 1;
    cser_status s = (base && paths) ? CSER_OK : cser_error(CSER_ERR_NOMEM, "out of memory");
    if (s == CSER_OK)
        s = join(paths, dir, probe);
    if (s == CSER_OK && !is_file(paths) && join(base, dir, sub) == CSER_OK && is_dir(base))
        dir = base; /* the directory the tarball unpacks to */
    for (int i = 0; s == CSER_OK && i < n; i++) {
        char file[64];
        if (c10 && train)
            snprintf(file, sizeof file, "data_batch_%d.bin", i + 1);
        else
            snprintf(file, sizeof file, "%s", probe);
        list[i] = paths + (size_t)i * DATA_PATH_MAX;
        s = join(paths + (size_t)i * DATA_PATH_MAX, dir, file);
    }
    if (s == CSER_OK)
        s = cser_data_load_cifar(list, n, d->nclasses, out);
    if (s != CSER_OK && dir != base)
        cser_error_context(s, "dataset '%s' (also looked in subdirectory '%s')", d->name,
                           sub);
    free(base);
    free(paths);
    return s;
}

/* ---- synthetic sets: "synthetic" (1x28x28) and "synthetic-rgb" (3x32x32) ---- */

static cser_status load_synthetic_named(const char *name, int train, cser_dataset *out)
{
    cser_synth_params p = cser_synth_default_params();
    if (strcmp(name, "synthetic-rgb") == 0) {
        p.c = 3;
        p.h = p.w = 32;
    }
    p.n = train ? 4096 : 1024;
    /* The test split is a disjoint range of the same stream (same prototypes). */
    return cser_data_synthetic_range(&p, train ? 0 : (uint64_t)1 << 40, out);
}

cser_status cser_data_load(const char *name, const char *dir, int train,
                           cser_dataset *out)
{
    if (!out)
        return cser_error(CSER_ERR_INVALID, "cser_data_load: output dataset is NULL");
    memset(out, 0, sizeof *out);
    if (name && (strcmp(name, "synthetic") == 0 || strcmp(name, "synthetic-rgb") == 0))
        return load_synthetic_named(name, train, out);
    const data_named *d = name ? data_find(name) : NULL;
    if (!d)
        return cser_error(CSER_ERR_INVALID,
                          "unknown dataset '%s': expected fashion-mnist, mnist, cifar10, "
                          "cifar100, synthetic or synthetic-rgb",
                          name ? name : "(null)");
    if (!dir)
        dir = cser_data_default_dir(name);
    if (!dir)
        return cser_error(CSER_ERR_INVALID,
                          "dataset '%s' has no default directory: give its directory "
                          "(--data-dir)",
                          name);
    cser_status s = d->channels == 1 ? load_idx_named(d, dir, train, out)
                                     : load_cifar_named(d, dir, train, out);
    if (s != CSER_OK)
        return s;
    memcpy(out->mean, d->mean, sizeof out->mean);
    memcpy(out->std, d->std, sizeof out->std);
    return CSER_OK;
}
