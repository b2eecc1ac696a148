"""torch.nn models that mirror minigrad's example models member for member, so that each side loads
the other's state_dict (bench/torch_examples.py, tests/torch_interop.py)."""
import torch


class DigitsCnn(torch.nn.Module):
    """examples/common/digits_cnn_model.hpp's model, with its member names."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 16, 3, padding=1)
        self.bn1 = torch.nn.BatchNorm2d(16)
        self.conv2 = torch.nn.Conv2d(16, 32, 3, padding=1)
        self.bn2 = torch.nn.BatchNorm2d(32)
        self.drop = torch.nn.Dropout(0.1)
        self.fc = torch.nn.Linear(128, 10)

    def forward(self, x):
        h = x.reshape(-1, 1, 8, 8)
        h = torch.nn.functional.max_pool2d(torch.relu(self.bn1(self.conv1(h))), 2)
        h = torch.nn.functional.max_pool2d(torch.relu(self.bn2(self.conv2(h))), 2)
        return self.fc(self.drop(torch.flatten(h, 1)))


class Block(torch.nn.Module):
    """examples/common/charlm_model.hpp's Block: pre-norm causal self-attention, then a GELU MLP."""

    def __init__(self, n_embd, n_head):
        super().__init__()
        self.ln_1 = torch.nn.LayerNorm(n_embd)
        self.attn = torch.nn.MultiheadAttention(n_embd, n_head, batch_first=True)
        self.ln_2 = torch.nn.LayerNorm(n_embd)
        self.fc = torch.nn.Linear(n_embd, 4 * n_embd)
        self.proj = torch.nn.Linear(4 * n_embd, n_embd)

    def forward(self, x):
        t = x.shape[1]
        hide = torch.triu(torch.ones(t, t, dtype=torch.bool, device=x.device), diagonal=1)  # true: may not attend (the keys after the query)
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, attn_mask=hide, need_weights=False)[0]
        return x + self.proj(torch.nn.functional.gelu(self.fc(self.ln_2(x))))


class Gpt(torch.nn.Module):
    """examples/common/charlm_model.hpp's Gpt, with its member names."""

    def __init__(self, vocab_size=27, block_size=16, n_layer=4, n_head=4, n_embd=128):
        super().__init__()
        self.vocab_size = vocab_size
        self.wte = torch.nn.Embedding(vocab_size, n_embd)
        self.wpe = torch.nn.Embedding(block_size, n_embd)
        self.blocks = torch.nn.ModuleList([Block(n_embd, n_head) for _ in range(n_layer)])
        self.ln_f = torch.nn.LayerNorm(n_embd)
        self.lm_head = torch.nn.Linear(n_embd, vocab_size, bias=False)

    def forward(self, idx):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))

    def loss(self, x, y):
        return torch.nn.functional.cross_entropy(self(x).reshape(-1, self.vocab_size), y.reshape(-1))

    def param_groups(self, weight_decay):
        """AdamW's groups as minigrad's Gpt::param_groups: the matrices decayed, the rest not."""
        params = [p for _, p in self.named_parameters()]
        return [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
                {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
