#!/usr/bin/python3
"""Trains hylo's built-in default model: a small Qwen3-Next (qwen3next GGUF) on the King James Bible.

Not part of the build or the tests: the trained file is committed (data/default-model/); this script
reproduces it. CPU only, Debian packages only (python3-torch, python3-numpy, python3-regex, and
bible-kjv for the text). Steps, each written into --out-dir:

  corpus     the KJV text from the `bible` program, split into training books and held-out books
  tokenizer  a byte-level BPE trained on the training books (Qwen2 pre-tokenizer, Qwen chat tokens)
  train      the model: Gated DeltaNet + gated attention 3:1, routed MoE with a gated shared expert,
             an MTP (NextN) block trained on the token after next, tied embeddings
  export     the GGUF (f16 matrices, f32 norms), reference logits and tokens for hylo's tests

    python3 scripts/train/train_default.py --out-dir data/default-model [--minutes 40] [--seed 1]

Deterministic for a given seed with one torch thread (the script sets it): the same run writes the
same file bit for bit. The forward pass follows the spec hylo implements (llama.cpp's qwen3next
graph): zero-centred norms are plain multipliers here, exactly as stored in the GGUF; the DeltaNet
recurrence is the chunked form (chunk 64), equal to the sequential one up to rounding.
"""
import argparse
import heapq
import json
import math
import os
import struct
import subprocess
import sys
import time

import numpy as np
import regex

# ----------------------------------------------------------------------------- configuration

CONFIG = dict(
    n_vocab=4096,          # byte-level BPE: 256 bytes + merges + special tokens
    n_embd=256,
    n_layer=4,             # D D D A (full_attention_interval 4)
    n_head=4, n_head_kv=2, head_dim=64, n_rot=16, rope_theta=10000.0,
    lin_k_heads=2, lin_v_heads=4, lin_head_dim=64, conv_kernel=4,
    n_expert=8, n_expert_used=2, n_ff_exp=256, n_ff_shexp=256,
    rms_eps=1e-6, n_ctx_train=4096,
)
CHUNK = 64                 # DeltaNet chunk length (training); sequences are a multiple of it

# Books kept out of training (held-out evaluation text), as the `bible` program abbreviates them.
HELDOUT_BOOKS = ["Ruth", "Est", "Jonah", "Gal", "Jas", "Phmn", "Jude"]

SPECIAL_TOKENS = [  # (text, GGUF token type): 3 = CONTROL, 4 = USER_DEFINED (always matched)
    ("<|endoftext|>", 3), ("<|im_start|>", 3), ("<|im_end|>", 3),
    ("<think>", 4), ("</think>", 4), ("<tool_call>", 4), ("</tool_call>", 4),
    ("<tool_response>", 4), ("</tool_response>", 4),
    ("<|fim_prefix|>", 3), ("<|fim_middle|>", 3), ("<|fim_suffix|>", 3), ("<|fim_pad|>", 3),
]

QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")

HERE = os.path.dirname(os.path.abspath(__file__))

# ----------------------------------------------------------------------------- corpus


def read_kjv(bible_prog):
    """Verses as (book, chapter, verse, text) from `bible -f` (one verse per line, 'Ge1:1 text')."""
    out = subprocess.run([bible_prog, "-f", "gen1:1-rev22:21"], check=True, capture_output=True).stdout
    verses = []
    pat = regex.compile(r"^([1-3]?[A-Za-z]+)(\d+):(\d+) (.*)$")
    for line in out.decode("ascii").splitlines():
        m = pat.match(line)
        if not m:
            raise SystemExit(f"unexpected line from {bible_prog}: {line!r}")
        verses.append((m.group(1), int(m.group(2)), int(m.group(3)), m.group(4).strip()))
    if len(verses) != 31102:
        raise SystemExit(f"expected 31,102 verses, got {len(verses)}")
    return verses


def chapters(verses):
    """[(book, chapter, [verse texts])] in order."""
    out = []
    for b, c, _, t in verses:
        if not out or out[-1][0] != b or out[-1][1] != c:
            out.append((b, c, []))
        out[-1][2].append(t)
    return out


def chapter_text(vs):
    return "\n".join(vs) + "\n"


# ----------------------------------------------------------------------------- tokenizer


def bytes_to_unicode():
    """GPT-2's byte -> printable code point table (spec 8.1 step 3)."""
    bs = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


B2U = bytes_to_unicode()
SPLIT = regex.compile(QWEN2_SPLIT)


def pieces(text):
    return ["".join(B2U[b] for b in p.encode("utf-8")) for p in SPLIT.findall(text)]


def train_bpe(text, n_merges):
    """Classic BPE on pre-tokenized words; ties broken by the pair's text (deterministic)."""
    counts = {}
    for p in pieces(text):
        counts[p] = counts.get(p, 0) + 1
    words = [list(w) for w in counts]
    freqs = list(counts.values())
    pair_count, where = {}, {}
    for i, w in enumerate(words):
        for a, b in zip(w, w[1:]):
            pair_count[(a, b)] = pair_count.get((a, b), 0) + freqs[i]
            where.setdefault((a, b), set()).add(i)
    # Max-heap of (-count, pair) with stale entries skipped: ties go to the smallest pair text.
    heap = [(-c, p) for p, c in pair_count.items()]
    heapq.heapify(heap)

    def bump(pair, delta):
        c = pair_count.get(pair, 0) + delta
        if c > 0:
            pair_count[pair] = c
            heapq.heappush(heap, (-c, pair))
        else:
            pair_count.pop(pair, None)

    merges = []
    while len(merges) < n_merges and heap:
        c, best = heapq.heappop(heap)
        if pair_count.get(best) != -c:
            continue
        merges.append(best)
        a, b = best
        ab = a + b
        for i in sorted(where.pop(best, ())):
            w, f = words[i], freqs[i]
            if not any(x == a and y == b for x, y in zip(w, w[1:])):
                continue
            for x, y in zip(w, w[1:]):
                bump((x, y), -f)
            j, nw = 0, []
            while j < len(w):
                if j + 1 < len(w) and w[j] == a and w[j + 1] == b:
                    nw.append(ab)
                    j += 2
                else:
                    nw.append(w[j])
                    j += 1
            words[i] = nw
            for x, y in zip(nw, nw[1:]):
                bump((x, y), f)
                where.setdefault((x, y), set()).add(i)
        pair_count.pop(best, None)
    return merges


class Tokenizer:
    """Encoder with llama.cpp's semantics: specials split first, qwen2 regex, rank-ordered merges."""

    def __init__(self, tokens, types, merges):
        self.tokens, self.types = tokens, types
        self.ids = {t: i for i, t in enumerate(tokens) if types[i] == 1}
        self.rank = {tuple(m.split(" ")): r for r, m in enumerate(merges)}
        self.special = sorted(((t, i) for i, t in enumerate(tokens) if types[i] in (3, 4)),
                              key=lambda x: -len(x[0]))
        self.special_re = regex.compile("|".join(regex.escape(t) for t, _ in self.special))
        self.special_id = {t: i for t, i in self.special}
        self.cache = {}

    def bpe(self, word):
        if word in self.cache:
            return self.cache[word]
        sym = list(word)
        while len(sym) > 1:
            best, bi = None, -1
            for i in range(len(sym) - 1):
                r = self.rank.get((sym[i], sym[i + 1]))
                if r is not None and (best is None or r < best):
                    best, bi = r, i
            if best is None:
                break
            sym[bi:bi + 2] = [sym[bi] + sym[bi + 1]]
        out = [self.ids[s] for s in sym]
        self.cache[word] = out
        return out

    def encode(self, text, special=True):
        out, pos = [], 0
        for m in self.special_re.finditer(text):
            if not special and self.types[self.special_id[m.group(0)]] == 3:
                continue
            for p in pieces(text[pos:m.start()]):
                out += self.bpe(p)
            out.append(self.special_id[m.group(0)])
            pos = m.end()
        for p in pieces(text[pos:]):
            out += self.bpe(p)
        return out

    def decode(self, ids):
        u2b = {u: b for b, u in B2U.items()}
        out = bytearray()
        for i in ids:
            t = self.tokens[i]
            if self.types[i] == 1:
                out += bytes(u2b[c] for c in t)
            else:
                out += t.encode("utf-8")
        return out.decode("utf-8", errors="replace")


def build_tokenizer(train_text, n_vocab):
    n_merges = n_vocab - 256 - len(SPECIAL_TOKENS)
    merges = train_bpe(train_text, n_merges)
    if len(merges) != n_merges:
        raise SystemExit(f"BPE stopped after {len(merges)} merges, {n_merges} wanted")
    tokens = [B2U[b] for b in range(256)] + [a + b for a, b in merges] + [t for t, _ in SPECIAL_TOKENS]
    types = [1] * (256 + len(merges)) + [ty for _, ty in SPECIAL_TOKENS]
    if len(set(tokens)) != len(tokens):
        raise SystemExit("duplicate tokens in the trained vocabulary")
    return Tokenizer(tokens, types, [f"{a} {b}" for a, b in merges])


# ----------------------------------------------------------------------------- data


def chat_example(rng, vs, tok):
    """A user turn with one verse and an assistant turn with the next one to three verses, rendered as
    the Qwen3 template renders a non-thinking answer."""
    i = int(rng.integers(0, len(vs) - 1))
    n = int(rng.integers(1, 4))
    user, answer = vs[i], " ".join(vs[i + 1:i + 1 + n])
    text = (f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
            f"{answer}<|im_end|>\n")
    return tok.encode(text)


def build_stream(chaps, tok, rng, chat_share):
    """Training token stream: every chapter as a document ending in <|endoftext|>, and after a share
    of them a short chat exchange built from that chapter's verses."""
    eot = tok.special_id["<|endoftext|>"]
    out = []
    for _, _, vs in chaps:
        out += tok.encode(chapter_text(vs), special=False)
        out.append(eot)
        if len(vs) > 1 and rng.random() < chat_share:
            out += chat_example(rng, vs, tok)
            out.append(eot)
    return np.asarray(out, dtype=np.int64)


# ----------------------------------------------------------------------------- model

def build_model(torch, cfg):
    nn, F = torch.nn, torch.nn.functional
    E, eps = cfg["n_embd"], cfg["rms_eps"]

    def rms(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w

    def linear(n_in, n_out, std=None):
        lin = nn.Linear(n_in, n_out, bias=False)
        nn.init.normal_(lin.weight, 0.0, std if std is not None else 1.0 / math.sqrt(n_in))
        return lin

    class Attention(nn.Module):
        """Gated full attention (spec 3.4): per head [query | gate] rows, QK-norm, partial NeoX RoPE."""

        def __init__(self):
            super().__init__()
            H, Hkv, hd = cfg["n_head"], cfg["n_head_kv"], cfg["head_dim"]
            self.H, self.Hkv, self.hd, self.n_rot = H, Hkv, hd, cfg["n_rot"]
            self.attn_q = linear(E, 2 * H * hd)
            self.attn_k = linear(E, Hkv * hd)
            self.attn_v = linear(E, Hkv * hd)
            self.attn_output = linear(H * hd, E, std=1.0 / math.sqrt(H * hd) / math.sqrt(2 * cfg["n_layer"]))
            self.attn_q_norm = nn.Parameter(torch.ones(hd))
            self.attn_k_norm = nn.Parameter(torch.ones(hd))
            half = self.n_rot // 2
            inv = cfg["rope_theta"] ** (-torch.arange(half, dtype=torch.float64) * 2.0 / self.n_rot)
            self.register_buffer("inv_freq", inv.float(), persistent=False)

        def rope(self, x, pos):  # x [B, T, h, hd]
            half = self.n_rot // 2
            ang = pos[:, None].float() * self.inv_freq[None, :]          # [T, half]
            cos, sin = ang.cos()[None, :, None, :], ang.sin()[None, :, None, :]
            a, b, rest = x[..., :half], x[..., half:self.n_rot], x[..., self.n_rot:]
            return torch.cat([a * cos - b * sin, a * sin + b * cos, rest], dim=-1)

        def forward(self, a, pos):
            B, T, _ = a.shape
            P = self.attn_q(a).view(B, T, self.H, 2 * self.hd)
            q, gate = P[..., :self.hd], P[..., self.hd:]
            k = self.attn_k(a).view(B, T, self.Hkv, self.hd)
            v = self.attn_v(a).view(B, T, self.Hkv, self.hd)
            q = self.rope(rms(q, self.attn_q_norm), pos)
            k = self.rope(rms(k, self.attn_k_norm), pos)
            rep = self.H // self.Hkv                                        # kv head = h // rep
            k = k.repeat_interleave(rep, dim=2)
            v = v.repeat_interleave(rep, dim=2)
            s = (q.transpose(1, 2) @ k.permute(0, 2, 3, 1)) / math.sqrt(self.hd)   # [B, H, T, T]
            s = s.masked_fill(~torch.tril(torch.ones(T, T, dtype=torch.bool)), float("-inf"))
            o = (torch.softmax(s, dim=-1) @ v.transpose(1, 2)).transpose(1, 2).reshape(B, T, self.H * self.hd)
            return self.attn_output(o * torch.sigmoid(gate.reshape(B, T, self.H * self.hd)))

    class DeltaNet(nn.Module):
        """Gated DeltaNet (spec 3.5), split input projection, ba rows grouped per key head."""

        def __init__(self):
            super().__init__()
            self.Hk, self.Hv, self.d = cfg["lin_k_heads"], cfg["lin_v_heads"], cfg["lin_head_dim"]
            self.K = cfg["conv_kernel"]
            self.key_dim, self.value_dim = self.Hk * self.d, self.Hv * self.d
            self.conv_dim = 2 * self.key_dim + self.value_dim
            self.attn_qkv = linear(E, self.conv_dim)
            self.attn_gate = linear(E, self.value_dim)
            self.ssm_ba = linear(E, 2 * self.Hv)
            self.ssm_conv1d = nn.Parameter(torch.randn(self.conv_dim, self.K) / math.sqrt(self.K))
            dt = torch.exp(torch.empty(self.Hv).uniform_(math.log(1e-3), math.log(1e-1)))
            self.ssm_dt = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # softplus^-1(dt)
            self.A_log = nn.Parameter(torch.log(torch.empty(self.Hv).uniform_(1.0, 16.0)))
            self.ssm_norm = nn.Parameter(torch.ones(self.d))
            self.ssm_out = linear(self.value_dim, E, std=1.0 / math.sqrt(self.value_dim) / math.sqrt(2 * cfg["n_layer"]))

        def forward(self, a, pos):
            B, T, _ = a.shape
            Hk, Hv, d, r = self.Hk, self.Hv, self.d, self.Hv // self.Hk
            m = self.attn_qkv(a)                                            # [B, T, conv_dim]
            z = self.attn_gate(a).view(B, T, Hv, d)
            ba = self.ssm_ba(a).view(B, T, Hk, 2 * r)                       # per key head [b (r) | a (r)]
            beta = torch.sigmoid(ba[..., :r].reshape(B, T, Hv))
            g = -torch.exp(self.A_log) * F.softplus(ba[..., r:].reshape(B, T, Hv) + self.ssm_dt)
            y = F.conv1d(F.pad(m.transpose(1, 2), (self.K - 1, 0)), self.ssm_conv1d[:, None, :],
                         groups=self.conv_dim)
            y = F.silu(y).transpose(1, 2)                                   # [B, T, conv_dim]
            q = y[..., :self.key_dim].reshape(B, T, Hk, d)
            k = y[..., self.key_dim:2 * self.key_dim].reshape(B, T, Hk, d)
            v = y[..., 2 * self.key_dim:].reshape(B, T, Hv, d)
            q = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-6) / math.sqrt(d)
            k = k / k.norm(dim=-1, keepdim=True).clamp_min(1e-6)
            q = q.repeat_interleave(r, dim=2)                               # value head j uses key head j // r
            k = k.repeat_interleave(r, dim=2)
            o = gated_delta_chunked(torch, q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                    g.transpose(1, 2), beta.transpose(1, 2))
            o = rms(o.transpose(1, 2), self.ssm_norm) * F.silu(z)
            return self.ssm_out(o.reshape(B, T, Hv * d))

    class MoE(nn.Module):
        """Softmax router, top-k renormalised, SwiGLU experts, sigmoid-gated shared expert (spec 3.7)."""

        def __init__(self):
            super().__init__()
            ne, ff, sff = cfg["n_expert"], cfg["n_ff_exp"], cfg["n_ff_shexp"]
            self.k = cfg["n_expert_used"]
            self.ffn_gate_inp = linear(E, ne)
            out_std = 1.0 / math.sqrt(2 * cfg["n_layer"])
            self.ffn_gate_exps = nn.Parameter(torch.randn(ne, ff, E) / math.sqrt(E))
            self.ffn_up_exps = nn.Parameter(torch.randn(ne, ff, E) / math.sqrt(E))
            self.ffn_down_exps = nn.Parameter(torch.randn(ne, E, ff) / math.sqrt(ff) * out_std)
            self.ffn_gate_inp_shexp = linear(E, 1)
            self.ffn_gate_shexp = linear(E, sff)
            self.ffn_up_shexp = linear(E, sff)
            self.ffn_down_shexp = linear(sff, E, std=1.0 / math.sqrt(sff) * out_std)

        def forward(self, f):
            B, T, _ = f.shape
            x = f.reshape(B * T, E)
            p = torch.softmax(self.ffn_gate_inp(x), dim=-1)
            topv, topi = p.topk(self.k, dim=-1)
            w = topv / topv.sum(-1, keepdim=True).clamp_min(6.103515625e-5)
            y = torch.zeros_like(x)
            for e in range(p.shape[1]):
                rows, slot = (topi == e).nonzero(as_tuple=True)
                if rows.numel() == 0:
                    continue
                xe = x[rows]
                h = F.silu(xe @ self.ffn_gate_exps[e].t()) * (xe @ self.ffn_up_exps[e].t())
                y = y.index_add(0, rows, (h @ self.ffn_down_exps[e].t()) * w[rows, slot][:, None])
            s = torch.sigmoid(self.ffn_gate_inp_shexp(x))
            y = y + s * self.ffn_down_shexp(F.silu(self.ffn_gate_shexp(x)) * self.ffn_up_shexp(x))
            # Switch-style balance loss: fraction routed to each expert times its mean probability.
            frac = torch.zeros(p.shape[1]).index_add(0, topi.reshape(-1), torch.ones(topi.numel())) / topi.numel()
            self.aux = p.shape[1] * (frac * p.mean(0)).sum()
            return y.view(B, T, E)

    class Block(nn.Module):
        def __init__(self, recurrent):
            super().__init__()
            self.attn_norm = nn.Parameter(torch.ones(E))
            self.post_attention_norm = nn.Parameter(torch.ones(E))
            self.mixer = DeltaNet() if recurrent else Attention()
            self.moe = MoE()

        def forward(self, x, pos):
            h = x + self.mixer(rms(x, self.attn_norm), pos)
            return h + self.moe(rms(h, self.post_attention_norm))

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.token_embd = nn.Parameter(torch.randn(cfg["n_vocab"], E) * 0.02)
            self.blocks = nn.ModuleList([Block((il + 1) % 4 != 0) for il in range(cfg["n_layer"])])
            self.output_norm = nn.Parameter(torch.ones(E))
            # MTP (NextN): c = eh_proj [enorm(embedding of token p) | hnorm(trunk hidden of p - 1)],
            # one full-attention block, shared_head_norm, the tied LM head (spec 5.3).
            self.mtp = Block(False)
            self.eh_proj = linear(2 * E, E)
            self.enorm = nn.Parameter(torch.ones(E))
            self.hnorm = nn.Parameter(torch.ones(E))
            self.shared_head_norm = nn.Parameter(torch.ones(E))

        def forward(self, tokens):
            """tokens [B, T] -> trunk logits [B, T, V] (next token), MTP logits [B, T, V] (row p pairs
            token p with the trunk's hidden of p - 1, zeros for p = 0, and predicts token p + 1)."""
            B, T = tokens.shape
            pos = torch.arange(T)
            x = self.token_embd[tokens]
            for blk in self.blocks:
                x = blk(x, pos)
            hn = rms(x, self.output_norm)                                   # h_nextn
            logits = hn @ self.token_embd.t()
            hprev = torch.cat([torch.zeros(B, 1, E), hn[:, :-1]], dim=1)
            c = self.eh_proj(torch.cat([rms(self.token_embd[tokens], self.enorm), rms(hprev, self.hnorm)], -1))
            hm = rms(self.mtp(c, pos), self.shared_head_norm)
            return logits, hm @ self.token_embd.t()

        def aux_loss(self):
            return sum(b.moe.aux for b in self.blocks) + self.mtp.moe.aux

    return Model()


def gated_delta_chunked(torch, q, k, v, g, beta, C=CHUNK):
    """Chunked gated delta rule (spec 3.6). q, k [B, H, T, dk] (q already / sqrt(dk)), v [B, H, T, dv],
    g (log decay), beta [B, H, T]; T a multiple of C. Returns o [B, H, T, dv]."""
    B, H, T, dk = q.shape
    dv = v.shape[-1]
    pad = -T % C
    if pad:  # zero rows (g = 0, beta = 0, q = k = v = 0) change nothing before them; cut afterwards
        F = torch.nn.functional
        o = gated_delta_chunked(torch, *(F.pad(x, (0, 0, 0, pad)) for x in (q, k, v)),
                                F.pad(g, (0, pad)), F.pad(beta, (0, pad)), C)
        return o[:, :, :T]
    n = T // C
    q, k, v = (x.reshape(B, H, n, C, x.shape[-1]) for x in (q, k, v))
    g, beta = g.reshape(B, H, n, C), beta.reshape(B, H, n, C)
    gam = g.cumsum(-1)                                                      # restarts every chunk
    incl = torch.tril(torch.ones(C, C, dtype=torch.bool))
    L = torch.exp((gam[..., :, None] - gam[..., None, :]).masked_fill(~incl, float("-inf")))
    kb, vb = k * beta[..., None], v * beta[..., None]
    A = (kb @ k.transpose(-1, -2)) * L * torch.tril(torch.ones(C, C), -1)
    eye = torch.eye(C).expand(B, H, n, C, C)
    Tinv = torch.linalg.solve_triangular(eye + A, eye, upper=False, unitriangular=True)
    U = Tinv @ vb
    W = Tinv @ (kb * torch.exp(gam)[..., None])
    P = (q @ k.transpose(-1, -2)) * L
    S = torch.zeros(B, H, dk, dv)
    outs = []
    for c in range(n):
        Vn = U[:, :, c] - W[:, :, c] @ S
        outs.append((q[:, :, c] * torch.exp(gam[:, :, c])[..., None]) @ S + P[:, :, c] @ Vn)
        glast = gam[:, :, c, -1]
        S = torch.exp(glast)[..., None, None] * S + \
            (k[:, :, c] * torch.exp(glast[..., None] - gam[:, :, c])[..., None]).transpose(-1, -2) @ Vn
    return torch.stack(outs, dim=2).reshape(B, H, T, dv)


def gated_delta_sequential(torch, q, k, v, g, beta):
    """The recurrence of spec 3.5.4, token by token (a check of the chunked form)."""
    B, H, T, dk = q.shape
    S = torch.zeros(B, H, dk, v.shape[-1])
    outs = []
    for t in range(T):
        S = torch.exp(g[:, :, t])[..., None, None] * S
        e = (S * k[:, :, t, :, None]).sum(-2)
        delta = beta[:, :, t, None] * (v[:, :, t] - e)
        S = S + k[:, :, t, :, None] * delta[:, :, None, :]
        outs.append((S * q[:, :, t, :, None]).sum(-2))
    return torch.stack(outs, dim=2)


# ----------------------------------------------------------------------------- GGUF


class Gguf:
    """Minimal GGUF v3 writer: metadata in order, f32 / f16 tensors, 32-byte alignment."""
    U32, I32, F32, BOOL, STR, ARR = 4, 5, 6, 7, 8, 9

    def __init__(self):
        self.kv, self.tensors = [], []

    @staticmethod
    def s(x):
        b = x.encode("utf-8")
        return struct.pack("<Q", len(b)) + b

    def add(self, key, vtype, val, sub=None):
        self.kv.append((key, vtype, val, sub))

    def tensor(self, name, arr, f16):
        """arr: numpy array in PyTorch order (outermost first); GGUF ne is its shape reversed."""
        arr = np.ascontiguousarray(arr, dtype=np.float16 if f16 else np.float32)
        self.tensors.append((name, list(reversed(arr.shape)), 1 if f16 else 0, arr.tobytes()))

    def value(self, t, v):
        return {self.U32: lambda: struct.pack("<I", v), self.I32: lambda: struct.pack("<i", v),
                self.F32: lambda: struct.pack("<f", v), self.BOOL: lambda: struct.pack("<B", int(v)),
                self.STR: lambda: self.s(v)}[t]()

    def write(self, path):
        out = [b"GGUF", struct.pack("<IQQ", 3, len(self.tensors), len(self.kv))]
        for key, t, v, sub in self.kv:
            out += [self.s(key), struct.pack("<I", t)]
            if t == self.ARR:
                out.append(struct.pack("<IQ", sub, len(v)) + b"".join(self.value(sub, x) for x in v))
            else:
                out.append(self.value(t, v))
        off = 0
        for name, ne, ty, data in self.tensors:
            out.append(self.s(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne)
                       + struct.pack("<IQ", ty, off))
            off += (len(data) + 31) // 32 * 32
        head = b"".join(out)
        blob = [head, b"\0" * (-len(head) % 32)]
        for _, _, _, data in self.tensors:
            blob += [data, b"\0" * (-len(data) % 32)]
        with open(path + ".tmp", "wb") as f:
            f.write(b"".join(blob))
        os.replace(path + ".tmp", path)


def export_gguf(model, cfg, tok, path, f16, name, template):
    g = Gguf()
    a = "qwen3next."
    g.add("general.architecture", g.STR, "qwen3next")
    g.add("general.type", g.STR, "model")
    g.add("general.name", g.STR, name)
    g.add("general.license", g.STR, "apache-2.0")
    g.add("general.file_type", g.U32, 1 if f16 else 0)
    g.add("general.alignment", g.U32, 32)
    for key, val in [("vocab_size", cfg["n_vocab"]), ("block_count", cfg["n_layer"] + 1),
                     ("nextn_predict_layers", 1), ("context_length", cfg["n_ctx_train"]),
                     ("embedding_length", cfg["n_embd"]), ("feed_forward_length", cfg["n_ff_exp"]),
                     ("attention.head_count", cfg["n_head"]), ("attention.head_count_kv", cfg["n_head_kv"]),
                     ("attention.key_length", cfg["head_dim"]), ("attention.value_length", cfg["head_dim"]),
                     ("expert_count", cfg["n_expert"]), ("expert_used_count", cfg["n_expert_used"]),
                     ("expert_feed_forward_length", cfg["n_ff_exp"]),
                     ("expert_shared_feed_forward_length", cfg["n_ff_shexp"]),
                     ("rope.dimension_count", cfg["n_rot"]), ("ssm.conv_kernel", cfg["conv_kernel"]),
                     ("ssm.state_size", cfg["lin_head_dim"]), ("ssm.group_count", cfg["lin_k_heads"]),
                     ("ssm.time_step_rank", cfg["lin_v_heads"]),
                     ("ssm.inner_size", cfg["lin_head_dim"] * cfg["lin_v_heads"]),
                     ("full_attention_interval", 4)]:
        g.add(a + key, g.U32, val)
    g.add(a + "rope.freq_base", g.F32, cfg["rope_theta"])
    g.add(a + "attention.layer_norm_rms_epsilon", g.F32, cfg["rms_eps"])
    g.add("tokenizer.ggml.model", g.STR, "gpt2")
    g.add("tokenizer.ggml.pre", g.STR, "qwen2")
    g.add("tokenizer.ggml.tokens", g.ARR, tok.tokens, g.STR)
    g.add("tokenizer.ggml.token_type", g.ARR, tok.types, g.I32)
    g.add("tokenizer.ggml.merges", g.ARR, [" ".join(k) for k, _ in sorted(tok.rank.items(), key=lambda x: x[1])],
          g.STR)
    g.add("tokenizer.ggml.eos_token_id", g.U32, tok.special_id["<|im_end|>"])
    g.add("tokenizer.ggml.padding_token_id", g.U32, tok.special_id["<|endoftext|>"])
    g.add("tokenizer.ggml.bos_token_id", g.U32, tok.special_id["<|endoftext|>"])
    g.add("tokenizer.ggml.add_bos_token", g.BOOL, False)
    g.add("tokenizer.chat_template", g.STR, template)

    def W(name, t):  # matrices in the weight type, everything 1-D (and the router) f32
        g.tensor(name, t.detach().numpy(), f16 and t.dim() >= 2 and "gate_inp" not in name)

    W("token_embd.weight", model.token_embd)
    W("output_norm.weight", model.output_norm)

    def block(il, b):
        p = f"blk.{il}."
        W(p + "attn_norm.weight", b.attn_norm)
        W(p + "post_attention_norm.weight", b.post_attention_norm)
        m = b.mixer
        if hasattr(m, "attn_qkv"):
            W(p + "attn_qkv.weight", m.attn_qkv.weight)
            W(p + "attn_gate.weight", m.attn_gate.weight)
            W(p + "ssm_ba.weight", m.ssm_ba.weight)
            g.tensor(p + "ssm_conv1d.weight", m.ssm_conv1d.detach().numpy(), False)
            W(p + "ssm_dt.bias", m.ssm_dt)
            W(p + "ssm_a", -torch_exp(m.A_log))
            W(p + "ssm_norm.weight", m.ssm_norm)
            W(p + "ssm_out.weight", m.ssm_out.weight)
        else:
            for n in ("attn_q", "attn_k", "attn_v", "attn_output"):
                W(p + n + ".weight", getattr(m, n).weight)
            W(p + "attn_q_norm.weight", m.attn_q_norm)
            W(p + "attn_k_norm.weight", m.attn_k_norm)
        e = b.moe
        W(p + "ffn_gate_inp.weight", e.ffn_gate_inp.weight)
        for n in ("ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"):
            W(p + n + ".weight", getattr(e, n))
        W(p + "ffn_gate_inp_shexp.weight", e.ffn_gate_inp_shexp.weight.reshape(-1))
        for n in ("ffn_gate_shexp", "ffn_up_shexp", "ffn_down_shexp"):
            W(p + n + ".weight", getattr(e, n).weight)

    for il, b in enumerate(model.blocks):
        block(il, b)
    L = cfg["n_layer"]
    block(L, model.mtp)
    W(f"blk.{L}.nextn.eh_proj.weight", model.eh_proj.weight)
    W(f"blk.{L}.nextn.enorm.weight", model.enorm)
    W(f"blk.{L}.nextn.hnorm.weight", model.hnorm)
    W(f"blk.{L}.nextn.shared_head_norm.weight", model.shared_head_norm)
    g.write(path)


def torch_exp(t):
    return t.detach().exp()


# ----------------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--bible", default="bible", help="the bible program (Debian package bible-kjv)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--minutes", type=float, default=0,
                    help="stop early after this much training time (the step it stopped at is in the summary)")
    ap.add_argument("--stop-step", type=int, default=0,
                    help="stop after this step (the schedule still spans --steps): repeats a run cut by --minutes")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=128, help="training sequence length (multiple of 64)")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--mtp-weight", type=float, default=0.5)
    ap.add_argument("--f32", action="store_true", help="write f32 matrices (default f16)")
    ap.add_argument("--check", action="store_true", help="also check the chunked DeltaNet against the recurrence")
    ap.add_argument("--export-from", metavar="CKPT", help="skip training: export the checkpoint a run saved")
    args = ap.parse_args()

    import torch
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(args.seed)
    os.makedirs(args.out_dir, exist_ok=True)
    out = lambda name: os.path.join(args.out_dir, name)

    if args.check:
        B, H, T, d = 2, 3, 128, 16
        q, k = torch.randn(B, H, T, d), torch.nn.functional.normalize(torch.randn(B, H, T, d), dim=-1)
        v, g, beta = torch.randn(B, H, T, d), -torch.rand(B, H, T), torch.rand(B, H, T)
        diff = (gated_delta_chunked(torch, q, k, v, g, beta) - gated_delta_sequential(torch, q, k, v, g, beta)).abs().max()
        print(f"chunked vs sequential delta rule: max |diff| {diff:.2e}")
        if diff > 1e-4:
            raise SystemExit("chunked delta rule disagrees with the recurrence")

    # Corpus and held-out split.
    t0 = time.time()
    chaps = chapters(read_kjv(args.bible))
    train = [c for c in chaps if c[0] not in HELDOUT_BOOKS]
    held = [c for c in chaps if c[0] in HELDOUT_BOOKS]
    heldout_text = "".join(chapter_text(vs) for _, _, vs in held)
    with open(out("heldout.txt"), "w", encoding="utf-8") as f:
        f.write(heldout_text)
    train_text = "".join(chapter_text(vs) for _, _, vs in train)
    print(f"corpus: {len(train)} training chapters ({len(train_text)} bytes), {len(held)} held-out "
          f"({len(heldout_text)} bytes)")

    tok = build_tokenizer(train_text, CONFIG["n_vocab"])
    stream = build_stream(train, tok, rng, chat_share=0.25)
    held_ids = tok.encode(heldout_text, special=False)
    np.save(out("heldout-tokens.npy"), np.asarray(held_ids, dtype=np.int32))
    print(f"tokenizer: {len(tok.tokens)} tokens, {len(stream)} training tokens "
          f"({len(train_text) / len(stream):.2f} bytes/token), {len(held_ids)} held-out tokens "
          f"[{time.time() - t0:.0f} s]", flush=True)

    model = build_model(torch, CONFIG)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {n_params / 1e6:.2f} M parameters", flush=True)
    F = torch.nn.functional
    T, B = args.seq, args.batch
    V = CONFIG["n_vocab"]
    held_t = torch.from_numpy(np.asarray(held_ids[:(len(held_ids) - 1) // T * T + 1], dtype=np.int64))

    def evaluate(n_seq=16):
        model.eval()
        with torch.no_grad():
            x = held_t[:n_seq * T + 1]
            xs = x[:-1].view(n_seq, T)
            ys = x[1:].view(n_seq, T)
            lt, lm = model(xs)
            a = F.cross_entropy(lt.reshape(-1, V), ys.reshape(-1)).item()
            b = F.cross_entropy(lm.reshape(-1, V), ys.reshape(-1)).item()  # MTP row p predicts token p + 1
        model.train()
        return a, b

    if args.export_from:
        ck = torch.load(args.export_from)
        model.load_state_dict(ck["model"])
        step, seen, ema, train_seconds = ck["step"], ck["seen"], ck["ema"], ck["seconds"]
    else:
        with open(out("train-log.tsv"), "w") as log:
            step, seen, ema, train_seconds = train_loop(torch, args, model, stream, rng, evaluate, log, out)

    # Export: weights rounded to the file's type, so that the reference logits are those of the file.
    f16 = not args.f32
    if f16:
        with torch.no_grad():
            for n, p in model.named_parameters():
                if p.dim() >= 2 and "ffn_gate_inp" not in n and "ssm_conv1d" not in n:
                    p.copy_(p.half().float())
    with open(os.path.join(HERE, "chat_template.jinja"), encoding="utf-8") as f:
        template = f.read()
    gguf_path = out("hylo-default.gguf")
    export_gguf(model, CONFIG, tok, gguf_path, f16, "hylo-default-kjv-qwen3next-11m", template)
    write_references(torch, model, tok, held_t, out, T)
    held_ppl = evaluate_perplexity(torch, model, held_t, 256)
    summary = dict(config=CONFIG, seed=args.seed, steps=args.steps, stopped_at_step=step, batch=B, seq=T, lr=args.lr,
                   train_seconds=round(train_seconds), tokens_seen=seen, params=n_params,
                   final_train_loss=round(ema, 4), weights="f16" if f16 else "f32",
                   heldout_ppl_ctx256=held_ppl, heldout_tokens=len(held_ids),
                   torch=torch.__version__)
    with open(out("train-summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps(summary, indent=1))


def train_loop(torch, args, model, stream, rng, evaluate, log, out):
    """The training loop; saves a checkpoint every 50 steps. Returns step, tokens, loss, seconds."""
    F = torch.nn.functional
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
    T, B, V = args.seq, args.batch, CONFIG["n_vocab"]
    log.write("step\tseconds\ttokens\ttrain_loss\tmtp_loss\theldout_loss\theldout_mtp_loss\n")
    t_start, seen, ema = time.time(), 0, None
    warm = max(1, min(100, args.steps // 10))
    for step in range(1, args.steps + 1):
        # Linear warm-up, cosine decay to a tenth.
        lr = args.lr * min(1.0, step / warm) * (0.1 + 0.45 * (1 + math.cos(math.pi * step / args.steps)))
        for pg in opt.param_groups:
            pg["lr"] = lr
        starts = rng.integers(0, len(stream) - T - 1, size=B)
        batch = torch.from_numpy(np.stack([stream[s:s + T + 1] for s in starts]))
        x, y = batch[:, :-1], batch[:, 1:]
        lt, lm = model(x)
        loss_t = F.cross_entropy(lt.reshape(-1, V), y.reshape(-1))
        loss_m = F.cross_entropy(lm.reshape(-1, V), y.reshape(-1))  # MTP row p: token p + 1 from hidden p - 1
        loss = loss_t + args.mtp_weight * loss_m + 0.01 * model.aux_loss()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        seen += B * T
        ema = loss_t.item() if ema is None else 0.95 * ema + 0.05 * loss_t.item()
        elapsed = time.time() - t_start
        last = step in (args.steps, args.stop_step) or bool(args.minutes and elapsed > args.minutes * 60)
        if step % 25 == 0 or last:
            ht, hm = evaluate() if (step % 100 == 0 or last) else (float("nan"), float("nan"))
            log.write(f"{step}\t{elapsed:.0f}\t{seen}\t{ema:.4f}\t{loss_m.item():.4f}\t{ht:.4f}\t{hm:.4f}\n")
            log.flush()
            print(f"step {step} {elapsed:.0f}s tokens {seen} loss {ema:.3f} mtp {loss_m.item():.3f} "
                  f"held-out {ht:.3f}/{hm:.3f} lr {lr:.2e}", flush=True)
            torch.save(dict(model=model.state_dict(), step=step, seen=seen, ema=ema, seconds=elapsed),
                       out("checkpoint.pt"))
        if last:
            break
    return step, seen, ema, time.time() - t_start


REFERENCE_PROMPTS = [
    "In the beginning God created the heaven and the earth.",
    "And the LORD spake unto Moses, saying,",
    "<|im_start|>user\nWhy is the sky blue?<|im_end|>\n<|im_start|>assistant\n",
]


def write_references(torch, model, tok, held_t, out, T):
    """Per-position logits of a few prompts (hylo's test compares its forward pass with them)."""
    model.eval()
    refs = {}
    with torch.no_grad():
        for i, p in enumerate(REFERENCE_PROMPTS):
            ids = tok.encode(p)
            lt, lm = model(torch.tensor([ids]))
            refs[f"prompt{i}_tokens"] = np.asarray(ids, dtype=np.int32)
            refs[f"prompt{i}_logits"] = lt[0].numpy().astype(np.float32)
            refs[f"prompt{i}_mtp_logits"] = lm[0].numpy().astype(np.float32)
    os.makedirs(out("reference"), exist_ok=True)
    for k, v in refs.items():
        np.save(out(f"reference/{k}.npy"), v)
    with open(out("reference/prompts.json"), "w") as f:
        json.dump(REFERENCE_PROMPTS, f, indent=1)


def evaluate_perplexity(torch, model, held_t, n_ctx):
    """llama-perplexity's numbers: chunks of n_ctx tokens, the second half of each scored."""
    F = torch.nn.functional
    n_chunk = (held_t.numel()) // n_ctx
    nll, cnt = 0.0, 0
    with torch.no_grad():
        for c in range(n_chunk):
            x = held_t[c * n_ctx:(c + 1) * n_ctx]
            lt, _ = model(x[None, :])
            lp = F.log_softmax(lt[0].double(), dim=-1)
            first = n_ctx // 2
            for t in range(first, n_ctx - 1):
                nll -= lp[t, x[t + 1]].item()
                cnt += 1
    return dict(n_ctx=n_ctx, chunks=n_chunk, ppl=math.exp(nll / cnt), scored=cnt)


if __name__ == "__main__":
    main()
