"""A hand-written GPT in plain PyTorch: the same function as TransformerForge's (and x-transformers 0.20's) decoder.

TransformerWrapper(num_tokens, max_seq_len, attn_layers=Decoder(dim, depth, heads, attn_dim_head, [rotary_pos_emb], [ff_glu])):
token embedding + learned absolute positions scaled by dim^-0.5 (none with rotary), depth x (pre-norm attention,
pre-norm feed-forward), final LayerNorm, logits. Attention: q, k, v without bias, output projection with bias;
rotary (RoFormer) rotates the first max(dim_head / 2, 32) features of q, k and v as x-transformers 0.20 does.
Feed-forward: Linear(dim, 4 dim) + GELU (or a GELU-gated GLU) then Linear(4 dim, dim).

Written the way a careful PyTorch user writes it (nanoGPT's style): q, k and v come from one fused projection
(`--qkv separate` gives three), attention is torch's scaled_dot_product_attention where it exists (PyTorch 2.x) and
explicit matmul-softmax-matmul on 1.x, and generation keeps a key/value cache per layer.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

HAS_SDPA = hasattr(F, "scaled_dot_product_attention")


class Rotary(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.dim = dim
        self.register_buffer("inv_freq", 1.0 / (10000 ** (torch.arange(0, dim, 2).float() / dim)), persistent=False)

    def forward(self, start, n, device):
        t = torch.arange(start, start + n, device=device, dtype=self.inv_freq.dtype)
        freqs = torch.einsum("i,j->ij", t, self.inv_freq)
        freqs = torch.cat((freqs, freqs), dim=-1)
        return freqs.cos(), freqs.sin()


def rotate(x, cos, sin, dim):
    """Rotates the first `dim` features of x [b, h, n, d] (x-transformers 0.20 rotates a prefix of each head)."""
    x_rot, x_pass = x[..., :dim], x[..., dim:]
    x1, x2 = x_rot.chunk(2, dim=-1)
    rotated = x_rot * cos.to(x.dtype) + torch.cat((-x2, x1), dim=-1) * sin.to(x.dtype)
    return torch.cat((rotated, x_pass), dim=-1) if x_pass.shape[-1] else rotated


class Attention(nn.Module):
    def __init__(self, dim, heads, dim_head, fused_qkv):
        super().__init__()
        self.heads, self.dim_head = heads, dim_head
        inner = heads * dim_head
        self.fused_qkv = fused_qkv
        if fused_qkv:
            self.qkv = nn.Linear(dim, 3 * inner, bias=False)
        else:
            self.q = nn.Linear(dim, inner, bias=False)
            self.k = nn.Linear(dim, inner, bias=False)
            self.v = nn.Linear(dim, inner, bias=False)
        self.out = nn.Linear(inner, dim)

    def forward(self, x, rotary=None, cache=None):
        b, n, _ = x.shape
        if self.fused_qkv:
            q, k, v = self.qkv(x).split(self.heads * self.dim_head, dim=-1)
        else:
            q, k, v = self.q(x), self.k(x), self.v(x)
        q, k, v = (t.view(b, n, self.heads, self.dim_head).transpose(1, 2) for t in (q, k, v))
        if rotary is not None:
            cos, sin, rot_dim = rotary
            q, k, v = (rotate(t, cos, sin, rot_dim) for t in (q, k, v))
        if cache is not None:
            if "k" in cache:
                k = torch.cat((cache["k"], k), dim=2)
                v = torch.cat((cache["v"], v), dim=2)
            cache["k"], cache["v"] = k, v
        causal = n > 1  # one new query sees every cached key
        if HAS_SDPA:
            if causal and k.shape[2] != n:
                raise ValueError("a multi-token step after the prompt is not supported")
            y = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        else:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.dim_head))
            if causal:
                j = k.shape[2]
                mask = torch.ones(n, j, dtype=torch.bool, device=x.device).triu(j - n + 1)
                att = att.masked_fill(mask, float("-inf"))
            y = att.softmax(dim=-1) @ v
        return self.out(y.transpose(1, 2).reshape(b, n, self.heads * self.dim_head))


class FeedForward(nn.Module):
    def __init__(self, dim, mult, glu):
        super().__init__()
        inner = dim * mult
        self.glu = glu
        self.proj_in = nn.Linear(dim, inner * 2 if glu else inner)
        self.proj_out = nn.Linear(inner, dim)

    def forward(self, x):
        h = self.proj_in(x)
        if self.glu:
            h, gate = h.chunk(2, dim=-1)
            h = h * F.gelu(gate)
        else:
            h = F.gelu(h)
        return self.proj_out(h)


class Block(nn.Module):
    def __init__(self, dim, heads, dim_head, ff_mult, glu, fused_qkv):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dim_head, fused_qkv)
        self.ln2 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim, ff_mult, glu)

    def forward(self, x, rotary=None, cache=None):
        x = x + self.attn(self.ln1(x), rotary, cache)
        return x + self.ff(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, vocab, max_seq_len, dim, depth, heads, dim_head=None, ff_mult=4, rotary=False, glu=False, fused_qkv=True):
        super().__init__()
        dim_head = dim_head or dim // heads
        self.max_seq_len = max_seq_len
        self.token_emb = nn.Embedding(vocab, dim)
        self.pos_emb = None if rotary else nn.Embedding(max_seq_len, dim)
        self.pos_scale = dim ** -0.5
        self.rot_dim = min(max(dim_head // 2, 32), dim_head) if rotary else 0
        self.rotary = Rotary(self.rot_dim) if rotary else None
        self.blocks = nn.ModuleList(Block(dim, heads, dim_head, ff_mult, glu, fused_qkv) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.to_logits = nn.Linear(dim, vocab)

    def forward(self, idx, caches=None, start=0):
        b, n = idx.shape
        x = self.token_emb(idx)
        if self.pos_emb is not None:
            x = x + self.pos_emb(torch.arange(start, start + n, device=idx.device)) * self.pos_scale
        rotary = None
        if self.rotary is not None:
            cos, sin = self.rotary(0, start + n, idx.device)
            # Queries and keys of the new positions only; cached keys were rotated when they were new.
            rotary = (cos[start:], sin[start:], self.rot_dim)
        for i, block in enumerate(self.blocks):
            x = block(x, rotary, None if caches is None else caches[i])
        return self.to_logits(self.norm(x))

    @torch.no_grad()
    def generate(self, prompt, new_tokens):
        """Greedy, batch as given, with a key/value cache: the prompt once, then one token per step."""
        caches = [dict() for _ in self.blocks]
        tokens = prompt
        logits = self(prompt, caches, 0)[:, -1]
        out = []
        for _ in range(new_tokens):
            nxt = logits.argmax(dim=-1, keepdim=True)
            out.append(nxt)
            tokens = torch.cat((tokens, nxt), dim=1)
            if len(out) == new_tokens:
                break
            logits = self(nxt, caches, tokens.shape[1] - 1)[:, -1]
        return torch.cat(out, dim=1)

    def param_groups(self, weight_decay):
        """Weight decay on matrices of linear layers only (not norms, biases or embeddings), as TransformerForge's trainer."""
        decay, no_decay = [], []
        for module in self.modules():
            for name, p in module.named_parameters(recurse=False):
                (decay if isinstance(module, nn.Linear) and name == "weight" else no_decay).append(p)
        return [dict(params=decay, weight_decay=weight_decay), dict(params=no_decay, weight_decay=0.0)]
