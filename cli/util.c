/* util.c: helpers shared by the subcommands of the `cser` tool. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_exit_status(cser_status s)
{
    switch (s) {
    case CSER_OK: return CLI_EXIT_OK;
    case CSER_ERR_INVALID:
    case CSER_ERR_FORMAT:
    case CSER_ERR_MISMATCH:
    case CSER_ERR_IO: return CLI_EXIT_USAGE;
    case CSER_ERR_DIVERGED: return CLI_EXIT_DIVERGED;
    default: return CLI_EXIT_FAIL;
    }
}

void cli_print_where(void)
{
    const char *t = getenv("CSER_TRACE");
    if (t && *t && strcmp(t, "0") != 0 && cser_error_where()[0])
        fprintf(stderr, "  at %s\n", cser_error_where());
}
