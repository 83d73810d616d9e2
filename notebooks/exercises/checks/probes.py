"""Grading probes: what tools/grade.py (and nbgrader's hidden checks) ask of each exercise.
`probe_<name>(ns)` returns cases (label, tolerance, thunk); a thunk calls the exercise's function
in `ns` on inputs chosen here and returns plain data: values and, wherever the function feeds a
gradient, the gradients backward() gives its inputs and weights (right values from a cut graph
lose points). The grader compares the student's answers with the reference solution's itself:
nothing here is secret. Uses helpers.py's `patched`.
"""
# ruff: noqa: F821  (helpers.py defines patched)
import math
import random


def cases(run, *rows):
    """[(label, tolerance, thunk)]: run(*args) for each row (label, tolerance, *args)."""
    return [(label, tolerance, lambda args=args: run(*args)) for label, tolerance, *args in rows]


def floats(rng, *shape):
    if len(shape) == 1:
        return [rng.uniform(-1, 1) for _ in range(shape[0])]
    return [floats(rng, *shape[1:]) for _ in range(shape[0])]


def values(ns, x):
    return [values(ns, v) for v in x] if isinstance(x, list) else ns["Value"](float(x))


def grads(x):
    if isinstance(x, dict):
        return {k: grads(v) for k, v in x.items()}
    return [grads(v) for v in x] if isinstance(x, list) else x.grad


def outputs_or_grads(out, inputs, coefficients, want_grads):
    """The outputs' values; or, want_grads, the gradients of the inputs after backward() on
    loss = sum of coefficient * output, so that every output gets a gradient."""
    if not want_grads:
        return [o.data for o in out]
    sum(o * c for c, o in zip(coefficients, out)).backward()   # Value * number: no __rmul__
    return grads(inputs)


# --- stage 0 ------------------------------------------------------------------------------------

def probe_count_pair(ns):
    def run(pairs, vocab):
        counts = [[1] * vocab for _ in range(vocab)]
        with patched(ns, counts=counts, vocab_size=vocab):
            for a, b in pairs:
                ns["count_pair"](a, b)
        return counts

    rng = random.Random(7)
    return cases(run, ("count_pair (0, 2) twice and (2, 1) once", 0, [(0, 2), (0, 2), (2, 1)], 3),
                 ("count_pair on 60 random pairs", 0,
                  [(rng.randrange(4), rng.randrange(4)) for _ in range(60)], 4))


def probe_doc_loss(ns):
    def run(tokens, block_size):
        counts = [[2, 1, 1, 4], [1, 3, 2, 2], [5, 1, 1, 1], [1, 1, 6, 1]]   # bigram() normalizes
        with patched(ns, counts=counts, block_size=block_size, vocab_size=4):
            return ns["doc_loss"](tokens)

    return cases(run, ("doc_loss of 4 tokens", 1e-9, [2, 0, 1, 2], 16),
                 ("doc_loss of 6 tokens", 1e-9, [3, 2, 0, 1, 3, 0], 16),
                 ("doc_loss with block_size = 2", 1e-9, [3, 2, 0, 1, 3, 0], 2))


def probe_sample_next(ns):
    def frequencies(probs, draws):
        random.seed(99)
        with patched(ns, vocab_size=len(probs)):
            got = [ns["sample_next"](list(probs)) for _ in range(draws)]
        return [got.count(t) / draws for t in range(len(probs))]

    # tolerances of about 5 standard deviations of the difference of two right samplers; a rare
    # token tells a right draw from a skewed one (probs ** 0.9 gives it 0.0037 instead of 0.002,
    # a draw rounded to 1% 0.005 or 0.01)
    return cases(frequencies, ("frequencies of sample_next([0.25, 0, 0.125, 0.625]) in 100000 "
                               "draws", 0.011, [0.25, 0.0, 0.125, 0.625], 100000),
                 ("frequency of the rare token of sample_next([0.002, 0.998]) in 100000 draws",
                  0.0009, [0.002, 0.998], 100000),
                 ("frequencies of sample_next([0, 1, 0, 0])", 0, [0.0, 1.0, 0.0, 0.0], 30))


# --- stage 1 ------------------------------------------------------------------------------------

def probe_softmax_ce_grad(ns):
    exps = [math.exp(v) for v in [1.5, -0.3, 0.2, 3.0, -2.0, 0.7]]
    probs = [e / sum(exps) for e in exps]
    return cases(lambda t, n: ns["softmax_ce_grad"](list(probs), t, n),
                 *[(f"softmax_ce_grad(probs, {t}, {n})", 1e-9, t, n)
                   for t, n in [(2, 3), (0, 1), (5, 7)]])


def probe_mlp_backward(ns):
    rng = random.Random(3)
    w, x = floats(rng, 2, 5), floats(rng, 5)
    sd = {"wte": floats(rng, 4, 3), "mlp_fc1": floats(rng, 6, 3), "mlp_fc2": floats(rng, 4, 6)}
    dlogits = floats(rng, 4)

    def linear_backward():
        dw = [[0.5] * 5 for _ in range(2)]   # gradients already added by other positions
        return [ns["linear_backward"]([0.7, -1.3], x, w, dw), dw]

    def mlp_backward(token_id):
        emb = sd["wte"][token_id]
        h_pre = [sum(a * b for a, b in zip(row, emb)) for row in sd["mlp_fc1"]]
        grads = {name: [[0.0] * len(row) for row in m] for name, m in sd.items()}
        with patched(ns, state_dict=sd):
            for _ in range(2):   # two positions with the same token: their gradients add up
                ns["mlp_backward"](list(dlogits), token_id, emb, list(h_pre),
                                   [max(0.0, v) for v in h_pre], grads)
        return grads

    return [("linear_backward: dx and dw for a (2, 5) matrix", 1e-9, linear_backward)] + cases(
        mlp_backward, ("mlp_backward: grads for token 2, two positions", 1e-9, 2),
        ("mlp_backward: grads for token 0, two positions", 1e-9, 0))


def probe_numerical_grad(ns):
    sd = {"w": [[0.5, -0.3], [0.2, 0.1]]}

    def stand_in_loss(tokens):   # any function of the weights will do
        w = sd["w"]
        return math.exp(5 * w[0][1]) + w[1][0] * w[0][0] ** 2 + w[1][1] ** 3

    def run(i, j, eps=None):
        with patched(ns, state_dict=sd, doc_loss=stand_in_loss):
            got = ns["numerical_grad"]([0, 1], "w", i, j, **({} if eps is None else {"eps": eps}))
        return [got, sd["w"]]   # the weights must be put back

    return cases(run, ("numerical_grad for w[0][1]", 1e-8, 0, 1),
                 ("numerical_grad for w[0][0]", 1e-8, 0, 0),
                 ("numerical_grad for w[1][1] with eps = 0.01", 1e-9, 1, 1, 1e-2))


def probe_sgd_update(ns):
    def run(lr_t):
        rng = random.Random(5)
        sd = {name: floats(rng, 2, 3) for name in "xyz"}
        grads = {name: floats(rng, 2, 3) for name in "xyz"}
        with patched(ns, state_dict=sd):
            ns["sgd_update"](grads, lr_t)
        return sd

    return cases(run, *[(f"state_dict after sgd_update(grads, {lr})", 1e-12, lr)
                        for lr in [0.1, 0.37]])


# --- stage 2 ------------------------------------------------------------------------------------

def probe_local_grads(ns):
    def run(a, b):
        inputs = [ns["Value"](a), ns["Value"](b), ns["Value"](abs(a))]
        x, y, z = inputs

        def node(v):   # its value, its local derivatives, and which inputs are its children
            return [v.data, list(v._local_grads),
                    [next((k for k, i in enumerate(inputs) if c is i), -1) for c in v._children]]

        return [node(x * y), node(x * 2.5), node(x * x), node(z ** b), node(z.log()),
                node(x.exp()), node(x.relu())]

    return cases(run, *[(f"*, **, log, exp, relu at ({a}, {b})", 1e-12, a, b)
                        for a, b in [(2.0, 3.0), (-1.25, 0.5), (1.7, -2.0)]])


def probe_backward(ns):
    def Value(*args):   # the student's, when a case runs
        return ns["Value"](*args)

    def two_paths():   # d = (a * b) * a, built by hand: a is used twice
        a, b = Value(2.0), Value(3.0)
        c = Value(6.0, (a, b), (3.0, 2.0))
        d = Value(12.0, (c, a), (2.0, 6.0))
        d.backward()
        return [a.grad, b.grad, c.grad, d.grad]

    def diamond():   # a used three times, through paths of different lengths
        a = Value(1.0)
        b = Value(2.0, (a,), (2.0,))
        c = Value(3.0, (a, b), (1.0, 1.0))
        Value(6.0, (c, a, b), (1.0, 1.0, 1.0)).backward()
        return [a.grad, b.grad, c.grad]

    def chain():   # 300 nodes y_k = 1.01 y_(k-1)
        x = node = Value(1.0)
        for _ in range(300):
            node = Value(node.data * 1.01, (node,), (1.01,))
        node.backward()
        return x.grad

    return [("backward on d = (a * b) * a", 1e-12, two_paths),
            ("backward on d = c + a + b, c = a + b, b = 2a", 1e-12, diamond),
            ("backward through a 300-node chain", 1e-9, chain)]


# --- stage 3 ------------------------------------------------------------------------------------

def probe_rmsnorm(ns):
    def run(x, want_grads):
        xs = values(ns, x)
        return outputs_or_grads(ns["rmsnorm"](xs), xs, [0.3, -0.1, 0.7, 0.2, 0.5, -0.9, 0.4],
                                want_grads)

    x = [0.3, -1.2, 2.2, 0.0, 0.9, -0.4, 1.1]
    return cases(run, ("rmsnorm([3, 4])", 1e-9, [3.0, 4.0], False),
                 ("rmsnorm of 7 numbers", 1e-9, x, False),
                 ("rmsnorm of zeros", 1e-9, [0.0] * 3, False),
                 ("gradient through rmsnorm of 7 numbers", 1e-7, x, True))


def attention_probe(ns, function, q, keys, vals, coefficients, **settings):
    """run(positions or None, want_grads): `function` on the first positions of keys and vals
    (all if None); the gradients wrt q, keys and values (q and the keys get theirs only through
    the softmax)."""
    def run(positions, want_grads):
        inputs = {"q": values(ns, q), "keys": values(ns, keys[:positions]),
                  "values": values(ns, vals[:positions])}
        with patched(ns, **settings):
            out = ns[function](inputs["q"], inputs["keys"], inputs["values"])
        return outputs_or_grads(out, inputs, coefficients, want_grads)
    return run


def probe_attention(ns):
    rng = random.Random(11)
    run = attention_probe(ns, "attention", floats(rng, 3), floats(rng, 4, 3), floats(rng, 4, 3),
                          [0.5, -1.0, 0.8], head_dim=3)
    return cases(run, ("attention over 1 position", 1e-9, 1, False),
                 ("attention over 4 positions, head_dim = 3", 1e-9, 4, False),
                 ("gradient of attention wrt q, keys and values", 1e-7, 4, True))


def transformer_probe(ns, function, n_layer, n_head=1):
    """Three positions through `function` (transformer_block, or transformer_layers with
    n_layer layers) with random weights and the real rmsnorm and attention: the outputs, the
    cache lengths, and the gradients of every weight and input."""
    rng = random.Random(13 + n_layer)
    shapes = {"attn_wq": (4, 4), "attn_wk": (4, 4), "attn_wv": (4, 4), "attn_wo": (4, 4),
              "mlp_fc1": (16, 4), "mlp_fc2": (4, 16)}
    weights = {p + name: floats(rng, *shape) for p in [f"layer{i}." for i in range(n_layer)]
               or [""] for name, shape in shapes.items()}
    xs = floats(rng, 3, 4)

    def run(want_grads):
        sd = {name: values(ns, w) for name, w in weights.items()}
        inputs = values(ns, xs)
        caches = [[[] for _ in range(n_layer)] if n_layer else [] for _ in "kv"]   # keys, values
        with patched(ns, state_dict=sd, n_embd=4, n_head=n_head, head_dim=4 // n_head,
                     n_layer=n_layer):
            outs = [ns[function](x, *caches) for x in inputs]
        if not want_grads:
            lengths = [len(c) for c in caches[0]] if n_layer else len(caches[0])
            return [[[o.data for o in out] for out in outs], lengths]
        # one backward() for all positions: a second one would pass the first one's gradients
        # on again through the nodes the positions share (the cached keys and values)
        return outputs_or_grads([o for out in outs for o in out], [inputs, sd],
                                [0.4, -0.6, 0.9, 0.2] * len(outs), True)

    name = function + (f" ({n_layer} layers of {n_head} heads)" if n_layer else "")
    return cases(run, (f"{name}: outputs at 3 positions and cache lengths", 1e-9, False),
                 (f"{name}: gradients of every weight and input", 1e-7, True))


def probe_transformer_block(ns):
    return transformer_probe(ns, "transformer_block", 0)


# --- stage 4 ------------------------------------------------------------------------------------

def probe_multi_head_attention(ns):
    rng = random.Random(17)
    q, keys, vals = floats(rng, 8), floats(rng, 3, 8), floats(rng, 3, 8)

    def run(n_head, want_grads):
        return attention_probe(ns, "multi_head_attention", q, keys, vals,
                               floats(random.Random(1), 8), n_head=n_head,
                               head_dim=8 // n_head, n_embd=8)(None, want_grads)

    return cases(run, ("multi_head_attention with 2 heads of 4", 1e-9, 2, False),
                 ("multi_head_attention with 4 heads of 2", 1e-9, 4, False),
                 ("gradient of multi_head_attention (4 heads) wrt q, keys, values", 1e-7, 4,
                  True))


def probe_transformer_layers(ns):
    return transformer_probe(ns, "transformer_layers", 1, 2) + \
        transformer_probe(ns, "transformer_layers", 3, 2)


# --- stage 5 ------------------------------------------------------------------------------------

def probe_adam_update(ns):
    def run(beta1, beta2, steps):
        rng = random.Random(23)
        params = values(ns, floats(rng, 4))
        adam_m, adam_v, trace = [0.0] * 4, [0.0] * 4, []
        with patched(ns, params=params, adam_m=adam_m, adam_v=adam_v, beta1=beta1,
                     beta2=beta2):
            for step in range(steps):
                for p, g in zip(params, floats(rng, 4)):
                    p.grad = g
                ns["adam_update"](0.01 * (steps - step), step)
                trace.append([[p.data for p in params], [p.grad for p in params],
                              list(adam_m), list(adam_v)])
        return trace

    return cases(run, ("adam_update: one step", 1e-9, 0.9, 0.999, 1),
                 ("adam_update: three steps", 1e-9, 0.85, 0.99, 3))


def probe_lr_schedule(ns):
    def run(learning_rate, num_steps):
        with patched(ns, learning_rate=learning_rate, num_steps=num_steps):
            return [ns["lr_schedule"](step) for step in range(num_steps)]

    return cases(run, ("lr_schedule over 100 steps from 0.01", 1e-12, 0.01, 100),
                 ("lr_schedule over 7 steps from 0.3", 1e-12, 0.3, 7))
