/* sim_data_cmd.h: the `hsrl data` command (architecture.md "Commands"; datasets.md).
 *
 *   hsrl data prepare --format ml1m|ml100k|rl4rs --input DIR --out NAME.data.h5 [--quiet]
 *   hsrl data synth ...            (forwarded to sim_synth_command, sim_synth.h)
 *   hsrl data info FILE            (the summary of a prepared-data file)
 *   hsrl data --help, hsrl data prepare --help
 * prepare reads DIR with the reader of the format, shows progress on stderr, writes the
 * prepared-data file atomically (nothing is left under --out on failure) and prints a summary
 * (users, items, records, positive rates, split sizes, rates) on stdout.
 * Exit status: 0 ok, 2 usage or input error (the message, prefixed "hsrl data prepare: ", names
 * the file, line and field), 1 internal or I/O failure. */
#ifndef SIM_DATA_CMD_H
#define SIM_DATA_CMD_H

/* argv[0] is "data". Returns an exit status. */
int sim_data_command(int argc, char **argv);

#endif
