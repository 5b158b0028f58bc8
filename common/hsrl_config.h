/* hsrl_config.h: a generic INI config engine: text files (read with inih) into typed C structs.
 *
 * It knows nothing of RL: a caller describes its struct with a table of fields (section, key,
 * type, offset, default text, allowed values or range, help) and the engine fills defaults,
 * loads files, applies "section.key=value" overrides, writes the effective config back as INI
 * text and hashes it. hsrl_settings.{h,c} holds the project's table (architecture.md, "Config").
 *
 * File syntax (what inih accepts, made stricter):
 *   [section]            key = value            ; comment       # comment
 *   - Comment lines start with ';' or '#'. An inline comment is ';' or '#' preceded by
 *     whitespace ("batch = 64  # per update"), so a value cannot contain " ;" or " #".
 *   - Leading whitespace is ignored; there are no multi-line values (inih's continuation lines
 *     are turned off, so an indented key is just a key).
 *   - Keys and sections are case-sensitive. A key given twice: the later one wins (also across
 *     repeated [section] blocks and files). A line may be at most HSRL_CONFIG_LINE_MAX chars.
 *   - bool: true/false, yes/no, on/off, 1/0 (any case). int: decimal int64. double: finite
 *     strtod syntax (1e-3, 0.5). enum: one of the listed words. string: the rest of the line,
 *     trimmed; at most (capacity - 1) bytes, no control characters.
 * Precedence: defaults < file < --set overrides, in command-line order (the last wins).
 *
 * Errors (never an abort: bad config is a bad input) return HSRL_E_USAGE with a message:
 *   FILE:LINE: unknown section [foo]; did you mean [bar]?
 *   FILE:LINE: field 'sim.lr': unknown key 'lr' in [sim]; did you mean 'sim.learning_rate'?
 *   FILE:LINE: field 'train.batch': expected an integer, got 'abc'
 *   --set sim.lr=3: field 'sim.lr': ...            (overrides name the argument instead)
 * The suggestion is the valid name with the smallest edit distance, across all sections (a key
 * placed in the wrong section is suggested in its right one). An error in the table itself (a
 * default that does not parse) is a bug: HSRL_CHECK aborts.
 *
 * The config hash: FNV-1a 64 of the canonical text (hsrl_config_write without comments: every
 * field in table order, values in canonical form), so equal effective configs hash equal however
 * they were written (order, comments, whitespace, "1e-3" vs "0.001", "yes" vs "true"). Files
 * stamp it as 16 lower-case hex digits. Changing the table (adding a field) changes every hash. */
#ifndef HSRL_CONFIG_H
#define HSRL_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/hsrl_status.h"

#define HSRL_CONFIG_LINE_MAX 197 /* longest accepted line of a config file (inih's buffer) */

typedef enum hsrl_config_type {
  HSRL_CONFIG_INT,    /* int64_t */
  HSRL_CONFIG_DOUBLE, /* double */
  HSRL_CONFIG_BOOL,   /* bool */
  HSRL_CONFIG_STRING, /* char[size] */
  HSRL_CONFIG_ENUM,   /* char[size] holding one of the words in `allowed` */
} hsrl_config_type;

/* One field of the caller's struct. */
typedef struct hsrl_config_field {
  const char *section;  /* "sim" */
  const char *key;      /* "lr" */
  hsrl_config_type type;
  size_t offset;        /* offsetof(struct, member) */
  size_t size;          /* sizeof(member): the capacity of a string or enum, NUL included */
  const char *def;      /* default value as config text */
  const char *allowed;  /* ENUM: "a|b|c"; INT/DOUBLE: a range "[0,1)", "(0,inf)", "[1,4096]" or
                           NULL for none (bounds inclusive with [ ], exclusive with ( ) */
  const char *help;     /* one short line */
} hsrl_config_field;

typedef struct hsrl_config_schema {
  const hsrl_config_field *fields;
  int64_t n_fields;
} hsrl_config_schema;

/* Every field of obj set to its default (the rest of obj zeroed). */
void hsrl_config_defaults(const hsrl_config_schema *schema, void *obj);

/* Applies the file's values on top of obj's current values. A missing or unreadable file is an
 * error naming the path. On error obj may hold some of the file's values. */
hsrl_status hsrl_config_load_file(const hsrl_config_schema *schema, void *obj, const char *path);

/* The same for config text held in memory (e.g. read back from a checkpoint); `name` stands
 * for the file name in messages. */
hsrl_status hsrl_config_load_string(const hsrl_config_schema *schema, void *obj, const char *text,
                                    const char *name);

/* Applies one override "section.key=value" (whitespace around key and value is trimmed). */
hsrl_status hsrl_config_set(const hsrl_config_schema *schema, void *obj, const char *assignment);

/* Sets one field from text; file/line/field name the source in error messages as hsrl_err does. */
hsrl_status hsrl_config_field_parse(const hsrl_config_field *f, void *obj, const char *value,
                                    const char *file, long line);

/* The field named section.key, or NULL. */
const hsrl_config_field *hsrl_config_field_find(const hsrl_config_schema *schema,
                                                const char *section, const char *key);

/* The canonical text of one field's value in obj ("0.001", "true", "ml1m"); returns the length
 * it needs, like snprintf (the value is complete when the result < cap). */
size_t hsrl_config_field_format(const hsrl_config_field *f, const void *obj, char *buf, size_t cap);

/* Writes the effective config as INI text: every field, grouped by section in table order,
 * "key = value". With HSRL_CONFIG_WRITE_HELP each key gets its help (plus allowed values or
 * range) as a "# " line above it, and a "# default: X" line when it differs from the default.
 * Size then place: returns the length of the whole text; writes at most cap - 1 bytes and a NUL
 * (buf may be NULL when cap is 0). Parsing the text back gives the same struct and hash. */
enum { HSRL_CONFIG_WRITE_HELP = 1 };
size_t hsrl_config_write(const hsrl_config_schema *schema, const void *obj, int flags, char *buf,
                         size_t cap);

/* The same text to a stream; HSRL_E_IO if the stream reports an error. */
hsrl_status hsrl_config_fprint(const hsrl_config_schema *schema, const void *obj, int flags,
                               FILE *out);

/* FNV-1a 64 of the canonical text (hsrl_config_write with flags 0). Allocates nothing. */
uint64_t hsrl_config_hash(const hsrl_config_schema *schema, const void *obj);

/* 16 lower-case hex digits and a NUL. */
void hsrl_config_hash_hex(uint64_t hash, char out[17]);

/* Levenshtein distance (exported for the tests and for other "did you mean" messages). */
int64_t hsrl_config_edit_distance(const char *a, const char *b);

#endif
