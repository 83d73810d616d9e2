"""Stage 1: a neural network with hand-derived gradients, trained by gradient descent.

Replaces stage 0's count table with learned weights: a token embedding, a hidden ReLU layer and
an output layer, all in plain Python floats. Gradients are derived by hand (backpropagation) and
checked against finite differences before training; SGD then follows them downhill.
Run: python train1_mlp_manual_grad.py  (python train1_mlp_manual_grad.py --help for the flags)
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
parser.add_argument('--lr', type=positive_float, default=1.0,
                    help='initial learning rate, decayed linearly to 0 (default: 1.0)')
parser.add_argument('--n-embd', type=positive_int, default=16,
                    help='embedding width (default: 16)')
# inside Jupyter, sys.argv holds the kernel's own arguments: use the defaults there
args = parser.parse_args([] if 'ipykernel' in sys.modules else sys.argv[1:])
random.seed(args.seed)
num_steps = args.steps
num_samples = args.samples
temperature = args.temperature
learning_rate = args.lr
n_embd = args.n_embd
block_size = 16   # the longest name we sample; this model sees only the current token

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
    """w @ x for a weight matrix w of shape (nout, nin); no bias."""
    return [dot(w_row, x) for w_row in w]


def softmax(logits):
    # exp of a large logit overflows; subtracting the max from all logits changes nothing
    max_logit = max(logits)
    exps = [math.exp(logit - max_logit) for logit in logits]
    total = sum(exps)
    return [e / total for e in exps]


def gpt(token_id, pos_id, keys, values):
    """The logits of the next token. This model reads only token_id; the position and the
    keys/values cache join in stage 3, so the signature is already the final one."""
    x = state_dict['wte'][token_id]   # (n_embd,)
    x = linear(x, state_dict['mlp_fc1'])   # (4 * n_embd,)
    x = [max(0.0, xi) for xi in x]   # ReLU
    logits = linear(x, state_dict['mlp_fc2'])   # (vocab_size,)
    return logits


def doc_loss(tokens):
    """Cross-entropy of one name: the mean over positions of -log p(next token)."""
    n = min(block_size, len(tokens) - 1)
    keys = []
    values = []
    losses = []
    for pos_id in range(n):
        target_id = tokens[pos_id + 1]
        logits = gpt(tokens[pos_id], pos_id, keys, values)
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
        loss, grads = doc_loss_and_grads(tokens)
    except (ValueError, OverflowError):
        loss = math.inf
    if not math.isfinite(loss):
        fail(f'training diverged at step {step + 1}: the loss is not finite; try a smaller --lr')
    lr_t = learning_rate * (1 - step / num_steps)   # linear decay to 0 over the run
    sgd_update(grads, lr_t)
    losses.append(loss)
    print_progress(step, loss, train_start)
train_time = time.perf_counter() - train_start
last_losses = losses[-50:]
print(f'train loss (last 50 steps): {sum(last_losses) / len(last_losses):.4f}')

# === evaluation ===
eval_start = time.perf_counter()
try:   # log(0) or an overflow: the last update blew the weights up
    val_losses = [doc_loss(encode(doc)) for doc in val_docs]
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
    keys = []
    values = []
    token_id = BOS
    sample = []
    for pos_id in range(block_size):
        logits = gpt(token_id, pos_id, keys, values)
        probs = softmax([logit / temperature for logit in logits])
        token_id = random.choices(range(vocab_size), weights=probs)[0]
        if token_id == BOS:
            break
        sample.append(token_id)
    print(f'sample {sample_idx + 1:02d}: {decode(sample)}')
