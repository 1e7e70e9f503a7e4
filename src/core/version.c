/* version.c: the library version string. */
#include "cser/version.h"

const char *cser_version(void) { return CSER_VERSION; }
