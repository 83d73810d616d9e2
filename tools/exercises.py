"""Generate the student handouts notebooks/exercises/exercisesN_*.ipynb from the companion
notebooks notebooks/trainN_*.ipynb, and define the exercises that tools/grade.py grades.

An exercise is a region of a stage script that the student writes: a function body (found by
the function's name), or exact lines of the script, optionally moved into a new function that
the student writes (the lines are replaced by a call). Regions are found by matching text, so
the scripts carry no markers; test_exercises.py checks that each anchor matches exactly once.
In a handout each region becomes a stub (a TODO and `raise NotImplementedError`), the function
holding it moves to its own exercise cell, with instructions before it and a check cell after
it (tools/exercise_checks/visible.py); hidden checks (exercise_checks/hidden.py) are for the
grader only. Cell metadata: {"microgpt": {"source": "exercise", "exercises": ["2.1", ...]}},
{"microgpt": {"source": "check", "exercise": "2.1"}}.

  python tools/exercises.py                    write the six handouts and notebooks/exercises/
                                               README.md's exercise table
  python tools/exercises.py --check            fail if a handout differs from a fresh build
  python tools/exercises.py --nbgrader DIR     write an nbgrader course directory, one
                                               assignment per stage (tools/nbgrader_course.py)
  python tools/exercises.py --solutions DIR    write the handouts with the reference solutions
                                               filled in (what tests/test_grader.py grades)
Needs nbformat.
"""
import argparse
import ast
import copy
import json
import re
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import repo  # noqa: E402
import stages  # noqa: E402

ROOT = stages.ROOT
TOOL = "tools/exercises.py"
OUT_DIR = "notebooks/exercises"
CHECKS_DIR = Path(__file__).resolve().parent / "exercise_checks"
GRADER_SECTIONS = ("training", "evaluation", "sampling")   # never run by the grader


@dataclass
class Body:
    """The body of function `name` ('f' or 'Class.method'), after its docstring."""
    name: str
    todo: str


@dataclass
class Lines:
    """Exact lines of the script (found once), replaced by a stub in place."""
    text: str
    todo: str


@dataclass
class Extract:
    """Lines from `start` to the first `end` after it (each an exact, whole line; `start`
    found once) become the new function `signature`; `call` replaces them in the script."""
    start: str
    end: str
    call: str
    signature: str
    doc: str
    todo: str
    returns: str = ""   # the solution's return value (if any) when `solution` is not given
    solution: str = ""   # the reference body, when the region's own lines would not do


@dataclass
class Exercise:
    id: str
    stage: int
    name: str   # the check is check_<name> in visible.py, hidden_<name> in hidden.py
    title: str
    minutes: int
    goal: str
    instructions: str
    targets: list
    points: int = 10
    defines: list = field(default_factory=list)   # names the student's cell must define
    asks: str = ""   # a prose table column that holds the answers: asked, not printed


EXERCISES = [
    Exercise("0.1", 0, "count_pair", "Fill the bigram count table", 15,
             "turn data into a model by counting: a row of counts is a next-token distribution",
             "Write `count_pair(token_id, target_id)`: record that `target_id` followed "
             "`token_id` once more in `counts` (row = the current token, column = the next "
             "one). The training loop calls it for every pair of neighbouring tokens; `bigram` "
             "turns a row of counts into probabilities.",
             [Extract("        counts[tokens[pos_id]][tokens[pos_id + 1]] += 1   # training, for "
                      "this model: counting", "        counts[tokens[pos_id]][tokens[pos_id + 1]] "
                      "+= 1   # training, for this model: counting",
                      "        count_pair(tokens[pos_id], tokens[pos_id + 1])",
                      "count_pair(token_id, target_id)",
                      "Record one more occurrence of target_id right after token_id.",
                      "add 1 to the right entry of counts",
                      solution="counts[token_id][target_id] += 1\n")]),
    Exercise("0.2", 0, "doc_loss", "The average negative log-likelihood", 20,
             "the loss: how surprised the model is by each next token, in nats",
             "Write the body of `doc_loss(tokens)`: for each of the first "
             "`n = min(block_size, len(tokens) - 1)` positions, the probability the model gives "
             "to the token that really comes next is `bigram(a)[b]`; return the mean over those "
             "positions of `-log` of that probability.",
             [Body("doc_loss", "return the mean of -log p(next token) over the first n "
                               "positions")]),
    Exercise("0.3", 0, "sample_next", "Sampling from a row", 15,
             "generation: a name is drawn one token at a time from the model's distribution",
             "Write `sample_next(probs)`: draw the next token at random, each token `b` with "
             "probability `probs[b]` (hint: `random.choices` takes `weights`). Do not always "
             "take the most likely token: the samples would all be the same name.",
             [Extract("        token_id = random.choices(range(vocab_size), weights=probs)[0]",
                      "        token_id = random.choices(range(vocab_size), weights=probs)[0]",
                      "        token_id = sample_next(probs)", "sample_next(probs)",
                      "A random next token id, token b drawn with probability probs[b].",
                      "draw one token id from range(vocab_size), weighted by probs",
                      returns="token_id")]),
    Exercise("1.1", 1, "softmax_ce_grad", "The gradient of softmax + cross-entropy", 30,
             'derive the famous "probs minus one-hot" gradient that starts every backward pass',
             "The loss at one position is `-log(probs[target_id]) / n` with "
             "`probs = softmax(logits)`. Derive its gradient with respect to each logit (write "
             "out `d/dz_i` of `-log(exp(z_t) / sum_j exp(z_j))`, then divide by `n`) and write "
             "`softmax_ce_grad(probs, target_id, n)`, returning the list `dlogits`.",
             [Extract("        # softmax + cross-entropy: dloss/dlogits = probs - one_hot(target), "
                      "/ n for the mean", "        dlogits[target_id] -= 1 / n",
                      "        dlogits = softmax_ce_grad(probs, target_id, n)",
                      "softmax_ce_grad(probs, target_id, n)",
                      "dloss/dlogits for loss = -log(probs[target_id]) / n, where probs = "
                      "softmax(logits).",
                      "return the gradient with respect to each logit, as a list",
                      returns="dlogits")]),
    Exercise("1.2", 1, "mlp_backward", "Backprop through the MLP by hand", 60,
             "the chain rule, layer by layer: a matrix product, ReLU, and an embedding lookup",
             "Two functions. `linear_backward(dy, x, w, dw)`: for `y = w @ x`, add "
             "`dloss/dw` into `dw` (do not overwrite it: other positions add theirs too) and "
             "return `dloss/dx`. `mlp_backward(dlogits, token_id, emb, h_pre, h, grads)`: "
             "backpropagate `dlogits` through `mlp_fc2`, the ReLU, `mlp_fc1` and the embedding "
             "row of `token_id`, adding into `grads[name]` for each matrix.",
             [Body("linear_backward", "for y = w @ x: add dloss/dw into dw, return dloss/dx"),
              Extract("        dh = linear_backward(dlogits, h, state_dict['mlp_fc2'], "
                      "grads['mlp_fc2'])", "            dwte_row[j] += g",
                      "        mlp_backward(dlogits, token_id, emb, h_pre, h, grads)",
                      "mlp_backward(dlogits, token_id, emb, h_pre, h, grads)",
                      "Backprop dlogits through mlp_fc2, the ReLU, mlp_fc1 and the embedding "
                      "lookup,\n    adding into grads['mlp_fc2'], grads['mlp_fc1'] and "
                      "grads['wte'].",
                      "use linear_backward twice, pass the gradient through ReLU only where "
                      "h_pre > 0,\n    # and add the last gradient into row token_id of "
                      "grads['wte']")]),
    Exercise("1.3", 1, "numerical_grad", "The finite-difference gradient check", 20,
             "check any gradient without calculus: nudge a weight, watch the loss",
             "Write the body of `numerical_grad(tokens, name, i, j, eps)`: the central difference "
             "`(L(w + eps) - L(w - eps)) / (2 eps)` for the weight `state_dict[name][i][j]`, where "
             "`L` is `doc_loss(tokens)`. Put the weight back exactly as it was afterwards.",
             [Body("numerical_grad", "nudge state_dict[name][i][j] by +eps and -eps, call "
                                     "doc_loss each time, restore the weight, return the slope")]),
    Exercise("1.4", 1, "sgd_update", "The SGD update", 15,
             "gradient descent: a small step downhill for every weight",
             "Write the body of `sgd_update(grads, lr_t)`: move every weight of every matrix in "
             "`state_dict` by `-lr_t` times its gradient in `grads` (same names, same shapes), "
             "changing the lists in place.",
             [Body("sgd_update", "w -= lr_t * dloss/dw for every weight in state_dict")]),
    Exercise("2.1", 2, "local_grads", "Local derivatives of *, pow, log, exp, relu", 25,
             "each operation knows its own small derivative; the engine chains them",
             "Each operation returns `Value(result, children, local_grads)`, where "
             "`local_grads[k]` is the derivative of the result with respect to `children[k]` "
             "(a plain number, computed from the `.data` of the inputs). Fill in `__mul__`, "
             "`__pow__` (the exponent is a plain number), `log`, `exp` and `relu`; `__add__` "
             "is given as an example.",
             [Lines("        return Value(self.data * other.data, (self, other), "
                    "(other.data, self.data))\n",
                    "return Value(<product>, (self, other), (<d/dself>, <d/dother>))"),
              Lines("        return Value(self.data ** exponent, (self,), "
                    "(exponent * self.data ** (exponent - 1),))\n",
                    "return Value(<power>, (self,), (<d/dself>,))"),
              Lines("        return Value(math.log(self.data), (self,), (1.0 / self.data,))\n",
                    "return Value(<log>, (self,), (<d/dself>,))"),
              Lines("        e = math.exp(self.data)\n        return Value(e, (self,), (e,))\n",
                    "return Value(<exp>, (self,), (<d/dself>,))"),
              Lines("        return Value(max(0.0, self.data), (self,), "
                    "(float(self.data > 0),))\n",
                    "return Value(<relu>, (self,), (<d/dself>,))")],
             defines=["Value"], asks="local derivatives"),
    Exercise("2.2", 2, "backward", "backward(): the chain rule over the whole graph", 45,
             "reverse-mode autodiff: a topological order, and += because a node can be used twice",
             "Write the body of `Value.backward()`: put every node of the graph that produced "
             "`self` in an order where each node comes after all the nodes it was computed from "
             "(a topological order), set `self.grad = 1.0`, then walk that order backwards and "
             "add `local_grad * node.grad` into each child's `grad`. Why add (`+=`) rather than "
             "assign? Think of `a * a`.",
             [Body("Value.backward", "build a topological order of the graph, seed self.grad, "
                                     "and apply the chain rule in reverse order")],
             defines=["Value"]),
    Exercise("3.1", 3, "rmsnorm", "rmsnorm", 15,
             "keep activations at a steady size: divide by the root mean square",
             "Write the body of `rmsnorm(x)`: return `x` divided by the root of (the mean of "
             "`x_i ** 2` plus `1e-5`), computed with `Value` operations so gradients flow "
             "through it.",
             [Body("rmsnorm", "return x scaled to unit root-mean-square (plus 1e-5 inside the "
                              "root)")]),
    Exercise("3.2", 3, "attention", "One attention head", 40,
             "scaled dot-product attention: scores, the sqrt(head_dim) scale, softmax weights, "
             "a weighted sum of values",
             "Write the body of `attention(q, keys, values)`: a score for every cached position "
             "(the dot product of `q` with its key, divided by `sqrt(head_dim)`), the softmax of "
             "the scores, and the sum of the value vectors weighted by it (a list of `head_dim` "
             "Values). `dot` and `softmax` are defined above.",
             [Body("attention", "scores = q . k / sqrt(head_dim) for every key, weights = "
                                "softmax(scores),\n    # output = sum of weights[t] * values[t]")]),
    Exercise("3.3", 3, "transformer_block", "The residual connections", 40,
             "a transformer block adds to its input instead of replacing it",
             "Write `transformer_block(x, keys, values)`, the part of `gpt` between the "
             "embeddings and `lm_head`: an attention sublayer (rmsnorm, the query, key and value "
             "of this position, append the key and value to the caches, `attention`, "
             "`attn_wo`) and an MLP sublayer (rmsnorm, `mlp_fc1`, ReLU, `mlp_fc2`), each *added "
             "to its own input* (the residual connection). Return the new `x`.",
             [Extract("    # attention: gather information from this and the earlier positions",
                      "    x = [a + b for a, b in zip(x, x_residual)]\n"
                      "    return linear(x, state_dict['lm_head'])   # (vocab_size,) logits",
                      "    x = transformer_block(x, keys, values)",
                      "transformer_block(x, keys, values)",
                      "Attention then MLP, each with a residual connection; appends this "
                      "position's\n    key and value to the caches and returns the new x.",
                      "x + attention sublayer, then x + MLP sublayer (use state_dict['attn_wq'] "
                      "... ['mlp_fc2'])", returns="x")]),
    Exercise("4.1", 4, "multi_head_attention", "Splitting into heads and concatenating them", 30,
             "several heads, each attending within its own slice of the embedding",
             "Write `multi_head_attention(q, keys, values)`: for each of the `n_head` heads, take "
             "its slice of `head_dim` entries of `q` and of every cached key and value, run "
             "`attention` on them, and concatenate the heads' outputs into one list of "
             "`n_embd` Values.",
             [Extract("        x_attn = []", "            x_attn.extend(attention(q_h, k_h, v_h))"
                      "   # concatenate the heads' outputs",
                      "        x_attn = multi_head_attention(q, keys[i], values[i])",
                      "multi_head_attention(q, keys, values)",
                      "Attention in n_head heads of head_dim entries each; the heads' outputs "
                      "concatenated.",
                      "slice q, every key and every value per head, call attention, concatenate",
                      solution="x_attn = []\n"
                               "for h in range(n_head):\n"
                               "    hs = h * head_dim   # this head's slice of every vector\n"
                               "    q_h = q[hs:hs + head_dim]   # (head_dim,)\n"
                               "    k_h = [k_t[hs:hs + head_dim] for k_t in keys]   # (T, "
                               "head_dim)\n"
                               "    v_h = [v_t[hs:hs + head_dim] for v_t in values]   # (T, "
                               "head_dim)\n"
                               "    x_attn.extend(attention(q_h, k_h, v_h))\n"
                               "return x_attn\n")]),
    Exercise("4.2", 4, "transformer_layers", "The loop over layers", 40,
             "depth: the same block n_layer times, each layer with its own weights and cache",
             "Write `transformer_layers(x, keys, values)`: the transformer block (attention and "
             "MLP sublayers with residual connections, as in stage 3) applied `n_layer` times, "
             "layer `i` using the weights `state_dict[f'layer{i}.attn_wq']` and so on and its "
             "own caches `keys[i]` and `values[i]`, each layer working on the previous layer's "
             "output. "
             "Use `multi_head_attention` (exercise 4.1) for the heads.",
             [Extract("    for i in range(n_layer):",
                      "        x = [a + b for a, b in zip(x, x_residual)]\n"
                      "    return linear(x, state_dict['lm_head'])   # (vocab_size,) logits",
                      "    x = transformer_layers(x, keys, values)",
                      "transformer_layers(x, keys, values)",
                      "The transformer block n_layer times: layer i uses the layer{i}.* weights "
                      "and\n    the caches keys[i] and values[i]. Returns the new x.",
                      "for each layer i: x + attention sublayer, then x + MLP sublayer",
                      returns="x")]),
    Exercise("5.1", 5, "adam_update", "The Adam update with bias correction", 40,
             "per-parameter step sizes from running means of the gradient and its square",
             "Write the body of `adam_update(lr_t, step)`: for every parameter `params[j]` with "
             "gradient `g`: `m = beta1 m + (1 - beta1) g` and `v = beta2 v + (1 - beta2) g^2` "
             "(stored in `adam_m[j]`, `adam_v[j]`); the bias-corrected `m_hat = m / (1 - beta1^t)` "
             "and `v_hat = v / (1 - beta2^t)` with `t = step + 1`; then "
             "`p.data -= lr_t * m_hat / (sqrt(v_hat) + 1e-8)`. Finally reset `p.grad` to 0 "
             "for the next `backward()`.",
             [Body("adam_update", "update adam_m[j] and adam_v[j], bias-correct them, step "
                                  "p.data, reset p.grad")]),
    Exercise("5.2", 5, "lr_schedule", "The learning-rate schedule", 15,
             "decay the step size so training settles instead of bouncing",
             "Write `lr_schedule(step)`: the learning rate for step `step` (0 to `num_steps - 1`), "
             "starting at `learning_rate` and decaying linearly, reaching 0 at step `num_steps`.",
             [Extract("    lr_t = learning_rate * (1 - step / num_steps)   # linear decay to 0 "
                      "over the run", "    lr_t = learning_rate * (1 - step / num_steps)   # "
                      "linear decay to 0 over the run",
                      "    lr_t = lr_schedule(step)", "lr_schedule(step)",
                      "The learning rate at step `step`: linear decay from learning_rate to 0.",
                      "return the learning rate for this step", returns="lr_t")]),
]
# the extracted functions define themselves; a Body target defines its top-level name
for _ex in EXERCISES:
    if not _ex.defines:
        _ex.defines = [t.signature.split("(")[0] if isinstance(t, Extract) else t.name
                       for t in _ex.targets]
BY_ID = {ex.id: ex for ex in EXERCISES}

# settings that keep the grader's run of a stage's code tiny (it never trains)
TINY = {0: "num_steps = 1\nnum_samples = 0\n",
        1: "num_steps = 1\nnum_samples = 0\nn_embd = 4\n",
        2: "num_steps = 1\nnum_samples = 0\nn_embd = 4\n",
        3: "num_steps = 1\nnum_samples = 0\nn_embd = 4\n",
        4: "num_steps = 1\nnum_samples = 0\nn_embd = 4\nn_head = 2\nn_layer = 1\n",
        5: "num_steps = 1\nnum_samples = 0\nn_embd = 4\nn_head = 2\nn_layer = 1\n"}


class ExerciseError(Exception):
    """An anchor that no longer matches its script, or a bad argument; one line for the user."""


def stage_exercises(stage):
    return [ex for ex in EXERCISES if ex.stage == stage]


def handout_name(stage):
    return "exercises" + stages.STAGE_FILES[stage][len("train"):-len(".py")] + ".ipynb"


def companion_path(stage, root=ROOT):
    return Path(root) / "notebooks" / (stages.STAGE_FILES[stage][:-len(".py")] + ".ipynb")


# --- regions ----------------------------------------------------------------------------------

def find_function(tree, name):
    """The FunctionDef for 'f' or 'Class.method' in a parsed module (None if absent)."""
    parts = name.split(".")
    nodes = tree.body
    found = None
    for part in parts:
        found = None
        for node in nodes:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == part:
                found = node
                nodes = node.body
                break
        if found is None:
            return None
    return found


def body_text(script, name):
    """The lines of function `name` after its docstring (comments included), exactly."""
    tree = ast.parse(script)
    func = find_function(tree, name)
    if func is None:
        raise ExerciseError(f"function {name} not found")
    first = func.body[0]
    has_doc = (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
               and isinstance(first.value.value, str))
    start = first.end_lineno if has_doc else func.body[0].lineno - 1   # 0-based first line
    lines = stages.split_lines(script)
    return "".join(lines[start:func.end_lineno])


def region_text(script, target):
    """(exact text of the region, replacement text) for a target, or ExerciseError."""
    if isinstance(target, Body):
        text = body_text(script, target.name)
    elif isinstance(target, Lines):
        text = target.text
    else:
        start = script.find(target.start + "\n")
        if start < 0 or (start > 0 and script[start - 1] != "\n"):
            raise ExerciseError(f"line not found: {target.start.strip()!r}")
        end = script.find(target.end + "\n", start)
        if end < 0:
            raise ExerciseError(f"line not found after the start: {target.end.strip()!r}")
        text = script[start:end + len(target.end) + 1]
        if "\n" in target.end:   # a context line after the region: not part of it
            text = text[:len(text) - len(target.end.split("\n", 1)[1]) - 1]
    count = script.count(text)
    if count != 1:
        raise ExerciseError(f"region {text.splitlines()[0].strip()!r}... found {count} times")
    return text


def stub_lines(ex, todo, indent, todo_only=False):
    pad = " " * indent
    todo_lines = todo.split("\n")
    out = f"{pad}# TODO(exercise {ex.id}): {todo_lines[0]}\n"
    out += "".join(pad + line.strip() + "\n" for line in todo_lines[1:])
    if todo_only:   # nbgrader writes its own stub in place of the solution
        return out
    return out + f"{pad}raise NotImplementedError('exercise {ex.id}: {ex.title}')\n"


def indent_of(text):
    return len(text) - len(text.lstrip(" "))


def extract_solution(target, region):
    if target.solution:
        return textwrap.indent(target.solution, "    ")
    body = textwrap.indent(textwrap.dedent(region), "    ")
    if target.returns:
        body += f"    return {target.returns}\n"
    return body


def extracted_function(ex, target, region, mode):
    """Source of the new function of an Extract target: a stub, the solution, or nbgrader."""
    head = f'def {target.signature}:\n    """{target.doc}"""\n'
    if mode == "stub":
        return head + stub_lines(ex, target.todo, 4)
    solution = extract_solution(target, region)
    if mode == "nbgrader":
        return (head + stub_lines(ex, target.todo, 4, todo_only=True) + "    ### BEGIN SOLUTION\n"
                + solution + "    ### END SOLUTION\n")
    return head + solution


def replaced_region(ex, target, region, mode):
    """What a Body/Lines region becomes in the handout (stub), solution or nbgrader copy."""
    if mode == "stub":
        return stub_lines(ex, target.todo, indent_of(region.lstrip("\n")))
    if mode == "nbgrader":
        indent = indent_of(region.lstrip("\n"))
        pad = " " * indent
        return (stub_lines(ex, target.todo, indent, todo_only=True)
                + f"{pad}### BEGIN SOLUTION\n{region}{pad}### END SOLUTION\n")
    return region


def check_anchors(root=ROOT):
    """Apply every stage's regions to its script in order; ExerciseError if one does not match
    exactly once. Returns {exercise id: [region texts]}."""
    found = {}
    for stage in range(len(stages.STAGE_FILES)):
        script = stages.read_stage(stage, root)
        for ex in stage_exercises(stage):
            found[ex.id] = []
            for target in ex.targets:
                try:
                    region = region_text(script, target)
                except ExerciseError as e:
                    raise ExerciseError(f"exercise {ex.id} ({stages.STAGE_FILES[stage]}): {e}")
                found[ex.id].append(region)
                if isinstance(target, Extract):
                    script = script.replace(region, target.call + "\n")
    return found


# --- notebooks --------------------------------------------------------------------------------

def helpers_source():
    """The helper cell: helpers.py plus the non-check functions of visible.py."""
    text = (CHECKS_DIR / "helpers.py").read_text()
    visible = (CHECKS_DIR / "visible.py").read_text()
    lines = stages.split_lines(visible)
    for node in ast.parse(visible).body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("check_"):
            text += "\n\n" + "".join(lines[node.lineno - 1:node.end_lineno])
    return text


def check_source(name, kind="visible"):
    """Source of check_<name> (visible.py) or hidden_<name> (hidden.py)."""
    path = CHECKS_DIR / f"{kind}.py"
    text = path.read_text()
    fname = ("check_" if kind == "visible" else "hidden_") + name
    node = find_function(ast.parse(text), fname)
    if node is None:
        raise ExerciseError(f"{path.name} has no {fname}")
    return "".join(stages.split_lines(text)[node.lineno - 1:node.end_lineno])


def md(text, meta):
    return {"cell_type": "markdown", "metadata": {"microgpt": meta}, "source": text}


def code(text, meta):
    return {"cell_type": "code", "metadata": {"microgpt": meta}, "source": text,
            "outputs": [], "execution_count": None}


def cell_text(cell):
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def load_companion(stage, root=ROOT):
    """The companion notebook of a stage as tools/make_notebooks.py builds it from the current
    script and prose (so a handout never lags behind a script edit)."""
    import make_notebooks
    try:
        nb = json.loads(json.dumps(make_notebooks.build_notebook(stage, root)))
    except make_notebooks.BuildError as e:
        raise ExerciseError(f"cannot build the companion notebook of stage {stage}: {e}")
    script = "".join(cell_text(c) for c in nb["cells"]
                     if c["metadata"].get("microgpt", {}).get("source") == "script")
    if script != stages.read_stage(stage, root):
        raise ExerciseError(f"the companion notebook of stage {stage} is not its script")
    return nb


def split_top_level(text, line_numbers):
    """Split a cell's code into chunks so that each top-level statement containing one of the
    (1-based) line numbers is a chunk of its own. Returns [(text, is_marked, first, last)], with
    first..last the chunk's 1-based line numbers in `text`."""
    lines = stages.split_lines(text)
    marked = []
    for node in ast.parse(text).body:
        if any(node.lineno <= n <= node.end_lineno for n in line_numbers):
            start = node.lineno - 1 - len(getattr(node, "decorator_list", []))
            end = node.end_lineno
            while end < len(lines) and lines[end][:1] == " " and lines[end].strip()[:1] == "#":
                end += 1   # an indented comment after the body belongs to it
            marked.append((start, end))
    pieces = []
    pos = 0
    for start, end in marked:
        pieces.append((pos, start, False))
        pieces.append((start, end, True))
        pos = end
    pieces.append((pos, len(lines), False))
    return [("".join(lines[a:b]).strip("\n") + "\n", m, a + 1, b)
            for a, b, m in pieces if "".join(lines[a:b]).strip()]


def intro_cell(stage):
    exs = stage_exercises(stage)
    total = sum(ex.minutes for ex in exs)
    name = handout_name(stage)
    rows = "\n".join(f"| {ex.id} | {ex.title} | {ex.minutes} min | {ex.points} |" for ex in exs)
    badge = f'[![Open In Colab]({repo.COLAB_BADGE})]({repo.colab_url(f"{OUT_DIR}/{name}")})'
    return (f"<!-- generated by {TOOL} from notebooks/{companion_path(stage).name}; "
            f"do not edit -->\n"
            f"# Exercises, stage {stage}: {stages.concept(stage)}\n\n{badge}\n\n"
            f"This is the stage {stage} notebook with the key pieces left for you to write "
            f"(about {total} minutes in all). Each exercise has instructions, a code cell with "
            "`raise NotImplementedError` where your code goes, and a **check cell** right "
            "after it: run it for instant feedback. The checks test each exercise on its own, "
            "so you can finish them in any order. Cells further down that need an unfinished "
            "exercise stop with `NotImplementedError`; once all are done, run the whole "
            "notebook: it trains the model like the script.\n\n"
            "| exercise | what you write | time | points |\n|---|---|---|---|\n" + rows + "\n\n"
            "Your instructor grades the exercise cells with hidden checks too: keep the function "
            "names and signatures, and do not rely on the check cells alone.")


# A handout never links to what holds its solutions: the companion notebooks, the stage scripts
# and the diffs (such a link becomes its text). The companion's header keeps its title, goal and
# course map; its badge, provenance, diff summary and how-to (the intro cell says how) go.
SOLUTION_LINK = re.compile(r"\[([^\]]*)\]\([^)\s]*(?:train\d\w*\.(?:ipynb|py)|diffs/[^)\s]*)\)")
HEADER_DROPPED = ("[![Open In Colab]", "*Generated by", "**What changed", "**How to use it")


# The companion's setup cell also fetches the stage script, which its closing "try it" cell runs:
# a handout's setup fetches only the data, and the try-it part (the notebook's last) is left out.
SETUP_NEEDED = re.compile(r"^NEEDED = \[.*\]$", re.M)
SETUP_COMMENT = ("# notebook-only: setup. Inside a copy of the repository this finds\n"
                 "# data/names.txt; anywhere else (Colab) it downloads that one file.\n"
                 "# The settings find the data through __file__, which is defined here.\n")
TRY_IT = "## Try it:"


def handout_setup(text):
    lines = stages.split_lines(text)
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    text = SETUP_COMMENT + "".join(lines)
    return SETUP_NEEDED.sub("NEEDED = ['data/names.txt']", text)


def handout_prose(text, header, exs):
    if header:
        text = "\n\n".join(p for p in text.split("\n\n") if not p.startswith(HEADER_DROPPED))
    for ex in exs:
        if ex.asks:
            text = asked(text, ex)
    return SOLUTION_LINK.sub(r"\1", text)


def asked(text, ex):
    """The prose with the column ex.asks of its tables turned into question marks below the first
    row (the worked example), so that the answers of exercise ex are not printed before it."""
    out = []
    column = None
    for line in text.split("\n"):
        cells = line.split("|")
        if line.startswith("|") and ex.asks in [c.strip() for c in cells]:
            column, rows = [c.strip() for c in cells].index(ex.asks), 0
        elif column is not None and line.startswith("|"):
            rows += 1 if set(line) - set("|-: ") else 0   # not the |---| line
            if rows > 1:
                cells[column] = " ? "
                line = "|".join(cells)
        elif column is not None:
            out += ["", f"*The question marks are exercise {ex.id}: work them out there.*"]
            column = None
        out.append(line)
    return "\n".join(out)


def build_handout(stage, mode="stub", root=ROOT, solved=()):
    """The handout notebook (a dict) of a stage. mode: 'stub' (students), 'solution'
    (reference filled in) or 'nbgrader' (solutions between BEGIN/END SOLUTION markers); the
    exercises in `solved` get their solution whatever the mode (the grader's context)."""
    nb = load_companion(stage, root)
    exs = stage_exercises(stage)
    modes = {ex.id: "solution" if ex.id in solved else mode for ex in exs}
    script = stages.read_stage(stage, root)
    regions = {}   # (exercise id, target index) -> region text in the (progressively) edited
    for ex in exs:
        for k, target in enumerate(ex.targets):
            try:
                regions[ex.id, k] = region_text(script, target)
            except ExerciseError as e:
                raise ExerciseError(f"exercise {ex.id}: {e}")
            if isinstance(target, Extract):
                script = script.replace(regions[ex.id, k], target.call + "\n")
    cells = []
    done = set()
    for cell in nb["cells"]:
        meta = cell["metadata"].get("microgpt", {})
        if cell["cell_type"] == "markdown" and cell_text(cell).startswith(TRY_IT):
            break
        setup = cell_text(cell).startswith("# notebook-only: setup")
        if meta.get("source") != "script" and "open(__file__" in cell_text(cell):
            continue   # a cell that reads the stage script, which holds the solutions
        if meta.get("source") != "script":
            new = copy.deepcopy(cell)
            new["source"] = handout_setup(cell_text(cell)) if setup else cell_text(cell)
            if new["cell_type"] == "markdown":
                new["source"] = handout_prose(new["source"], cell is nb["cells"][0], exs)
            if new["cell_type"] == "code":
                new["outputs"] = []
                new["execution_count"] = None
            new.pop("id", None)
            new.pop("attachments", None) if not new.get("attachments") else None
            cells.append(new)
            if setup:
                cells.append(code(helpers_source(), {"source": "notebook-only"}))
            continue
        cells.extend(transform_script_cell(cell_text(cell), meta["section"], exs, regions, modes,
                                           done))
    cells[0:0] = [md(intro_cell(stage), {"source": "exercises"})]
    for k, cell in enumerate(cells):
        cell["id"] = f"cell-{k:03d}"
    metadata = copy.deepcopy(nb["metadata"])
    metadata["microgpt"] = {"generated_by": TOOL, "companion": f"notebooks/"
                            f"{companion_path(stage).name}", "stage": stage,
                            "exercises": [ex.id for ex in exs], "mode": mode}
    return {"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}


def transform_script_cell(text, section, exs, regions, modes, done):
    """The handout cells that one script cell becomes ({exercise id: mode}). `done` collects the
    (exercise id, target index) of extracted functions already placed in a cell, across the cells
    of a notebook."""
    edits = []   # (replacement, exercise, target, kind), applied in exercise order
    for ex in exs:
        for k, target in enumerate(ex.targets):
            region = regions[ex.id, k]
            if region not in text:
                continue
            if isinstance(target, Extract):
                replacement = target.call + "\n"
                edits.append((replacement, ex, target, "call"))
            else:
                replacement = replaced_region(ex, target, region, modes[ex.id])
                edits.append((replacement, ex, target, "inline"))
            text = text.replace(region, replacement)
    if not edits:
        return [code(text, {"source": "script", "section": section})]
    line_of = []   # (1-based line of the edit in the final text, exercise, target, kind)
    for k, (replacement, ex, target, kind) in enumerate(edits):
        at = text.find(replacement)
        later = k + 1
        while at < 0 and later < len(edits):   # swallowed by a later edit: place it there
            at = text.find(edits[later][0])
            later += 1
        line_of.append((text[:at].count("\n") + 1, ex, target, kind))
    inline_lines = [n for n, _, _, kind in line_of if kind == "inline"]
    out = []
    for chunk, is_exercise, first, last in split_top_level(text, inline_lines):
        inside = [(ex, target, kind) for n, ex, target, kind in line_of if first <= n <= last]
        owners = []
        for ex, _, _ in inside:
            if ex not in owners:
                owners.append(ex)
        if is_exercise:
            extra = ""
            for ex in owners:   # an exercise's extracted functions join its exercise cell
                for k, target in enumerate(ex.targets):
                    if isinstance(target, Extract):
                        extra += "\n\n" + extracted_function(ex, target, regions[ex.id, k],
                                                               modes[ex.id])
                        done.add((ex.id, k))
            out += exercise_cells(owners, chunk + extra, section)
        else:
            pending = [ex for ex in owners if any(isinstance(t, Extract) and (ex.id, k) not in
                       done for k, t in enumerate(ex.targets))]
            for ex in pending:
                src = "\n\n".join(extracted_function(ex, t, regions[ex.id, k], modes[ex.id])
                                  for k, t in enumerate(ex.targets) if isinstance(t, Extract))
                done.update((ex.id, k) for k, t in enumerate(ex.targets) if isinstance(t, Extract))
                out += exercise_cells([ex], src, section)
            out.append(code(chunk, {"source": "script", "section": section}))
    return out


def exercise_cells(exs, source, section):
    cells = []
    for ex in exs:
        cells.append(md(f"### Exercise {ex.id}: {ex.title} (about {ex.minutes} minutes, "
                        f"{ex.points} points)\n\n**Goal:** {ex.goal}.\n\n{ex.instructions}",
                        {"source": "instructions", "exercise": ex.id}))
    meta = {"source": "exercise", "exercises": [ex.id for ex in exs], "section": section}
    cells.append(code(source, meta))
    for ex in exs:
        cells.append(code(f"# check for exercise {ex.id}: run this cell after writing your code\n"
                          + check_source(ex.name) + f"\n\nrun_check(check_{ex.name})\n",
                          {"source": "check", "exercise": ex.id}))
    return cells


def dumps(nb):
    return json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def grader_context(stage, ex_id, root=ROOT):
    """[(label, source)]: the handout's code that the grader runs before a student's code for
    exercise ex_id: its script and exercise cells outside the training/evaluation/sampling
    sections (plus the exercise cells there, which only define functions), with tiny settings
    after the command line. Ex_id is a stub; the stage's other exercises are solved, so that a
    probe calls the real collaborators (a student may inline rmsnorm rather than call it). Check
    and notebook-only cells are left out."""
    others = {ex.id for ex in stage_exercises(stage)} - {ex_id}
    nb = build_handout(stage, "stub", root, solved=others)
    parts = []
    for cell in nb["cells"]:
        meta = cell["metadata"].get("microgpt", {})
        if cell["cell_type"] != "code" or meta.get("source") not in ("script", "exercise"):
            continue
        if meta.get("source") == "script" and meta.get("section") in GRADER_SECTIONS:
            continue
        parts.append((meta.get("section", ""), cell["source"]))
        if meta.get("section") == "settings" and meta.get("source") == "script":
            parts.append(("tiny settings", TINY[stage]))
    return parts


# --- README table -----------------------------------------------------------------------------

def solved_in(handouts, root=ROOT):
    """{exercise id: [stages]}: the other stages whose handout (a dict of notebooks by stage)
    holds the exercise's reference solution, i.e. at least 90% of its code lines."""
    found = check_anchors(root)
    solved = {}
    for ex in EXERCISES:
        lines = [line.strip() for region in found[ex.id] for line in region.splitlines()
                 if line.strip() and not line.strip().startswith("#")]
        solved[ex.id] = []
        for stage, nb in handouts.items():
            code = {line.strip() for cell in nb["cells"] if cell["cell_type"] == "code"
                    for line in cell["source"].splitlines()}
            if stage != ex.stage and sum(line in code for line in lines) >= 0.9 * len(lines):
                solved[ex.id].append(stage)
    return solved


def exercise_table(solved):
    rows = ["| exercise | stage | what the student writes | learning goal | time | checks | "
            "solution also in handouts |", "|---|---|---|---|---|---|---|"]
    for ex in EXERCISES:
        rows.append(f'| {ex.id} | {ex.stage} | {ex.title} (`{"`, `".join(ex.defines)}`) | '
                    f'{ex.goal} | {ex.minutes} min | visible + hidden | '
                    f'{", ".join(map(str, solved[ex.id])) or "-"} |')
    return "\n".join(rows) + "\n"


TABLE_START = "<!-- exercise table: generated by tools/exercises.py -->\n"
TABLE_END = "<!-- end of exercise table -->\n"


def readme_with_table(text, solved):
    if TABLE_START not in text or TABLE_END not in text:
        raise ExerciseError(f"{OUT_DIR}/README.md lacks the exercise table markers")
    head, rest = text.split(TABLE_START, 1)
    _, tail = rest.split(TABLE_END, 1)
    return head + TABLE_START + exercise_table(solved) + TABLE_END + tail


def outputs(root=ROOT):
    """{relative path: text} of everything this tool writes."""
    handouts = {stage: build_handout(stage, "stub", root)
                for stage in range(len(stages.STAGE_FILES))}
    files = {f"{OUT_DIR}/{handout_name(stage)}": dumps(nb) for stage, nb in handouts.items()}
    readme = Path(root) / OUT_DIR / "README.md"
    if readme.exists():
        files[f"{OUT_DIR}/README.md"] = readme_with_table(readme.read_text(encoding="utf-8"),
                                                          solved_in(handouts, root))
    return files


def write_mode(mode, out_dir, root=ROOT):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stage in range(len(stages.STAGE_FILES)):
        (out_dir / handout_name(stage)).write_text(dumps(build_handout(stage, mode, root)),
                                                   encoding="utf-8")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check", action="store_true", help="fail if a handout is stale")
    group.add_argument("--nbgrader", metavar="DIR", help="write an nbgrader course directory")
    group.add_argument("--solutions", metavar="DIR", help="write handouts with solutions")
    args = parser.parse_args(argv)
    try:
        check_anchors()
        if args.nbgrader:
            import nbgrader_course
            nbgrader_course.write_course(args.nbgrader)
            return 0
        if args.solutions:
            write_mode("solution", args.solutions)
            return 0
        stale = []
        for rel, text in outputs().items():
            path = ROOT / rel
            if args.check:
                if not path.exists() or path.read_text(encoding="utf-8") != text:
                    stale.append(rel)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
        if stale:
            print(f'error: stale (run python {TOOL}): {", ".join(stale)}', file=sys.stderr)
            return 1
        return 0
    except (ExerciseError, OSError, SyntaxError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
