"""Stage 0: a bigram language model made of counts: no neural network, no gradients.
It counts how often each character follows each other one and samples names from the counts;
its loss is the baseline the neural stages are measured against.
Run: python train0_bigram.py [--name=value ...]
"""
import math
import os
import random
import sys
import time
import zlib

# === settings ===
data_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'data', 'names.txt')
seed = 42   # data order and sampling
num_steps = 1000   # training steps, one name each
block_size = 16   # the longest sample, and the most predictions a name's loss counts
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
if min(num_steps, block_size) < 1 or num_samples < 0:
    sys.exit('error: num_steps and the sizes must be at least 1, num_samples at least 0')

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
# counts[a][b]: how often token b followed token a in the names counted so far, plus one:
# add-one smoothing gives every pair a small probability, so no loss is infinite
counts = [[1] * vocab_size for _ in range(vocab_size)]   # (vocab_size, vocab_size)
print(f'num params: {vocab_size * vocab_size}')

# === model ===
def bigram(token_id):
    """Probabilities of the next token, from this token alone: its row of counts, normalized."""
    row = counts[token_id]
    total = sum(row)
    return [count / total for count in row]


def doc_loss(tokens):
    """Cross-entropy of one name: the mean over positions of -log p(next token)."""
    n = min(block_size, len(tokens) - 1)
    losses = []
    for pos_id in range(n):
        target_id = tokens[pos_id + 1]
        probs = bigram(tokens[pos_id])
        losses.append(-math.log(probs[target_id]))
    return sum(losses) / n

# === training ===
print_every = max(1, num_steps // 10)
losses = []
start_time = time.perf_counter()
for step in range(num_steps):
    tokens = encode(train_docs[step % len(train_docs)])
    loss = doc_loss(tokens)   # scored before it is counted, as later stages score, then learn
    for pos_id in range(min(block_size, len(tokens) - 1)):
        counts[tokens[pos_id]][tokens[pos_id + 1]] += 1   # training, for this model: counting
    losses.append(loss)
    if (step + 1) % print_every == 0:
        mean_loss = sum(losses[-print_every:]) / print_every   # since the last line
        s_per_step = (time.perf_counter() - start_time) / (step + 1)
        print(f'step {step + 1:4d} / {num_steps} | loss {mean_loss:.4f} | '
              f'{1000 * s_per_step:.2f} ms/step | ETA {s_per_step * (num_steps - step - 1):.0f} s')
print(f'train loss (last 50 steps): {sum(losses[-50:]) / len(losses[-50:]):.4f}')

# === evaluation ===
val_loss = sum(doc_loss(encode(doc)) for doc in val_docs) / len(val_docs)
print(f'val loss: {val_loss:.4f} ({len(val_docs)} names)')

# === sampling ===
for sample_idx in range(num_samples):
    token_id = BOS
    sample = []
    for _ in range(block_size):
        probs = bigram(token_id)
        token_id = random.choices(range(vocab_size), weights=probs)[0]
        if token_id == BOS:
            break
        sample.append(uchars[token_id])
    print(f'sample {sample_idx + 1:02d}: {"".join(sample)}')
