"""Stage 1: a neural network with hand-derived gradients, trained by gradient descent.
An embedding, a ReLU layer and an output layer replace stage 0's counts; gradients derived by
hand are checked against finite differences.
Run: python train1_mlp_manual_grad.py [--name=value ...]
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
learning_rate = 1.0   # at the first step; decays linearly to 0
n_embd = 16   # embedding width
block_size = 16   # the longest sample, and the most predictions a name's loss counts
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
if min(num_steps, n_embd, block_size) < 1 or num_samples < 0:
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

# === parameters ===
def matrix(nout, nin, std=0.08):
    return [[random.gauss(0, std) for _ in range(nin)] for _ in range(nout)]


state_dict = {}
state_dict['wte'] = matrix(vocab_size, n_embd)   # (vocab_size, n_embd) token embeddings
state_dict['mlp_fc1'] = matrix(4 * n_embd, n_embd)   # (4 * n_embd, n_embd)
state_dict['mlp_fc2'] = matrix(vocab_size, 4 * n_embd)   # (vocab_size, 4 * n_embd)
num_params = sum(len(row) for mat in state_dict.values() for row in mat)
print(f'num params: {num_params}')

# === model ===
def dot(a, b):
    return sum(ai * bi for ai, bi in zip(a, b))


def linear(x, w):
    return [dot(w_row, x) for w_row in w]   # w @ x for w of shape (nout, nin); no bias


def softmax(logits):
    # exp of a large logit overflows; subtracting the max from all logits changes nothing
    max_logit = max(logits)
    exps = [math.exp(logit - max_logit) for logit in logits]
    total = sum(exps)
    return [e / total for e in exps]


def gpt(token_id):
    """Logits of the next token, from this token alone."""
    x = state_dict['wte'][token_id]   # (n_embd,)
    x = linear(x, state_dict['mlp_fc1'])   # (4 * n_embd,)
    x = [max(0.0, xi) for xi in x]   # ReLU
    return linear(x, state_dict['mlp_fc2'])   # (vocab_size,) logits


def doc_loss(tokens):
    """Cross-entropy of one name: the mean over positions of -log p(next token)."""
    n = min(block_size, len(tokens) - 1)
    losses = []
    for pos_id in range(n):
        target_id = tokens[pos_id + 1]
        logits = gpt(tokens[pos_id])
        probs = softmax(logits)
        losses.append(-math.log(probs[target_id]))
    return sum(losses) / n

# === gradients ===
def linear_backward(dy, x, w, dw):
    """Backprop through y = linear(x, w): add dloss/dw into dw and return dloss/dx."""
    dx = [0.0] * len(x)
    for i, dyi in enumerate(dy):   # y[i] = sum_j w[i][j] * x[j]
        w_row = w[i]
        dw_row = dw[i]
        for j, xj in enumerate(x):
            dw_row[j] += dyi * xj   # dy[i]/dw[i][j] = x[j]
            dx[j] += dyi * w_row[j]   # dy[i]/dx[j] = w[i][j]
    return dx


def doc_loss_and_grads(tokens):
    """doc_loss(tokens) and its gradient for every parameter, by backpropagation by hand."""
    grads = {name: [[0.0] * len(row) for row in mat] for name, mat in state_dict.items()}
    n = min(block_size, len(tokens) - 1)
    loss = 0.0
    for pos_id in range(n):
        token_id = tokens[pos_id]
        target_id = tokens[pos_id + 1]
        # forward, keeping every intermediate vector that the backward pass needs
        emb = state_dict['wte'][token_id]   # (n_embd,)
        h_pre = linear(emb, state_dict['mlp_fc1'])   # (4 * n_embd,)
        h = [max(0.0, hi) for hi in h_pre]
        logits = linear(h, state_dict['mlp_fc2'])   # (vocab_size,)
        probs = softmax(logits)
        loss += -math.log(probs[target_id]) / n
        # softmax + cross-entropy: dloss/dlogits = probs - one_hot(target), / n for the mean
        dlogits = [p / n for p in probs]
        dlogits[target_id] -= 1 / n
        dh = linear_backward(dlogits, h, state_dict['mlp_fc2'], grads['mlp_fc2'])
        # ReLU passes the gradient where its input was positive and blocks it elsewhere
        dh_pre = [dhi if hi > 0 else 0.0 for dhi, hi in zip(dh, h_pre)]
        demb = linear_backward(dh_pre, emb, state_dict['mlp_fc1'], grads['mlp_fc1'])
        # the embedding lookup copies one row, so only that row receives gradient
        dwte_row = grads['wte'][token_id]
        for j, g in enumerate(demb):
            dwte_row[j] += g
    return loss, grads


def numerical_grad(tokens, name, i, j, eps=1e-5):
    """Central difference (L(w + eps) - L(w - eps)) / (2 eps): slow, but independent of
    backprop, so agreement between the two is evidence that both are right."""
    row = state_dict[name][i]
    original = row[j]
    row[j] = original + eps
    loss_plus = doc_loss(tokens)
    row[j] = original - eps
    loss_minus = doc_loss(tokens)
    row[j] = original
    return (loss_plus - loss_minus) / (2 * eps)


def gradient_check(tokens, per_matrix=5):
    """Max relative error between backprop and finite differences over the entries with the
    largest gradients in each matrix (zero gradients would compare trivially)."""
    _, grads = doc_loss_and_grads(tokens)
    max_error = 0.0
    for name, grad_mat in grads.items():
        entries = [(abs(g), i, j) for i, row in enumerate(grad_mat) for j, g in enumerate(row)]
        for _, i, j in sorted(entries, reverse=True)[:per_matrix]:
            analytic = grads[name][i][j]
            numeric = numerical_grad(tokens, name, i, j)
            error = abs(analytic - numeric) / max(abs(analytic), abs(numeric), 1e-12)
            max_error = max(max_error, error)
    return max_error


check_tokens = encode(train_docs[0])
check_error = gradient_check(check_tokens)
print(f'gradient check (backprop vs finite differences): max relative error {check_error:.1e}')

# === optimizer ===
def sgd_update(grads, lr_t):
    """Stochastic gradient descent: move every parameter a small step against its gradient."""
    for name, mat in state_dict.items():
        for row, grad_row in zip(mat, grads[name]):
            for j, g in enumerate(grad_row):
                row[j] -= lr_t * g

# === training ===
print_every = max(1, num_steps // 10)
losses = []
start_time = time.perf_counter()
for step in range(num_steps):
    tokens = encode(train_docs[step % len(train_docs)])
    try:
        loss, grads = doc_loss_and_grads(tokens)
    except (ValueError, OverflowError):   # log(0) or an overflow: the weights blew up
        loss = math.nan
    if not math.isfinite(loss):
        sys.exit(f'error: training diverged at step {step + 1}; try a smaller learning_rate')
    lr_t = learning_rate * (1 - step / num_steps)   # linear decay to 0 over the run
    sgd_update(grads, lr_t)
    losses.append(loss)
    if (step + 1) % print_every == 0:
        mean_loss = sum(losses[-print_every:]) / print_every   # since the last line
        s_per_step = (time.perf_counter() - start_time) / (step + 1)
        print(f'step {step + 1:4d} / {num_steps} | loss {mean_loss:.4f} | '
              f'{1000 * s_per_step:.2f} ms/step | ETA {s_per_step * (num_steps - step - 1):.0f} s')
print(f'train loss (last 50 steps): {sum(losses[-50:]) / len(losses[-50:]):.4f}')

# === evaluation ===
try:   # the last update can still blow the weights up
    val_loss = sum(doc_loss(encode(doc)) for doc in val_docs) / len(val_docs)
except (ValueError, OverflowError):
    val_loss = math.nan
if not math.isfinite(val_loss):
    sys.exit('error: training diverged at the last step; try a smaller learning_rate')
print(f'val loss: {val_loss:.4f} ({len(val_docs)} names)')

# === sampling ===
for sample_idx in range(num_samples):
    token_id = BOS
    sample = []
    for _ in range(block_size):
        logits = gpt(token_id)
        probs = softmax([logit / temperature for logit in logits])
        token_id = random.choices(range(vocab_size), weights=probs)[0]
        if token_id == BOS:
            break
        sample.append(uchars[token_id])
    print(f'sample {sample_idx + 1:02d}: {"".join(sample)}')
