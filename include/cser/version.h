/* version.h: the library version (core: it depends on nothing else). */
#ifndef CSER_VERSION_H
#define CSER_VERSION_H

#ifdef __cplusplus
extern "C" {
#endif

/* Library version, "MAJOR.MINOR.PATCH". */
const char *cser_version(void);

#ifdef __cplusplus
}
#endif
#endif
