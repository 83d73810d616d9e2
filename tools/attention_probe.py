# === attention probe (appended by tools/experiments.py to the attention demo's runs) ===
# Not a tool: after train3_single_head.py trained on data/repeats.txt (L letters written twice),
# it records attention's softmax (the only one gpt() calls) on the held-out strings and prints
# 'attention: {json}': grid (each query's mean weights), lookback (queries L..2L-1, whose next
# letter copies the one at pos_id + 1 - L), max_weight and on_match (their largest weight and
# their weight on that letter, means over rows and strings).
import json as _json

_script_softmax = softmax
_recorded = []


def softmax(logits):   # records the weights, then behaves exactly like the script's softmax
    probs = _script_softmax(logits)
    _recorded.append([p.data for p in probs])
    return probs


_length = len(val_docs[0]) // 2
_grid_sum = None
_max_weights = []
_on_match = []
for _doc in val_docs:
    _recorded.clear()
    _keys, _values = [], []
    for _pos_id, _token_id in enumerate(encode(_doc)[:-1]):
        gpt(_token_id, _pos_id, _keys, _values)
    # row pos_id over key positions 0..n-1: a head that sees fewer keys (keys[-1:]) sees the last
    _n = len(_recorded)
    _rows = [[0.0] * (pos + 1 - len(row)) + row + [0.0] * (_n - pos - 1)
             for pos, row in enumerate(_recorded)]
    _grid_sum = _rows if _grid_sum is None else [
        [a + b for a, b in zip(row_sum, row)] for row_sum, row in zip(_grid_sum, _rows)]
    for _pos_id in range(_length, 2 * _length):
        _max_weights.append(max(_rows[_pos_id]))
        _on_match.append(_rows[_pos_id][_pos_id + 1 - _length])
softmax = _script_softmax   # noqa: F811  (gpt() called the recording one)
print("attention: " + _json.dumps({
    "length": _length,
    "grid": [[round(w / len(val_docs), 4) for w in row] for row in _grid_sum],
    "lookback": list(range(_length, 2 * _length)),
    "max_weight": round(sum(_max_weights) / len(_max_weights), 4),
    "on_match": round(sum(_on_match) / len(_on_match), 4)}))
