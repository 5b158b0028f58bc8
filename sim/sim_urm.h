/* sim_urm.h: the user-response model (the learned simulator) of method.md section 3: given a
 * user, the user's history and a slate, the click probability of every shown item.
 *
 * Per record (shapes use method.md's letters; B rows at once):
 *   user tower     e_u = Linear(hidden->f)(Drop(ReLU(Linear(P->hidden)(u))))          (B, f)
 *   item vector    phi(i) = Linear(D->f)(x_i) + E_id[i]   (E_id (N+1, f), row 0 = padding;
 *                  the id term only when item_id_embedding is on)
 *   history        Z = phi(history) (B, H, f); S = MHA_self(Z, Z) with a key-padding mask
 *                  (history id 0 = padding: such keys are never attended to)
 *   cross          c0 = MHA_cross(query = e_u (one position), keys/values = S, same mask) (B, f);
 *                  an empty history masks every key: nn_mha's zero attention gives c0 = b_o
 *   context        c = Linear(2f->f)([c0 ; e_u])                                       (B, f)
 *   click          logit_k = <phi(slate_k), c>, p_k = sigmoid(logit_k)                 (B, K)
 * Loss (training): mean over B*K of BCE on the LOGITS (one sigmoid; the reference's double sigmoid
 * is not copied, reference-hsrl.md section 2.1) + l2 * sum over parameter tensors of mean(theta^2)
 * (the reference's get_regularization form, so l2 = 3e-4 means what it meant there). The id
 * embedding is NOT in that sum: as one tensor of (N+1)*f elements its mean(theta^2) would pull
 * each row by only 2*l2/((N+1)f) (about 1e-8 on ML-1M: no effect). It has its own term instead,
 * id_l2 * sum(E_id^2) (a sum, not a mean: a per-row prior), which keeps an item the data says
 * little about near its feature vector. Without it the simulator is confidently wrong about rare
 * items, and a policy that maximises it finds them: on ML-1M (seed 3) greedy by the all-records
 * simulator scored 18.5 in it but greedy by the train-split one 7.8 there; with id_l2 = 1e-4 the
 * two simulators agree (10.8 and 9.1) and the train-split one's test AUC rises (0.748 -> 0.752).
 * docs/quality.md ("ML-1M in our simulators") has the measurements.
 *
 * Parameters live in one nn_params table (names under "sim/", the HDF5 paths of the model file):
 *   sim/user/l1/w (hidden, P)  sim/user/l1/b (hidden)  sim/user/l2/w (f, hidden)  sim/user/l2/b (f)
 *   sim/item/proj/w (f, D)     sim/item/proj/b (f)     sim/item/id_emb (N+1, f)   [if enabled]
 *   sim/self_attn/{w_in (3f, f), b_in (3f), w_o (f, f), b_o (f)}
 *   sim/cross_attn/{w_in, b_in, w_o, b_o}               sim/concat/w (f, 2f)   sim/concat/b (f)
 * Init as torch: Linear U(+-1/sqrt(fan_in)); MHA w_in Xavier-uniform, b_in = b_o = 0, w_o as
 * Linear; the id embedding N(0, SIM_URM_ID_INIT_STD^2) with row 0 zero.
 *
 * The model BORROWS the dataset's item-feature (N+1, D) and user-feature (U+1, P) tables (the
 * sim_dataset passed to sim_urm_init must outlive it); user ids index the user table.
 *
 * Memory: a sim_urm_work holds every activation for up to max_batch rows (and, with train != 0,
 * the backward buffers), allocated once by sim_urm_work_init. Forward, backward and the inference
 * calls allocate nothing. A work belongs to one thread; the model itself is
 * read-only during inference, so several threads may share it with one work each. */
#ifndef SIM_URM_H
#define SIM_URM_H

#include <stdint.h>

#include "common/hsrl_settings.h"
#include "common/nn/nn_params.h"
#include "sim/sim_data.h"

/* Std of the id-embedding init. torch's N(0, 1) lets the random id vectors dominate the feature
 * projection at the start: on ML-1M its test AUC was 0.641 after epoch 1 and 0.747 after 8,
 * against 0.739 and 0.755 with 0.1. */
#define SIM_URM_ID_INIT_STD 0.1f

typedef struct sim_urm_config {
  int64_t n_items, item_dim;       /* N, D */
  int64_t n_users, user_dim;       /* U, P */
  int64_t history_len, slate_size; /* H, K */
  int64_t f, hidden, heads;        /* model width, user-tower hidden width, attention heads */
  float dropout;                   /* user tower, training only */
  float l2;                        /* coefficient of sum_t mean(theta_t^2) */
  int item_id_embedding;           /* 1: phi adds the learned id embedding */
  float id_l2;                     /* coefficient of sum(E_id^2) (the id embedding's own l2 term) */
} sim_urm_config;

typedef struct sim_urm sim_urm;
typedef struct sim_urm_work sim_urm_work;

/* The model config from the [sim] settings and the dataset's sizes. */
sim_urm_config sim_urm_config_make(const hsrl_settings_sim *s, const sim_dataset *data);

/* Builds the parameter table and initialises it from hsrl_rng(seed, stream "sim init"). Sizes in
 * cfg must match data (checked: a mismatch is a bug here; sim_urm_load reports it as an input
 * error first). data is borrowed. */
sim_urm *sim_urm_init(const sim_urm_config *cfg, const sim_dataset *data, uint64_t seed);
void sim_urm_free(sim_urm *m); /* NULL is a no-op */

const sim_urm_config *sim_urm_get_config(const sim_urm *m);
nn_params *sim_urm_params(const sim_urm *m); /* the table: values, grads, Adam moments */
const sim_dataset *sim_urm_data(const sim_urm *m);

/* Activations for up to max_batch rows; train != 0 adds the backward buffers. */
sim_urm_work *sim_urm_work_init(const sim_urm *m, int64_t max_batch, int train);
void sim_urm_work_free(sim_urm_work *w); /* NULL is a no-op */

/* Forward over B <= max_batch records. train != 0 applies dropout (mask from nn_dropout_mask with
 * dropout_key, offset 0) and keeps what the backward needs; train == 0 is inference mode.
 * targets (B, K) in {0, 1} or NULL. Returns the loss (mean BCE + l2 term) when targets are given,
 * else 0. The logits stay in the work (sim_urm_work_logits) until the next forward. */
double sim_urm_forward(const sim_urm *m, sim_urm_work *w, int64_t B,
                       const int32_t *user_ids /* (B) */, const int32_t *histories /* (B, H) */,
                       const int32_t *slates /* (B, K) */, const float *targets /* (B, K) */,
                       int train, uint64_t dropout_key);

/* Backward of the last training forward (work made with train != 0, targets given): ADDS
 * dloss * d(loss)/d(theta) into the table's gradients (the caller zeroes them). */
void sim_urm_backward(const sim_urm *m, sim_urm_work *w, float dloss);

const float *sim_urm_work_logits(const sim_urm_work *w); /* (B, K) of the last forward */
double sim_urm_work_bce(const sim_urm_work *w);          /* its BCE part (targets given) */
double sim_urm_work_reg(const sim_urm_work *w);          /* its regulariser (l2 and id_l2 terms) */

/* Inference for the environment: out_p (B, K) = click probabilities, no dropout, no allocation.
 * B <= the work's max_batch; history id 0 = padding; slate ids in 1..N. */
void sim_urm_click_probs(const sim_urm *m, sim_urm_work *w, int64_t B,
                         const int32_t *user_ids /* (B) */, const int32_t *histories /* (B, H) */,
                         const int32_t *slates /* (B, K) */, float *out_p /* (B, K) */);
/* The same with the user features given directly (users not in the dataset's table). */
void sim_urm_click_probs_features(const sim_urm *m, sim_urm_work *w, int64_t B,
                                  const float *user_features /* (B, P) */,
                                  const int32_t *histories /* (B, H) */,
                                  const int32_t *slates /* (B, K) */, float *out_p /* (B, K) */);

/* The context vectors c (B, f) of B (user, history) records: the forward up to the slate. Then
 * for any slate logit_k = <phi(slate_k), c> with phi from sim_urm_item_vectors, so a caller can
 * score the whole catalog with one context per user. No dropout, no allocation; B <= the work's
 * max_batch. It overwrites the work's activations: no sim_urm_backward after it. */
void sim_urm_user_context(const sim_urm *m, sim_urm_work *w, int64_t B,
                          const int32_t *user_ids /* (B) */, const int32_t *histories /* (B, H) */,
                          float *out_c /* (B, f) */);
void sim_urm_user_context_features(const sim_urm *m, sim_urm_work *w, int64_t B,
                                   const float *user_features /* (B, P) */,
                                   const int32_t *histories /* (B, H) */,
                                   float *out_c /* (B, f) */);

/* The learned item vectors phi(i) for i = 0..N (row 0: the padding item), e.g. for Semantic IDs
 * (method.md section 5) or scoring items against sim_urm_user_context. Allocates nothing. */
void sim_urm_item_vectors(const sim_urm *m, float *out /* (N+1, f) */);

#endif
