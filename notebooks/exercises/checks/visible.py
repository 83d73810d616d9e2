"""Visible exercise checks: tools/exercises.py copies each function into the handout's check
cell after its exercise (and nbgrader_course.py into its visible checks). A check receives the
namespace that holds the student's code, calls the student's function on small inputs and
compares the result with an answer found another way (a small case worked out by hand, finite
differences), raising CheckFailed with a specific message. It never calls another exercise's
function: where the code under test needs one, the check patches in a stand-in, so each exercise
is checked on its own. The helpers (expect, expect_close, patched, ...) come from helpers.py.
"""
# ruff: noqa: F821, Q000  (helpers.py defines the names these checks use; the checks are handout
# text, copied as they are: tools/exercises.py)


def value_tree(Value, x, leaves, nudge=(None, 0.0)):
    """Nested lists of floats as Values, each also appended to leaves; leaf nudge[0] is moved
    by nudge[1]."""
    if isinstance(x, list):
        return [value_tree(Value, v, leaves, nudge) for v in x]
    leaves.append(Value(float(x) + (nudge[1] if nudge[0] == len(leaves) else 0.0)))
    return leaves[-1]


def expect_gradients(ns, label, f, x, eps=1e-6):
    """The gradients that backward() gives the inputs x (nested lists of floats) of f (Values in,
    a list of Values out) against central differences of f's own values: right values from a
    cut graph (a .data, or a new Value) fail here."""
    def loss(nudge):
        leaves = []
        out = f(value_tree(ns['Value'], x, leaves, nudge))
        return sum(o * (0.5 + 0.25 * k) for k, o in enumerate(out)), leaves   # Value * number

    total, leaves = loss((None, 0.0))
    expect(hasattr(total, 'backward'), f'{label}: the result should be a list of Values')
    total.backward()
    for k, leaf in enumerate(leaves):
        slope = (loss((k, eps))[0].data - loss((k, -eps))[0].data) / (2 * eps)
        if not is_close(leaf.grad, slope, 1e-5):
            raise CheckFailed(
                f'{label}: input number {k} gets the gradient {show(leaf.grad)} from backward(), '
                f'but nudging it changes the output at the rate {show(slope)} (right values, '
                'wrong gradients: a .data or a new Value(...) cuts the graph somewhere)')


def counted(calls, name, f):
    """f, appending name to calls each time it is called."""
    def wrapper(*args):
        calls.append(name)
        return f(*args)
    return wrapper


def vmat(ns, rows):
    """A matrix of Values (for a stand-in state_dict)."""
    Value = ns['Value']
    return [[Value(float(w)) for w in row] for row in rows]


def check_count_pair(ns):
    counts = [[1, 1, 1], [1, 1, 1], [1, 1, 1]]   # a 3-token vocabulary, add-one smoothed
    with patched(ns, counts=counts, vocab_size=3):
        ns['count_pair'](0, 2)
        ns['count_pair'](0, 2)
        ns['count_pair'](2, 1)
    expect_close('counts[0][2] after counting the pair (0 then 2) twice', counts[0][2], 3)
    expect_close('counts[2][0] (the pair 2 then 0 was never counted)', counts[2][0], 1)
    expect_close('counts[2][1] after counting the pair (2 then 1) once', counts[2][1], 2)
    expect_close('counts (nothing else changes)', counts, [[1, 1, 3], [1, 1, 1], [1, 2, 1]])


def check_doc_loss(ns):
    counts = [[1, 2, 5], [3, 1, 4], [2, 2, 2]]   # bigram() divides each row by its sum
    tokens = [2, 0, 1, 2]   # 3 predictions: 2 -> 0, 0 -> 1, 1 -> 2
    # the probabilities of the 3 next tokens are 2/6, 2/8 and 4/8; their product is 1/24
    with patched(ns, counts=counts, block_size=16, vocab_size=3):
        got = ns['doc_loss'](tokens)
    expect_close('doc_loss([2, 0, 1, 2])', got, math.log(24) / 3,
                 want_text='-log(2/6 * 2/8 * 4/8) / 3 = log(24) / 3 = 1.05936 (the mean over '
                           '3 predictions of -log p(next))')


def check_sample_next(ns):
    state = random.getstate()
    random.seed(1234)
    try:
        with patched(ns, vocab_size=3):
            always = [ns['sample_next']([0.0, 0.0, 1.0]) for _ in range(50)]
            draws = [ns['sample_next']([0.25, 0.0, 0.75]) for _ in range(4000)]
    finally:
        random.setstate(state)
    bad = [d for d in always + draws if d not in (0, 1, 2)]
    expect(not bad, f'sample_next should return a token id 0, 1 or 2; you returned {bad[:1]}')
    expect(set(always) == {2}, 'sample_next([0, 0, 1]) should always return 2; you returned '
                               f'{sorted(set(always))}')
    freq = [draws.count(t) / len(draws) for t in range(3)]
    expect(abs(freq[0] - 0.25) < 0.04 and freq[1] == 0 and abs(freq[2] - 0.75) < 0.04,
           'sample_next([0.25, 0, 0.75]) should return 0, 1, 2 with probabilities 0.25, 0, '
           f'0.75; in 4000 draws yours did {show(freq)}')


def check_softmax_ce_grad(ns):
    logits = [0.5, -1.0, 2.0, 0.0]
    total = sum(math.exp(v) for v in logits)
    probs = [math.exp(v) / total for v in logits]   # [0.158, 0.035, 0.710, 0.096]
    got = ns['softmax_ce_grad'](list(probs), 2, 3)
    # worked out for this case (and confirmed by finite differences of the loss)
    expect_close('softmax_ce_grad(probs, target_id=2, n=3) for logits [0.5, -1, 2, 0]', got,
                 [0.052814903, 0.011784598, -0.096633359, 0.032033858], tol=1e-8)


def check_mlp_backward(ns):
    # linear_backward on its own: y = w @ x with w (3, 2)
    w = [[1.0, 2.0], [3.0, -1.0], [0.5, 0.0]]
    x = [2.0, -1.0]
    dy = [1.0, 0.5, -2.0]
    dw = [[10.0, 10.0], [10.0, 10.0], [10.0, 10.0]]   # gradients already added by other positions
    dx = ns['linear_backward'](dy, x, w, dw)
    expect_close('linear_backward: dx (dx[j] = sum_i dy[i] * w[i][j])', dx, [1.5, 1.5])
    expect_close('linear_backward: dw (dy[i] * x[j] added to what dw held)', dw,
                 [[12.0, 9.0], [11.0, 9.5], [6.0, 12.0]])
    # mlp_backward on a small MLP: 2 -> 4 -> 3, token 1, two of the four h_pre negative
    sd = {'wte': [[0.3, -0.2], [0.5, 0.8], [-0.4, 0.1]],
          'mlp_fc1': [[1.0, -0.5], [-0.7, 0.2], [0.3, 0.9], [-0.6, -0.4]],
          'mlp_fc2': [[0.2, -0.3, 0.5, 0.1], [-0.4, 0.6, 0.2, -0.1], [0.3, 0.3, -0.2, 0.7]]}
    dlogits = [0.2, -0.5, 0.3]
    token_id = 1
    emb = sd['wte'][token_id]
    h_pre = [0.1, -0.19, 0.87, -0.62]   # mlp_fc1 @ emb
    h = [0.1, 0.0, 0.87, 0.0]   # ReLU
    grads = {name: [[0.0] * len(row) for row in mat] for name, mat in sd.items()}
    with patched(ns, state_dict=sd):
        for _ in range(2):   # two positions with the same token: their gradients add up
            ns['mlp_backward'](list(dlogits), token_id, emb, list(h_pre), list(h), grads)
    # worked out for this case (and confirmed by finite differences), for the two calls
    want = {'mlp_fc2': [[0.04, 0.0, 0.348, 0.0], [-0.1, 0.0, -0.87, 0.0], [0.06, 0.0, 0.522, 0.0]],
            'mlp_fc1': [[0.33, 0.528], [0.0, 0.0], [-0.06, -0.096], [0.0, 0.0]],
            'wte': [[0.0, 0.0], [0.624, -0.438], [0.0, 0.0]]}
    for name in ['mlp_fc2', 'mlp_fc1', 'wte']:
        expect_close(f"grads['{name}'] after mlp_backward ran for two positions",
                     grads[name], want[name], tol=1e-6)


def check_numerical_grad(ns):
    sd = {'w': [[0.5, -0.3], [0.2, 0.1]]}

    def stand_in_loss(tokens):   # any function of the weights will do
        w = sd['w']
        return math.exp(5 * w[0][1]) + w[1][0] * w[0][0] ** 2

    with patched(ns, state_dict=sd, doc_loss=stand_in_loss):
        g01 = ns['numerical_grad']([0, 1], 'w', 0, 1)
        g00 = ns['numerical_grad']([0, 1], 'w', 0, 0)
    expect_close('numerical_grad of L = exp(5 w[0][1]) + w[1][0] w[0][0]^2 for w[0][1]', g01,
                 5 * math.exp(-1.5), tol=1e-8,
                 want_text='5 exp(5 * -0.3) = 1.11565 (to 1e-8: a one-sided difference is '
                           'not accurate enough)')
    expect_close('... and for w[0][0]', g00, 0.2, want_text='2 w[1][0] w[0][0] = 0.2')
    expect_close("the weights after numerical_grad (it must put them back)", sd['w'],
                 [[0.5, -0.3], [0.2, 0.1]], tol=1e-12)


def check_sgd_update(ns):
    sd = {'a': [[1.0, 2.0]], 'b': [[-1.0], [0.5]]}
    grads = {'a': [[0.5, -1.0]], 'b': [[2.0], [0.0]]}
    with patched(ns, state_dict=sd):
        ns['sgd_update'](grads, 0.1)
    expect_close("state_dict['a'] after sgd_update(grads, 0.1) (a step against the gradient)",
                 sd['a'], [[0.95, 2.1]])
    expect_close("state_dict['b'] after the same step", sd['b'], [[-1.2], [0.5]])


def check_local_grads(ns):
    Value = ns['Value']
    a = Value(2.0)
    b = Value(3.0)
    c = a * b
    expect_close('(a * b).data for a = 2, b = 3', c, 6.0)
    expect(tuple(c._children) == (a, b), 'a * b should record its children as (a, b)')
    expect_close('d(a*b)/da', c._local_grads[0], 3.0, want_text='b.data = 3.0')
    expect_close('d(a*b)/db', c._local_grads[1], 2.0, want_text='a.data = 2.0')
    c = a * 4.0
    expect_close('d(a*4)/da (a plain number is wrapped in a Value first)', c._local_grads[0], 4.0)
    p = a ** 3
    expect_close('(a ** 3).data', p, 8.0)
    expect_close('d(a**3)/da', p._local_grads[0], 12.0, want_text='3 * a.data**2 = 12.0')
    lg = a.log()
    expect_close('a.log().data', lg, math.log(2.0))
    expect_close('d(log a)/da', lg._local_grads[0], 0.5, want_text='1 / a.data = 0.5')
    e = a.exp()
    expect_close('a.exp().data', e, math.exp(2.0))
    expect_close('d(exp a)/da', e._local_grads[0], math.exp(2.0),
                 want_text='exp(a.data) = 7.38906')
    r = Value(-1.5).relu()
    expect_close('Value(-1.5).relu().data', r, 0.0)
    expect_close('d relu(x)/dx at x = -1.5', r._local_grads[0], 0.0)
    r = Value(2.0).relu()
    expect_close('Value(2.0).relu().data', r, 2.0)
    expect_close('d relu(x)/dx at x = 2', r._local_grads[0], 1.0)


def check_backward(ns):
    Value = ns['Value']
    # graphs built by hand (children and local derivatives given), so this check does not
    # depend on your answers to the local-derivatives exercise
    a = Value(2.0)
    b = Value(3.0)
    c = Value(6.0, (a, b), (3.0, 2.0))   # c = a * b
    d = Value(12.0, (c, a), (2.0, 6.0))   # d = c * a: a is used twice
    d.backward()
    expect_close('d.grad after d.backward()', d.grad, 1.0, want_text='1.0 (dd/dd)')
    expect_close('c.grad for d = c * a', c.grad, 2.0, want_text='a.data = 2.0')
    expect_close('b.grad for d = (a * b) * a', b.grad, 4.0, want_text='a**2 = 4.0')
    expect_close('a.grad for d = (a * b) * a, where a is used twice', a.grad, 12.0,
                 want_text='2ab = 12.0 (6.0 through c plus 6.0 directly: the two add up)')
    # z = u + 3u where u = 2x: u must pass its gradient on only after it has all of it
    x = Value(1.0)
    u = Value(2.0, (x,), (2.0,))
    y = Value(6.0, (u,), (3.0,))
    z = Value(8.0, (u, y), (1.0, 1.0))
    z.backward()
    expect_close('u.grad for z = u + 3u', u.grad, 4.0)
    expect_close('x.grad for z = u + 3u, u = 2x', x.grad, 8.0,
                 want_text='8.0 (a node must come after every node that uses it in the order)')


def check_rmsnorm(ns):
    Value = ns['Value']
    expect_close('rmsnorm([1, -1, 1, -1]) (mean square 1)', ns['rmsnorm']([Value(1.0), Value(-1.0),
                 Value(1.0), Value(-1.0)]), [v / math.sqrt(1 + 1e-5) for v in [1, -1, 1, -1]],
                 tol=1e-9, want_text='[1, -1, 1, -1] / sqrt(1 + 1e-5)')
    expect_close('rmsnorm([3, 4]) (mean square 12.5)', ns['rmsnorm']([Value(3.0), Value(4.0)]),
                 [3 / math.sqrt(12.5 + 1e-5), 4 / math.sqrt(12.5 + 1e-5)], tol=1e-9,
                 want_text='[3, 4] / sqrt(12.5 + 1e-5) = [0.848528, 1.13137]')
    expect_gradients(ns, 'gradients of rmsnorm(x)', ns['rmsnorm'], [1.0, -2.0, 3.0, 0.5])


def check_attention(ns):
    Value = ns['Value']

    def vs(rows):
        return [[Value(float(v)) for v in row] for row in rows]

    q = [Value(1.0), Value(1.0), Value(0.0), Value(0.0)]
    keys = vs([[1, 1, 0, 0], [0, 0, 1, 1]])   # q . k = 2 and 0
    values = vs([[1, 0, 2, 0], [0, 1, 0, 4]])
    w0 = math.e / (1 + math.e)   # softmax([1, 0])
    with patched(ns, head_dim=4):
        got = ns['attention'](q, keys, values)
    expect_close('attention(q, keys, values) with q.k = [2, 0] and head_dim = 4', got,
                 [w0, 1 - w0, 2 * w0, 4 * (1 - w0)], tol=1e-9,
                 want_text='[w0, w1, 2 w0, 4 w1] = [0.731059, 0.268941, 1.46212, 1.07577]: '
                           'scores [2, 0] / sqrt(4) = [1, 0], weights softmax([1, 0]) = '
                           '[0.731, 0.269], output w0 * values[0] + w1 * values[1]')
    with patched(ns, head_dim=2):
        got = ns['attention']([Value(0.3), Value(-0.7)], vs([[5, 1]]), vs([[1.5, -2.5]]))
    expect_close('attention over a single position (its weight must be 1)', got, [1.5, -2.5])
    with patched(ns, head_dim=3):
        expect_gradients(ns, 'gradients of attention(q, keys, values) (inputs: q, the keys, the '
                         'values)', lambda a: ns['attention'](*a),
                         [[0.3, -0.8, 0.5], [[0.2, 0.9, -0.4], [-0.6, 0.1, 0.7]],
                          [[1.0, -0.5, 0.3], [0.2, 0.8, -1.1]]])


def stand_in_rmsnorm(x):
    """Not rmsnorm: halves x, so the check does not depend on your rmsnorm."""
    return [xi * 0.5 for xi in x]


def stand_in_attention(q, keys, values):
    """Not attention: the plain mean of the cached values, easy to follow by hand."""
    return [sum(column) / len(values) for column in zip(*values)]


def stand_in_softmax(q, keys, values):
    """Not attention: weights proportional to exp(q . k), unscaled; uses q, keys and values."""
    scores = [sum(a * b for a, b in zip(q, k)).exp() for k in keys]
    total = sum(scores)
    return [sum(s / total * v[j] for s, v in zip(scores, values)) for j in range(len(values[0]))]


def two_positions(function, layers=0):
    """x (two positions' inputs) -> both positions' outputs of function, with fresh caches."""
    def run(x):
        keys = [[] for _ in range(layers)] if layers else []
        values = [[] for _ in range(layers)] if layers else []
        return function(x[0], keys, values) + function(x[1], keys, values)
    return run


def block_weights(ns, wo, fc2):
    identity = [[1, 0], [0, 1]]
    fc1 = [[1, 0], [0, 1], [-1, 0], [0, -1], [0, 0], [0, 0], [0, 0], [0, 0]]
    return {'attn_wq': vmat(ns, identity), 'attn_wk': vmat(ns, identity),
            'attn_wv': vmat(ns, identity), 'attn_wo': vmat(ns, wo),
            'mlp_fc1': vmat(ns, fc1), 'mlp_fc2': vmat(ns, fc2)}


def check_transformer_block(ns):
    Value = ns['Value']
    zero2 = [[0, 0], [0, 0]]
    zero8 = [[0] * 8, [0] * 8]
    fc2 = [[1, 0, 0, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0, 0, 0]]
    identity = [[1, 0], [0, 1]]
    cases = [
        (zero2, zero8, [1.0, 2.0], 'attn_wo and mlp_fc2 all zero: both sublayers add nothing, '
                                   'so the residual connections pass x through unchanged'),
        (identity, zero8, [1.5, 3.0], 'attn_wo = I, mlp_fc2 = 0: x + attention(...), where the '
                                      'attention (a stand-in) returns v = 0.5 x, the value of '
                                      'the normalized x'),
        (zero2, fc2, [1.5, 3.0], 'attn_wo = 0, mlp_fc2 picks the first two hidden units: '
                                 'x + relu(fc1 @ (0.5 x))[:2]'),
    ]
    for wo, w2, want, what in cases:
        keys = []
        values = []
        calls = []
        with patched(ns, state_dict=block_weights(ns, wo, w2), n_embd=2, head_dim=2,
                     rmsnorm=counted(calls, 'rmsnorm', stand_in_rmsnorm),
                     attention=counted(calls, 'attention', stand_in_attention)):
            got = ns['transformer_block']([Value(1.0), Value(2.0)], keys, values)
        expect(calls.count('rmsnorm') == 2 and 'attention' in calls, 'transformer_block should '
               'call rmsnorm() twice and attention() once (this check swaps them for stand-ins, '
               f'to test this exercise on its own); it called {calls}')
        expect(len(keys) == 1 and len(values) == 1, 'transformer_block should append one key '
               f'and one value to the caches; they hold {len(keys)} and {len(values)}')
        expect_close(f'transformer_block([1, 2]) with {what}', got, want)
    with patched(ns, state_dict=block_weights(ns, [[0.5, -1], [1, 0.5]], fc2), n_embd=2,
                 head_dim=2, rmsnorm=stand_in_rmsnorm, attention=stand_in_softmax):
        expect_gradients(ns, 'gradients of transformer_block at two positions (with a stand-in '
                         'attention that uses q and the keys)',
                         two_positions(ns['transformer_block']), [[1.0, 2.0], [-0.5, 1.5]])


def check_multi_head_attention(ns):
    Value = ns['Value']
    calls = []

    def recording_attention(q_h, k_h, v_h):
        """Not attention: records what it was given; returns [sum(q_h), number of positions]."""
        calls.append((as_floats(q_h), [as_floats(k) for k in k_h], [as_floats(v) for v in v_h]))
        return [sum(q_h), Value(float(len(k_h)))]

    def vs(rows):
        return [[Value(float(v)) for v in row] for row in rows]

    q = [Value(float(v)) for v in [1, 2, 3, 4]]
    keys = vs([[5, 6, 7, 8], [9, 10, 11, 12]])
    values = vs([[-1, -2, -3, -4], [-5, -6, -7, -8]])
    with patched(ns, attention=recording_attention, n_head=2, head_dim=2, n_embd=4):
        got = ns['multi_head_attention'](q, keys, values)
    expect(len(calls) == 2, f'with n_head = 2, attention should be called twice, not {len(calls)}')
    expect_close('the query of head 0', calls[0][0], [1, 2])
    expect_close('the keys of head 0', calls[0][1], [[5, 6], [9, 10]])
    expect_close('the values of head 0', calls[0][2], [[-1, -2], [-5, -6]])
    expect_close('the query of head 1', calls[1][0], [3, 4])
    expect_close('the keys of head 1', calls[1][1], [[7, 8], [11, 12]])
    expect_close('the values of head 1', calls[1][2], [[-3, -4], [-7, -8]])
    expect_close('the output: the heads\' outputs [3, 2] and [7, 2], concatenated', got,
                 [3, 2, 7, 2])
    with patched(ns, n_head=2, head_dim=2, n_embd=4):   # with this notebook's attention
        expect_gradients(ns, 'gradients of multi_head_attention(q, keys, values) (inputs: q, the '
                         'keys, the values)', lambda a: ns['multi_head_attention'](*a),
                         [[0.3, -0.8, 0.5, 0.1], [[0.2, 0.9, -0.4, 0.3], [-0.6, 0.1, 0.7, -0.2]],
                          [[1.0, -0.5, 0.3, 0.6], [0.2, 0.8, -1.1, 0.4]]])


def check_transformer_layers(ns):
    Value = ns['Value']
    zero2 = [[0, 0], [0, 0]]
    zero8 = [[0] * 8, [0] * 8]
    identity = [[1, 0], [0, 1]]
    on = block_weights(ns, identity, zero8)   # x + 0.5 x with the stand-ins
    off = block_weights(ns, zero2, zero8)   # x
    cases = [((off, off), [1.0, 2.0], 'both layers adding nothing'),
             ((on, off), [1.5, 3.0], 'only layer 0 active (x -> 1.5 x)'),
             ((off, on), [1.5, 3.0], 'only layer 1 active (x -> 1.5 x)'),
             ((on, on), [2.25, 4.5], 'both layers active: layer 1 works on layer 0\'s output')]
    for layers, want, what in cases:
        sd = {f'layer{i}.{name}': mat for i, weights in enumerate(layers)
              for name, mat in weights.items()}
        keys = [[], []]
        values = [[], []]
        calls = []
        with patched(ns, state_dict=sd, n_embd=2, n_head=1, head_dim=2, n_layer=2,
                     rmsnorm=stand_in_rmsnorm, attention=stand_in_softmax,
                     multi_head_attention=counted(calls, 'mha', stand_in_attention)):
            got = ns['transformer_layers']([Value(1.0), Value(2.0)], keys, values)
        expect(len(calls) == 2, 'transformer_layers should call multi_head_attention() once '
               f'per layer, not {len(calls)} times (this check swaps it for a stand-in)')
        expect([len(k) for k in keys] == [1, 1] and [len(v) for v in values] == [1, 1],
               'each layer should append one key to its own cache keys[i] (and one value to '
               f'values[i]); the caches hold {[len(k) for k in keys]} keys')
        expect_close(f'transformer_layers([1, 2]) with {what}', got, want)
    sd = {f'layer{i}.{name}': mat for i in range(2) for name, mat in block_weights(
        ns, [[0.5, -1], [1, 0.5]], [[0.3 * (j - 3)] * 8 for j in range(2)]).items()}
    with patched(ns, state_dict=sd, n_embd=2, n_head=1, head_dim=2, n_layer=2,
                 rmsnorm=stand_in_rmsnorm, multi_head_attention=stand_in_softmax):
        expect_gradients(ns, 'gradients of transformer_layers (2 layers) at two positions',
                         two_positions(ns['transformer_layers'], 2), [[1.0, 2.0], [-0.5, 1.5]])


def check_adam_update(ns):
    Value = ns['Value']
    params = [Value(1.0), Value(-2.0), Value(0.5)]
    adam_m = [0.0, 0.0, 0.0]
    adam_v = [0.0, 0.0, 0.0]
    with patched(ns, params=params, adam_m=adam_m, adam_v=adam_v, beta1=0.9, beta2=0.999):
        for p, g in zip(params, [0.5, -0.1, 0.0]):
            p.grad = g
        ns['adam_update'](0.1, 0)
        expect_close('adam_m after the first step ((1 - beta1) * grad)', adam_m,
                     [0.05, -0.01, 0.0], tol=1e-12)
        expect_close('adam_v after the first step ((1 - beta2) * grad**2)', adam_v,
                     [0.00025, 0.00001, 0.0], tol=1e-12)
        expect_close('the parameters after the first step with lr_t = 0.1', params,
                     [0.9, -1.9, 0.5], tol=1e-6,
                     want_text='[0.9, -1.9, 0.5]: with bias correction, m_hat = grad and '
                               'v_hat = grad**2 at step 0, so each moves lr_t against its sign')
        expect_close('p.grad after the update (reset for the next backward)', [p.grad for p in
                     params], [0.0, 0.0, 0.0])
        for p in params:
            p.grad = 0.5
        ns['adam_update'](0.1, 1)
    expect_close('params[0] after a second step with the same gradient 0.5', params[0], 0.8,
                 tol=1e-6, want_text='0.8: a constant gradient keeps m_hat = grad and '
                                     'v_hat = grad**2, so the step is lr_t again')


def check_lr_schedule(ns):
    with patched(ns, learning_rate=0.01, num_steps=100):
        got = [ns['lr_schedule'](step) for step in [0, 50, 99]]
    expect_close('lr_schedule(step) for step = 0, 50, 99 with learning_rate = 0.01 and '
                 'num_steps = 100', got, [0.01, 0.005, 0.0001], tol=1e-12,
                 want_text='[0.01, 0.005, 0.0001] (the full rate at step 0, decaying linearly '
                           'towards 0 at step num_steps)')
