/* cmd_train.c: `cser train`: parses the options (the trainer's one option table) into
 * a cser_train_config, runs cser_train_run, and prints the final summary: test accuracy
 * of the evaluated model, bytes per worker each way, the actual R_C next to the
 * nominal one, measured time and the time modeled on the chosen network. */
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* The command line, for config.json. */
static void join_args(int argc, char **argv, char *buf, size_t n)
{
    size_t used = (size_t)snprintf(buf, n, "cser");
    for (int i = 0; i < argc && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, " %s", argv[i]);
}

/* "10G" and "50us" forms of the modeled network. */
static void format_network(double bps, double lat, char *bw, size_t nb, char *lt,
                           size_t nl)
{
    const char *suf = "";
    if (bps >= 1e9) {
        bps /= 1e9;
        suf = "G";
    } else if (bps >= 1e6) {
        bps /= 1e6;
        suf = "M";
    }
    snprintf(bw, nb, "%g%s", bps, suf);
    if (lat < 1e-3)
        snprintf(lt, nl, "%gus", lat * 1e6);
    else
        snprintf(lt, nl, "%gms", lat * 1e3);
}

static void print_summary(const cser_train_config *cfg, const cser_train_result *r)
{
    char bw[32], lat[32];
    format_network(cfg->net_bandwidth, cfg->net_latency, bw, sizeof bw, lat, sizeof lat);
    printf("\ncser train: %s after %ld steps (%.2f epochs), %d workers, d = %zu\n",
           r->diverged  ? "DIVERGED"
           : r->stopped ? "stopped (--stop-after)"
                        : "done",
           r->steps, r->epochs, r->workers, r->d);
    printf("  method          %s\n", r->method);
    if (r->diverged)
        printf("  test accuracy   n/a: the run diverged (see metrics: row 'diverged')\n");
    else
        printf("  test accuracy   %.2f%%  (test loss %.4f; evaluated model: %s)\n",
               100 * r->test_acc, r->test_loss, r->evaluated);
    printf("  train loss      %.4f  (mean over workers, last evaluation interval)\n",
           r->train_loss);
    printf("  bytes/worker    %.3f MB up, %.3f MB down, %llu messages\n",
           r->bytes_up / 1e6, r->bytes_down / 1e6, (unsigned long long)r->messages);
    printf("  peak/step       %.3f MB up  (the most worker 0 sent in one step)\n",
           r->peak_bytes_step / 1e6);
    if (r->actual_rc > 0)
        printf(
            "  R_C             actual %.1f, nominal %.1f  (SGD's dense allreduce bytes "
            "over bytes moved per step)\n",
            r->actual_rc, r->nominal_rc);
    else
        printf("  R_C             actual n/a (nothing moved), nominal %.1f\n",
               r->nominal_rc);
    printf("  time            measured %.1f s (compute %.1f s, in collectives %.1f s)\n",
           r->wall_s, r->compute_s, r->comm_s);
    if (cfg->measure_wait)
        printf("  collectives     transfer %.3f s (modeled %.3f s; update %.3f/%.3f, reset "
               "%.3f/%.3f, average %.3f/%.3f), waiting for peers %.3f s (this run)\n",
               r->phase_comm_s[0] + r->phase_comm_s[1] + r->phase_comm_s[2],
               r->phase_modeled_s[0] + r->phase_modeled_s[1] + r->phase_modeled_s[2],
               r->phase_comm_s[0], r->phase_modeled_s[0], r->phase_comm_s[1],
               r->phase_modeled_s[1], r->phase_comm_s[2], r->phase_modeled_s[2], r->wait_s);
    printf("  modeled         %.1f s on %sbit/s, %s per message (compute %.1f s + "
           "communication %.2f s)\n",
           r->compute_s + r->modeled_comm_s, bw, lat, r->compute_s, r->modeled_comm_s);
    if (!r->diverged)
        printf("  model hash      %016llx (every worker's final model, in rank order)\n",
               (unsigned long long)r->model_hash);
    if (cfg->out_dir[0] || cfg->resume[0])
        printf("  outputs         %s/\n", cfg->out_dir[0] ? cfg->out_dir : cfg->resume);
}

int cli_train(int argc, char **argv)
{
    static cser_train_config cfg;
    cfg = cser_train_default_config();
    join_args(argc, argv, cfg.command_line, sizeof cfg.command_line);
    int help = 0;
    cser_status s = cser_train_parse_args(&cfg, CSER_CMD_TRAIN, argc, argv, &help);
    if (help) {
        cser_train_print_help(stdout, CSER_CMD_TRAIN);
        return CLI_EXIT_OK;
    }
    if (s != CSER_OK) {
        fprintf(stderr, "cser train: %s\n", cser_last_error());
        cli_print_where();
        return CLI_EXIT_USAGE;
    }
    static cser_train_result r;
    s = cser_train_run(&cfg, stdout, &r);
    const char *out = cfg.out_dir[0] ? cfg.out_dir : cfg.resume;
    if (r.rank == 0 && out[0] && (s == CSER_OK || s == CSER_ERR_DIVERGED))
        cli_plot_curves(out, cfg.quiet ? NULL : stdout);
    if (r.rank == 0 && (s == CSER_OK || s == CSER_ERR_DIVERGED) && r.steps > 0)
        print_summary(&cfg, &r);
    fflush(stdout);
    if (s != CSER_OK && (r.rank == 0 || s == CSER_ERR_IO || s == CSER_ERR_NOMEM))
    {
        fprintf(stderr, "cser train: %s%s\n",
                s == CSER_ERR_DIVERGED ? "" : "error: ", cser_last_error());
        cli_print_where();
    }
    return cli_exit_status(s);
}
