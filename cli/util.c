/* util.c: helpers shared by the subcommands of the `cser` tool. */
#include "cli.h"

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
