/* nn_lr_schedule.h: a learning-rate schedule over a fixed number of optimiser steps (train.lr_decay,
 * train.lr_final): the factor the base learning rate is multiplied by at Adam step t (1-based, the
 * step nn_params_adam_update is about to take):
 *
 *   constant  1
 *   linear    1 - (1 - final) * u
 *   cosine    final + (1 - final) * (1 + cos(pi * u)) / 2
 *
 * with u = min(1, (t - 1) / (horizon - 1)) (u = 1 when horizon <= 1): the first step runs at the
 * base rate, step `horizon` and every later one at final x base. As torch.optim.lr_scheduler's
 * LinearLR / CosineAnnealingLR (eta_min = final x base) stepped once per update. The factor depends
 * only on t, which checkpoints keep (the Adam step of each table), so a resumed run follows the same
 * schedule; changing train.iterations on resume changes the horizon from there on. */
#ifndef NN_LR_SCHEDULE_H
#define NN_LR_SCHEDULE_H

#include <stdint.h>

typedef enum nn_lr_decay { NN_LR_CONSTANT = 0, NN_LR_LINEAR = 1, NN_LR_COSINE = 2 } nn_lr_decay;

typedef struct nn_lr_schedule {
  nn_lr_decay decay;
  double final_fraction; /* >= 0: in [0, 1] for learning rates; above 1 the factor rises (agent.bc_final) */
  int64_t horizon;       /* steps until the final rate */
} nn_lr_schedule;

/* "constant", "linear", "cosine" -> the enum; -1 for any other name. */
int nn_lr_decay_parse(const char *name);

/* The factor at 1-based step t (t >= 1). */
double nn_lr_factor(const nn_lr_schedule *s, int64_t t);

#endif
