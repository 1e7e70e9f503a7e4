/* ckpt_sync.c: checkpoints as collectives. Saving: every worker packs its state
 * (optimizer state, batch-norm buffers, loader position), rank 0 receives each in turn
 * (uncounted broadcasts, one worker's state in flight at a time) and writes the file;
 * its status is broadcast so that all workers agree. Loading: rank 0 reads and verifies
 * the file, then hands every worker its part; all agree on success before going on. */
#include "train_impl.h"

#include "core/clock.h"

#include <stdlib.h>
#include <string.h>

/* Packs this worker's state: u64 optim bytes | optim | u64 nbuf | f32[nbuf] | u64
 * epoch | u64 pos. */
static cser_status pack_state(train_worker *w, unsigned char **out, uint64_t *bytes)
{
    size_t ob = cser_optim_state_size(w->opt), nb = cser_model_nbuffers(w->model);
    size_t total = 8 + ob + 8 + 4 * nb + 16, written = 0;
    unsigned char *p = malloc(total);
    if (!p)
        return cser_error(CSER_ERR_NOMEM, "checkpoint: out of memory (%zu bytes)", total);
    cser_status s = cser_optim_save(w->opt, p + 8, ob, &written);
    if (s != CSER_OK) {
        free(p);
        return s;
    }
    uint64_t v = written, nb64 = nb;
    cser_loader_state ls;
    cser_loader_get_state(w->loader, &ls);
    memcpy(p, &v, 8);
    size_t off = 8 + written;
    memcpy(p + off, &nb64, 8);
    if (nb)
        memcpy(p + off + 8, cser_model_buffers(w->model), 4 * nb);
    off += 8 + 4 * nb;
    memcpy(p + off, &ls.epoch, 8);
    memcpy(p + off + 8, &ls.pos, 8);
    *out = p;
    *bytes = off + 16;
    return CSER_OK;
}

/* Views a packed state as a train_ckpt_worker (pointers into p). */
static cser_status view_state(const unsigned char *p, uint64_t bytes,
                              train_ckpt_worker *o)
{
    uint64_t ob, nb;
    if (bytes < 32)
        goto bad;
    memcpy(&ob, p, 8);
    if (ob > bytes - 32)
        goto bad;
    memcpy(&nb, p + 8 + ob, 8);
    if (nb > (bytes - 32 - ob) / 4 || 8 + ob + 8 + 4 * nb + 16 != bytes)
        goto bad;
    o->optim = (void *)(p + 8);
    o->optim_bytes = ob;
    o->buffers = (float *)(p + 16 + ob); /* may be unaligned: copied with memcpy */
    o->nbuffers = nb;
    memcpy(&o->loader.epoch, p + 16 + ob + 4 * nb, 8);
    memcpy(&o->loader.pos, p + 24 + ob + 4 * nb, 8);
    return CSER_OK;
bad:
    return cser_error(CSER_ERR_INTERNAL,
                      "checkpoint: a worker's packed state is malformed");
}

/* Broadcasts rank 0's status; other ranks get `code` with a short message. */
static cser_status agree(train_worker *w, cser_status mine, const char *what)
{
    int32_t code = (int32_t)mine;
    CSER_CHECK(train_bcast_uncounted(w->comm, &code, sizeof code, 0));
    if (w->rank == 0 || code == CSER_OK)
        return mine;
    return cser_error((cser_status)code, "%s failed on rank 0", what);
}

/* Rank 0 writes the checkpoint from the workers' packed states. */
static cser_status write_all(train_worker *w, unsigned char **blobs, uint64_t *sizes)
{
    int n = w->sh->n;
    train_ckpt_worker *ws = calloc((size_t)n, sizeof *ws);
    if (!ws)
        return cser_error(CSER_ERR_NOMEM, "checkpoint: out of memory");
    cser_status s = CSER_OK;
    for (int r = 0; r < n && s == CSER_OK; r++)
        s = view_state(blobs[r], sizes[r], &ws[r]);
    train_ckpt_head h;
    train_worker_counters(w, &h);
    if (s == CSER_OK)
        s = train_ckpt_write(w->sh->ckpt_path, w->sh->traj, &h, ws, n);
    free(ws);
    return s;
}

/* The counters of this worker as a checkpoint head: what was restored plus what
 * this invocation added. */
void train_worker_counters(const train_worker *w, train_ckpt_head *out)
{
    cser_optim_stats st;
    cser_optim_get_stats(w->opt, &st);
    *out = w->base;
    out->step = (uint64_t)w->step;
    for (int p = 0; p < CSER_PHASE_COUNT; p++) {
        out->bytes_up += st.bytes_sent[p] - w->stats0.bytes_sent[p];
        out->bytes_down += st.bytes_recv[p] - w->stats0.bytes_recv[p];
        out->messages += st.messages[p] - w->stats0.messages[p];
        out->comm_s += st.comm_s[p] - w->stats0.comm_s[p];
        out->modeled_comm_s += st.modeled_s[p] - w->stats0.modeled_s[p];
    }
    out->compute_s += w->compute_s;
    out->wall_s += cser_clock_now() - w->t_start - w->paused_s; /* training only */
    out->loss_sum = w->loss_sum;
    out->loss_count = w->loss_count;
    out->last_train_loss = w->last_train_loss;
}

cser_status train_ckpt_save(train_worker *w)
{
    int n = w->sh->n;
    unsigned char *mine = NULL;
    uint64_t mysize = 0;
    CSER_CHECK(pack_state(w, &mine, &mysize));
    unsigned char **blobs = w->rank == 0 ? calloc((size_t)n, sizeof *blobs) : NULL;
    uint64_t *sizes = w->rank == 0 ? calloc((size_t)n, sizeof *sizes) : NULL;
    cser_status s = (w->rank != 0 || (blobs && sizes))
                        ? CSER_OK
                        : cser_error(CSER_ERR_NOMEM, "checkpoint: out of memory");
    for (int r = 1; r < n; r++) {
        uint64_t size = w->rank == r ? mysize : 0;
        CSER_CHECK(train_bcast_uncounted(w->comm, &size, 8, r));
        unsigned char *buf = w->rank == r ? mine : malloc(size ? size : 1);
        if (!buf)
            return cser_error(CSER_ERR_NOMEM, "checkpoint: out of memory");
        cser_status b = train_bcast_uncounted(w->comm, buf, size, r);
        if (w->rank == 0 && blobs) {
            blobs[r] = buf;
            sizes[r] = size;
        } else if (buf != mine) {
            free(buf);
        }
        CSER_CHECK(b);
    }
    if (w->rank == 0 && s == CSER_OK) {
        blobs[0] = mine;
        sizes[0] = mysize;
        s = write_all(w, blobs, sizes);
        for (int r = 1; r < n; r++)
            free(blobs[r]);
    }
    free(mine);
    free(blobs);
    free(sizes);
    return agree(w, s, "writing the checkpoint");
}

/* Restores this worker from its part of the checkpoint. */
static cser_status restore(train_worker *w, const train_ckpt_worker *cw)
{
    size_t nb = cser_model_nbuffers(w->model);
    if (cw->nbuffers != nb)
        return cser_error(CSER_ERR_MISMATCH,
                          "checkpoint '%s': worker %d has %zu "
                          "batch-norm values, the model has %zu",
                          w->sh->resume_path, w->rank, (size_t)cw->nbuffers, nb);
    CSER_CHECK(cser_optim_load(w->opt, cw->optim, cw->optim_bytes));
    if (nb)
        memcpy(cser_model_buffers(w->model), cw->buffers, 4 * nb);
    CSER_CHECK(cser_loader_set_state(w->loader, &cw->loader));
    cser_model_bind(w->model, cser_optim_model(w->opt));
    return CSER_OK;
}

/* Rank 0 sends worker r its packed part. */
static cser_status send_part(train_worker *w, const train_ckpt_worker *ws, int r,
                             train_ckpt_worker *mine, unsigned char **keep)
{
    uint64_t size = 0;
    unsigned char *buf = NULL;
    if (w->rank == 0) {
        const train_ckpt_worker *c = &ws[r];
        size = 8 + c->optim_bytes + 8 + 4 * c->nbuffers + 16;
        buf = malloc(size);
        if (buf) {
            uint64_t ob = c->optim_bytes, nb = c->nbuffers;
            memcpy(buf, &ob, 8);
            memcpy(buf + 8, c->optim, ob);
            memcpy(buf + 8 + ob, &nb, 8);
            if (nb)
                memcpy(buf + 16 + ob, c->buffers, 4 * nb);
            memcpy(buf + 16 + ob + 4 * nb, &c->loader.epoch, 8);
            memcpy(buf + 24 + ob + 4 * nb, &c->loader.pos, 8);
        } else {
            size = 0;
        }
    }
    CSER_CHECK(train_bcast_uncounted(w->comm, &size, 8, 0));
    if (w->rank != 0)
        buf = malloc(size ? size : 1);
    if (!buf)
        return cser_error(CSER_ERR_NOMEM, "checkpoint: out of memory");
    cser_status s = train_bcast_uncounted(w->comm, buf, size, 0);
    if (s == CSER_OK && w->rank == r && size == 0)
        s = cser_error(CSER_ERR_NOMEM, "checkpoint: rank 0 ran out of memory");
    if (s == CSER_OK && w->rank == r)
        s = view_state(buf, size, mine);
    if (w->rank == r && s == CSER_OK)
        *keep = buf;
    else
        free(buf);
    return s;
}

cser_status train_ckpt_load(train_worker *w)
{
    int n = w->sh->n;
    train_ckpt_head head;
    memset(&head, 0, sizeof head);
    train_ckpt_worker *ws = NULL;
    void *blob = NULL;
    cser_status s = CSER_OK;
    if (w->rank == 0)
        s = train_ckpt_read(w->sh->resume_path, w->sh->traj, n, &head, &ws, &blob);
    CSER_CHECK(agree(w, s, "reading the checkpoint"));
    CSER_CHECK(train_bcast_uncounted(w->comm, &head, sizeof head, 0));
    train_ckpt_worker mine;
    unsigned char *keep = NULL;
    memset(&mine, 0, sizeof mine);
    for (int r = 1; r < n && s == CSER_OK; r++)
        s = send_part(w, ws, r, &mine, &keep);
    if (s == CSER_OK)
        s = restore(w, w->rank == 0 ? &ws[0] : &mine);
    free(keep);
    if (w->rank == 0)
        train_ckpt_release(ws, n, blob);
    float bad = s != CSER_OK ? 1.0f : 0.0f;
    CSER_CHECK(train_allreduce_uncounted(w->comm, &bad, 1, CSER_REDUCE_SUM));
    if (s != CSER_OK)
        return s;
    if (bad > 0)
        return cser_error(CSER_ERR_MISMATCH, "restoring the checkpoint failed on another "
                                             "worker");
    w->step = (long)head.step;
    w->base = head;
    w->loss_sum = head.loss_sum;
    w->loss_count = head.loss_count;
    w->last_train_loss = head.last_train_loss;
    w->last_ckpt = w->step;
    return CSER_OK;
}
