"""Stage 4: multi-head attention and a stack of layers: the full GPT architecture.
Attention splits into n_head heads that attend independently and concatenate their outputs;
the block repeats n_layer times (layer{i}.*). Run: python train4_multihead.py [--name=value ...]
"""
import math
import os
import random
import sys
import time
import zlib

# === settings ===
data_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data', 'names.txt')
seed = 42   # initialization, data order and sampling
num_steps = 1000   # training steps, one name each
learning_rate = 0.1   # at the first step; decays linearly to 0
n_embd = 16   # embedding width
n_head = 4   # attention heads per layer
n_layer = 1   # transformer layers
block_size = 16   # context length: the most positions the model sees, and the longest sample
temperature = 0.5   # sampling: below 1 is safer, above 1 wilder
num_samples = 20   # names to sample after training

settings = {k: v for k, v in globals().items() if k[0] != '_' and type(v) in (int, float, str)}
for arg in sys.argv[1:] if 'ipykernel' not in sys.modules else []:   # a notebook: skip
    if arg in ('-h', '--help'):   # the docstring, then the settings above as written here
        print(__doc__ + open(__file__).read().split('# === settings ===\n')[1].split('\n\n')[0])
        sys.exit()
    name, eq, text = arg.removeprefix('--').partition('=')   # --name=value, as in nanoGPT
    if name not in settings or not eq:
        sys.exit(f'error: {arg!r} is not --name=value with a setting\'s name (--help lists them)')
    try:
        globals()[name] = type(settings[name])(text)
    except ValueError:
        sys.exit(f'error: {arg} is not a valid {type(settings[name]).__name__}')
if min(num_steps, n_embd, n_head, n_layer, block_size) < 1 or num_samples < 0:
    sys.exit('error: num_steps and the sizes must be at least 1, num_samples at least 0')
if not (learning_rate > 0 and temperature > 0):
    sys.exit('error: learning_rate and temperature must be > 0')

# === data ===
try:
    with open(data_path, encoding='utf-8-sig') as f:   # -sig: skip a byte-order mark
        docs = [line.strip() for line in f.read().splitlines() if line.strip()]   # one a line
except (OSError, UnicodeDecodeError) as e:
    sys.exit(f'error: cannot read {data_path} as UTF-8 text ({e})')
# validation: the 300 distinct names of smallest CRC-32 (1 in 10 if fewer), whatever the seed
distinct_docs = sorted(set(docs), key=lambda doc: (zlib.crc32(doc.encode()), doc))
val_docs = distinct_docs[:min(300, len(distinct_docs) // 10)]
if not val_docs:
    sys.exit(f'error: {data_path} has fewer than 10 distinct names')
held_out = set(val_docs)
train_docs = [doc for doc in docs if doc not in held_out]
random.seed(seed)
random.shuffle(train_docs)
print(f'num docs: {len(docs)} ({len(train_docs)} train, {len(val_docs)} val)')

# === tokenizer ===
uchars = sorted(set(''.join(docs)))   # the vocabulary: every character in the data
BOS = len(uchars)   # one special token marks both the beginning and the end of a name
vocab_size = len(uchars) + 1
print(f'vocab size: {vocab_size}')


def encode(doc):
    return [BOS] + [uchars.index(ch) for ch in doc] + [BOS]

# === autograd ===
class Value:
    """A scalar, the Values it was computed from, and its local derivative for each of them."""
    __slots__ = ('data', 'grad', '_children', '_local_grads')   # less memory per node

    def __init__(self, data, children=(), local_grads=()):
        self.data = data
        self.grad = 0.0
        self._children = children
        self._local_grads = local_grads

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data + other.data, (self, other), (1.0, 1.0))

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data * other.data, (self, other), (other.data, self.data))

    def __pow__(self, exponent):   # exponent is a plain number
        return Value(self.data ** exponent, (self,), (exponent * self.data ** (exponent - 1),))

    def log(self):
        return Value(math.log(self.data), (self,), (1.0 / self.data,))

    def exp(self):
        e = math.exp(self.data)
        return Value(e, (self,), (e,))

    def relu(self):
        return Value(max(0.0, self.data), (self,), (float(self.data > 0),))

    def __neg__(self): return self * -1.0
    def __radd__(self, other): return self + other   # sum() starts from 0 + the first Value
    def __rmul__(self, other): return self * other   # 2 * w: a number on the left
    def __rsub__(self, other): return -self + other   # 1 - p
    def __sub__(self, other): return self + (-other)
    def __truediv__(self, other): return self * other ** -1.0

    def backward(self):
        """Chain rule from this node back to every leaf: d(self)/d(node) into node.grad."""
        topo = []   # each node after its children; built with a stack: no recursion limit
        visited = set()
        stack = [(self, False)]
        while stack:
            node, children_done = stack.pop()
            if children_done:
                topo.append(node)
            elif node not in visited:
                visited.add(node)
                stack.append((node, True))
                for child in node._children:
                    stack.append((child, False))
        self.grad = 1.0
        for node in reversed(topo):
            for child, local_grad in zip(node._children, node._local_grads):
                child.grad += local_grad * node.grad   # +=: a node used twice gets both parts


def dot(a, b):
    """sum_i a[i] * b[i] as one node, not a chain of 2n: d/da[i] = b[i] and d/db[i] = a[i]."""
    a_data = [ai.data for ai in a]
    b_data = [bi.data for bi in b]
    data = sum(x * y for x, y in zip(a_data, b_data))
    return Value(data, (*a, *b), (*b_data, *a_data))


# === parameters ===
def matrix(nout, nin, std=0.08):
    return [[Value(random.gauss(0, std)) for _ in range(nin)] for _ in range(nout)]


if n_embd % n_head != 0:
    sys.exit(f'error: n_embd ({n_embd}) must be divisible by n_head ({n_head})')
head_dim = n_embd // n_head   # each head attends within its own slice of the embedding
state_dict = {}
state_dict['wte'] = matrix(vocab_size, n_embd)   # (vocab_size, n_embd) token embeddings
state_dict['wpe'] = matrix(block_size, n_embd)   # (block_size, n_embd) position embeddings
for i in range(n_layer):
    state_dict[f'layer{i}.attn_wq'] = matrix(n_embd, n_embd)   # (n_embd, n_embd) queries
    state_dict[f'layer{i}.attn_wk'] = matrix(n_embd, n_embd)   # (n_embd, n_embd) keys
    state_dict[f'layer{i}.attn_wv'] = matrix(n_embd, n_embd)   # (n_embd, n_embd) values
    state_dict[f'layer{i}.attn_wo'] = matrix(n_embd, n_embd)   # (n_embd, n_embd) output
    state_dict[f'layer{i}.mlp_fc1'] = matrix(4 * n_embd, n_embd)   # (4 * n_embd, n_embd)
    state_dict[f'layer{i}.mlp_fc2'] = matrix(n_embd, 4 * n_embd)   # (n_embd, 4 * n_embd)
state_dict['lm_head'] = matrix(vocab_size, n_embd)   # (vocab_size, n_embd) output layer
params = [p for mat in state_dict.values() for row in mat for p in row]
print(f'num params: {len(params)}')

# === model ===
def linear(x, w):
    return [dot(w_row, x) for w_row in w]   # w @ x for w of shape (nout, nin); no bias


def softmax(logits):
    # exp of a large logit overflows; subtracting the max from all logits changes nothing
    max_logit = max(logit.data for logit in logits)
    exps = [(logit - max_logit).exp() for logit in logits]
    total = sum(exps)
    return [e / total for e in exps]


def rmsnorm(x):
    """Scale x to unit root-mean-square (Zhang & Sennrich 2019), without their learned gain."""
    ms = dot(x, x) / len(x)   # mean square
    scale = (ms + 1e-5) ** -0.5   # 1e-5 keeps an all-zero x from dividing by zero
    return [xi * scale for xi in x]


def attention(q, keys, values):
    """Scaled dot-product attention (Vaswani et al. 2017): a weighted mean of the values."""
    # dividing by sqrt(head_dim) keeps the logits' spread independent of the vector width
    attn_logits = [dot(q, k_t) / head_dim ** 0.5 for k_t in keys]   # (T,)
    attn_weights = softmax(attn_logits)   # (T,), sums to 1
    value_columns = zip(*values)   # (head_dim, T): entry j of every cached value
    head_out = [dot(attn_weights, column) for column in value_columns]   # (head_dim,)
    return head_out


def gpt(token_id, pos_id, keys, values):
    """Logits of the next token, from this token, its position and the earlier ones' cache."""
    tok_emb = state_dict['wte'][token_id]   # (n_embd,)
    pos_emb = state_dict['wpe'][pos_id]   # (n_embd,)
    x = [t + p for t, p in zip(tok_emb, pos_emb)]   # (n_embd,)
    x = rmsnorm(x)   # the residual stream starts normalized; each block normalizes its input
    for i in range(n_layer):
        # attention: gather information from this and the earlier positions
        x_residual = x
        x = rmsnorm(x)
        q = linear(x, state_dict[f'layer{i}.attn_wq'])   # (n_embd,) what this position seeks
        k = linear(x, state_dict[f'layer{i}.attn_wk'])   # (n_embd,) what it offers
        v = linear(x, state_dict[f'layer{i}.attn_wv'])   # (n_embd,) what it passes on
        keys[i].append(k)
        values[i].append(v)
        # no causal mask needed: tokens come one at a time, so the cache holds only 0..pos_id
        x_attn = []
        for h in range(n_head):
            hs = h * head_dim   # this head's slice of every vector
            q_h = q[hs:hs + head_dim]   # (head_dim,)
            k_h = [k_t[hs:hs + head_dim] for k_t in keys[i]]   # (T, head_dim)
            v_h = [v_t[hs:hs + head_dim] for v_t in values[i]]   # (T, head_dim)
            x_attn.extend(attention(q_h, k_h, v_h))   # concatenate the heads' outputs
        x = linear(x_attn, state_dict[f'layer{i}.attn_wo'])
        x = [a + b for a, b in zip(x, x_residual)]   # residual: the block adds to its input
        # MLP: think about what was gathered, one position at a time
        x_residual = x
        x = rmsnorm(x)
        x = linear(x, state_dict[f'layer{i}.mlp_fc1'])   # (4 * n_embd,)
        x = [xi.relu() for xi in x]
        x = linear(x, state_dict[f'layer{i}.mlp_fc2'])   # (n_embd,)
        x = [a + b for a, b in zip(x, x_residual)]
    return linear(x, state_dict['lm_head'])   # (vocab_size,) logits


def doc_loss(tokens):
    """Cross-entropy of one name: the mean over positions of -log p(next token)."""
    n = min(block_size, len(tokens) - 1)
    keys = [[] for _ in range(n_layer)]   # one cache per layer
    values = [[] for _ in range(n_layer)]
    losses = []
    for pos_id in range(n):
        target_id = tokens[pos_id + 1]
        logits = gpt(tokens[pos_id], pos_id, keys, values)
        probs = softmax(logits)
        losses.append(-probs[target_id].log())
    return sum(losses) / n

# === optimizer ===
def sgd_update(lr_t):
    """Stochastic gradient descent: move every parameter a small step against its gradient."""
    for p in params:
        p.data -= lr_t * p.grad
        p.grad = 0.0   # backward() accumulates with +=, so start the next step from zero

# === training ===
print_every = max(1, num_steps // 10)
losses = []
start_time = time.perf_counter()
for step in range(num_steps):
    tokens = encode(train_docs[step % len(train_docs)])
    try:
        loss = doc_loss(tokens)
    except (ValueError, OverflowError):   # log(0) or an overflow: the weights blew up
        loss = Value(math.nan)
    if not math.isfinite(loss.data):
        sys.exit(f'error: training diverged at step {step + 1}; try a smaller learning_rate')
    loss.backward()
    lr_t = learning_rate * (1 - step / num_steps)   # linear decay to 0 over the run
    sgd_update(lr_t)
    losses.append(loss.data)
    if (step + 1) % print_every == 0:
        mean_loss = sum(losses[-print_every:]) / print_every   # since the last line
        s_per_step = (time.perf_counter() - start_time) / (step + 1)
        print(f'step {step + 1:4d} / {num_steps} | loss {mean_loss:.4f} | '
              f'{1000 * s_per_step:.2f} ms/step | ETA {s_per_step * (num_steps - step - 1):.0f} s')
print(f'train loss (last 50 steps): {sum(losses[-50:]) / len(losses[-50:]):.4f}')

# === evaluation ===
try:   # the last update can still blow the weights up
    val_loss = sum(doc_loss(encode(doc)).data for doc in val_docs) / len(val_docs)
except (ValueError, OverflowError):
    val_loss = math.nan
if not math.isfinite(val_loss):
    sys.exit('error: training diverged at the last step; try a smaller learning_rate')
print(f'val loss: {val_loss:.4f} ({len(val_docs)} names)')

# === sampling ===
for sample_idx in range(num_samples):
    keys = [[] for _ in range(n_layer)]   # one cache per layer
    values = [[] for _ in range(n_layer)]
    token_id = BOS
    sample = []
    for pos_id in range(block_size):
        logits = gpt(token_id, pos_id, keys, values)
        probs = softmax([logit / temperature for logit in logits])
        token_id = random.choices(range(vocab_size), weights=[p.data for p in probs])[0]
        if token_id == BOS:
            break
        sample.append(uchars[token_id])
    print(f'sample {sample_idx + 1:02d}: {"".join(sample)}')
