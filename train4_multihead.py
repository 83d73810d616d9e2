"""Stage 4: multi-head attention and a stack of layers: the full GPT architecture.

Attention splits its queries, keys and values into n_head heads that attend independently and
concatenates their outputs, so each head can follow a different pattern. The transformer block
repeats n_layer times, with parameters named layer{i}.*; each layer keeps its own cache.
Run: python train4_multihead.py  (python train4_multihead.py --help for the flags)
"""
import argparse
import heapq
import math
import os
import random
import sys
import time
import zlib

# === command line ===
def fail(message):
    """Stop with a one-line error on stderr instead of a traceback."""
    sys.exit(f'error: {message}')


class Parser(argparse.ArgumentParser):
    def error(self, message):   # argparse would print the whole usage text first
        fail(f'{message} (see --help)')


def positive_int(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f'must be a positive integer, got {text}')
    return value


def non_negative_int(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f'must be 0 or more, got {text}')
    return value


def positive_float(text):
    value = float(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f'must be a positive number, got {text}')
    return value


here = os.path.dirname(os.path.abspath(__file__))
parser = Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument('--data', default=os.path.join(here, 'data', 'names.txt'),
                    help='text file with one name per line (default: data/names.txt)')
parser.add_argument('--seed', type=int, default=42, help='random seed (default: 42)')
parser.add_argument('--steps', type=positive_int, default=1000,
                    help='training steps, one name each (default: 1000)')
parser.add_argument('--samples', type=non_negative_int, default=20,
                    help='names to sample after training (default: 20)')
parser.add_argument('--temperature', type=positive_float, default=0.5,
                    help='sampling temperature: below 1 is safer, above 1 wilder (default: 0.5)')
parser.add_argument('--lr', type=positive_float, default=0.1,
                    help='initial learning rate, decayed linearly to 0 (default: 0.1)')
parser.add_argument('--n-embd', type=positive_int, default=16,
                    help='embedding width (default: 16)')
parser.add_argument('--block-size', type=positive_int, default=16,
                    help='context length: the most tokens the model looks at (default: 16)')
parser.add_argument('--n-head', type=positive_int, default=4,
                    help='attention heads per layer; must divide --n-embd (default: 4)')
parser.add_argument('--n-layer', type=positive_int, default=1,
                    help='transformer layers (default: 1)')
# inside Jupyter, sys.argv holds the kernel's own arguments: use the defaults there
args = parser.parse_args([] if 'ipykernel' in sys.modules else sys.argv[1:])
random.seed(args.seed)
num_steps = args.steps
num_samples = args.samples
temperature = args.temperature
learning_rate = args.lr
n_embd = args.n_embd
block_size = args.block_size   # context length; also the longest name we sample
if block_size < 2:
    fail(f'--block-size must be at least 2 (BOS and one letter), got {block_size}')
n_head = args.n_head
n_layer = args.n_layer
if n_embd % n_head != 0:
    fail(f'--n-embd ({n_embd}) must be divisible by --n-head ({n_head})')
head_dim = n_embd // n_head   # each head attends within its own slice of the embedding

# === data ===
def load_docs(path):
    """One document (here: a name) per non-empty line of a UTF-8 text file."""
    try:
        with open(path, encoding='utf-8-sig') as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        fail(f'data file not found: {path}')
    except UnicodeDecodeError:
        fail(f'data file is not UTF-8 text: {path}')
    except OSError as e:
        fail(f'cannot read data file {path}: {e.strerror}')
    docs = [line.strip() for line in lines if line.strip()]
    if not docs:
        fail(f'data file has no non-empty lines: {path}')
    return docs


docs = load_docs(args.data)
# Hold out the distinct names with the smallest CRC-32 hashes for validation: the set depends
# only on the names, not on --seed or file order, and no name is in both train and val.
distinct_docs = set(docs)
val_size = min(300, len(distinct_docs) // 10)
if val_size == 0:
    fail('need at least 10 distinct names: one in ten (at most 300) is held out for validation')
val_docs = heapq.nsmallest(val_size, distinct_docs,
                           key=lambda doc: (zlib.crc32(doc.encode()), doc))   # sorted by hash
held_out = set(val_docs)
train_docs = [doc for doc in docs if doc not in held_out]
random.shuffle(train_docs)
print(f'num docs: {len(docs)} ({len(train_docs)} train, {len(val_docs)} val)')

# === tokenizer ===
uchars = sorted(set(''.join(docs)))   # the vocabulary: every character in the data
BOS = len(uchars)   # one special token marks both the beginning and the end of a name
vocab_size = len(uchars) + 1
char_ids = {ch: i for i, ch in enumerate(uchars)}
print(f'vocab size: {vocab_size}')


def encode(doc):
    return [BOS] + [char_ids[ch] for ch in doc] + [BOS]


def decode(token_ids):
    return ''.join(uchars[token_id] for token_id in token_ids)

# === autograd ===
class Value:
    """A scalar in the computation graph: its value, the gradient of the loss with respect to
    it, the Values it was computed from, and the local derivative with respect to each."""
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

    # derived operations, built from the ones above
    def __neg__(self):
        return self * -1.0

    def __radd__(self, other):
        return self + other

    def __sub__(self, other):
        return self + (-other)

    def __rsub__(self, other):
        return other + (-self)

    def __rmul__(self, other):
        return self * other

    def __truediv__(self, other):
        return self * other ** -1.0

    def __rtruediv__(self, other):
        return other * self ** -1.0

    def backward(self):
        """Chain rule from this node back to every leaf: d(self)/d(node) into node.grad."""
        # Topological order: every node after all the nodes it was computed from. Built with an
        # explicit stack, not recursion, so a deep graph cannot hit Python's recursion limit.
        topo = []
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
                # += because a node used in several places gets a gradient from each of them
                child.grad += local_grad * node.grad


def dot(a, b):
    """sum_i a[i] * b[i] as one node rather than a chain of 2n: the local derivatives are
    d/da[i] = b[i] and d/db[i] = a[i]. Matrix products are made of these."""
    a_data = [ai.data for ai in a]
    b_data = [bi.data for bi in b]
    data = sum(x * y for x, y in zip(a_data, b_data))
    return Value(data, (*a, *b), (*b_data, *a_data))


# === parameters ===
def matrix(nout, nin, std=0.08):
    return [[Value(random.gauss(0, std)) for _ in range(nin)] for _ in range(nout)]


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
    """w @ x for a weight matrix w of shape (nout, nin); no bias."""
    return [dot(w_row, x) for w_row in w]


def softmax(logits):
    # exp of a large logit overflows; subtracting the max from all logits changes nothing
    max_logit = max(logit.data for logit in logits)
    exps = [(logit - max_logit).exp() for logit in logits]
    total = sum(exps)
    return [e / total for e in exps]


def rmsnorm(x):
    """Scale x to unit root-mean-square (Zhang & Sennrich 2019), keeping activations at a
    steady size from layer to layer; no learned gain, as in the reference."""
    ms = dot(x, x) / len(x)   # mean square
    scale = (ms + 1e-5) ** -0.5   # 1e-5 keeps an all-zero x from dividing by zero
    return [xi * scale for xi in x]


def attention(q, keys, values):
    """Scaled dot-product attention (Vaswani et al. 2017) of one query over the cached
    positions: a softmax-weighted average of their value vectors."""
    # dividing by sqrt(head_dim) keeps the logits' spread independent of the vector width
    attn_logits = [dot(q, k_t) / head_dim ** 0.5 for k_t in keys]   # (T,)
    attn_weights = softmax(attn_logits)   # (T,), sums to 1
    value_columns = zip(*values)   # (head_dim, T): entry j of every cached value
    head_out = [dot(attn_weights, column) for column in value_columns]   # (head_dim,)
    return head_out


def gpt(token_id, pos_id, keys, values):
    """The logits of the next token, given this token, its position and the keys and values
    cached for the earlier positions of the same name."""
    tok_emb = state_dict['wte'][token_id]   # (n_embd,)
    pos_emb = state_dict['wpe'][pos_id]   # (n_embd,)
    x = [t + p for t, p in zip(tok_emb, pos_emb)]   # (n_embd,)
    x = rmsnorm(x)
    for i in range(n_layer):
        # attention: gather information from this and the earlier positions
        x_residual = x
        x = rmsnorm(x)
        q = linear(x, state_dict[f'layer{i}.attn_wq'])   # (n_embd,) what this position seeks
        k = linear(x, state_dict[f'layer{i}.attn_wk'])   # (n_embd,) what it offers
        v = linear(x, state_dict[f'layer{i}.attn_wv'])   # (n_embd,) what it passes on
        keys[i].append(k)
        values[i].append(v)
        # There is no causal mask because none is needed: tokens go in one at a time, so when
        # position pos_id attends, the cache holds positions 0..pos_id and nothing later.
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
    logits = linear(x, state_dict['lm_head'])   # (vocab_size,)
    return logits


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
live_progress = sys.stdout.isatty()   # a terminal gets a live line; logs and notebooks do not


def print_progress(step, loss, start_time):
    """A line at the first and last step and every 100 steps; on a terminal, a live line too."""
    done = step + 1
    erase = '\r\033[K' if live_progress else ''   # overwrites the live line
    if done == 1 or done % 100 == 0 or done == num_steps:
        print(f'{erase}step {done:4d} / {num_steps:4d} | loss {loss:.4f}', flush=True)
    elif live_progress and done % 10 == 0:
        s_per_step = (time.perf_counter() - start_time) / done
        eta = s_per_step * (num_steps - done)
        live_line = f'step {done:4d} / {num_steps:4d} | loss {loss:.4f} | {s_per_step:.4f} s/step'
        print(f'{erase}{live_line} | ETA {eta:.0f} s', end='', flush=True)


losses = []
train_start = time.perf_counter()
for step in range(num_steps):
    doc = train_docs[step % len(train_docs)]
    tokens = encode(doc)
    try:   # log(0) or an overflow: the weights have blown up
        loss = doc_loss(tokens)
    except (ValueError, OverflowError):
        loss = Value(math.inf)
    if not math.isfinite(loss.data):
        fail(f'training diverged at step {step + 1}: the loss is not finite; try a smaller --lr')
    loss.backward()
    lr_t = learning_rate * (1 - step / num_steps)   # linear decay to 0 over the run
    sgd_update(lr_t)
    losses.append(loss.data)
    print_progress(step, loss.data, train_start)
train_time = time.perf_counter() - train_start
last_losses = losses[-50:]
print(f'train loss (last 50 steps): {sum(last_losses) / len(last_losses):.4f}')

# === evaluation ===
eval_start = time.perf_counter()
try:   # log(0) or an overflow: the last update blew the weights up
    val_losses = [doc_loss(encode(doc)).data for doc in val_docs]
except (ValueError, OverflowError):
    val_losses = [math.inf]
val_loss = sum(val_losses) / len(val_losses)
if not math.isfinite(val_loss):
    fail('training diverged at the last step: the val loss is not finite; try a smaller --lr')
eval_time = time.perf_counter() - eval_start
print(f'val loss: {val_loss:.4f} ({len(val_docs)} names)')
print(f'train time: {train_time:.2f} s')
print(f'eval time: {eval_time:.2f} s')

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
        sample.append(token_id)
    print(f'sample {sample_idx + 1:02d}: {decode(sample)}')
