#!/usr/bin/python3
"""The authors' HSRL training iteration, re-implemented in PyTorch, to time on this machine.

Issue 5's speed goal is a ratio against the authors' PyTorch code on the same machine. Their code
cannot be run here (its public copy lacks most Python sources and the ML-1M scripts are broken as
shipped, reference-hsrl.md section 10), so this file re-implements the computation of one of their
training iterations from ../shared/docs/reference-hsrl.md (sections 0, 2.2, 3.3-3.6, 5, 6.1, 7 and
Appendix A) with the same PyTorch modules, at the shapes of scripts/bench/train.sh:

  act      SIDFacade apply_policy: SASRec encoder (d 32, 2 post-norm layers, 4 heads, FFN 128,
           dropout 0.1 on, causal mask), L 3 heads of V tokens with the residual context, every
           item scored by the product of its tokens' probabilities, greedy top-K, no gradients;
  env      ML1MUserResponse (portrait MLP 256 with dropout 0.2 on, item projection 16, self and
           cross attention of 2 heads, concat layer) on the history and the slate, two Bernoulli
           draws, mean_with_cost, the temper rule, the click-grown history, refills of done rows;
  buffer   the step's 32 transitions written into the 100,000-row ring;
  update   64 transitions sampled with replacement; the target actor's full apply_policy on the
           next states and the target critic (no gradients); the online actor and the
           Token_Critic (MLP 256-64, dropout 0.2) on the states; the critic step (backward
           through the actor, graph retained); the actor step (NLL of the shown tokens weighted by
           the clipped advantage, entropy bonus); the ML-1M behaviour step (the updated actor on
           the states, BCE of the shown items' normalised scores); soft updates of both targets.

It times the computation, not the learning: the simulator and the networks keep their random
initial weights (the time of an iteration depends on the shapes, not on the values), and where
the description leaves the implementation open (the reader's DataLoader, the history update,
which mask multiplies gamma) the cheaper choice is taken, so the figure errs on the fast side
and a ratio against it errs low. It is not the authors' code; its figures say what PyTorch does
on this machine with their computation.

Fidelity check, at every start: built at reference-hsrl.md Appendix B's shapes, the policy, the
critic and the simulator have exactly its parameter counts (78,496; 25,601; 17,952).

Usage: reference_torch.py --data DATA.h5 --sid SID.h5 [--iters N] [--warmup N] [--threads T]
Prints one line per phase (medians in ms) and a final line "iterations/s X".
Needs Debian's python3-torch, python3-numpy and python3-h5py (/usr/bin/python3).
"""
import argparse
import copy
import statistics
import sys
import time

import h5py
import numpy as np
import torch
from torch import nn


def regularization(modules):
    """get_regularization: the sum over parameter tensors of mean(theta^2) (computed, unused)."""
    return sum(p.pow(2).mean() for m in modules for p in m.parameters())


class Policy(nn.Module):
    """SIDPolicy_credit (reference-hsrl.md 5.1-5.3)."""

    def __init__(self, item_dim, d, hist, layers, heads, ffn, levels, vocab):
        super().__init__()
        self.item_map = nn.Linear(item_dim, d)
        self.pos_emb = nn.Embedding(hist, d)
        self.emb_norm = nn.LayerNorm(d)
        self.emb_drop = nn.Dropout(0.1)
        layer = nn.TransformerEncoderLayer(d, heads, ffn, 0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.sid_heads = nn.ModuleList(nn.Linear(d, vocab) for _ in range(levels))
        self.sid_token_embeds = nn.ModuleList(nn.Embedding(vocab, d) for _ in range(levels))
        self.sid_res_norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(levels))
        self.register_buffer("pos", torch.arange(hist))
        self.register_buffer("mask", torch.triu(torch.ones(hist, hist, dtype=torch.bool), 1))

    def forward(self, x_hist):
        x = self.item_map(x_hist) + self.pos_emb(self.pos)
        x = self.emb_norm(self.emb_drop(x))
        out = self.encoder(x, mask=self.mask)
        c = out[:, -1, :]
        contexts, logits = [c], []
        for head, emb, norm in zip(self.sid_heads, self.sid_token_embeds, self.sid_res_norms):
            lg = head(c)
            p = torch.softmax(lg, dim=-1)
            c = norm(c - p @ emb.weight)
            contexts.append(c)
            logits.append(lg)
        reg = regularization([self.item_map, self.encoder])
        return logits, torch.stack(contexts, 1), reg


class TokenCritic(nn.Module):
    """Token_Critic (6.1): one MLP valued on every context, fixed uniform level weights."""

    def __init__(self, d):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(d, 256), nn.ReLU(), nn.Dropout(0.2), nn.LayerNorm(256),
            nn.Linear(256, 64), nn.ReLU(), nn.Dropout(0.2), nn.LayerNorm(64), nn.Linear(64, 1))

    def forward(self, contexts):
        v = self.net(contexts).squeeze(-1)
        return v.mean(1), regularization([self.net])


class UserResponse(nn.Module):
    """ML1MUserResponse (2.1, 2.2): click probabilities of a slate."""

    def __init__(self, user_dim, item_dim, n_users, n_items, f=16):
        super().__init__()
        self.portrait = nn.Sequential(nn.Linear(user_dim, 256), nn.ReLU(), nn.Dropout(0.2),
                                      nn.Linear(256, f))
        self.item_proj = nn.Linear(item_dim, f)
        self.self_attn = nn.MultiheadAttention(f, 2, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(f, 2, batch_first=True)
        self.concat = nn.Linear(2 * f, f)
        self.user_table = nn.Embedding(n_users, user_dim)
        self.item_table = nn.Embedding(n_items, item_dim)

    def forward(self, user, x_hist, x_slate):
        e_u = self.portrait(user).unsqueeze(1)
        z = self.item_proj(x_hist)
        s, _ = self.self_attn(z, z, z)
        c, _ = self.cross_attn(e_u, s, s)
        c = self.concat(torch.cat([c, e_u], -1))
        score = (self.item_proj(x_slate) * c).sum(-1)
        reg = regularization([self])
        return torch.sigmoid(score), reg


def apply_policy(actor, x_hist, sid_table, k):
    """The facade (5.4): every item's score, normalised, greedy top-K."""
    logits, contexts, _ = actor(x_hist)
    q = None
    for level, lg in enumerate(logits):
        p = torch.softmax(lg, dim=-1)[:, sid_table[:, level]]
        q = p if q is None else q * p
    q = q / (q.sum(1, keepdim=True) + 1e-12)
    prob, idx = torch.topk(q, k, dim=1)
    return idx + 1, prob, contexts


class Env:
    """ML1MEnvironment_GPU (3.2-3.6) on the train records."""

    def __init__(self, urm, feat, user_feat, rec_user, rec_hist, batch, k):
        self.urm, self.feat, self.user_feat = urm, feat, user_feat
        self.rec_user, self.rec_hist, self.batch, self.k = rec_user, rec_hist, batch, k
        self.order, self.cursor = torch.randperm(len(rec_user)), 0
        rows = self.draw()
        self.user, self.hist = self.user_feat[self.rec_user[rows]], self.rec_hist[rows].clone()
        self.temper = torch.full((batch,), 20.0)
        self.total = torch.zeros(batch)

    def draw(self):
        if self.cursor + self.batch > len(self.order):
            self.order, self.cursor = torch.randperm(len(self.rec_user)), 0
        rows = self.order[self.cursor:self.cursor + self.batch]
        self.cursor += self.batch
        return rows

    def step(self, action):
        with torch.no_grad():
            p, _ = self.urm(self.user, self.feat[self.hist], self.feat[action])
            torch.bernoulli(p)
            clicks = torch.bernoulli(p)
            r = torch.where(clicks > 0, 1.0, -0.1).mean(1)
            for b in range(self.batch):
                kept = torch.cat([self.hist[b], action[b][clicks[b] > 0]])
                self.hist[b] = kept[-self.hist.shape[1]:]
            next_hist = self.hist.clone()
            self.total += r
            self.temper -= (1 - r) * self.k + 1
            done = self.temper < 1
            if done.any():
                rows = self.draw()
                self.user[done] = self.user_feat[self.rec_user[rows]][done]
                self.hist[done] = self.rec_hist[rows][done]
                self.temper[done], self.total[done] = 20.0, 0.0
                next_hist = self.hist.clone()
            return r, done, clicks, next_hist


class Replay:
    """The on-device ring (7.2): the fields the update reads."""

    def __init__(self, cap, hist, k, levels):
        self.cap, self.head, self.size = cap, 0, 0
        self.hist = torch.zeros(cap, hist, dtype=torch.long)
        self.next_hist = torch.zeros(cap, hist, dtype=torch.long)
        self.action = torch.zeros(cap, k, dtype=torch.long)
        self.tokens = torch.zeros(cap, k, levels, dtype=torch.long)
        self.clicks = torch.zeros(cap, k)
        self.reward = torch.zeros(cap)
        self.done = torch.zeros(cap)

    def add(self, hist, next_hist, action, tokens, clicks, reward, done):
        idx = (self.head + torch.arange(len(reward))) % self.cap
        self.hist[idx], self.next_hist[idx], self.action[idx] = hist, next_hist, action
        self.tokens[idx], self.clicks[idx] = tokens, clicks
        self.reward[idx], self.done[idx] = reward, done.float()
        self.head = (self.head + len(reward)) % self.cap
        self.size = min(self.size + len(reward), self.cap)


class Agent:
    """A2C_SID_credit_train_pub (7.1, 7.5) with its optimisers and target copies."""

    def __init__(self, actor, critic, sid_table, k):
        self.actor, self.critic, self.sid_table, self.k = actor, critic, sid_table, k
        self.actor_target, self.critic_target = copy.deepcopy(actor), copy.deepcopy(critic)
        self.actor_opt = torch.optim.Adam(actor.parameters(), lr=5e-5, weight_decay=1e-5)
        self.critic_opt = torch.optim.Adam(critic.parameters(), lr=1e-3, weight_decay=1e-5)
        self.behaviour_opt = torch.optim.Adam(actor.parameters(), lr=1e-3, weight_decay=3e-5)

    def update(self, feat_c, replay, batch):
        idx = torch.randint(replay.size, (batch,))
        x = feat_c[replay.hist[idx] - 1]
        x_next = feat_c[replay.next_hist[idx] - 1]
        tokens, clicks = replay.tokens[idx], replay.clicks[idx]
        with torch.no_grad():
            _, _, ctx_next = apply_policy(self.actor_target, x_next, self.sid_table, self.k)
            v_next, _ = self.critic_target(ctx_next)
            y = replay.reward[idx] + 0.9 * (1 - replay.done[idx]) * v_next
        logits, ctx, _ = self.actor(x)
        value, _ = self.critic(ctx)
        critic_loss = (value - y).pow(2).mean()
        self.critic_opt.zero_grad()
        critic_loss.backward(retain_graph=True)
        self.critic_opt.step()
        adv = torch.clamp(y - value.detach(), -1, 1)
        nll, neg_entropy = 0, 0
        for level, lg in enumerate(logits):
            p = torch.softmax(lg, dim=-1)
            logp = torch.log(p + 1e-12)
            nll = nll - torch.gather(logp, 1, tokens[:, :, level])
            neg_entropy = neg_entropy + (p * logp).sum(1).mean()
        actor_loss = (nll.mean(1) * adv).mean() + 0.1 * neg_entropy
        self.actor_opt.zero_grad()
        actor_loss.backward()
        self.actor_opt.step()
        logits, _, _ = self.actor(x)
        q = None
        for level, lg in enumerate(logits):
            p = torch.gather(torch.softmax(lg, dim=-1), 1, tokens[:, :, level])
            q = p if q is None else q * p
        q = q / (q.sum(1, keepdim=True) + 1e-12)
        bc_loss = nn.functional.binary_cross_entropy(torch.sigmoid(q), clicks)
        self.behaviour_opt.zero_grad()
        bc_loss.backward()
        self.behaviour_opt.step()
        with torch.no_grad():
            for net, target in ((self.actor, self.actor_target), (self.critic, self.critic_target)):
                for p, tp in zip(net.parameters(), target.parameters()):
                    tp.data.copy_(0.01 * p.data + 0.99 * tp.data)


def fail(message):
    """Bad input: the message on stderr, exit status 2 (the project's convention)."""
    print(f"reference_torch.py: {message}", file=sys.stderr)
    sys.exit(2)


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def check_appendix_b():
    """The modules at reference-hsrl.md Appendix B's shapes (RL4RS: D_i 40, V 256, P 42) have its
    parameter counts: policy 78,496, Token_Critic 25,601, simulator without the ML-1M concat layer
    and tables 256 P + 7,200 = 17,952. Returns the mismatches."""
    urm = UserResponse(42, 40, 1, 1)
    got = {"policy": n_params(Policy(40, 32, 50, 2, 4, 128, 3, 256)),
           "critic": n_params(TokenCritic(32)),
           "simulator": n_params(urm) - n_params(urm.concat) - n_params(urm.user_table)
           - n_params(urm.item_table)}
    want = {"policy": 78496, "critic": 25601, "simulator": 17952}
    return [f"{k} {got[k]} (Appendix B: {want[k]})" for k in want if got[k] != want[k]]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="hsrl data prepare's HDF5 (ML-1M)")
    ap.add_argument("--sid", required=True, help="hsrl sid build's HDF5 (its items' tokens)")
    ap.add_argument("--iters", type=int, default=200, help="timed iterations")
    ap.add_argument("--warmup", type=int, default=20, help="untimed iterations first")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--vocab", type=int, default=64, help="tokens per level of the heads")
    ap.add_argument("--slate", type=int, default=10)
    ap.add_argument("--env-batch", type=int, default=32)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    wrong = check_appendix_b()
    if wrong:
        print("reference_torch.py: parameter counts differ from reference-hsrl.md Appendix B: "
              + ", ".join(wrong), file=sys.stderr)
        sys.exit(1)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    try:
        with h5py.File(a.data, "r") as f:
            feat = torch.from_numpy(np.asarray(f["items/features"], dtype=np.float32))
            user_feat = torch.from_numpy(np.asarray(f["users/features"], dtype=np.float32))
            train = np.asarray(f["split/train"], dtype=np.int64)
            rec_user = torch.from_numpy(np.asarray(f["records/user"], dtype=np.int64)[train])
            rec_hist = torch.from_numpy(np.asarray(f["records/history"], dtype=np.int64)[train])
        with h5py.File(a.sid, "r") as f:
            tokens = torch.from_numpy(np.asarray(f["items/tokens"], dtype=np.int64))
    except (OSError, KeyError) as e:
        fail(f"cannot read {a.data} or {a.sid}: {e} (hsrl's files are zstd-compressed: set "
             "HDF5_PLUGIN_PATH to a build's plugins/ directory)")
    if tokens.shape[0] != feat.shape[0]:
        fail(f"{a.sid} has {tokens.shape[0]} items, {a.data} {feat.shape[0]}")
    levels, hist = tokens.shape[1], rec_hist.shape[1]
    n_items = feat.shape[0] - 1
    sid_table = tokens[1:]  # candidates are items 1..N
    feat_c = feat[1:]       # the replay's bug-faithful lookup: id 0 reads row N (reference 7.2)
    if rec_user.min() < 0 or rec_user.max() >= user_feat.shape[0]:
        fail(f"{a.data}: records/user outside users/features")

    actor = Policy(feat.shape[1], 32, hist, 2, 4, 128, levels, a.vocab)
    critic = TokenCritic(32)
    urm = UserResponse(user_feat.shape[1], feat.shape[1], user_feat.shape[0], n_items + 1)
    agent = Agent(actor, critic, sid_table, a.slate)
    env = Env(urm, feat, user_feat, rec_user, rec_hist, a.env_batch, a.slate)
    replay = Replay(100000, hist, a.slate, levels)

    def env_step(action):
        hist_now = env.hist.clone()
        r, done, clicks, next_hist = env.step(action)
        replay.add(hist_now, next_hist, action, sid_table[action - 1], clicks, r, done)

    # prefill (7.3): epsilon 1 makes every score uniform, so top-K is one fixed slate
    fixed = torch.arange(1, a.slate + 1).repeat(a.env_batch, 1)
    while replay.size < 2000:
        env_step(fixed)
    phases = {"act": [], "env": [], "update": [], "iteration": []}
    for i in range(a.warmup + a.iters):
        t0 = time.perf_counter()
        with torch.no_grad():
            action, _, _ = apply_policy(actor, feat[env.hist], sid_table, a.slate)
        t1 = time.perf_counter()
        env_step(action)
        t2 = time.perf_counter()
        agent.update(feat_c, replay, a.batch)
        t3 = time.perf_counter()
        if i >= a.warmup:
            for name, dt in (("act", t1 - t0), ("env", t2 - t1), ("update", t3 - t2),
                             ("iteration", t3 - t0)):
                phases[name].append(dt)
    print(f"parameters: policy {n_params(actor)}, critic {n_params(critic)}, simulator "
          f"{n_params(urm)} (at Appendix B's RL4RS shapes the modules have its counts: checked)")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), items {n_items}, "
          f"item features {feat.shape[1]}, user features {user_feat.shape[1]}, levels {levels}, "
          f"V {a.vocab}, K {a.slate}, B_env {a.env_batch}, B {a.batch}, H {hist}")
    for name, ts in phases.items():
        print(f"{name:10s} median {1e3 * statistics.median(ts):8.2f} ms")
    total = sum(phases["iteration"])
    print(f"iterations/s {len(phases['iteration']) / total:.3f} ({a.iters} timed iterations)")


if __name__ == "__main__":
    main()
