/* models.c: the named models (mlp, cnn, resnet8, resnet20, cnn-wide) built from layers.
 *
 * mlp:      flatten - fc1 256 - relu - fc2 nclasses.
 * cnn:      conv1 32 3x3 (no padding) - relu - maxpool 2 - conv2 64 3x3 - relu -
 *           maxpool 2 - flatten - fc1 128 - relu - fc2 nclasses (PyTorch's
 *           Conv2d(c, 32, 3) etc.; 1x28x28 -> 1600 features, 3x32x32 -> 2304).
 * cnn-wide: the cnn's two convolutions, then wide dense layers: flatten - fc1 4096 -
 *           relu - fc2 1024 - relu - fc3 nclasses (1x28x28: d = 10,782,090, 99.8% of
 *           it in fc1 and fc2). A workload in the paper's regime of bytes per step
 *           (10-25M parameters) whose compute per image stays small: on 8 workers a
 *           dense allreduce of its d floats costs more than a step's compute on a
 *           1 Gbit/s network (docs/nn.md).
 * resnet8/resnet20: CIFAR ResNet (He et al. 2016, section 4.2): conv1 16 3x3 pad 1 -
 *           bn1 - relu, three stages of 16/32/64 channels with 1 (resnet8) or 3
 *           (resnet20) basic blocks (conv3x3-bn-relu-conv3x3-bn, + shortcut, relu);
 *           the first block of stages 2 and 3 has stride 2 and a 1x1 conv + bn
 *           projection shortcut ("option B", named downsample.0/1 as in torchvision);
 *           global average pool - fc nclasses. Convolutions have no bias.
 */
#include "nn/nn_impl.h"

#include <stdio.h>
#include <string.h>

static const char *const model_names[] = {"mlp", "cnn", "resnet8", "resnet20", "cnn-wide",
                                           NULL};

const char *const *cser_model_names(void) { return model_names; }

cser_model_config cser_model_default_config(void)
{
    cser_model_config c = {"cnn", 1, 28, 28, 10, 32, 1};
    return c;
}

static cser_status build_mlp(cser_model_t *m)
{
    int x;
    CSER_CHECK(nn_flatten(m, "flatten", 0, &x));
    CSER_CHECK(nn_dense(m, "fc1", x, 256, 1, &x));
    return nn_dense(m, "fc2", x, m->cfg.nclasses, 0, &x);
}

/* The convolutions of cnn and cnn-wide: conv 3x3 32, pool, conv 3x3 64, pool, flatten. */
static cser_status cnn_features(cser_model_t *m, int *x)
{
    CSER_CHECK(nn_conv(m, "conv1", 0, 32, 3, 1, 0, 1, 1, x));
    CSER_CHECK(nn_maxpool(m, "pool1", *x, 2, 2, x));
    CSER_CHECK(nn_conv(m, "conv2", *x, 64, 3, 1, 0, 1, 1, x));
    CSER_CHECK(nn_maxpool(m, "pool2", *x, 2, 2, x));
    return nn_flatten(m, "flatten", *x, x);
}

static cser_status build_cnn(cser_model_t *m)
{
    int x;
    CSER_CHECK(cnn_features(m, &x));
    CSER_CHECK(nn_dense(m, "fc1", x, 128, 1, &x));
    return nn_dense(m, "fc2", x, m->cfg.nclasses, 0, &x);
}

static cser_status build_cnn_wide(cser_model_t *m)
{
    int x;
    CSER_CHECK(cnn_features(m, &x));
    CSER_CHECK(nn_dense(m, "fc1", x, 4096, 1, &x));
    CSER_CHECK(nn_dense(m, "fc2", x, 1024, 1, &x));
    return nn_dense(m, "fc3", x, m->cfg.nclasses, 0, &x);
}

/* One basic block "layer<s>.<b>" from activation in; output in *out. */
static cser_status basic_block(cser_model_t *m, const char *name, int in, int ch,
                               int stride, int *out)
{
    char n[2 * CSER_NAME_MAX];
    int x, sc = in;
    snprintf(n, sizeof n, "%s.conv1", name);
    CSER_CHECK(nn_conv(m, n, in, ch, 3, stride, 1, 0, 0, &x));
    snprintf(n, sizeof n, "%s.bn1", name);
    CSER_CHECK(nn_batchnorm(m, n, x, 1, &x));
    snprintf(n, sizeof n, "%s.conv2", name);
    CSER_CHECK(nn_conv(m, n, x, ch, 3, 1, 1, 0, 0, &x));
    snprintf(n, sizeof n, "%s.bn2", name);
    CSER_CHECK(nn_batchnorm(m, n, x, 0, &x));
    if (stride != 1 || m->acts[in].c != ch) {
        snprintf(n, sizeof n, "%s.downsample.0", name);
        CSER_CHECK(nn_conv(m, n, in, ch, 1, stride, 0, 0, 0, &sc));
        snprintf(n, sizeof n, "%s.downsample.1", name);
        CSER_CHECK(nn_batchnorm(m, n, sc, 0, &sc));
    }
    snprintf(n, sizeof n, "%s.add", name);
    return nn_add(m, n, x, sc, 1, out);
}

static cser_status build_resnet(cser_model_t *m, int blocks)
{
    int x;
    CSER_CHECK(nn_conv(m, "conv1", 0, 16, 3, 1, 1, 0, 0, &x));
    CSER_CHECK(nn_batchnorm(m, "bn1", x, 1, &x));
    for (int s = 0; s < 3; s++)
        for (int b = 0; b < blocks; b++) {
            char name[CSER_NAME_MAX];
            snprintf(name, sizeof name, "layer%d.%d", s + 1, b);
            CSER_CHECK(basic_block(m, name, x, 16 << s, s > 0 && b == 0 ? 2 : 1, &x));
        }
    CSER_CHECK(nn_gap(m, "avgpool", x, &x));
    return nn_dense(m, "fc", x, m->cfg.nclasses, 0, &x);
}

cser_status nn_build_named(cser_model_t *m)
{
    const char *n = m->name;
    if (!strcmp(n, "mlp"))
        return build_mlp(m);
    if (!strcmp(n, "cnn"))
        return build_cnn(m);
    if (!strcmp(n, "resnet8"))
        return build_resnet(m, 1);
    if (!strcmp(n, "resnet20"))
        return build_resnet(m, 3);
    if (!strcmp(n, "cnn-wide"))
        return build_cnn_wide(m);
    return cser_error(CSER_ERR_INVALID,
                      "model: unknown model name '%s' (expected mlp, cnn, resnet8, "
                      "resnet20 or cnn-wide)",
                      n);
}
