"""The scalar engine and the models of stages 2-5 against PyTorch in float64, micrograd style:
each expression is written twice, once on Values and once on tensors, and the forward values
and every gradient must agree.

Run: python -m pytest -q tests/test_torch.py  (skipped when torch is not installed)
"""
import math

import pytest

from conftest import load_stage, small_args

torch = pytest.importorskip("torch")
F = torch.nn.functional


@pytest.fixture(scope="module")
def stage2(names_file):
    return load_stage(2, small_args(2, names_file), upto="parameters")


def tensor(x):
    return torch.tensor(x, dtype=torch.float64, requires_grad=True)


# The same expression runs on Values and on float64 tensors: both have + - * / ** and the
# methods log, exp and relu.
OPS = {  # name: (expression, inputs)
    "add": (lambda a, b: a + b, (1.5, -2.0)),
    "sub": (lambda a, b: a - b, (1.5, -2.0)),
    "mul": (lambda a, b: a * b, (1.5, -2.0)),
    "truediv": (lambda a, b: a / b, (1.5, -2.5)),
    "pow": (lambda a: a ** 3, (-1.5,)),
    "pow negative fraction": (lambda a: a ** -0.5, (2.0,)),
    "neg": (lambda a: -a, (1.5,)),
    "add float": (lambda a: a + 2.0, (1.5,)),
    "sub float": (lambda a: a - 2.0, (1.5,)),
    "mul float": (lambda a: a * 2.0, (1.5,)),
    "truediv float": (lambda a: a / 2.0, (1.5,)),
    "radd": (lambda a: 2.0 + a, (1.5,)),
    "log": (lambda a: a.log(), (1.5,)),
    "exp": (lambda a: a.exp(), (-1.5,)),
    "relu positive": (lambda a: a.relu(), (1.5,)),
    "relu negative": (lambda a: a.relu(), (-1.5,)),
}


def sanity_check(a, b):
    """micrograd's test_more_ops plus log and exp, with a number only on the right of an
    operator (the Value of issue 9 has no __rsub__, __rmul__ or __rtruediv__)."""
    c = a + b
    d = a * b + b ** 3
    c = c + c + 1
    c = c + 1 + c + (-a)
    d = d + d * 2 + (b + a).relu()
    d = d + d * 3 + (b - a).relu()
    e = c - d
    f = e ** 2
    g = f / 2.0
    g = g + f ** -1 * 10.0
    h = (g / 1000.0).exp() + (a / -10.0 + 1.0).log() + (-b + 2.0).relu() + (b * b + 1.0) ** -1
    return h


def compare_with_torch(Value, expression, xs):
    values = [Value(x) for x in xs]
    out = expression(*values)
    out.backward()
    tensors = [tensor(x) for x in xs]
    out_torch = expression(*tensors)
    out_torch.backward()
    assert out.data == pytest.approx(out_torch.item(), rel=1e-12, abs=1e-15)
    for value, t in zip(values, tensors):
        assert value.grad == pytest.approx(t.grad.item(), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("op", OPS)
def test_value_op_matches_torch(stage2, op):
    expression, xs = OPS[op]
    compare_with_torch(stage2["Value"], expression, xs)


def test_value_composite_expression_matches_torch(stage2):
    compare_with_torch(stage2["Value"], sanity_check, (-4.0, 2.0))


def test_value_dot_matches_torch(stage2):
    a = [0.5, -1.5, 2.0]
    b = [3.0, 0.25, -0.75]
    a_values = [stage2["Value"](x) for x in a]
    b_values = [stage2["Value"](x) for x in b]
    out = stage2["dot"](a_values, b_values) * stage2["dot"](a_values, a_values)
    out.backward()
    a_torch = tensor(a)
    b_torch = tensor(b)
    out_torch = (a_torch * b_torch).sum() * (a_torch * a_torch).sum()
    out_torch.backward()
    assert out.data == pytest.approx(out_torch.item(), rel=1e-12)
    assert [v.grad for v in a_values] == pytest.approx(a_torch.grad.tolist(), rel=1e-12)
    assert [v.grad for v in b_values] == pytest.approx(b_torch.grad.tolist(), rel=1e-12)


# --- the models of stages 2-5, rebuilt in PyTorch ------------------------------------------
def torch_rmsnorm(x):
    return x * (x.pow(2).mean(dim=-1, keepdim=True) + 1e-5).rsqrt()


def torch_mlp_doc_loss(weights, tokens, block_size):
    """Stage 2's model: each token's embedding through a ReLU MLP to the next token's logits."""
    n = min(block_size, len(tokens) - 1)
    inputs = torch.tensor(tokens[:n])
    targets = torch.tensor(tokens[1:n + 1])
    x = F.relu(weights["wte"][inputs] @ weights["mlp_fc1"].T)   # (n, 4 * n_embd)
    logits = x @ weights["mlp_fc2"].T   # (n, vocab_size)
    return F.cross_entropy(logits, targets)


def torch_doc_loss(weights, tokens, block_size, n_layer, n_head):
    """The standard batched GPT over one name: a causal mask over the whole sequence gives
    what the script gets by feeding tokens one at a time into a growing cache. Stage 3's
    keys have no layer prefix ('attn_wq', its one layer)."""
    if "layer0.attn_wq" not in weights:
        weights = {f"layer0.{name}" if name.startswith(("attn", "mlp")) else name: w
                   for name, w in weights.items()}
    n = min(block_size, len(tokens) - 1)
    inputs = torch.tensor(tokens[:n])
    targets = torch.tensor(tokens[1:n + 1])
    n_embd = weights["wte"].shape[1]
    head_dim = n_embd // n_head
    x = weights["wte"][inputs] + weights["wpe"][:n]   # (n, n_embd)
    x = torch_rmsnorm(x)
    causal = torch.tril(torch.ones(n, n, dtype=torch.bool))
    for i in range(n_layer):
        x_residual = x
        x = torch_rmsnorm(x)
        q = x @ weights[f"layer{i}.attn_wq"].T   # (n, n_embd)
        k = x @ weights[f"layer{i}.attn_wk"].T
        v = x @ weights[f"layer{i}.attn_wv"].T
        q = q.view(n, n_head, head_dim).transpose(0, 1)   # (n_head, n, head_dim)
        k = k.view(n, n_head, head_dim).transpose(0, 1)
        v = v.view(n, n_head, head_dim).transpose(0, 1)
        attn_logits = q @ k.transpose(1, 2) / math.sqrt(head_dim)   # (n_head, n, n)
        attn_logits = attn_logits.masked_fill(~causal, float("-inf"))
        attn_weights = F.softmax(attn_logits, dim=-1)
        heads = attn_weights @ v   # (n_head, n, head_dim)
        x = heads.transpose(0, 1).reshape(n, n_embd)
        x = x @ weights[f"layer{i}.attn_wo"].T + x_residual
        x_residual = x
        x = torch_rmsnorm(x)
        x = F.relu(x @ weights[f"layer{i}.mlp_fc1"].T)
        x = x @ weights[f"layer{i}.mlp_fc2"].T + x_residual
    logits = x @ weights["lm_head"].T   # (n, vocab_size)
    return F.cross_entropy(logits, targets)   # the mean over positions


@pytest.mark.parametrize("which_doc", ["longest", "shortest"])
@pytest.mark.parametrize("stage", [2, 3, 4, 5])
def test_model_loss_and_every_gradient_match_torch(names_file, stage, which_doc):
    args = small_args(stage, names_file) + (["--n_layer=2"] if stage >= 4 else [])
    if stage == 2:
        args.append("--block_size=8")   # as small_args sets it from stage 3 on
    ns = load_stage(stage, args, upto="optimizer")
    docs = sorted(ns["train_docs"][:100], key=len)
    doc = docs[-1] if which_doc == "longest" else docs[0]
    tokens = ns["encode"](doc)
    if which_doc == "longest":
        assert len(tokens) - 1 > ns["block_size"]   # the name is cut at block_size
    loss = ns["doc_loss"](tokens)
    loss.backward()
    weights = {name: tensor([[p.data for p in row] for row in mat])
               for name, mat in ns["state_dict"].items()}
    if stage == 2:
        loss_torch = torch_mlp_doc_loss(weights, tokens, ns["block_size"])
    else:
        n_layer = ns.get("n_layer", 1)   # stage 3: one layer of one head
        n_head = ns.get("n_head", 1)
        loss_torch = torch_doc_loss(weights, tokens, ns["block_size"], n_layer, n_head)
    loss_torch.backward()
    assert loss.data == pytest.approx(loss_torch.item(), rel=1e-9, abs=1e-9)
    num_checked = 0
    for name, mat in ns["state_dict"].items():
        grad_torch = weights[name].grad.tolist()
        for i, row in enumerate(mat):
            for j, p in enumerate(row):
                expected = grad_torch[i][j]
                assert p.grad == pytest.approx(expected, rel=1e-9, abs=1e-12), (name, i, j)
                num_checked += 1
    assert num_checked == len(ns["params"])
    if stage >= 4:   # the second layer is in the graph
        assert any(p.grad != 0.0 for p in ns["state_dict"]["layer1.attn_wq"][0])
