"""Hidden exercise checks, for nbgrader's hidden tests (tools/grade.py grades with probes.py
instead); never put in a handout. Other inputs and edge cases, compared with oracles written
independently of the stage scripts (plain floats). Same conventions as visible.py, whose helpers
they may use.
"""
# ruff: noqa: F821  (helpers.py and visible.py define the names these checks use)


def hidden_count_pair(ns):
    rng = random.Random(7)
    counts = [[1] * 4 for _ in range(4)]
    pairs = [(rng.randrange(4), rng.randrange(4)) for _ in range(60)]
    with patched(ns, counts=counts, vocab_size=4):
        for a, b in pairs:
            ns['count_pair'](a, b)
    want = [[1 + sum(1 for p in pairs if p == (a, b)) for b in range(4)] for a in range(4)]
    expect_close('counts after 60 random pairs', counts, want)


def hidden_doc_loss(ns):
    counts = [[2, 1, 1, 4], [1, 3, 2, 2], [5, 1, 1, 1], [1, 1, 6, 1]]
    table = [[c / sum(row) for c in row] for row in counts]
    tokens = [3, 2, 0, 1, 3, 0]
    for block_size in [16, 2]:   # at most block_size predictions
        n = min(block_size, len(tokens) - 1)
        want = -sum(math.log(table[a][b]) for a, b in zip(tokens[:n], tokens[1:n + 1])) / n
        with patched(ns, counts=counts, block_size=block_size, vocab_size=4):
            got = ns['doc_loss'](tokens)   # bigram() normalizes the counts
        expect_close(f'doc_loss with block_size = {block_size}', got, want, tol=1e-9)


def hidden_sample_next(ns):
    state = random.getstate()
    random.seed(99)
    try:
        with patched(ns, vocab_size=4):
            draws = [ns['sample_next']([0.25, 0.0, 0.125, 0.625]) for _ in range(8000)]
            three = {ns['sample_next']([0.0, 1.0, 0.0, 0.0]) for _ in range(30)}
        with patched(ns, vocab_size=2):   # a rare token: probs ** 0.9 would give it 0.0037
            rare = [ns['sample_next']([0.002, 0.998]) for _ in range(100000)].count(0) / 1e5
    finally:
        random.setstate(state)
    freq = [draws.count(t) / len(draws) for t in range(4)]
    expect(is_close(freq, [0.25, 0.0, 0.125, 0.625], 0.03), f'frequencies {show(freq)}')
    expect(three == {1}, f'sample_next([0, 1, 0, 0]) gave {sorted(three)}')
    expect(abs(rare - 0.002) < 0.0007, f'sample_next([0.002, 0.998]) drew token 0 with '
                                       f'frequency {rare:.4f} in 100000 draws, not 0.002')


def hidden_softmax_ce_grad(ns):
    logits = [1.5, -0.3, 0.2, 3.0, -2.0, 0.7]
    total = sum(math.exp(v) for v in logits)
    probs = [math.exp(v) / total for v in logits]
    for target_id, n in [(0, 1), (5, 7)]:
        got = ns['softmax_ce_grad'](list(probs), target_id, n)
        want = [(p - (1.0 if i == target_id else 0.0)) / n for i, p in enumerate(probs)]
        expect_close(f'softmax_ce_grad(probs, {target_id}, {n})', got, want, tol=1e-9)


def hidden_mlp_backward(ns):
    rng = random.Random(3)

    def mat(r, c):
        return [[rng.uniform(-1, 1) for _ in range(c)] for _ in range(r)]

    w = mat(2, 5)
    x = [rng.uniform(-1, 1) for _ in range(5)]
    dy = [0.7, -1.3]
    dw = [[0.0] * 5 for _ in range(2)]
    dx = ns['linear_backward'](dy, x, w, dw)
    expect_close('linear_backward dx for a (2, 5) matrix', dx,
                 [sum(dy[i] * w[i][j] for i in range(2)) for j in range(5)], tol=1e-9)
    expect_close('linear_backward dw for a (2, 5) matrix', dw,
                 [[dy[i] * x[j] for j in range(5)] for i in range(2)], tol=1e-9)
    sd = {'wte': mat(4, 3), 'mlp_fc1': mat(6, 3), 'mlp_fc2': mat(4, 6)}
    token_id = 2
    dlogits = [rng.uniform(-1, 1) for _ in range(4)]
    emb = sd['wte'][token_id]
    h_pre = [sum(a * b for a, b in zip(row, emb)) for row in sd['mlp_fc1']]
    h = [max(0.0, v) for v in h_pre]
    d_h = [sum(dlogits[i] * sd['mlp_fc2'][i][j] for i in range(4)) for j in range(6)]
    d_pre = [d if v > 0 else 0.0 for d, v in zip(d_h, h_pre)]
    d_emb = [sum(d_pre[i] * sd['mlp_fc1'][i][j] for i in range(6)) for j in range(3)]
    want = {'mlp_fc2': [[dlogits[i] * h[j] for j in range(6)] for i in range(4)],
            'mlp_fc1': [[d_pre[i] * emb[j] for j in range(3)] for i in range(6)],
            'wte': [d_emb if r == token_id else [0.0] * 3 for r in range(4)]}
    grads = {name: [[0.0] * len(row) for row in m] for name, m in sd.items()}
    with patched(ns, state_dict=sd):
        ns['mlp_backward'](list(dlogits), token_id, emb, h_pre, h, grads)
    for name in ['mlp_fc2', 'mlp_fc1', 'wte']:
        expect_close(f"grads['{name}'] for random weights", grads[name], want[name], tol=1e-9)


def hidden_numerical_grad(ns):
    sd = {'m': [[1.5, 2.0, -0.5]]}

    def cube(tokens):
        return sd['m'][0][1] ** 3

    with patched(ns, state_dict=sd, doc_loss=cube):
        got = ns['numerical_grad']([0], 'm', 0, 1, eps=1e-2)
    # the central difference of w^3 is exactly 3 w^2 + eps^2
    expect_close('numerical_grad of w^3 at w = 2 with eps = 0.01', got, 12.0001, tol=1e-9)
    expect_close('the weights afterwards', sd['m'], [[1.5, 2.0, -0.5]], tol=1e-12)


def hidden_sgd_update(ns):
    rng = random.Random(5)
    sd = {name: [[rng.uniform(-1, 1) for _ in range(3)] for _ in range(2)] for name in 'xyz'}
    grads = {name: [[rng.uniform(-1, 1) for _ in range(3)] for _ in range(2)] for name in 'xyz'}
    want = {name: [[w - 0.37 * g for w, g in zip(wr, gr)] for wr, gr in zip(sd[name],
            grads[name])] for name in sd}
    with patched(ns, state_dict=sd):
        ns['sgd_update'](grads, 0.37)
    expect_close('state_dict after one random step', [sd[k] for k in 'xyz'],
                 [want[k] for k in 'xyz'], tol=1e-12)


def hidden_local_grads(ns):
    Value = ns['Value']
    for x, k in [(4.0, -0.5), (1.7, 2.5), (-2.0, 2)]:
        p = Value(x) ** k
        expect_close(f'Value({x}) ** {k}', p, x ** k, tol=1e-12)
        expect_close(f'd(x**{k})/dx at x = {x}', p._local_grads[0], k * x ** (k - 1), tol=1e-12)
    for x in [0.3, 5.0]:
        expect_close(f'd(log x)/dx at {x}', Value(x).log()._local_grads[0], 1 / x, tol=1e-12)
        expect_close(f'd(exp x)/dx at {x}', Value(x).exp()._local_grads[0], math.exp(x),
                     tol=1e-12)
    expect_close('d relu(x)/dx at x = 0', Value(0.0).relu()._local_grads[0], 0.0)
    a = Value(-1.25)
    c = a * a
    expect_close('d(a*a)/da, both entries', list(c._local_grads), [-1.25, -1.25])


def hidden_backward(ns):
    Value = ns['Value']
    # a chain of 300 nodes y_k = 1.01 * y_(k-1)
    x = Value(1.0)
    node = x
    for _ in range(300):
        node = Value(node.data * 1.01, (node,), (1.01,))
    node.backward()
    expect_close('x.grad at the start of a 300-node chain', x.grad, 1.01 ** 300, tol=1e-9)
    # one node used three times, through paths of different lengths
    a = Value(1.0)
    b = Value(2.0, (a,), (2.0,))
    c = Value(3.0, (a, b), (1.0, 1.0))
    d = Value(6.0, (c, a, b), (1.0, 1.0, 1.0))
    d.backward()
    expect_close('a.grad for d = c + a + b, c = a + b, b = 2a', a.grad, 6.0)


def reference_rmsnorm(x):
    scale = (sum(xi * xi for xi in x) / len(x) + 1e-5) ** -0.5
    return [xi * scale for xi in x]


def reference_attention(q, keys, values):
    width = len(q)
    scores = [sum(a * b for a, b in zip(q, k)) / math.sqrt(width) for k in keys]
    top = max(s.data if hasattr(s, 'data') else s for s in scores)
    exps = [(s - top).exp() if hasattr(s, 'exp') else math.exp(s - top) for s in scores]
    total = sum(exps)
    weights = [e / total for e in exps]
    return [sum(w * v[j] for w, v in zip(weights, values)) for j in range(len(values[0]))]


def hidden_rmsnorm(ns):
    Value = ns['Value']
    x = [0.3, -1.2, 2.2, 0.0, 0.9, -0.4, 1.1]
    expect_close('rmsnorm of 7 numbers', ns['rmsnorm']([Value(v) for v in x]),
                 reference_rmsnorm(x), tol=1e-9)
    expect_close('rmsnorm of zeros', ns['rmsnorm']([Value(0.0)] * 3), [0.0] * 3)


def hidden_attention(ns):
    Value = ns['Value']
    rng = random.Random(11)
    q = [rng.uniform(-2, 2) for _ in range(3)]
    keys = [[rng.uniform(-2, 2) for _ in range(3)] for _ in range(4)]
    values = [[rng.uniform(-2, 2) for _ in range(3)] for _ in range(4)]
    with patched(ns, head_dim=3):
        got = ns['attention']([Value(v) for v in q], [[Value(v) for v in k] for k in keys],
                              [[Value(v) for v in row] for row in values])
    expect_close('attention over 4 positions, head_dim = 3', got,
                 reference_attention(q, keys, values), tol=1e-9)


def random_block(ns, rng, prefix=''):
    def m(r, c):
        return vmat(ns, [[rng.uniform(-0.8, 0.8) for _ in range(c)] for _ in range(r)])
    return {prefix + 'attn_wq': m(4, 4), prefix + 'attn_wk': m(4, 4), prefix + 'attn_wv': m(4, 4),
            prefix + 'attn_wo': m(4, 4), prefix + 'mlp_fc1': m(16, 4), prefix + 'mlp_fc2': m(4, 16)}


def float_block(sd, prefix, x, keys, values, n_head=1):
    def lin(v, w):
        return [sum(a.data * b for a, b in zip(row, v)) for row in w]
    res = x
    h = reference_rmsnorm(x)
    q = lin(h, sd[prefix + 'attn_wq'])
    keys.append(lin(h, sd[prefix + 'attn_wk']))
    values.append(lin(h, sd[prefix + 'attn_wv']))
    d = len(x) // n_head
    att = []
    for s in range(0, len(x), d):
        att += reference_attention(q[s:s + d], [k[s:s + d] for k in keys],
                                   [v[s:s + d] for v in values])
    x = [a + b for a, b in zip(lin(att, sd[prefix + 'attn_wo']), res)]
    res = x
    h = [max(0.0, v) for v in lin(reference_rmsnorm(x), sd[prefix + 'mlp_fc1'])]
    return [a + b for a, b in zip(lin(h, sd[prefix + 'mlp_fc2']), res)]


def hidden_transformer_block(ns):
    Value = ns['Value']
    rng = random.Random(13)
    sd = random_block(ns, rng)
    xs = [[rng.uniform(-1, 1) for _ in range(4)] for _ in range(3)]
    keys, values, fk, fv = [], [], [], []
    with patched(ns, state_dict=sd, n_embd=4, head_dim=4, rmsnorm=reference_rmsnorm,
                 attention=reference_attention):
        for pos, x in enumerate(xs):
            got = ns['transformer_block']([Value(v) for v in x], keys, values)
            want = float_block(sd, '', x, fk, fv)
            expect_close(f'transformer_block at position {pos} (random weights)', got, want,
                         tol=1e-9)


def hidden_multi_head_attention(ns):
    Value = ns['Value']
    rng = random.Random(17)
    q = [rng.uniform(-1, 1) for _ in range(8)]
    keys = [[rng.uniform(-1, 1) for _ in range(8)] for _ in range(3)]
    values = [[rng.uniform(-1, 1) for _ in range(8)] for _ in range(3)]
    want = []
    for s in range(0, 8, 2):
        want += reference_attention(q[s:s + 2], [k[s:s + 2] for k in keys],
                                    [v[s:s + 2] for v in values])
    with patched(ns, attention=reference_attention, n_head=4, head_dim=2, n_embd=8):
        got = ns['multi_head_attention']([Value(v) for v in q],
                                         [[Value(v) for v in k] for k in keys],
                                         [[Value(v) for v in row] for row in values])
    expect_close('multi_head_attention with 4 heads of 2', got, want, tol=1e-9)


def hidden_transformer_layers(ns):
    Value = ns['Value']
    rng = random.Random(19)
    sd = {}
    for i in range(3):
        sd.update(random_block(ns, rng, f'layer{i}.'))

    def mha(q, keys, values):
        out = []
        for s in range(0, 4, 2):
            out += reference_attention(q[s:s + 2], [k[s:s + 2] for k in keys],
                                       [v[s:s + 2] for v in values])
        return out

    keys = [[] for _ in range(3)]
    values = [[] for _ in range(3)]
    fk = [[] for _ in range(3)]
    fv = [[] for _ in range(3)]
    with patched(ns, state_dict=sd, n_embd=4, n_head=2, head_dim=2, n_layer=3,
                 rmsnorm=reference_rmsnorm, attention=reference_attention,
                 multi_head_attention=mha):
        for pos in range(2):
            x = [rng.uniform(-1, 1) for _ in range(4)]
            got = ns['transformer_layers']([Value(v) for v in x], keys, values)
            for i in range(3):
                x = float_block(sd, f'layer{i}.', x, fk[i], fv[i], n_head=2)
            expect_close(f'transformer_layers, 3 layers, position {pos}', got, x, tol=1e-9)


def hidden_adam_update(ns):
    Value = ns['Value']
    rng = random.Random(23)
    params = [Value(rng.uniform(-1, 1)) for _ in range(4)]
    adam_m = [0.0] * 4
    adam_v = [0.0] * 4
    data = [p.data for p in params]
    m = [0.0] * 4
    v = [0.0] * 4
    with patched(ns, params=params, adam_m=adam_m, adam_v=adam_v, beta1=0.85, beta2=0.99):
        for step in range(3):
            grads = [rng.uniform(-1, 1) for _ in range(4)]
            lr_t = 0.01 * (3 - step)
            for p, g in zip(params, grads):
                p.grad = g
            ns['adam_update'](lr_t, step)
            for j, g in enumerate(grads):
                m[j] = 0.85 * m[j] + 0.15 * g
                v[j] = 0.99 * v[j] + 0.01 * g * g
                m_hat = m[j] / (1 - 0.85 ** (step + 1))
                v_hat = v[j] / (1 - 0.99 ** (step + 1))
                data[j] -= lr_t * m_hat / (math.sqrt(v_hat) + 1e-8)
            expect_close(f'the parameters after step {step} (random gradients)', params, data,
                         tol=1e-9)


def hidden_lr_schedule(ns):
    with patched(ns, learning_rate=0.3, num_steps=7):
        got = [ns['lr_schedule'](s) for s in range(7)]
    expect_close('lr_schedule over num_steps = 7', got, [0.3 * (1 - s / 7) for s in range(7)],
                 tol=1e-12)
