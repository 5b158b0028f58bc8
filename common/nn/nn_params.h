/* nn_params.h: a model's parameter table: named tensors in one flat float32 buffer, with the
 * gradients and the Adam moments in three more buffers of exactly the same layout
 * (architecture.md "Numerical core"; style.md "Layers and models"; checkpoints of method.md
 * section 8).
 *
 * Life cycle ("size then place"):
 *   nn_params *p = nn_params_init(8);                      capacity is a hint; the table grows
 *   int64_t o_w = nn_params_add2(p, "actor/enc/layer0/attn/w_in", 3 * d, d);    (out, in)
 *   int64_t o_b = nn_params_add1(p, "actor/enc/layer0/attn/b_in", 3 * d);
 *   nn_params_finalize(p);                                 allocates values, grads, m, v: zeroed
 *   float *w = nn_params_values(p) + o_w, *dw = nn_params_grads(p) + o_w;
 *   ... nn_params_zero_grads(p); backward adds into the grads; nn_params_adam_update(p, &cfg);
 *   nn_params_free(p);
 *
 * Layout: tensors in the order added, each starting at a multiple of NN_PARAMS_ALIGN floats
 * (64 bytes) from a 64-byte aligned base; the padding between them is zero in every buffer and
 * stays zero under Adam, clipping and soft updates, so whole-buffer operations may run over
 * nn_params_size() floats. Two tables built by the same sequence of adds have the same layout
 * (nn_params_same_layout), e.g. a network and its target copy.
 *
 * Names are the HDF5 paths of the tensors in a checkpoint: 1..NN_PARAMS_NAME_MAX-1 characters
 * from [A-Za-z0-9_.-] and '/', no leading, trailing or doubled '/', no "." or ".." component,
 * unique within the table, and not under the reserved prefixes "optim/" and "grad/". A bad name,
 * a duplicate, a bad shape or an add after finalize is a bug (check failure).
 *
 * Checkpoint layout written by nn_params_write (one file may hold several tables, e.g. actor and
 * critic, as long as their names differ):
 *   <name>                    float32 dataset of the tensor's shape (values), zstd-compressed
 *                             (io_h5: the frame checksum catches damaged data)
 *   optim/m/<name>, optim/v/<name>   the Adam moments       (flag NN_PARAMS_OPTIM)
 *                             each optim/m/<name> carries the int64 attribute "adam_step"
 *   grad/<name>               the gradients                 (flag NN_PARAMS_GRADS)
 * nn_params_read requires every tensor of the table (and, with the flags, its moments/gradients)
 * to exist with the table's shape; datasets not in the table are ignored. On any error it returns
 * HSRL_E_INPUT (or io_h5's status) with a message naming the file and the tensor, e.g.
 *   "ckpt.h5: tensor 'actor/w' has shape (4,3), expected (4,4)"
 * and leaves the table (values, grads, moments and step) untouched. */
#ifndef NN_PARAMS_H
#define NN_PARAMS_H

#include <stdint.h>

#include "common/hsrl_status.h"
#include "common/io/io_h5.h"
#include "common/nn/nn_adam.h"

#define NN_PARAMS_NAME_MAX 128 /* bytes, including the terminating NUL */
#define NN_PARAMS_MAX_DIMS 8
#define NN_PARAMS_ALIGN 16 /* floats: every tensor offset is a multiple of 64 bytes */

/* Flags of nn_params_write / nn_params_read / nn_params_save / nn_params_load. Values are
 * always included. */
#define NN_PARAMS_OPTIM 1 /* Adam m, v and the step counter */
#define NN_PARAMS_GRADS 2 /* gradients */

typedef struct nn_params nn_params;

typedef struct nn_param_entry {
  char name[NN_PARAMS_NAME_MAX];
  int ndim;                         /* 1..NN_PARAMS_MAX_DIMS */
  int64_t dims[NN_PARAMS_MAX_DIMS]; /* row-major shape; dims[ndim..] are 0 */
  int64_t n;                        /* product of dims (>= 0) */
  int64_t offset;                   /* floats from the start of every buffer of the table */
} nn_param_entry;

nn_params *nn_params_init(int64_t capacity);
void nn_params_free(nn_params *p); /* NULL is a no-op */

/* Adds a tensor; returns its offset (valid before and after finalize). Before finalize only. */
int64_t nn_params_add(nn_params *p, const char *name, int ndim, const int64_t *dims /* (ndim) */);
int64_t nn_params_add1(nn_params *p, const char *name, int64_t d0);
int64_t nn_params_add2(nn_params *p, const char *name, int64_t d0, int64_t d1);
int64_t nn_params_add3(nn_params *p, const char *name, int64_t d0, int64_t d1, int64_t d2);

/* Allocates the four buffers, zero-filled. Once only; needed before any buffer accessor. */
void nn_params_finalize(nn_params *p);

int64_t nn_params_count(const nn_params *p);      /* tensors */
int64_t nn_params_size(const nn_params *p);       /* floats per buffer, padding included */
int64_t nn_params_n_elements(const nn_params *p); /* sum of the tensors' element counts */
const nn_param_entry *nn_params_entry(const nn_params *p, int64_t i); /* 0 <= i < count */
const nn_param_entry *nn_params_find(const nn_params *p, const char *name); /* NULL: absent */
int nn_params_same_layout(const nn_params *a, const nn_params *b); /* same names, shapes, offsets */

/* The buffers (nn_params_size() floats each, 64-byte aligned), owned by the table. The table is
 * a handle: const means its layout, not the numbers, is fixed. */
float *nn_params_values(const nn_params *p);
float *nn_params_grads(const nn_params *p);
float *nn_params_adam_m(const nn_params *p);
float *nn_params_adam_v(const nn_params *p);
/* values + offset of `name`; a missing name is a bug (check failure). */
float *nn_params_value_of(const nn_params *p, const char *name);
float *nn_params_grad_of(const nn_params *p, const char *name);

void nn_params_zero_grads(nn_params *p);

/* Adam steps taken so far (0 after finalize; restored by nn_params_read with NN_PARAMS_OPTIM). */
int64_t nn_params_adam_step(const nn_params *p);
/* One optimiser step over the whole table: step += 1, then nn_adam_step on values/grads/m/v. */
void nn_params_adam_update(nn_params *p, const nn_adam_config *cfg);

/* Writes the table into an open file (io_h5_create'd; the caller stamps and commits). */
hsrl_status nn_params_write(const nn_params *p, io_h5 *f, int flags);
/* Reads the table from an open file. Messages name the file as file_label, or as io_h5_path(f)
 * when file_label is NULL. */
hsrl_status nn_params_read(nn_params *p, io_h5 *f, const char *file_label, int flags);
/* Whole-file forms. save: create, stamp (kind NN_PARAMS_KIND, version NN_PARAMS_VERSION, config
 * hash 0), write, commit (atomic: the old file stays until the new one is complete). load: open,
 * check the stamp, read, close. */
#define NN_PARAMS_KIND "nn-params"
#define NN_PARAMS_VERSION 1
hsrl_status nn_params_save(const nn_params *p, const char *path, int flags);
hsrl_status nn_params_load(nn_params *p, const char *path, int flags);

#endif
