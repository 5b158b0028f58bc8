/* sim_reader_movielens.h: MovieLens (ML-1M and ML-100K layouts) -> records (datasets.md
 * "MovieLens"; method.md §2).
 *
 * One reader for both layouts:
 *   ML-1M   (`::`, Latin-1): movies.dat, users.dat, ratings.dat
 *   ML-100K (tab / pipe):    u.item, u.user, u.occupation, u.data
 * The preprocessing is datasets.md's, exactly:
 *  - items: the movies that occur in the ratings, renumbered 1..N in ascending raw-id order;
 *    features = genres multi-hot (18 for ML-1M in datasets.md's order; ML-100K's 19 flags with
 *    "unknown") then a one-hot release-year bucket (<=1939, 1940-49, ..., 1990-94, 1995-97,
 *    1998-2000); ML-1M's year is the "(YYYY)" ending the title, ML-100K's comes from the release
 *    date (all-zero buckets when the date is empty). D = 27 (ML-1M) or 28 (ML-100K).
 *  - users: those with at least one record (>= K ratings), renumbered 1..U in ascending raw-id
 *    order; features = one-hot gender (F, M), age group (7), occupation (21 for ML-1M; ML-100K:
 *    u.occupation's words in file order). P = 30 for ML-1M.
 *  - records: each user's ratings sorted by (timestamp, movie id) (then file order), cut into
 *    slates of K = 10 from the first; the remainder (< K) is dropped and counted. Label =
 *    rating > 3. History = the positively labelled items of earlier slates in time order, the last
 *    H = 50, left-padded with 0. Time = timestamp of the slate's first rating. Records are ordered
 *    by user id, then time.
 *  - split per user: the first floor(0.8 n) of a user's n records train, the rest test.
 * Bounds: raw ids 1..2^31-1, ratings 1..5, lines up to SIM_READER_MOVIELENS_MAX_LINE bytes.
 * Malformed input (a short line, a non-number, an unknown movie or user id, a wrong field count,
 * an empty or missing file, an over-long line, a duplicate id) is HSRL_E_INPUT naming the file,
 * line and field. Memory: about 32 bytes per rating plus the dataset itself. */
#ifndef SIM_READER_MOVIELENS_H
#define SIM_READER_MOVIELENS_H

#include "common/hsrl_status.h"
#include "sim/sim_data.h"

#define SIM_READER_MOVIELENS_SLATE 10
#define SIM_READER_MOVIELENS_HISTORY 50
#define SIM_READER_MOVIELENS_MAX_LINE ((int64_t)1 << 20) /* 1 MiB; real lines are < 300 bytes */

typedef enum sim_reader_movielens_layout {
  SIM_READER_MOVIELENS_1M = 0,   /* movies.dat, users.dat, ratings.dat */
  SIM_READER_MOVIELENS_100K = 1, /* u.item, u.user, u.occupation, u.data */
} sim_reader_movielens_layout;

/* Reads the directory dir into d (allocated here; free with sim_dataset_free) and fills prov
 * (the source files with their byte sizes and checksums, lines read, ratings dropped, the
 * protocol). Shows progress on stderr while reading the ratings. On failure d is left empty. */
hsrl_status sim_reader_movielens_read(sim_dataset *d, sim_provenance *prov, const char *dir,
                                      sim_reader_movielens_layout layout);

#endif
