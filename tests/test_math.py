"""The math of the stage scripts, checked in-process against independent oracles: stage 0's
loss and counts by hand, hand-derived and autograd gradients against central differences,
stage 2 against stage 1, causality, softmax, rmsnorm, the parameter count, one Adam step by
hand, and the learning-rate schedule.

Run: python -m pytest -q tests/test_math.py
"""
import math
import random

import pytest

from conftest import load_stage, run_section, small_args


def relative_error(analytic, numeric, floor=1e-4):
    """|a - n| / max(|a|, |n|, floor). A central difference with eps=1e-5 carries a round-off
    error of about 1e-16 * loss / eps ~ 3e-11, so gradients below `floor` are in effect
    compared with an absolute tolerance of 1e-6 * floor = 1e-10."""
    return abs(analytic - numeric) / max(abs(analytic), abs(numeric), floor)


def new_cache(ns):
    """Empty keys/values caches for one name: flat lists in stage 3, one per layer from
    stage 4 on."""
    if "n_layer" in ns:
        return [[] for _ in range(ns["n_layer"])], [[] for _ in range(ns["n_layer"])]
    return [], []


def longest_doc(ns):
    return max(ns["train_docs"][:100], key=len)


# --- stage 0: counts ---------------------------------------------------------------------------
def pairs_of(ns, doc):
    """The (token, next token) pairs of doc that its loss scores: at most block_size."""
    tokens = ns["encode"](doc)
    n = min(ns["block_size"], len(tokens) - 1)
    return [(tokens[k], tokens[k + 1]) for k in range(n)]


def train_stage0_on(names_file, docs, num_steps, block_size=16):
    """Stage 0 loaded up to training, its training names replaced by docs, then its own
    training section run for num_steps steps. Returns (namespace, counts before training)."""
    args = [f"--data_path={names_file}", f"--num_steps={num_steps}", f"--block_size={block_size}"]
    ns = load_stage(0, args, upto="training")
    ns["train_docs"] = list(docs)
    counts_before = [list(row) for row in ns["counts"]]
    run_section(ns, 0, "training")
    return ns, counts_before


def test_stage0_bigram_is_the_normalized_row_of_counts(names_file):
    ns = load_stage(0, [f"--data_path={names_file}"], upto="training")
    ns["counts"][3] = [k + 1 for k in range(ns["vocab_size"])]
    probs = ns["bigram"](3)
    total = ns["vocab_size"] * (ns["vocab_size"] + 1) / 2
    assert probs == pytest.approx([(k + 1) / total for k in range(ns["vocab_size"])], rel=1e-15)


def test_stage0_scores_a_name_with_the_counts_from_before_it_is_counted(names_file):
    """'anana' has the pairs (BOS,a) (a,n) (n,a) (a,n) (n,a) (a,BOS): its second (a,n) must be
    scored before its first is counted. From the add-one start every count is 1, so every
    probability is 1 / vocab_size and the loss is log(vocab_size), whatever the name."""
    ns, before = train_stage0_on(names_file, ["anana", "anana"], num_steps=2)
    V = ns["vocab_size"]
    assert before == [[1] * V for _ in range(V)]
    assert ns["losses"][0] == pytest.approx(math.log(V), rel=1e-15)
    # scoring and counting pair by pair would have given the second (a,n) 2 / (V + 1):
    fused = (3 * math.log(V) + 2 * math.log((V + 1) / 2) + math.log(V + 2)) / 6
    assert abs(fused - math.log(V)) > 0.01
    # the second step scores 'anana' with the counts after one 'anana', by hand: row BOS has
    # V + 1 counts, (BOS,a) 2 of them; row a V + 3, (a,n) 3 and (a,BOS) 2; row n V + 2, (n,a) 3
    second = (-math.log(2 / (V + 1)) - 2 * math.log(3 / (V + 3)) - 2 * math.log(3 / (V + 2))
              - math.log(2 / (V + 3))) / 6
    assert ns["losses"][1] == pytest.approx(second, rel=1e-15)


@pytest.mark.parametrize("doc, block_size", [("anana", 16), ("aaa", 16), ("mississippi", 4)])
def test_stage0_counts_grow_by_exactly_the_pairs_of_the_name(names_file, doc, block_size):
    ns, before = train_stage0_on(names_file, [doc], num_steps=1, block_size=block_size)
    pairs = pairs_of(ns, doc)
    assert len(pairs) == min(block_size, len(doc) + 1)   # cut at block_size, like the loss
    expected = [list(row) for row in before]
    for a, b in pairs:
        expected[a][b] += 1
    assert ns["counts"] == expected
    # and the loss of that step was scored on the counts from before it
    by_hand = [-math.log(before[a][b] / sum(before[a])) for a, b in pairs]
    assert ns["losses"] == [pytest.approx(sum(by_hand) / len(by_hand), rel=1e-15)]


# --- stage 1: hand-derived gradients ---------------------------------------------------------
def assert_stage1_grads_match_finite_differences(ns, tokens):
    _, grads = ns["doc_loss_and_grads"](tokens)
    checked = 0
    for name, grad_mat in grads.items():
        for i, grad_row in enumerate(grad_mat):
            for j, analytic in enumerate(grad_row):
                numeric = ns["numerical_grad"](tokens, name, i, j)
                assert relative_error(analytic, numeric) < 1e-6, (name, i, j, analytic, numeric)
                checked += 1
    assert checked == sum(len(row) for mat in ns["state_dict"].values() for row in mat)


def test_stage1_backprop_matches_finite_differences_on_every_parameter(names_file):
    ns = load_stage(1, small_args(1, names_file, n_embd=4))
    tokens = ns["encode"](longest_doc(ns))
    assert_stage1_grads_match_finite_differences(ns, tokens)
    for step in range(30):   # away from the initialization, where the weights are all tiny
        _, grads = ns["doc_loss_and_grads"](ns["encode"](ns["train_docs"][step]))
        ns["sgd_update"](grads, ns["learning_rate"])
    assert_stage1_grads_match_finite_differences(ns, tokens)


def test_stage1_loss_and_grads_returns_doc_loss(names_file):
    ns = load_stage(1, small_args(1, names_file, n_embd=4))
    tokens = ns["encode"](longest_doc(ns))
    loss, _ = ns["doc_loss_and_grads"](tokens)
    assert loss == pytest.approx(ns["doc_loss"](tokens), rel=1e-12)


# --- stage 2: the Value engine ---------------------------------------------------------------
@pytest.fixture(scope="module")
def stage2(names_file):
    return load_stage(2, small_args(2, names_file), upto="parameters")


OPS = {  # name: (expression, the same on floats, inputs)
    "add": (lambda a, b: a + b, None, (1.5, -2.0)),
    "sub": (lambda a, b: a - b, None, (1.5, -2.0)),
    "mul": (lambda a, b: a * b, None, (1.5, -2.0)),
    "truediv": (lambda a, b: a / b, None, (1.5, -2.5)),
    "pow": (lambda a: a ** 3, None, (-1.5,)),
    "pow negative fraction": (lambda a: a ** -0.5, None, (2.0,)),
    "neg": (lambda a: -a, None, (1.5,)),
    "add float": (lambda a: a + 2.0, None, (1.5,)),
    "sub float": (lambda a: a - 2.0, None, (1.5,)),
    "mul float": (lambda a: a * 2.0, None, (1.5,)),
    "truediv float": (lambda a: a / 2.0, None, (1.5,)),
    "radd": (lambda a: 2.0 + a, None, (1.5,)),
    "rmul": (lambda a: 2.0 * a, None, (1.5,)),
    "rsub": (lambda a: 1.0 - a, None, (1.5,)),
    "log": (lambda a: a.log(), math.log, (1.5,)),
    "exp": (lambda a: a.exp(), math.exp, (-1.5,)),
    "relu positive": (lambda a: a.relu(), lambda a: max(0.0, a), (1.5,)),
    "relu negative": (lambda a: a.relu(), lambda a: max(0.0, a), (-1.5,)),
    "composite": (lambda a, b: (a * b + b ** 2).exp() / (-a + 1.0).log(),
                  lambda a, b: math.exp(a * b + b ** 2) / math.log(1.0 - a), (-0.5, 0.3)),
}


def finite_difference(f, xs, k, h=1e-6):
    """d f(xs) / d xs[k] by a central difference, f evaluated on plain floats."""
    plus = list(xs)
    minus = list(xs)
    plus[k] += h
    minus[k] -= h
    return (f(*plus) - f(*minus)) / (2 * h)


def check_against_finite_differences(Value, expression, on_floats, xs):
    leaves = [Value(x) for x in xs]
    out = expression(*leaves)
    out.backward()

    def f(*values):
        return expression(*[Value(x) for x in values]).data

    if on_floats is not None:
        assert out.data == pytest.approx(on_floats(*xs), rel=1e-15)
    for k, leaf in enumerate(leaves):
        assert leaf.grad == pytest.approx(finite_difference(f, xs, k), rel=1e-7, abs=1e-9), k
    return leaves


@pytest.mark.parametrize("op", OPS)
def test_value_op_matches_finite_differences(stage2, op):
    expression, on_floats, xs = OPS[op]
    if on_floats is None:
        on_floats = expression   # arithmetic reads the same on floats
    check_against_finite_differences(stage2["Value"], expression, on_floats, xs)


def test_value_relu_passes_no_gradient_below_zero(stage2):
    a = stage2["Value"](-1.5)
    b = stage2["Value"](1.5)
    (a.relu() + b.relu()).backward()
    assert (a.grad, b.grad) == (0.0, 1.0)


def test_value_dot_matches_finite_differences(stage2):
    dot = stage2["dot"]

    def expression(a0, a1, a2, b0, b1, b2):
        return dot([a0, a1, a2], [b0, b1, b2])

    xs = (0.5, -1.5, 2.0, 3.0, 0.25, -0.75)
    leaves = check_against_finite_differences(stage2["Value"], expression, None, xs)
    assert expression(*leaves).data == pytest.approx(0.5 * 3.0 - 1.5 * 0.25 - 2.0 * 0.75)
    assert [leaf.grad for leaf in leaves] == pytest.approx([3.0, 0.25, -0.75, 0.5, -1.5, 2.0])


def test_value_reused_node_gets_gradient_from_every_use(stage2):
    Value = stage2["Value"]
    a = Value(3.0)
    (a + a).backward()
    assert a.grad == 2.0
    a = Value(3.0)
    (a * a).backward()
    assert a.grad == 6.0
    a = Value(0.7)   # a diamond: a feeds b and c, which meet again in d
    b = a * 3.0
    c = a.exp()
    d = b * c
    d.backward()
    assert a.grad == pytest.approx(3.0 * math.exp(0.7) + 3.0 * 0.7 * math.exp(0.7), rel=1e-14)
    assert b.grad == pytest.approx(math.exp(0.7), rel=1e-14)


def test_value_backward_of_a_100000_node_chain_has_no_recursion_error(stage2):
    x = stage2["Value"](1.0)
    y = x
    for _ in range(100_000):
        y = y + x
    y.backward()
    assert x.grad == 100_001.0


def test_stage2_losses_equal_stage1_losses(names_file):
    """Same model, same seed: autograd must reproduce the hand-derived backprop step by step.
    Each stage's own training section runs, so its lr schedule and update are the real ones."""
    args = small_args(1, names_file) + ["--num_steps=50"]
    losses1 = load_stage(1, args, upto="evaluation")["losses"]
    losses2 = load_stage(2, args, upto="evaluation")["losses"]
    assert len(losses1) == len(losses2) == 50
    for step, (loss1, loss2) in enumerate(zip(losses1, losses2)):
        assert loss2 == pytest.approx(loss1, abs=1e-9), step


# --- stages 3-5: the GPT ---------------------------------------------------------------------
GPT_STAGES = [3, 4, 5]


def load_gpt(i, names_file, upto="optimizer"):
    args = small_args(i, names_file, n_embd=4)
    if i >= 4:
        args.append("--n_layer=2")
    return load_stage(i, args, upto=upto)


@pytest.mark.parametrize("i", GPT_STAGES)
def test_gpt_autograd_matches_finite_differences_in_every_matrix(i, names_file):
    ns = load_gpt(i, names_file)
    tokens = ns["encode"](longest_doc(ns))
    assert len(tokens) - 1 > ns["block_size"]   # the name is cut at block_size
    loss = ns["doc_loss"](tokens)
    loss.backward()
    rng = random.Random(0)
    checked = []
    for name, mat in ns["state_dict"].items():
        entries = [p for row in mat for p in row]
        largest = sorted(entries, key=lambda p: abs(p.grad), reverse=True)[:3]
        for p in largest + [rng.choice(entries)]:
            original = p.data
            p.data = original + 1e-5
            loss_plus = ns["doc_loss"](tokens).data
            p.data = original - 1e-5
            loss_minus = ns["doc_loss"](tokens).data
            p.data = original
            numeric = (loss_plus - loss_minus) / 2e-5
            assert relative_error(p.grad, numeric) < 1e-6, (name, p.grad, numeric)
            checked.append(name)
    assert len(set(checked)) == len(ns["state_dict"]) and len(checked) >= 30


@pytest.mark.parametrize("i", GPT_STAGES)
def test_causal_future_token_does_not_change_logits(i, names_file):
    ns = load_gpt(i, names_file)
    tokens_a = ns["encode"](longest_doc(ns))[:ns["block_size"]]
    t = 4
    tokens_b = list(tokens_a)
    tokens_b[t] = (tokens_a[t] + 1) % ns["vocab_size"]

    def logits_per_position(tokens):
        keys, values = new_cache(ns)
        rows = []
        for pos_id, token_id in enumerate(tokens):
            rows.append([logit.data for logit in ns["gpt"](token_id, pos_id, keys, values)])
        return rows

    logits_a = logits_per_position(tokens_a)
    logits_b = logits_per_position(tokens_b)
    assert logits_a[:t] == logits_b[:t]   # bit for bit: the earlier positions never saw it
    assert logits_a[t] != logits_b[t]
    assert logits_a[t + 1] != logits_b[t + 1]   # later positions do read it


@pytest.mark.parametrize("i", [1, 2, 3, 4, 5])
def test_softmax_sums_to_one_and_is_stable_at_extreme_logits(i, names_file):
    ns = load_stage(i, small_args(i, names_file, n_embd=4), upto="optimizer")

    def softmax(logits):
        if i >= 2:
            logits = [ns["Value"](logit) for logit in logits]
        probs = ns["softmax"](logits)
        return [p.data for p in probs] if i >= 2 else probs

    probs = softmax([1000.0, 999.0, -1000.0])
    assert sum(probs) == pytest.approx(1.0, abs=1e-12)
    e = math.exp(-1.0)
    assert probs == pytest.approx([1 / (1 + e), e / (1 + e), 0.0], abs=1e-12)
    assert softmax([-1000.0] * 3) == pytest.approx([1 / 3] * 3, abs=1e-12)
    assert softmax([1000.0] * 4) == pytest.approx([1 / 4] * 4, abs=1e-12)
    probs = softmax([0.5, -1.0, 2.0, 0.0])
    assert sum(probs) == pytest.approx(1.0, abs=1e-12)
    assert probs[2] > probs[0] > probs[3] > probs[1] > 0


@pytest.mark.parametrize("i", GPT_STAGES)
def test_rmsnorm_output_has_unit_rms(i, names_file):
    ns = load_gpt(i, names_file)
    x = [3.0, -1.0, 4.0, 1.0, -5.0, 9.0]
    y = [yi.data for yi in ns["rmsnorm"]([ns["Value"](xi) for xi in x])]
    rms = math.sqrt(sum(yi * yi for yi in y) / len(y))
    assert rms == pytest.approx(1.0, abs=1e-6)
    ratios = [yi / xi for yi, xi in zip(y, x)]
    assert ratios == pytest.approx([ratios[0]] * len(x), rel=1e-12)   # same direction
    assert ratios[0] > 0
    zeros = [yi.data for yi in ns["rmsnorm"]([ns["Value"](0.0) for _ in range(4)])]
    assert zeros == [0.0] * 4


@pytest.mark.parametrize("i", GPT_STAGES)
def test_default_model_has_4192_parameters(i):
    ns = load_stage(i, [], upto="model")   # default flags, the real data
    assert len(ns["params"]) == 4192
    assert "num params: 4192\n" in ns["_stdout"]


# --- optimizers and the learning-rate schedule -----------------------------------------------
def test_adam_step_equals_the_formula_by_hand(names_file):
    beta1 = 0.8
    beta2 = 0.95
    args = small_args(5, names_file, n_embd=4) + [f"--beta1={beta1}", f"--beta2={beta2}"]
    ns = load_stage(5, args, upto="training")
    params = ns["params"]
    rng = random.Random(1)
    watched = [0, 1, len(params) // 2, len(params) - 1]
    m = {j: 0.0 for j in watched}
    v = {j: 0.0 for j in watched}
    for step, lr_t in [(0, 0.01), (1, 0.009), (2, 0.008), (3, 0.007)]:
        grads = [rng.gauss(0, 0.1) for _ in params]
        grads[watched[1]] = 0.0   # a zero gradient: the moments must still decay
        for p, g in zip(params, grads):
            p.grad = g
        before = {j: params[j].data for j in watched}
        ns["adam_update"](lr_t, step)
        for j in watched:
            g = grads[j]
            m[j] = beta1 * m[j] + (1 - beta1) * g
            v[j] = beta2 * v[j] + (1 - beta2) * g * g
            m_hat = m[j] / (1 - beta1 ** (step + 1))
            v_hat = v[j] / (1 - beta2 ** (step + 1))
            expected = before[j] - lr_t * m_hat / (math.sqrt(v_hat) + 1e-8)
            assert params[j].data == pytest.approx(expected, rel=1e-12, abs=1e-15), (step, j)
            assert ns["adam_m"][j] == pytest.approx(m[j], rel=1e-12)
            assert ns["adam_v"][j] == pytest.approx(v[j], rel=1e-12)
        if step == 0:   # bias correction: the first step is lr * g / |g|, whatever the betas
            j = watched[0]
            assert before[j] - params[j].data == pytest.approx(lr_t * math.copysign(1, grads[j]))
        assert all(p.grad == 0.0 for p in params)


@pytest.mark.parametrize("i", [2, 3, 4])
def test_sgd_step_moves_each_parameter_against_its_gradient(i, names_file):
    ns = load_stage(i, small_args(i, names_file, n_embd=4), upto="training")
    params = ns["params"]
    grads = [random.Random(j).uniform(-1, 1) for j in range(len(params))]
    before = [p.data for p in params]
    for p, g in zip(params, grads):
        p.grad = g
    ns["sgd_update"](0.25)
    for p, b, g in zip(params, before, grads):
        assert p.data == pytest.approx(b - 0.25 * g, rel=1e-12, abs=1e-15)
        assert p.grad == 0.0


@pytest.mark.parametrize("i", [1, 2, 3, 4, 5])
def test_learning_rate_decays_linearly_from_lr_to_zero(i, names_file):
    """Run the script's own training section with its update function wrapped, and record the
    learning rate it passes at every step."""
    num_steps = 10
    args = small_args(i, names_file, n_embd=4)
    args += [f"--num_steps={num_steps}", "--learning_rate=0.5"]
    ns = load_stage(i, args, upto="training")
    name = "adam_update" if i == 5 else "sgd_update"
    update = ns[name]
    calls = []

    def recording_update(*args):
        calls.append(args)
        return update(*args)

    ns[name] = recording_update
    run_section(ns, i, "training")
    lrs = [call[-1] for call in calls] if name == "sgd_update" else [call[0] for call in calls]
    assert len(lrs) == num_steps
    if i == 5:
        assert [call[1] for call in calls] == list(range(num_steps))   # Adam's step counter
    assert lrs[0] == 0.5
    decrement = lrs[0] - lrs[1]
    assert decrement > 0
    assert [lrs[s] - lrs[s + 1] for s in range(num_steps - 1)] == pytest.approx(
        [decrement] * (num_steps - 1), rel=1e-9)   # linear
    assert lrs[-1] > 0   # the last step still learns
    assert lrs[0] - num_steps * decrement == pytest.approx(0.0, abs=1e-12)   # 0 at num_steps
