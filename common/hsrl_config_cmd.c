/* hsrl_config_cmd.c: `hsrl config show|check|hash [CONFIG] [--set section.key=value]...`.
 *
 * show prints the effective config (defaults < CONFIG < --set, in order) as INI text that reads
 * back to the same settings, each key with its help as a comment, and ends with the line
 * "# config hash: <16 hex>". check validates and prints one line; hash prints only the hash. */
#include "common/hsrl_config_cmd.h"

#include <stdio.h>
#include <string.h>

#include "common/hsrl_alloc.h"
#include "common/hsrl_settings.h"
#include "common/hsrl_status.h"

static void config_cmd_usage(FILE *f) {
  fprintf(f,
          "usage: hsrl config show  [CONFIG] [--set section.key=value]... [--plain]\n"
          "       hsrl config check [CONFIG] [--set section.key=value]...\n"
          "       hsrl config hash  [CONFIG] [--set section.key=value]...\n"
          "\n"
          "The effective config: every field's default, then the INI file CONFIG, then each --set\n"
          "in order (the last wins). An unknown section or key is an error naming the closest\n"
          "valid one.\n"
          "\n"
          "  show    print the effective config as INI text with each key's help as a comment,\n"
          "          ending with '# config hash: <16 hex digits>'; without CONFIG, the defaults\n"
          "  check   validate; print 'CONFIG: ok (config hash <hex>)'\n"
          "  hash    print the config hash: equal effective configs have equal hashes, however\n"
          "          they are written (order, comments, 1e-3 vs 0.001)\n"
          "\n"
          "options:\n"
          "  --set section.key=value   override one field (repeatable; also --set=section.key=value)\n"
          "  --plain                   show: no help comments\n"
          "  -h, --help                this text\n"
          "\n"
          "Exit status: 0 ok, 2 bad usage or config (the message names file:line and field), 1 internal.\n");
}

static int config_cmd_fail(hsrl_status st) {
  fprintf(stderr, "hsrl config: %s\n", hsrl_err_message());
  return hsrl_status_exit_code(st);
}

int hsrl_config_command(int argc, char **argv) {
  if (argc < 2) {
    config_cmd_usage(stderr);
    return 2;
  }
  const char *sub = argv[1];
  if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
    config_cmd_usage(stdout);
    return 0;
  }
  if (strcmp(sub, "show") && strcmp(sub, "check") && strcmp(sub, "hash")) {
    fprintf(stderr, "hsrl config: '%s' is not a subcommand (show, check, hash); see 'hsrl config --help'\n",
            sub);
    return 2;
  }
  int rc = 0, plain = 0;
  const char *path = NULL;
  int64_t n_sets = 0;
  const char **sets = hsrl_malloc((size_t)argc * sizeof *sets);
  hsrl_settings *s = hsrl_malloc(sizeof *s);
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      config_cmd_usage(stdout);
      goto done;
    } else if (!strcmp(a, "--set")) {
      if (i + 1 >= argc) {
        fprintf(stderr, "hsrl config: --set needs section.key=value\n");
        rc = 2;
        goto done;
      }
      sets[n_sets++] = argv[++i];
    } else if (!strncmp(a, "--set=", 6)) {
      sets[n_sets++] = a + 6;
    } else if (!strcmp(a, "--plain") && !strcmp(sub, "show")) {
      plain = 1;
    } else if (a[0] == '-' && a[1] != '\0') {
      fprintf(stderr, "hsrl config %s: unknown option '%s'; see 'hsrl config --help'\n", sub, a);
      rc = 2;
      goto done;
    } else if (path) {
      fprintf(stderr, "hsrl config %s: one CONFIG only (got '%s' and '%s')\n", sub, path, a);
      rc = 2;
      goto done;
    } else {
      path = a;
    }
  }
  hsrl_status st = hsrl_settings_load(s, path, n_sets, sets);
  if (st != HSRL_OK) {
    rc = config_cmd_fail(st);
    goto done;
  }
  char hex[17];
  hsrl_config_hash_hex(hsrl_settings_hash(s), hex);
  if (!strcmp(sub, "show")) {
    printf("# hsrl effective config: %s%s\n", path ? path : "defaults",
           n_sets ? " with --set overrides" : "");
    if (!plain) printf("# Each key's help is above it; '# default:' marks values that differ.\n");
    printf("\n");
    st = hsrl_config_fprint(hsrl_settings_schema(), s, plain ? 0 : HSRL_CONFIG_WRITE_HELP, stdout);
    if (st != HSRL_OK) {
      rc = config_cmd_fail(st);
      goto done;
    }
    printf("\n# config hash: %s\n", hex);
  } else if (!strcmp(sub, "check")) {
    printf("%s: ok (config hash %s)\n", path ? path : "defaults", hex);
  } else {
    printf("%s\n", hex);
  }
  if (fflush(stdout) != 0 || ferror(stdout)) {
    fprintf(stderr, "hsrl config: cannot write to stdout\n");
    rc = 1;
  }
done:
  hsrl_free(sets);
  hsrl_free(s);
  return rc;
}
