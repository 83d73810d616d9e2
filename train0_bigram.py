"""Stage 0: a bigram language model made of counts: no neural network, no gradients.

Counts how often each character follows each other character in the training names, turns each
row of counts into next-character probabilities, and samples new names from them. Its loss is
the baseline that every later stage has to beat.
Run: python train0_bigram.py  (python train0_bigram.py --help for the flags)
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
parser.add_argument('--samples', type=non_negative_int, default=20,
                    help='names to sample after training (default: 20)')
# inside Jupyter, sys.argv holds the kernel's own arguments: use the defaults there
args = parser.parse_args([] if 'ipykernel' in sys.modules else sys.argv[1:])
random.seed(args.seed)
num_samples = args.samples
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

# === model ===
# counts[a][b]: how often token b followed token a in the names counted so far, plus one.
# Add-one smoothing: a pair never seen still gets a small probability, so no loss is infinite.
counts = [[1] * vocab_size for _ in range(vocab_size)]   # (vocab_size, vocab_size)
row_totals = [vocab_size] * vocab_size   # row_totals[a] == sum(counts[a]), kept up to date
print(f'num params: {vocab_size * vocab_size}')


def doc_loss(tokens):
    """Cross-entropy of one name: the mean over positions of -log p(next token)."""
    n = min(block_size, len(tokens) - 1)
    losses = []
    for pos_id in range(n):
        token_id = tokens[pos_id]
        target_id = tokens[pos_id + 1]
        prob = counts[token_id][target_id] / row_totals[token_id]
        losses.append(-math.log(prob))
    return sum(losses) / n

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


def count_doc(tokens):
    """Training, for this model: count the name's pairs of neighbouring tokens. Each pair is
    scored before it is counted, so the loss returned is measured on data not yet seen."""
    n = min(block_size, len(tokens) - 1)
    prob = 1.0   # the probability of the whole name: the product of its pairs' probabilities
    for pos_id in range(n):
        token_id = tokens[pos_id]
        target_id = tokens[pos_id + 1]
        row = counts[token_id]
        prob *= row[target_id] / row_totals[token_id]
        row[target_id] += 1
        row_totals[token_id] += 1
    return -math.log(prob) / n   # = the mean of -log p over the pairs, with one log, not n


num_steps = len(train_docs)   # one step per training name: this model counts them all
losses = []
train_start = time.perf_counter()
for step in range(num_steps):
    doc = train_docs[step]
    tokens = encode(doc)
    loss = count_doc(tokens)
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
    token_id = BOS
    sample = []
    for pos_id in range(block_size):
        token_id = random.choices(range(vocab_size), weights=counts[token_id])[0]
        if token_id == BOS:
            break
        sample.append(token_id)
    print(f'sample {sample_idx + 1:02d}: {decode(sample)}')
