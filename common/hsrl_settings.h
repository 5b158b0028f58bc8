/* hsrl_settings.h: the project's settings: every section and key of an hsrl config file, with its
 * type, default, allowed values or range, and help (architecture.md "Config"; defaults from
 * method.md sections 3-9 and datasets.md).
 *
 * One line per field: X(section, key, TYPE, "default", allowed, "help"), in the list of its
 * section below. That line declares the struct member (hsrl_settings.<section>.<key>) and the
 * engine's table row (hsrl_settings.c). TYPE is INT (int64_t), DOUBLE (double), BOOL (bool),
 * STRING (char[HSRL_SETTINGS_STR_MAX]), PATH (a STRING that names a file or directory, see
 * "Paths" below) or ENUM (char[HSRL_SETTINGS_ENUM_MAX], one of the words of `allowed`, compare
 * with strcmp). `allowed` is "a|b|c" for ENUM, a range "[lo,hi]" / "(lo,hi)" /
 * "[lo,inf)" for INT and DOUBLE, NULL for none. A new section: a new list macro and one entry in
 * HSRL_SETTINGS_SECTIONS (the struct typedef, the member of hsrl_settings and the rows follow).
 * Renaming or adding a field changes every config hash (files stamped by the old one are refused).
 *
 * Paths. A relative PATH value written in a config FILE is relative to the directory of that file
 * (not to the working directory), so `configs/demo.ini` means the same files from any directory;
 * a relative value given by --set section.key=value (or by a command-line flag that maps onto
 * --set) is relative to the working directory, as command-line paths are. hsrl_settings_load
 * makes both absolute, <realpath of that directory>/<value> with the value's leading "./" and
 * "../" folded into the directory, so the effective config (stored in checkpoints and run
 * directories, printed by `hsrl config show`) names the files exactly and reads back to the same
 * values from anywhere. A relative default (run.out_dir = "runs") is relative to the working
 * directory and made absolute the same way; an empty value stays empty (its meaning is the
 * key's). hsrl_settings_defaults gives the defaults as written; config text read with
 * hsrl_settings_load_string (a checkpoint's) is taken as it is.
 *
 * Modules take the section they need: sim_model_init(const hsrl_settings_sim *cfg), ... The
 * whole struct is plain data (copy with =). Cross-field rules (heads divide widths, ...) are in
 * hsrl_settings_validate(). */
#ifndef HSRL_SETTINGS_H
#define HSRL_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/hsrl_config.h"
#include "common/hsrl_status.h"

#define HSRL_SETTINGS_STR_MAX 256
#define HSRL_SETTINGS_ENUM_MAX 32

/* clang-format off */
#define HSRL_SETTINGS_RUN(X) \
  X(run, name,         STRING, "demo", NULL,      "run name; the run directory is out_dir/name") \
  X(run, seed,         INT,    "1",    "[0,inf)", "master seed of every random stream: the simulators, the SIDs, the evaluation episodes, and training unless train.seed is set") \
  X(run, out_dir,      PATH,   "runs", NULL,      "directory that holds the run directories") \
  X(run, blas_threads, INT,    "1",    "[1,256]", "OpenBLAS threads per rank (the environment's OPENBLAS_NUM_THREADS wins)") \
  X(run, data,         PATH,   "",     NULL,      "prepared-data file (hsrl data prepare / hsrl data synth)") \
  X(run, sim_train,    PATH,   "",     NULL,      "simulator trained on the train split, for training (empty: the synthetic world's true model)") \
  X(run, sim_all,      PATH,   "",     NULL,      "simulator trained on all records, for evaluation (empty: the synthetic world's true model)") \
  X(run, sid,          PATH,   "",     NULL,      "Semantic-ID file (hsrl sid build); needed by agent.kind = hsrl") \
  X(run, baselines,    STRING, "sl",   NULL,      "hsrl run: agents trained beside agent.kind, in out_dir/name-<agent>: sl, sl-id, hsrl, hsrl-paper, hsrl-no-bc, hsrl-no-mlc, hsrl-no-hierarchy, hsrl-no-entropy (empty: none)") \
  X(run, compare,      STRING, "random,popular,greedy,oracle", NULL, "hsrl run: reference policies in the table (greedy: by run.sim_train; oracle: by the eval click model; NAME-capC: at most C items per level-1 SID token; NAME-hpn: the best slate of HSRL's form)")

#define HSRL_SETTINGS_DATA(X) \
  X(data, format,         ENUM,   "synth", "synth|ml1m|ml100k|rl4rs", "dataset reader") \
  X(data, input,          PATH,   "",      NULL,       "dataset directory (unused for synth)") \
  X(data, slate_size,     INT,    "10",    "[1,1000]", "K: items per slate (MovieLens 10, RL4RS 9)") \
  X(data, history_len,    INT,    "50",    "[1,1000]", "H: history items per state, left-padded with id 0") \
  X(data, train_fraction, DOUBLE, "0.8",   "(0,1)",    "each user's earliest share of records trains, the rest tests")

#define HSRL_SETTINGS_SYNTH(X) \
  X(synth, items,         INT, "1000", "[1,inf)",  "N: catalog size") \
  X(synth, users,         INT, "500",  "[1,inf)",  "number of users") \
  X(synth, topics,        INT, "8",    "[1,inf)",  "T: topics of the item mixture") \
  X(synth, subtopics,     INT, "4",    "[1,inf)",  "S: subtopics per topic") \
  X(synth, item_features, INT, "16",   "[1,4096]", "D: item feature width") \
  X(synth, user_features, INT, "16",   "[1,4096]", "P: user feature width") \
  X(synth, sessions,      INT, "20",   "[1,inf)",  "logged slates per user") \
  X(synth, seed,          INT, "7",    "[0,inf)",  "seed of the synthetic world (not run.seed)")

#define HSRL_SETTINGS_SIM(X) \
  X(sim, f,                 INT,    "16",   "[1,4096]",  "f: width of the user-response model") \
  X(sim, hidden,            INT,    "256",  "[1,65536]", "hidden width of the user tower") \
  X(sim, heads,             INT,    "2",    "[1,64]",    "attention heads (must divide f)") \
  X(sim, dropout,           DOUBLE, "0.2",  "[0,1)",     "dropout in the user tower") \
  X(sim, lr,                DOUBLE, "1e-3", "(0,inf)",   "Adam learning rate") \
  X(sim, l2,                DOUBLE, "3e-4", "[0,inf)",   "L2 coefficient added to the BCE loss") \
  X(sim, id_l2,             DOUBLE, "1e-4", "[0,inf)",   "L2 on the item-id embedding: id_l2 * its sum of squares (shrinks rarely seen items)") \
  X(sim, batch,             INT,    "128",  "[1,inf)",   "records per update") \
  X(sim, max_epochs,        INT,    "20",   "[1,inf)",   "upper bound on training epochs") \
  X(sim, patience,          INT,    "3",    "[0,inf)",   "epochs without a better validation AUC before stopping (0: never)") \
  X(sim, val_fraction,      DOUBLE, "0.1",  "[0,1)",     "share of train records held out for early stopping") \
  X(sim, item_id_embedding, BOOL,   "true", NULL,        "learned item-id embedding added to the item projection (false: as the reference)")

#define HSRL_SETTINGS_SID(X) \
  X(sid, levels,   INT,  "3",     "[1,8]",        "L: SID levels") \
  X(sid, vocab,    INT,  "64",    "[2,65536]",    "V: codes per level (16: hundreds of items, 64: thousands, 256: more)") \
  X(sid, vectors,  ENUM, "sim",   "sim|features", "vectors to quantise: the simulator's item vectors, or raw features") \
  X(sid, balanced, BOOL, "false", NULL,           "capacity-balanced k-means") \
  X(sid, max_iter, INT,  "100",   "[1,inf)",      "Lloyd iterations at most per level")

#define HSRL_SETTINGS_ENV(X) \
  X(env, model,       ENUM,   "sim",            "sim|world", "click model agents train in: run.sim_train, or the synthetic world's ground truth") \
  X(env, batch,       INT,    "32",             "[1,inf)",  "B_env: simulated users per actor") \
  X(env, exclude_history, BOOL, "false",        NULL,       "slates never repeat an item of the user's history (every policy: agents, baselines, oracle)") \
  X(env, temper,      DOUBLE, "20",             "(0,inf)",  "initial temper; the user leaves when it drops below 1") \
  X(env, reward,      ENUM,   "mean_with_cost", "mean_with_cost|sum_with_cost", "+1 per click, -cost per other item; mean or sum over the slate") \
  X(env, cost,        DOUBLE, "0.1",            "[0,inf)",  "penalty of a shown item that is not clicked") \
  X(env, sweet_point, BOOL,   "false",          NULL,       "RL4RS transform r <- 1 - |r - sweet_value|") \
  X(env, sweet_value, DOUBLE, "0.9",            NULL,       "target reward of the sweet-point transform")

#define HSRL_SETTINGS_AGENT(X) \
  X(agent, kind,           ENUM,   "hsrl",   "hsrl|sl",   "agent to train: HSRL, or the supervised baseline (SL)") \
  X(agent, item_id_embedding, BOOL, "false", NULL,        "sl: add a learned item-id embedding to the item vectors") \
  X(agent, sl_source,      ENUM,   "records", "records|replay", "sl: learn from the logged records, or from its own replayed transitions") \
  X(agent, sl_val_fraction, DOUBLE, "0.1",   "[0,1)",     "sl (records): each train user's latest share of train records held out; checkpoints act with the parameters of the best held-out loss (0: the last ones)") \
  X(agent, sl_val_every,   INT,    "1000",   "[1,inf)",   "sl (records): updates between held-out losses") \
  X(agent, d,              INT,    "32",     "[1,4096]",  "d: model width of the state encoder and heads") \
  X(agent, layers,         INT,    "2",      "[1,64]",    "transformer layers of the state encoder") \
  X(agent, heads,          INT,    "4",      "[1,64]",    "attention heads (must divide d)") \
  X(agent, ffn,            INT,    "128",    "[1,65536]", "feed-forward width of the transformer") \
  X(agent, dropout,        DOUBLE, "0.1",    "[0,1)",     "dropout of the state encoder") \
  X(agent, tau_temp,       DOUBLE, "1.0",    "(0,inf)",   "tau: temperature of the per-level softmax") \
  X(agent, critic_hidden,  STRING, "256,64", NULL,        "hidden widths of the critic MLP, comma-separated") \
  X(agent, critic_dropout, DOUBLE, "0.2",    "[0,1)",     "dropout of the critic MLP") \
  X(agent, gamma,          DOUBLE, "0.9",    "[0,1]",     "discount factor") \
  X(agent, target_tau,     DOUBLE, "0.01",   "(0,1]",     "soft-update rate of the target networks") \
  X(agent, actor_lr,       DOUBLE, "1e-3",   "(0,inf)",   "Adam learning rate of the actor") \
  X(agent, critic_lr,      DOUBLE, "1e-3",   "(0,inf)",   "Adam learning rate of the critic") \
  X(agent, weight_decay,   DOUBLE, "1e-5",   "[0,inf)",   "L2 weight decay of actor and critic") \
  X(agent, entropy_weight, DOUBLE, "0.1",    "[0,inf)",   "lambda_H: weight of the entropy regulariser") \
  X(agent, bc_weight,      DOUBLE, "0.1",    "[0,inf)",   "lambda_BC: weight of behaviour cloning of clicks") \
  X(agent, bc_final,       DOUBLE, "1",      "[0,inf)",   "hsrl: lambda_BC goes linearly from bc_weight at the first update to bc_final x it at update train.iterations (1: constant)") \
  X(agent, epsilon,        DOUBLE, "0",      "[0,1]",     "uniform share mixed into item scores when exploring") \
  X(agent, hierarchy,      BOOL,   "true",   NULL,        "residual hierarchical heads (false: every head reads c_0)") \
  X(agent, mlc,            BOOL,   "true",   NULL,        "multi-level critic (false: one value on c_0)") \
  X(agent, entropy,        BOOL,   "true",   NULL,        "use the entropy regulariser") \
  X(agent, bc,             BOOL,   "true",   NULL,        "use behaviour cloning") \
  X(agent, sid_embedding,  BOOL,   "false",  NULL,        "add SID token embeddings to each history item's input") \
  X(agent, user_state,     BOOL,   "false",  NULL,        "add a user-feature projection to the state") \
  X(agent, decoder,        ENUM,   "trie",   "trie|catalog", "best-first search over the SID trie, or scoring every item") \
  X(agent, explore_temp,   DOUBLE, "1",      "(0,inf)",   "hsrl: T, extra temperature of the per-level softmax when exploring") \
  X(agent, critic_to_actor, BOOL,  "true",   NULL,        "hsrl: the critic loss also trains the actor's contexts (false: detached, as the reference)") \
  X(agent, grad_clip,      DOUBLE, "0",      "[0,inf)",   "hsrl: max L2 norm of each network's gradient (0: off)") \
  X(agent, explore,        ENUM,   "sample", "sample|greedy", "hsrl: slates while training: sampled without replacement (explore_temp, epsilon), or greedy top-K as the reference trains (its topk_rate = 1)") \
  X(agent, advantage,      ENUM,   "clip",   "clip|normalise", "hsrl: A = clip(y - V, -1, 1) (method.md 8), or y - V standardised over the batch (mean 0, std 1)") \
  X(agent, credit,         ENUM,   "slate",  "slate|click", "hsrl: the pg weight of a slot: the slate's advantage, or plus the slot's click minus the slate's click rate") \
  X(agent, prefix_cap,     INT,    "0",      "[0,inf)",   "hsrl: greedy slates take at most this many items under one level-1 SID token, best first (0: off, the exact top-K of method.md 6); scores every live item") \
  X(agent, explore_cap,    BOOL,   "false",  NULL,        "hsrl: exploring slates keep agent.prefix_cap too (sampled without replacement under the cap, scoring every live item)") \
  X(agent, off_policy_correction, BOOL, "false", NULL,     "hsrl: each replayed slot's pg weight times min(1, pi/behaviour) (truncated importance sampling)") \
  X(agent, pg,             BOOL,   "true",   NULL,        "hsrl: use the policy-gradient term (false: a supervised control, behaviour cloning and entropy only)")

#define HSRL_SETTINGS_TRAIN(X) \
  X(train, iterations,       INT, "50000",  "[1,inf)", "learner updates (one env step per actor each)") \
  X(train, batch,            INT, "64",     "[1,inf)", "transitions per update") \
  X(train, buffer,           INT, "100000", "[1,inf)", "replay capacity in transitions (over all shards)") \
  X(train, learning_starts,  INT, "2000",   "[0,inf)", "transitions stored before the first update") \
  X(train, report_every,     INT, "100",    "[1,inf)", "updates between rows of metrics.tsv") \
  X(train, checkpoint_every, INT, "5000",   "[0,inf)", "updates between checkpoints (0: only the last)") \
  X(train, lr_decay,         ENUM, "constant", "constant|linear|cosine", "learning rates of every network from their [agent] value at the first update to lr_final x it at update train.iterations") \
  X(train, lr_final,         DOUBLE, "0.1",  "[0,1]",   "lr_decay's last learning rate, a fraction of the first") \
  X(train, seed,             INT, "-1",     "[-1,inf)", "seed of training alone (agent init, exploration, simulated users, replay): another run on the same simulators and SIDs; -1: run.seed") \
  X(train, val_every,        INT, "0",      "[0,inf)", "updates between validations of the greedy policy in the training env (train users); checkpoints then act with the best-validated parameters (0: off, the last)") \
  X(train, val_episodes,     INT, "1000",   "[1,inf)", "finished episodes per validation (train.val_every), the same users and click draws each time")

#define HSRL_SETTINGS_DIST(X) \
  X(dist, replay_shards,         INT,  "0",     "[0,4096]", "R: replay shard ranks (0: replay inside the learner)") \
  X(dist, sync,                  BOOL, "false", NULL,       "lock-step: the same seed gives the same result") \
  X(dist, max_lag,               INT,  "32",    "[0,inf)",  "policy versions an actor may lag before it waits (0: no limit)") \
  X(dist, broadcast_every,       INT,  "10",    "[1,inf)",  "updates between parameter broadcasts") \
  X(dist, samples_per_insert,    DOUBLE, "2",   "(0,inf)",  "replay rate limiter: samples per inserted transition (train.batch / env.batch: one env step per update)") \
  X(dist, spi_tolerance,         DOUBLE, "0.1", "[0,inf)",  "replay rate limiter tolerance: error_buffer = tolerance * samples_per_insert * min size (Reverb/Acme), at least what keeps it deadlock-free") \
  X(dist, block_rows,            INT,  "32",    "[1,65536]", "transitions per compressed block an actor sends to its replay shard") \
  X(dist, queue_blocks,          INT,  "8",     "[1,inf)",  "blocks a replay shard's input queue holds before it pushes back")

#define HSRL_SETTINGS_EVAL(X) \
  X(eval, episodes, INT, "1000", "[1,inf)",  "finished episodes per evaluation seed") \
  X(eval, seeds,    INT, "3",    "[1,1000]", "evaluation seeds; results are mean +- std across them")

/* Every section, in file order: S(name, LIST). */
#define HSRL_SETTINGS_SECTIONS(S) \
  S(run, HSRL_SETTINGS_RUN) S(data, HSRL_SETTINGS_DATA) S(synth, HSRL_SETTINGS_SYNTH) \
  S(sim, HSRL_SETTINGS_SIM) S(sid, HSRL_SETTINGS_SID) S(env, HSRL_SETTINGS_ENV) \
  S(agent, HSRL_SETTINGS_AGENT) S(train, HSRL_SETTINGS_TRAIN) S(dist, HSRL_SETTINGS_DIST) \
  S(eval, HSRL_SETTINGS_EVAL)
/* clang-format on */

#define HSRL_SETTINGS_CTYPE_INT(k) int64_t k
#define HSRL_SETTINGS_CTYPE_DOUBLE(k) double k
#define HSRL_SETTINGS_CTYPE_BOOL(k) bool k
#define HSRL_SETTINGS_CTYPE_STRING(k) char k[HSRL_SETTINGS_STR_MAX]
#define HSRL_SETTINGS_CTYPE_PATH(k) char k[HSRL_SETTINGS_STR_MAX]
#define HSRL_SETTINGS_CTYPE_ENUM(k) char k[HSRL_SETTINGS_ENUM_MAX]
#define HSRL_SETTINGS_MEMBER(sec, k, type, def, allowed, help) HSRL_SETTINGS_CTYPE_##type(k);
#define HSRL_SETTINGS_SECTION_STRUCT(sec, LIST) \
  typedef struct hsrl_settings_##sec { LIST(HSRL_SETTINGS_MEMBER) } hsrl_settings_##sec;
HSRL_SETTINGS_SECTIONS(HSRL_SETTINGS_SECTION_STRUCT)

#define HSRL_SETTINGS_SECTION_MEMBER(sec, LIST) hsrl_settings_##sec sec;
typedef struct hsrl_settings {
  HSRL_SETTINGS_SECTIONS(HSRL_SETTINGS_SECTION_MEMBER)
} hsrl_settings;

/* The engine's description of hsrl_settings (static storage). */
const hsrl_config_schema *hsrl_settings_schema(void);

/* Every field at its default. */
void hsrl_settings_defaults(hsrl_settings *s);

/* The effective config: defaults, then the file at `path` (NULL: none) with its relative PATH
 * values made absolute against the file's directory, then the n_sets "section.key=value"
 * overrides in order (the last wins), then the PATH values still relative (the overrides', the
 * defaults') made absolute against the working directory (see "Paths" above), then
 * hsrl_settings_validate. Errors name the file and line, or the --set argument (HSRL_E_USAGE). */
hsrl_status hsrl_settings_load(hsrl_settings *s, const char *path, int64_t n_sets,
                               const char *const *sets);

/* The n_sets "section.key=value" overrides on top of s as it is (e.g. a checkpoint's config),
 * exactly as hsrl_settings_load applies them (then every relative PATH value made absolute against
 * the working directory), then hsrl_settings_validate. */
hsrl_status hsrl_settings_apply_sets(hsrl_settings *s, int64_t n_sets, const char *const *sets);

/* Defaults, then config text (as stored in a checkpoint or run directory), then validation. */
hsrl_status hsrl_settings_load_string(hsrl_settings *s, const char *text, const char *name);

/* Cross-field rules of an effective config; `source` (the config file, or NULL) prefixes the
 * message, which names the field: "demo.ini: field 'agent.heads': 5 does not divide agent.d = 32".
 * Also: every string must fit on one config line ("key = value", HSRL_CONFIG_LINE_MAX), so that
 * the effective config written into a checkpoint reads back. */
hsrl_status hsrl_settings_validate(const hsrl_settings *s, const char *source);

/* INI text of the effective config and its hash (hsrl_config_write / hsrl_config_hash). */
size_t hsrl_settings_write(const hsrl_settings *s, int flags, char *buf, size_t cap);
uint64_t hsrl_settings_hash(const hsrl_settings *s);

/* 1 if the field (of hsrl_settings_schema()) is a PATH: a file or directory name. */
int hsrl_settings_field_is_path(const hsrl_config_field *f);

/* The seed training derives its streams from: train.seed, or run.seed when train.seed is -1.
 * run.seed alone keys the simulators, the SIDs and the evaluation episodes, so a run with another
 * train.seed trains again on the same inputs and is evaluated on the same users. */
uint64_t hsrl_settings_train_seed(const hsrl_settings *s);

/* Parses "256,64" into out[0..max_n): returns the count, or -1 if the text is not 1..max_n
 * positive integers separated by commas (spaces allowed). */
int64_t hsrl_settings_parse_int_list(const char *text, int64_t *out, int64_t max_n);

#endif
