/* sim_sid_churn.h: catalog churn with frozen codebooks, and `hsrl sid assign` (method.md §5: "New
 * items get SIDs from the frozen codebooks; removed items are deleted from the index; the policy's
 * output space never changes").
 *
 * New items are encoded with sim_sid_codebook_encode (greedy residual, ties -> lowest token) and
 * become live; deleted items stop being live (their rows and tokens stay, so ids keep their
 * meaning, and an id can come back later with a new vector). The codebooks, the vocabulary and the
 * config hash are never changed: a policy trained against the file keeps its exact output size
 * and meaning. An index and trie (sim_sid_index.h, sim_sid_trie.h) that mirror the file are
 * updated in the same call.
 *
 *   hsrl sid assign --sid F.sid.h5 (--vectors NEW.h5 | --data F [--sim F]) [--add IDS]
 *                   [--delete IDS] --out F2.sid.h5 [--quiet]
 * IDS: ids and ranges separated by commas ("7,12,3601-3800"), "@FILE" (the same, in a file, also
 * separated by white space), or for --add "new" (every id of the vector source above the file's
 * N). Vector sources: NEW.h5 holds /items/vectors float32 (rows, dim), one row per item id (the
 * layout of a .sid.h5 built with stored vectors); or the prepared-data file, whose raw item
 * features are used when the SID file was built from features, or the simulator's learned item
 * vectors (--sim) when it was built from those. The output keeps the input's codebooks byte for
 * byte, and its stored item vectors (extended by the new rows) when it had them. */
#ifndef SIM_SID_CHURN_H
#define SIM_SID_CHURN_H

#include <stdint.h>

#include "common/hsrl_status.h"
#include "sim/sim_sid_file.h"
#include "sim/sim_sid_index.h"
#include "sim/sim_sid_trie.h"

/* Applies churn to f (and to idx and trie when not NULL; idx must mirror f, trie needs idx).
 * add_vectors (n_add, f->cb.dim) are the added items' vectors; sq_err (n_add) or NULL receives
 * their squared residuals |r_L|^2. Ids above N grow f's tables (rows in between are not live).
 * Rules (HSRL_E_INPUT naming the id; nothing is changed on error): ids >= 1; an added id is not
 * live and listed once; a deleted id is live, listed once and not also added. */
hsrl_status sim_sid_churn_apply(sim_sid_file *f, sim_sid_index *idx, sim_sid_trie *trie, const int32_t *add_ids,
                                const float *add_vectors /* (n_add, dim) */, int64_t n_add, const int32_t *del_ids,
                                int64_t n_del, float *sq_err /* (n_add) or NULL */);

/* Parses an id list ("3,5,10-20" or "@FILE") into *ids (hsrl_malloc; the caller frees it).
 * field names the option in messages. HSRL_E_USAGE for a malformed list or an id outside
 * 1..2^31-2. */
hsrl_status sim_sid_churn_parse_ids(const char *spec, const char *field, int32_t **ids, int64_t *n);

/* `hsrl sid assign ...`; argv[0] is "assign". Returns the exit status (0 ok, 2 usage or input
 * error, 1 internal failure). */
int sim_sid_assign_command(int argc, char **argv);

#endif
