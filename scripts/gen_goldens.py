#!/usr/bin/python3
"""gen_goldens.py: writes the small PyTorch golden files of tests/golden/ (style.md, "Golden files").

Run ONCE with Debian's torch (python3-torch 1.13, python3-h5py) and commit the output:
    /usr/bin/python3 scripts/gen_goldens.py [OUT_DIR]        (default: tests/golden next to this script)
The C tests (tests/test_golden_torch.c) read only the committed files; Python is never needed at
test time. Everything is seeded, so a rerun on the same torch gives the same numbers.

Files (plain, uncompressed float32 / uint8 datasets; root attributes format_version = 1 and
description). For each layer: the inputs, every parameter, a random upstream gradient R, the
outputs and the gradients of the inputs and of every parameter from (out * R).sum().backward().
Modules run in train() mode with dropout 0.0, which also keeps torch off its inference fast path
(torch._transformer_encoder_layer_fwd / _native_multi_head_attention), so the math is the
standard one.

  mha.h5          nn.MultiheadAttention(E=8, h=2, batch_first=True), self-attention on x (B=2, T=5),
                  causal attn_mask + key_padding_mask with batch row 1 LEFT-padded by 2. Under the
                  causal mask its queries 0 and 1 see only padding: torch returns NaN there (and
                  NaN gradients everywhere); we define such rows as zero attention (output = b_o,
                  nn_mha.h). The golden is still torch's: the defined rows come from torch calls on
                  exactly those queries (queries 2..4 of row 1 with the matching mask rows), the
                  undefined rows are out_proj.bias in torch, and one backward through the sum of all
                  of them gives the gradients. The script checks the defined rows against torch's
                  single full call and that torch indeed gives NaN for the others.
  transformer.h5  nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, dropout=0.0,
                  batch_first=True, norm_first=False), B=2, T=5, causal src_mask + RIGHT-padded
                  src_key_padding_mask (row 1: positions 3, 4), so no query row is fully masked and
                  the module runs as one plain call. Group left_padded/: the same layer and x with
                  row 1 LEFT-padded by 2, composed from the layer's own submodules (self_attn,
                  norm1, linear1, linear2, norm2) as above for the undefined rows.
  layernorm.h5    nn.LayerNorm(7) on (5, 7) with random gamma and beta.
  adam.h5         torch.optim.Adam(lr=1e-3, weight_decay=1e-2) two steps on a 10-vector with given
                  gradients g1, g2: the parameters and the moments after each step.

Parameter names follow nn_transformer.h: attn/w_in (3E,E), attn/b_in, attn/w_o, attn/b_o, w1, b1,
w2, b2, ln1/gamma, ln1/beta, ln2/gamma, ln2/beta; "param/<name>" values, "grad/<name>" gradients.
"""
import os
import sys

import h5py
import numpy as np
import torch

FORMAT_VERSION = 1
SEED = 20240611


def f32(t):
    return np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32))


def u8(t):
    return np.ascontiguousarray(t.detach().cpu().numpy().astype(np.uint8))


def new_file(path, description):
    f = h5py.File(path, "w", libver=("v110", "latest"), track_order=False)
    f.attrs["format_version"] = np.int64(FORMAT_VERSION)
    f.attrs["description"] = np.bytes_(description)  # fixed-length, like io_h5 writes strings
    f.attrs["generator"] = np.bytes_("scripts/gen_goldens.py, torch " + torch.__version__)
    return f


def put(f, name, array):
    f.create_dataset(name, data=array, track_times=False)  # contiguous, uncompressed


def randomize_(module, scale=0.5):
    """Nonzero biases and LayerNorm affine parameters, so every gradient path matters."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("bias"):
                p.uniform_(-scale, scale)
            elif name.startswith("norm") and name.endswith("weight"):
                p.uniform_(1.0 - scale, 1.0 + scale)


TRANSFORMER_NAMES = [
    ("attn/w_in", "self_attn.in_proj_weight"),
    ("attn/b_in", "self_attn.in_proj_bias"),
    ("attn/w_o", "self_attn.out_proj.weight"),
    ("attn/b_o", "self_attn.out_proj.bias"),
    ("w1", "linear1.weight"),
    ("b1", "linear1.bias"),
    ("w2", "linear2.weight"),
    ("b2", "linear2.bias"),
    ("ln1/gamma", "norm1.weight"),
    ("ln1/beta", "norm1.bias"),
    ("ln2/gamma", "norm2.weight"),
    ("ln2/beta", "norm2.bias"),
]


def causal_mask(T):
    return torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)  # True = not allowed


def self_attention_defined(mha, x, causal, pad):
    """Self-attention output (B, T, E) of torch's mha, with rows whose keys are all masked set to
    zero attention (= out_proj.bias). Each batch row is one torch call on its defined queries."""
    B, T, E = x.shape
    rows = []
    for b in range(B):
        allowed = ~(causal | pad[b].unsqueeze(0))  # (T queries, T keys)
        defined = allowed.any(dim=1)
        first = int(torch.nonzero(defined)[0]) if defined.any() else T
        assert bool(defined[first:].all()), "undefined rows must be a prefix (left padding)"
        parts = []
        if first > 0:
            parts.append(mha.out_proj.bias.unsqueeze(0).expand(first, E))
        if first < T:
            o, _ = mha(x[b:b + 1, first:], x[b:b + 1], x[b:b + 1], attn_mask=causal[first:],
                       key_padding_mask=pad[b:b + 1], need_weights=False)
            parts.append(o[0])
        rows.append(torch.cat(parts, dim=0))
    return torch.stack(rows, dim=0), first


def gen_mha(out_dir):
    torch.manual_seed(SEED + 1)
    B, T, E, H = 2, 5, 8, 2
    mha = torch.nn.MultiheadAttention(E, H, dropout=0.0, batch_first=True)
    mha.train()
    randomize_(mha)
    x = torch.randn(B, T, E, requires_grad=True)
    causal = causal_mask(T)
    pad = torch.zeros(B, T, dtype=torch.bool)
    pad[1, :2] = True
    R = torch.randn(B, T, E)

    out, _ = self_attention_defined(mha, x, causal, pad)
    (out * R).sum().backward()

    # Sanity: torch's single full call agrees on the defined rows and is NaN on the others.
    with torch.no_grad():
        full, _ = mha(x, x, x, attn_mask=causal, key_padding_mask=pad, need_weights=False)
    assert torch.isnan(full[1, :2]).all(), "expected torch to give NaN for fully masked rows"
    assert torch.allclose(full[0], out[0], atol=1e-6) and torch.allclose(full[1, 2:], out[1, 2:], atol=1e-6)
    for t in (x.grad, mha.in_proj_weight.grad, mha.in_proj_bias.grad, mha.out_proj.weight.grad,
              mha.out_proj.bias.grad):
        assert torch.isfinite(t).all()

    with new_file(os.path.join(out_dir, "mha.h5"),
                  "torch.nn.MultiheadAttention(8, 2, batch_first=True) self-attention on x (2,5,8) "
                  "with causal attn_mask and key_padding_mask (row 1 left-padded by 2; its fully "
                  "masked queries 0,1 are zero attention = b_o); R upstream gradient; grads of "
                  "(out*R).sum()") as f:
        f.attrs["n_heads"] = np.int64(H)
        put(f, "x", f32(x))
        put(f, "causal", u8(causal))
        put(f, "key_padding", u8(pad))
        put(f, "param/w_in", f32(mha.in_proj_weight))
        put(f, "param/b_in", f32(mha.in_proj_bias))
        put(f, "param/w_o", f32(mha.out_proj.weight))
        put(f, "param/b_o", f32(mha.out_proj.bias))
        put(f, "R", f32(R))
        put(f, "out", f32(out))
        put(f, "dx", f32(x.grad))
        put(f, "grad/w_in", f32(mha.in_proj_weight.grad))
        put(f, "grad/b_in", f32(mha.in_proj_bias.grad))
        put(f, "grad/w_o", f32(mha.out_proj.weight.grad))
        put(f, "grad/b_o", f32(mha.out_proj.bias.grad))


def layer_params(layer):
    p = dict(layer.named_parameters())
    return [(ours, p[theirs]) for ours, theirs in TRANSFORMER_NAMES]


def gen_transformer(out_dir):
    torch.manual_seed(SEED + 2)
    B, T, E, H, F = 2, 5, 8, 2, 16
    layer = torch.nn.TransformerEncoderLayer(d_model=E, nhead=H, dim_feedforward=F, dropout=0.0,
                                             activation="relu", batch_first=True, norm_first=False)
    layer.train()
    randomize_(layer)
    names = [n for n, _ in layer.named_parameters()]
    assert names == [t for _, t in TRANSFORMER_NAMES], names
    x0 = torch.randn(B, T, E)
    causal = causal_mask(T)
    R = torch.randn(B, T, E)

    with new_file(os.path.join(out_dir, "transformer.h5"),
                  "torch.nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, "
                  "dropout=0.0, batch_first=True, norm_first=False) on x (2,5,8), causal src_mask "
                  "and right-padded key padding (row 1: 3,4); group left_padded: row 1 left-padded "
                  "by 2, fully masked queries as zero attention; grads of (out*R).sum()") as f:
        f.attrs["n_heads"] = np.int64(H)
        put(f, "causal", u8(causal))
        put(f, "R", f32(R))
        put(f, "x", f32(x0))
        for ours, p in layer_params(layer):
            put(f, "param/" + ours, f32(p))

        # 1. the module itself, right padding (no fully masked row)
        pad = torch.zeros(B, T, dtype=torch.bool)
        pad[1, 3:] = True
        x = x0.clone().requires_grad_(True)
        layer.zero_grad()
        out = layer(x, src_mask=causal, src_key_padding_mask=pad)
        (out * R).sum().backward()
        assert torch.isfinite(out).all()
        put(f, "key_padding", u8(pad))
        put(f, "out", f32(out))
        put(f, "dx", f32(x.grad))
        for ours, p in layer_params(layer):
            put(f, "grad/" + ours, f32(p.grad))

        # 2. left padding through the layer's submodules, zero attention for the undefined rows
        pad = torch.zeros(B, T, dtype=torch.bool)
        pad[1, :2] = True
        x = x0.clone().requires_grad_(True)
        layer.zero_grad()
        sa, _ = self_attention_defined(layer.self_attn, x, causal, pad)
        x1 = layer.norm1(x + sa)
        out = layer.norm2(x1 + layer.linear2(torch.relu(layer.linear1(x1))))
        (out * R).sum().backward()
        with torch.no_grad():  # the defined rows agree with the module's own forward
            ref = layer(x0, src_mask=causal, src_key_padding_mask=pad)
        assert torch.allclose(ref[0], out[0], atol=1e-5) and torch.allclose(ref[1, 2:], out[1, 2:], atol=1e-5)
        put(f, "left_padded/key_padding", u8(pad))
        put(f, "left_padded/out", f32(out))
        put(f, "left_padded/dx", f32(x.grad))
        for ours, p in layer_params(layer):
            put(f, "left_padded/grad/" + ours, f32(p.grad))


def gen_layernorm(out_dir):
    torch.manual_seed(SEED + 3)
    n, d = 5, 7
    ln = torch.nn.LayerNorm(d)  # eps 1e-5, biased variance
    with torch.no_grad():
        ln.weight.uniform_(0.5, 1.5)
        ln.bias.uniform_(-0.5, 0.5)
    x = (torch.randn(n, d) * 2.0 + 0.5).requires_grad_(True)
    R = torch.randn(n, d)
    out = ln(x)
    (out * R).sum().backward()
    with new_file(os.path.join(out_dir, "layernorm.h5"),
                  "torch.nn.LayerNorm(7) (eps 1e-5) on x (5,7); grads of (out*R).sum()") as f:
        put(f, "x", f32(x))
        put(f, "param/gamma", f32(ln.weight))
        put(f, "param/beta", f32(ln.bias))
        put(f, "R", f32(R))
        put(f, "out", f32(out))
        put(f, "dx", f32(x.grad))
        put(f, "grad/gamma", f32(ln.weight.grad))
        put(f, "grad/beta", f32(ln.bias.grad))


def gen_adam(out_dir):
    torch.manual_seed(SEED + 4)
    n = 10
    lr, wd = 1e-3, 1e-2
    p = torch.nn.Parameter(torch.randn(n))
    g1 = torch.randn(n)
    g2 = torch.randn(n) * 3.0
    g1[3] = 0.0  # a zero gradient: the update comes from weight decay alone
    g2[7] = 1e-4
    p0 = p.detach().clone()
    opt = torch.optim.Adam([p], lr=lr, weight_decay=wd)  # coupled L2, betas (0.9, 0.999), eps 1e-8
    steps = []
    for g in (g1, g2):
        p.grad = g.clone()
        opt.step()
        st = opt.state[p]
        steps.append((p.detach().clone(), st["exp_avg"].clone(), st["exp_avg_sq"].clone()))
    with new_file(os.path.join(out_dir, "adam.h5"),
                  "torch.optim.Adam(lr=1e-3, weight_decay=1e-2) two steps on a 10-vector: params0, "
                  "grads g1, g2; params, exp_avg (m), exp_avg_sq (v) after each step") as f:
        f.attrs["lr"] = np.float64(lr)
        f.attrs["weight_decay"] = np.float64(wd)
        f.attrs["beta1"] = np.float64(0.9)
        f.attrs["beta2"] = np.float64(0.999)
        f.attrs["eps"] = np.float64(1e-8)
        put(f, "params0", f32(p0))
        put(f, "g1", f32(g1))
        put(f, "g2", f32(g2))
        for k, (pk, mk, vk) in enumerate(steps, start=1):
            put(f, "step%d/params" % k, f32(pk))
            put(f, "step%d/m" % k, f32(mk))
            put(f, "step%d/v" % k, f32(vk))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "tests", "golden")
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(1)
    gen_mha(out_dir)
    gen_transformer(out_dir)
    gen_layernorm(out_dir)
    gen_adam(out_dir)
    for name in ("mha.h5", "transformer.h5", "layernorm.h5", "adam.h5"):
        path = os.path.join(out_dir, name)
        print("%s: %d bytes" % (os.path.normpath(path), os.path.getsize(path)))


if __name__ == "__main__":
    main()
