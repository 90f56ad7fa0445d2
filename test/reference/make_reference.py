#!/usr/bin/env python3
"""Write the independent reference fixtures test/test_reference.c checks against.

A tiny GPT-2 per attention kind, written here from the published definitions
(GPT-2: Radford et al. 2019; the attentions: ../../docs/attention.md, which
quotes the project's spec), with torch's own layer_norm, tanh-GELU, softmax,
cross_entropy and autograd, in float64. Nothing here is a port of the C code:
it shares only the parameter layout (docs/checkpoint-format.md), so that the
C test can load the same weights.

Regenerate (Debian's python3-torch; CI never needs it):

    python3 test/reference/make_reference.py test/reference

Each fixture NAME.ref (little-endian):
    char[8]  "HHREF1\\0\\0"
    int32    length of the config text, then the text (key = value lines,
             applied over the defaults)
    int32    B, T, V, n_params, n_buffers
    int32    tokens[B*T], targets[B*T]
    float64  params[n_params]    (wte without its padding rows: V rows, not Vp)
    float64  buffers[n_buffers]
    float64  loss, lm_loss, distill_loss
    float64  logits[B*T*V]
    float64  grads[n_params]     (same layout as params)
"""
import math
import struct
import sys

import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)

L, NH, C, T, B, V = 2, 2, 8, 8, 2, 23
HS = C // NH


def config_text(kind, extra):
    lines = {"attention": kind, "n_layer": L, "n_head": NH, "n_embd": C, "seq_len": T, "vocab_size": V,
             "attention_form": "quadratic", "chunk_size": 3}
    lines.update(extra)
    return "".join(f"{k} = {v}\n" for k, v in lines.items())


# ---------------------------------------------------------------------------
# Feature maps phi: head vectors (..., d) -> features (..., F), per kind.

def phi_elu(x, p):
    return F.elu(x) + 1


def phi_performer(x, p):
    W = p["W"]                        # (m, d)
    m, d = W.shape
    xs = x / d ** 0.25
    return m ** -0.5 * torch.exp(xs @ W.T - (xs * xs).sum(-1, keepdim=True) / 2)


def hedgehog_u(x, p, role, h):
    g = h if len(p["U"][role]) > 1 else 0    # one map per head, or one for all
    return x @ p["U"][role][g].T + p["b"][role][g]


def phi_hedgehog(variant):
    def phi(x, p, role, h):
        u = hedgehog_u(x, p, role, h)
        if variant == "exp":
            return torch.cat([torch.exp(u), torch.exp(-u)], -1)
        if variant == "softmax":
            return torch.cat([torch.softmax(u, -1), torch.softmax(-u, -1)], -1)
        return torch.softmax(torch.cat([u, -u], -1), -1)   # joint
    return phi


def phi_t2r(x, p, role, h):
    return F.relu(x @ p["W"].T + p["b"])


def linear_scores(kind, q, k, p, h):
    """n_ij = phi(q_i)·phi(k_j) for one head: q, k (T, d) -> (T, T)."""
    if kind == "taylor":      # phi(q)·phi(k) = 1 + s + s²/2, s = q·k/√d (the spec's own identity)
        s = q @ k.T / math.sqrt(HS)
        return 1 + s + s * s / 2
    if kind == "elu":
        return phi_elu(q, p) @ phi_elu(k, p).T
    if kind == "performer":
        return phi_performer(q, p) @ phi_performer(k, p).T
    if kind.startswith("hedgehog"):
        phi = phi_hedgehog(kind.split(":")[1])
        return phi(q, p, 0, h) @ phi(k, p, 1, h).T
    if kind == "t2r":
        return phi_t2r(q, p, 0, h) @ phi_t2r(k, p, 1, h).T
    raise ValueError(kind)


def attention(kind, q, k, v, p, h, distill):
    """One head: (T, d) each -> y (T, d), and the distillation term summed over rows."""
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    if kind == "softmax":
        s = (q @ k.T / math.sqrt(HS)).masked_fill(~causal, float("-inf"))
        return torch.softmax(s, -1) @ v, 0.0
    eps = 1e-6 if kind == "t2r" else 0.0
    n = linear_scores(kind, q, k, p, h).masked_fill(~causal, 0)
    A = n / (n.sum(-1, keepdim=True) + eps)
    term = 0.0
    if distill["weight"] > 0:
        # The teacher: softmax of the same q, k, held constant. The student's
        # q and k pass gradient only with distill_qk_grad = 1.
        s = (q @ k.T / math.sqrt(HS)).masked_fill(~causal, float("-inf"))
        P = torch.softmax(s, -1).detach()
        qs, ks = (q, k) if distill["qk_grad"] else (q.detach(), k.detach())
        ns = linear_scores(kind, qs, ks, p, h).masked_fill(~causal, 0)
        As = ns / (ns.sum(-1, keepdim=True) + eps)
        logA = torch.log(As.clamp_min(1e-300)).masked_fill(~causal, 0)
        term = -(P * logA).sum()
    return A @ v, term


def model(kind, params, tokens, targets, distill, lm_weight):
    x = params["wte"][tokens] + params["wpe"][:T]                # (B, T, C)
    total_distill = 0.0
    for l in range(L):
        blk = params["blocks"][l]
        h = F.layer_norm(x, (C,), blk["ln1w"], blk["ln1b"], eps=1e-5)
        qkv = h @ blk["qkvw"].T + blk["qkvb"]                    # (B, T, 3C)
        q, k, v = qkv.split(C, -1)
        heads = []
        for b in range(B):
            ys = []
            for hh in range(NH):
                sl = slice(hh * HS, (hh + 1) * HS)
                y, term = attention(kind, q[b, :, sl], k[b, :, sl], v[b, :, sl], blk["attn"], hh, distill)
                ys.append(y)
                total_distill = total_distill + term
            heads.append(torch.cat(ys, -1))
        x = x + torch.stack(heads) @ blk["attprojw"].T + blk["attprojb"]
        h = F.layer_norm(x, (C,), blk["ln2w"], blk["ln2b"], eps=1e-5)
        h = F.gelu(h @ blk["fcw"].T + blk["fcb"], approximate="tanh")
        x = x + h @ blk["fcprojw"].T + blk["fcprojb"]
    x = F.layer_norm(x, (C,), params["lnfw"], params["lnfb"], eps=1e-5)
    logits = x @ params["wte"].T                                  # the tied head, real vocabulary only
    lm = F.cross_entropy(logits.reshape(B * T, V), targets.reshape(B * T))
    distill_loss = total_distill / (L * B * NH * T) if distill["weight"] > 0 else torch.zeros(())
    return lm_weight * lm + distill["weight"] * distill_loss, lm, distill_loss, logits


# ---------------------------------------------------------------------------
# Weights, drawn here, laid out as the C model's parameter buffer.

def make_params(kind, g, per_head):
    def rnd(*shape, std):
        return (torch.randn(*shape, generator=g) * std).requires_grad_()

    def near(value, *shape, std):
        return (value + torch.randn(*shape, generator=g) * std).requires_grad_()

    # Small embeddings (GPT-2's 0.02) keep layernorm's ε significant; larger
    # weights inside make attention far from uniform.
    params = {"wte": rnd(V, C, std=0.02), "wpe": rnd(T, C, std=0.02), "blocks": []}
    for _ in range(L):
        blk = {"ln1w": near(1.0, C, std=0.1), "ln1b": rnd(C, std=0.1), "qkvw": rnd(3 * C, C, std=0.5),
               "qkvb": rnd(3 * C, std=0.1), "attprojw": rnd(C, C, std=0.3), "attprojb": rnd(C, std=0.1),
               "ln2w": near(1.0, C, std=0.1), "ln2b": rnd(C, std=0.1), "fcw": rnd(4 * C, C, std=0.5),
               "fcb": rnd(4 * C, std=0.1), "fcprojw": rnd(C, 4 * C, std=0.3), "fcprojb": rnd(C, std=0.1), "attn": {}}
        if kind.startswith("hedgehog"):
            pairs = NH if per_head else 1
            eye = torch.eye(HS)
            blk["attn"]["U"] = [[near(eye, HS, HS, std=0.2) for _ in range(pairs)] for _ in range(2)]
            blk["attn"]["b"] = [[rnd(HS, std=0.2) for _ in range(pairs)] for _ in range(2)]
        if kind == "t2r":
            # A positive bias keeps every pair's score above 0: where a ReLU map
            # scores 0, log A is −∞ and implementations may clamp it differently.
            blk["attn"]["W"] = rnd(HS, HS, std=HS ** -0.5)
            blk["attn"]["b"] = near(1.0, HS, std=0.1)
        if kind == "performer":
            m = round(HS * math.log(HS))
            blk["attn"]["W"] = torch.randn(m, HS, generator=g)   # a buffer: not trained
        params["blocks"].append(blk)
    params["lnfw"] = near(1.0, C, std=0.1)
    params["lnfb"] = rnd(C, std=0.1)
    return params


GPT2_TENSORS = ["ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb", "ln2w", "ln2b", "fcw", "fcb", "fcprojw", "fcprojb"]


def attn_tensors(kind, blk):
    """A layer's attention parameters in the C layout (docs/checkpoint-format.md)."""
    a = blk["attn"]
    if kind.startswith("hedgehog"):
        pairs = len(a["U"][0])
        us = [a["U"][r][g] for g in range(pairs) for r in range(2)]    # U_q, U_k of pair 0, then pair 1...
        bs = [a["b"][r][g] for g in range(pairs) for r in range(2)]
        return us + bs
    if kind == "t2r":
        return [a["W"], a["b"]]
    return []


def write_fixture(path, kind, extra, seed, distill, lm_weight=1.0):
    g = torch.Generator().manual_seed(seed)
    per_head = extra.get("hedgehog_per_head", 0) == 1
    params = make_params(kind, g, per_head)
    tokens = torch.randint(0, V, (B, T), generator=g)
    targets = torch.randint(0, V, (B, T), generator=g)
    loss, lm, dl, logits = model(kind, params, tokens, targets, distill, lm_weight)
    loss.backward()

    def flatten(grad):
        parts = [params["wte"], params["wpe"]]
        for name in GPT2_TENSORS:
            parts += [blk[name] for blk in params["blocks"]]
        parts += [params["lnfw"], params["lnfb"]]
        for blk in params["blocks"]:
            parts += attn_tensors(kind, blk)
        return torch.cat([(x.grad if grad else x).detach().reshape(-1) for x in parts])

    P, G = flatten(False), flatten(True)
    buffers = torch.cat([blk["attn"]["W"].reshape(-1) for blk in params["blocks"]]) if kind == "performer" else torch.zeros(0)
    cfg_extra = {k: v for k, v in extra.items()}
    if distill["weight"] > 0:
        cfg_extra.update({"distill_weight": distill["weight"], "distill_qk_grad": distill["qk_grad"]})
    if lm_weight != 1.0:
        cfg_extra["lm_weight"] = lm_weight
    name = kind.split(":")[0]
    if ":" in kind:
        cfg_extra["hedgehog_map"] = kind.split(":")[1]
    text = config_text(name, cfg_extra).encode()
    with open(path, "wb") as f:
        f.write(b"HHREF1\0\0")
        f.write(struct.pack("<i", len(text)) + text)
        f.write(struct.pack("<5i", B, T, V, P.numel(), buffers.numel()))
        f.write(struct.pack(f"<{B * T}i", *tokens.reshape(-1).tolist()))
        f.write(struct.pack(f"<{B * T}i", *targets.reshape(-1).tolist()))
        for arr in (P, buffers):
            f.write(struct.pack(f"<{arr.numel()}d", *arr.tolist()))
        f.write(struct.pack("<3d", float(loss), float(lm), float(dl)))
        f.write(struct.pack(f"<{logits.numel()}d", *logits.detach().reshape(-1).tolist()))
        f.write(struct.pack(f"<{G.numel()}d", *G.tolist()))
    print(f"{path}: {kind} {extra} distill {distill}: loss {float(loss):.12f}, {P.numel()} parameters")


CASES = [
    ("softmax", "softmax", {}, {"weight": 0, "qk_grad": 0}),
    ("elu", "elu", {}, {"weight": 0, "qk_grad": 0}),
    ("taylor", "taylor", {}, {"weight": 0, "qk_grad": 0}),
    ("performer", "performer", {}, {"weight": 0, "qk_grad": 0}),
    ("hedgehog", "hedgehog:exp", {}, {"weight": 0, "qk_grad": 0}),
    ("hedgehog-softmax", "hedgehog:softmax", {}, {"weight": 0, "qk_grad": 0}),
    ("hedgehog-joint", "hedgehog:joint", {}, {"weight": 0, "qk_grad": 0}),
    ("hedgehog-per-head", "hedgehog:exp", {"hedgehog_per_head": 1}, {"weight": 0, "qk_grad": 0}),
    ("t2r", "t2r", {}, {"weight": 0, "qk_grad": 0}),
    ("hedgehog-distill", "hedgehog:exp", {}, {"weight": 0.5, "qk_grad": 0}),
    ("t2r-distill-only", "t2r", {}, {"weight": 1.0, "qk_grad": 1}),
]

if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    for i, (name, kind, extra, distill) in enumerate(CASES):
        lm_weight = 0.0 if name.endswith("distill-only") else 1.0
        write_fixture(f"{out}/{name}.ref", kind, extra, 100 + i, distill, lm_weight)
