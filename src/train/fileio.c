/* fileio.c: the small file helpers the trainer shares: whole-file writes that are
 * atomic (temporary file, fsync, rename, fsync of the directory), whole-file reads,
 * and mkdir -p. Errors name the file and the system's reason. */
#include "train_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

cser_status train_io_error(const char *what, const char *path)
{
    return cser_error(CSER_ERR_IO, "%s '%s': %s", what, path, strerror(errno));
}

/* fsync of the directory holding path, so that the rename itself is durable (best
 * effort: some file systems refuse to fsync directories). */
static void sync_parent_dir(const char *path)
{
    char dir[CSER_TRAIN_PATH + 64];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

cser_status train_write_atomic_hook(const char *path, const void *data, size_t bytes,
                                   void (*before_rename)(const char *path))
{
    char tmp[CSER_TRAIN_PATH + 64];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return train_io_error("cannot create", tmp);
    const char *p = data;
    size_t left = bytes;
    while (left > 0) {
        ssize_t k = write(fd, p, left);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            cser_status s = train_io_error("cannot write", tmp);
            close(fd);
            unlink(tmp);
            return s;
        }
        p += k;
        left -= (size_t)k;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        cser_status s = train_io_error("cannot flush", tmp);
        unlink(tmp);
        return s;
    }
    if (before_rename)
        before_rename(path);
    if (rename(tmp, path) != 0) {
        cser_status s = train_io_error("cannot rename to", path);
        unlink(tmp);
        return s;
    }
    sync_parent_dir(path);
    return CSER_OK;
}

cser_status train_write_atomic(const char *path, const void *data, size_t bytes)
{
    return train_write_atomic_hook(path, data, bytes, NULL);
}

cser_status train_read_file(const char *path, char **data, size_t *bytes)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return train_io_error("cannot open", path);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (n < cap)
            break;
        char *nb = realloc(buf, 2 * cap + 1);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    int err = ferror(f);
    fclose(f);
    if (!buf)
        return cser_error(CSER_ERR_NOMEM, "reading '%s': out of memory", path);
    if (err) {
        free(buf);
        return cser_error(CSER_ERR_IO, "cannot read '%s'", path);
    }
    buf[n] = '\0';
    *data = buf;
    *bytes = n;
    return CSER_OK;
}

cser_status train_mkdir_p(const char *path)
{
    char tmp[CSER_TRAIN_PATH];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        return cser_error(CSER_ERR_INVALID, "directory name too long: '%s'", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return train_io_error("cannot create directory", tmp);
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return train_io_error("cannot create directory", tmp);
    struct stat st;
    if (stat(tmp, &st) != 0 || !S_ISDIR(st.st_mode))
        return cser_error(CSER_ERR_IO, "'%s' exists and is not a directory", path);
    return CSER_OK;
}

