#!/usr/bin/env python3
"""The PyTorch baseline of the benchmarks: the same full SUPRA uptraining step in PyTorch, float32.

`npm run bench:train` and `npm run bench` run it (src/bench/pytorch.ts) when a python3 with torch is on the
machine (Debian: `apt-get install python3-torch`), so that supra's step is compared with PyTorch's timed in
the same run. Only the timing is used: the weights are PyTorch's own initialisation, the
tokens uniform random. What it computes is the step supra's Trainer computes (README, "The method"):
RMSNorm, the teacher's q/k/v/o, the kernel φ(x) = ReLU(W·x + b) (keys their own under GQA, before the kv
heads are repeated), RoPE (rotate_half) on φ(q), φ(k), causal linear attention with a fixed per-head decay
in the chunked form (64-token chunks, as supra's default), no denominator, GroupNorm per head, o_proj,
SwiGLU, the lm_head, cross-entropy with z-loss 1e-4, backward, clipping at 1, AdamW β (0.9, 0.95). It runs
supra's default SUPRA settings (lightning decay, no qk-norm, GroupNorm), whatever the config's "supra" section
says: those are the benchmark folders' settings, and they change no product.

    python3 bench/pytorch-step.py CONFIG_JSON BATCH SEQ STEPS [THREADS] [bf16]

With `bf16` the forward runs under torch.autocast("cpu", dtype=torch.bfloat16) (its products at BF16, the
weights and AdamW float32): PyTorch's counterpart of `supra train --matmul-precision bf16`, for comparison
by hand; the benchmarks time the float32 step.

prints one JSON line: {"tokensPerS", "secondsPerStep", "bestSecondsPerStep", "torch", "threads"} (STEPS steps timed
after one warm-up; tokensPerS from their mean). src/bench/pytorch.ts runs it with the settings it is fastest with.
"""
import json
import math
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

CHUNK = 64


def decay_slopes(n):
    """Lightning/ALiBi slopes, as src/layers/linear_attention.ts."""
    def power_of_two(m):
        return [2 ** (-8 * (h + 1) / m) for h in range(m)]
    if n & (n - 1) == 0:
        return power_of_two(n)
    p = 2 ** int(math.floor(math.log2(n)))
    return power_of_two(p) + power_of_two(2 * p)[0::2][: n - p]


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_half(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


class SupraAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        C, H, Hkv = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
        D = c.get("head_dim") or C // H
        self.H, self.Hkv, self.D = H, Hkv, D
        bias = bool(c.get("attention_bias", False))
        self.q_proj = nn.Linear(C, H * D, bias=bias)
        self.k_proj = nn.Linear(C, Hkv * D, bias=bias)
        self.v_proj = nn.Linear(C, Hkv * D, bias=bias)
        self.o_proj = nn.Linear(H * D, C, bias=bool(c.get("o_proj_bias", False)))
        self.q_kernel = nn.Linear(H * D, H * D)
        self.k_kernel = self.q_kernel if Hkv == H else nn.Linear(Hkv * D, Hkv * D)
        self.register_buffer("log_decay", -torch.tensor(decay_slopes(H)).view(H, 1, 1))

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        H, Hkv, D = self.H, self.Hkv, self.D
        q = F.relu(self.q_kernel(self.q_proj(x))).view(B, T, H, D).transpose(1, 2)
        k = F.relu(self.k_kernel(self.k_proj(x))).view(B, T, Hkv, D).transpose(1, 2)
        v = self.v_proj(x).view(B, T, Hkv, D).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(H // Hkv, dim=1)
        v = v.repeat_interleave(H // Hkv, dim=1)
        o = chunked_linear_attention(q / math.sqrt(D), k, v, self.log_decay)
        o = F.group_norm(o.transpose(1, 2).reshape(B * T, H * D), H, eps=1e-5).view(B, T, H * D)
        return self.o_proj(o)


def chunked_linear_attention(q, k, v, log_decay):
    """o_t = Σ_{s≤t} γ^(t−s) (q_t·k_s) v_s per head, in chunks of CHUNK tokens: within a chunk as masked
    products, across chunks through the carried state S (γ = exp(log_decay))."""
    B, H, T, D = q.shape
    L = min(CHUNK, T)
    n = -(-T // L)
    if n * L != T:  # a shorter last chunk: zeros after it change no earlier output (causal)
        q, k, v = (F.pad(t, (0, 0, 0, n * L - T)) for t in (q, k, v))
    q, k, v = (t.reshape(B, H, n, L, D) for t in (q, k, v))
    i = torch.arange(L, dtype=q.dtype)
    diff = i.view(L, 1) - i.view(1, L)
    mask = torch.where(diff >= 0, torch.exp(log_decay * diff.clamp(min=0)), torch.zeros(()))  # [H, L, L]
    q_decay = torch.exp(log_decay * (i + 1)).view(H, L, 1)      # γ^(i+1), the state's decay at row i
    k_decay = torch.exp(log_decay * (L - 1 - i)).view(H, L, 1)  # γ^(L−1−j), key j's decay at the chunk's end
    chunk_decay = torch.exp(log_decay * L)                      # γ^L
    intra = ((q @ k.transpose(-1, -2)) * mask.unsqueeze(1)) @ v
    state = q.new_zeros(B, H, D, D)
    outs = []
    for c in range(n):
        outs.append(intra[:, :, c] + (q[:, :, c] * q_decay) @ state)
        state = state * chunk_decay + (k[:, :, c] * k_decay).transpose(-1, -2) @ v[:, :, c]
    return torch.stack(outs, dim=2).reshape(B, H, n * L, D)[:, :, :T]


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        C, Fd, eps = c["hidden_size"], c["intermediate_size"], c.get("rms_norm_eps", 1e-5)
        self.input_layernorm = RMSNorm(C, eps)
        self.self_attn = SupraAttention(c)
        self.post_attention_layernorm = RMSNorm(C, eps)
        self.gate_proj = nn.Linear(C, Fd, bias=False)
        self.up_proj = nn.Linear(C, Fd, bias=False)
        self.down_proj = nn.Linear(Fd, C, bias=False)

    def forward(self, x, cos, sin):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin)
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Supra(nn.Module):
    def __init__(self, c):
        super().__init__()
        C, V = c["hidden_size"], c["vocab_size"]
        self.embed_tokens = nn.Embedding(V, C)
        self.layers = nn.ModuleList(Block(c) for _ in range(c["num_hidden_layers"]))
        self.norm = RMSNorm(C, c.get("rms_norm_eps", 1e-5))
        self.lm_head = nn.Linear(C, V, bias=False)
        if c.get("tie_word_embeddings", False):
            self.lm_head.weight = self.embed_tokens.weight
        H = c["num_attention_heads"]
        self.D = c.get("head_dim") or C // H
        self.theta = c.get("rope_theta", 10000.0)

    def forward(self, ids):
        T = ids.shape[1]
        inv = 1.0 / (self.theta ** (torch.arange(0, self.D, 2, dtype=torch.float32) / self.D))
        freqs = torch.outer(torch.arange(T, dtype=torch.float32), inv)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x, cos, sin)
        return self.lm_head(self.norm(x))


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    config_path, batch, seq, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    threads = int(sys.argv[5]) if len(sys.argv) > 5 else 2
    autocast = len(sys.argv) > 6 and sys.argv[6] == "bf16"
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    with open(config_path) as f:
        config = json.load(f)
    model = Supra(config)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1)
    V = config["vocab_size"]

    def step():
        ids = torch.randint(0, V, (batch, seq + 1))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            logits = model(ids[:, :-1]).view(-1, V)
        logits = logits.float()
        lse = torch.logsumexp(logits, -1)  # once, for the cross-entropy and the z-loss
        target = logits.gather(1, ids[:, 1:].reshape(-1, 1)).squeeze(1)
        loss = (lse - target).mean() + 1e-4 * lse.pow(2).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()  # warm-up
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    seconds = sum(times) / steps
    result = {"tokensPerS": batch * seq / seconds, "secondsPerStep": seconds, "bestSecondsPerStep": min(times),
              "torch": torch.__version__, "threads": threads}
    if autocast:
        result["autocast"] = "bf16"
    print(json.dumps(result))


if __name__ == "__main__":
    main()
