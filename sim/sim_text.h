/* sim_text.h: a streaming line reader for the dataset readers (datasets.md; method.md §2).
 *
 * Reads a text file of any size in fixed chunks, hands out one line at a time and never holds
 * more than the longest line seen (plus one chunk). Conventions:
 *  - bytes, not characters: nothing assumes UTF-8 (the MovieLens files are Latin-1);
 *  - a line ends at '\n'; a '\r' before it is dropped (files edited on Windows read the same);
 *    the last line needs no '\n';
 *  - lines are numbered from 1; every error names the file, the line and (when known) the field,
 *    through hsrl_err(), and is HSRL_E_INPUT (bad data) or HSRL_E_IO (the OS failed);
 *  - a line longer than the reader's bound (max_line bytes, chosen per format) is an input error
 *    naming the line and the field in which the bound was crossed, never a silent truncation;
 *    a NUL byte inside a line is an input error too (a binary or damaged file);
 *  - while streaming, a 64-bit FNV-1a checksum of every byte read and the byte count are kept,
 *    for the provenance attributes of the prepared-data file.
 * Fields: sim_text_set_fields() gives the separator and the names of a line's fields (the names
 * are the ones datasets.md uses, so a message reads "ratings.dat:17: field 'Rating': ...").
 * The parse helpers below check a whole field (or every item of a list inside a field) and name
 * the file, the current line and the field when it is malformed. */
#ifndef SIM_TEXT_H
#define SIM_TEXT_H

#include <stddef.h>
#include <stdint.h>

#include "common/hsrl_status.h"

#define SIM_TEXT_MAX_FIELDS 64

typedef struct sim_text sim_text;

/* Opens path for streaming; a missing or unreadable file is HSRL_E_INPUT naming it. */
hsrl_status sim_text_open(sim_text **out, const char *path, int64_t max_line);
void sim_text_close(sim_text *t); /* NULL ok */

/* The separator (one or more bytes, e.g. "::", "\t", "@") and the n_fields names of a line's
 * fields, used by sim_text_split() and in messages. names must outlive t. */
void sim_text_set_fields(sim_text *t, const char *sep, const char *const *names, int n_fields);

/* The next line, NUL-terminated, without its '\n' / '\r\n'; valid until the next call. At the end
 * of the file: HSRL_OK with *line == NULL (and the checksum then covers the whole file). */
hsrl_status sim_text_next(sim_text *t, char **line, int64_t *len);

/* Splits line (the one just returned) in place at the separator into exactly the n_fields of
 * sim_text_set_fields(); fields[i] point into line. A different count is HSRL_E_INPUT naming the
 * first missing field, or the last expected one when there is extra text after it. */
hsrl_status sim_text_split(sim_text *t, char *line, char **fields);

const char *sim_text_path(const sim_text *t);
int64_t sim_text_line(const sim_text *t);       /* number of the line last returned (0 before) */
int64_t sim_text_bytes_read(const sim_text *t); /* bytes consumed so far */
int64_t sim_text_file_size(const sim_text *t);  /* size at open (0 when not a regular file) */
uint64_t sim_text_checksum(const sim_text *t);  /* FNV-1a 64 of the bytes read so far */
/* The checksum as 16 lower-case hex digits into out. */
void sim_text_checksum_hex(uint64_t checksum, char out[24]);

/* The last component of path, without trailing '/' ("data/ml-1m/" -> "ml-1m"), into out. */
void sim_text_basename(char *out, size_t cap, const char *path);

/* FNV-1a 64 of n bytes continuing from h (start with SIM_TEXT_FNV_OFFSET). */
#define SIM_TEXT_FNV_OFFSET 0xcbf29ce484222325ull
uint64_t sim_text_fnv1a(uint64_t h, const void *bytes, int64_t n);

/* Parses the whole of s as a decimal integer (optional '-', digits only, no spaces) in [lo, hi]. */
hsrl_status sim_text_parse_i64(const sim_text *t, const char *field, const char *s, int64_t lo,
                               int64_t hi, int64_t *out);
/* Parses the whole of s as a finite decimal number (strtod syntax, no spaces, no nan/inf). */
hsrl_status sim_text_parse_f64(const sim_text *t, const char *field, const char *s, double *out);

/* Number of items of a list separated by sep (0 for an empty string). */
int64_t sim_text_count_items(const char *s, char sep);

/* Parses the list s of integers in [lo, hi] separated by sep (an empty s is an empty list).
 * Every item is checked; the LAST min(n, cap) items are stored in order in out; *n_items gets n.
 * A bad item is HSRL_E_INPUT naming the field and the item's position. */
hsrl_status sim_text_parse_i32_list(const sim_text *t, const char *field, const char *s, char sep,
                                    int64_t lo, int64_t hi, int32_t *out, int64_t cap,
                                    int64_t *n_items);
/* Parses exactly n finite numbers separated by sep into out (float32); another count is
 * HSRL_E_INPUT saying how many were found. */
hsrl_status sim_text_parse_f32_list(const sim_text *t, const char *field, const char *s, char sep,
                                    float *out, int64_t n);
/* The same into doubles (the values exactly as strtod reads them). */
hsrl_status sim_text_parse_f64_list(const sim_text *t, const char *field, const char *s, char sep,
                                    double *out, int64_t n);

#endif
