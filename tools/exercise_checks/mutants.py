"""Plausible answers, as (old, new) text replacements applied to the reference solution's
exercise cell. WRONG: one or more wrong answers per exercise (some give right values from a cut
graph, so only the gradients are wrong); tests/test_grader.py proves each is caught, and
`tools/grade.py --demo-class` uses them to make a realistic class. RIGHT: correct answers written
another way than the reference, which must keep full marks.
"""
WRONG = {
    '0.1': [('counts[token_id][target_id] += 1', 'counts[target_id][token_id] += 1')],
    '0.2': [('return sum(losses) / n', 'return sum(losses)')],
    '0.3': [('token_id = random.choices(range(vocab_size), weights=probs)[0]',
             'token_id = max(range(vocab_size), key=lambda b: probs[b])'),
            ('weights=probs)[0]', 'weights=[p ** 0.9 for p in probs])[0]'),
            ('token_id = random.choices(range(vocab_size), weights=probs)[0]',
             'draw = round(random.random(), 2)   # a draw rounded to 1%\n'
             '    token_id = next(b for b in range(vocab_size)\n'
             '                    if draw < sum(probs[:b + 1]) or b == vocab_size - 1)')],
    '1.1': [('dlogits = [p / n for p in probs]', 'dlogits = [p for p in probs]')],
    '1.2': [('dwte_row[j] += g', 'dwte_row[j] = g'),
            ('dh_pre = [dhi if hi > 0 else 0.0 for dhi, hi in zip(dh, h_pre)]', 'dh_pre = dh')],
    '1.3': [('return (loss_plus - loss_minus) / (2 * eps)',
             'return (loss_plus - loss_minus) / eps')],
    '1.4': [('row[j] -= lr_t * g', 'row[j] += lr_t * g')],
    '2.1': [('(self, other), (other.data, self.data))', '(self, other), (self.data, other.data))')],
    '2.2': [('child.grad += local_grad * node.grad', 'child.grad = local_grad * node.grad'),
            ('for node in reversed(topo):', 'for node in topo:')],
    '3.1': [('ms = dot(x, x) / len(x)', 'ms = dot(x, x)'),
            # right values from a cut graph: no gradient flows through the scale
            ('scale = (ms + 1e-5) ** -0.5', 'scale = Value((ms.data + 1e-5) ** -0.5)')],
    '3.2': [('dot(q, k_t) / head_dim ** 0.5', 'dot(q, k_t) / head_dim'),
            # softmax over plain floats: right values, but q and the keys get no gradient
            ('attn_weights = softmax(attn_logits)',
             'attn_weights = [Value(w.data) for w in softmax(attn_logits)]'),
            # scores from .data: no gradient reaches q or the keys (nor attn_wq, attn_wk)
            ('dot(q, k_t) / head_dim ** 0.5', 'Value(dot(q, k_t).data) / head_dim ** 0.5')],
    '3.3': [('x = [a + b for a, b in zip(x, x_residual)]   # residual: the block adds to its input',
             'x = x   # (forgot the residual)'),
            ('x = attention(q, keys, values)',
             'x = [Value(v.data) for v in attention(q, keys, values)]')],
    '4.1': [('x_attn.extend(attention(q_h, k_h, v_h))', 'x_attn.append(attention(q_h, k_h, v_h))'),
            ('x_attn.extend(attention(q_h, k_h, v_h))',
             'x_attn.extend(Value(v.data) for v in attention(q_h, k_h, v_h))')],
    '4.2': [('keys[i].append(k)', 'keys[0].append(k)'),
            ('multi_head_attention(q, keys[i], values[i])', 'attention(q, keys[i], values[i])'),
            ('x_attn = multi_head_attention(q, keys[i], values[i])',
             'x_attn = [Value(v.data) for v in multi_head_attention(q, keys[i], values[i])]')],
    '5.1': [('m_hat = adam_m[j] / (1 - beta1 ** (step + 1))', 'm_hat = adam_m[j]'),
            ('v_hat = adam_v[j] / (1 - beta2 ** (step + 1))', 'v_hat = adam_v[j]')],
    '5.2': [('lr_t = learning_rate * (1 - step / num_steps)',
             'lr_t = learning_rate * (1 - (step + 1) / num_steps)')],
}
# which replacements of WRONG[id] belong together (applied at once); default: each on its own
TOGETHER = {'5.1'}
# (exercise, variant) of WRONG that give right values from a cut graph: the visible check must
# catch them too, by their gradients
CUT = {('3.1', 1), ('3.2', 1), ('3.2', 2), ('3.3', 1), ('4.1', 1), ('4.2', 2)}
RIGHT = {
    '0.3': [('token_id = random.choices(range(vocab_size), weights=probs)[0]',
             'draw = random.random()   # walk the cumulative probabilities\n'
             '    token_id = next(b for b in range(vocab_size)\n'
             '                    if draw < sum(probs[:b + 1]) or b == vocab_size - 1)')],
    '3.3': [('    x = rmsnorm(x)\n    q = linear',   # rmsnorm written inline
             '    scale = (sum(xi * xi for xi in x) / len(x) + 1e-5) ** -0.5\n'
             '    x = [xi * scale for xi in x]\n    q = linear')],
    '4.1': [('        x_attn.extend(attention(q_h, k_h, v_h))',   # attention written inline
             '        logits = [sum(a * b for a, b in zip(q_h, k_t)) / head_dim ** 0.5 '
             'for k_t in k_h]\n'
             '        weights = softmax(logits)\n'
             '        x_attn.extend(sum(w * v_t[j] for w, v_t in zip(weights, v_h))\n'
             '                      for j in range(head_dim))')],
}
