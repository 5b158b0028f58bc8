/* hsrl_config_cmd.h: the `hsrl config` command (show, check, hash of the effective config;
 * architecture.md "Config"). Called from hsrl.c's command table. */
#ifndef HSRL_CONFIG_CMD_H
#define HSRL_CONFIG_CMD_H

/* argv[0] is "config". Returns the exit status: 0 success, 2 usage or config error (message on
 * stderr naming the file, line and field, or the --set argument), 1 internal failure (e.g. a
 * failed write to stdout). */
int hsrl_config_command(int argc, char **argv);

#endif
