/* sim_reader_rl4rs.h: RL4RS (dataset B slate files + item_info.csv) -> records (datasets.md
 * "RL4RS"; method.md §2).
 *
 * Files in the input directory:
 *   item_info.csv      space-separated, header `item_id item_vec price location special_item`;
 *                      item_vec = D comma-separated floats (D from the first row, 40 in RL4RS);
 *                      ids must be 1, 2, 3, ... in file order (283 items in RL4RS)
 *   rl4rs_b_train.csv  `@`-separated, header row, 9 columns: timestamp, session_id,
 *   rl4rs_b_test.csv   sequence_id, exposed_items (K ids), user_feedback (K 0/1),
 *                      user_seqfeature (history ids; "0" or empty = no history), user_protrait
 *                      (P numbers), item_feature (ignored: item features come from item_info.csv),
 *                      behavior_policy_id (ignored)
 * Mapping: items 1..N = item_info rows, features = item_vec. K = the length of the first
 * exposed_items (9 in RL4RS), every row must match it. Every record gets its own user row:
 * features = ln(1 + x) of its portrait element-wise (P from the first row; x must be > -1),
 * raw id = its session_id (not unique). History = the last H = 50 ids of user_seqfeature,
 * left-padded with 0. Time = the timestamp column. The train file's records come first and form
 * the train split; the test file's records form the test split. Ids in slates and histories must
 * be item ids (1..N), else an input error naming file, line and field.
 * Streaming: the slate files are read line by line (the full files are hundreds of MB); memory is
 * the dataset itself (about (4H + 5K + 4P + 16) bytes per record) plus growth slack. Lines up to
 * SIM_READER_RL4RS_MAX_LINE bytes (real lines are a few KB: item_feature's 9 x 40 numbers). */
#ifndef SIM_READER_RL4RS_H
#define SIM_READER_RL4RS_H

#include "common/hsrl_status.h"
#include "sim/sim_data.h"

#define SIM_READER_RL4RS_HISTORY 50
#define SIM_READER_RL4RS_MAX_LINE ((int64_t)16 << 20) /* 16 MiB */
#define SIM_READER_RL4RS_MAX_SLATE 1024
#define SIM_READER_RL4RS_MAX_WIDTH 65536 /* bound on D and P */

/* Reads dir/item_info.csv, dir/rl4rs_b_train.csv and dir/rl4rs_b_test.csv into d (allocated
 * here; free with sim_dataset_free) and fills prov. Shows progress on stderr. On failure d is
 * left empty. */
hsrl_status sim_reader_rl4rs_read(sim_dataset *d, sim_provenance *prov, const char *dir);

#endif
