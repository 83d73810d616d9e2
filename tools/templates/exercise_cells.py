# ruff: noqa
# The code that the exercise tools write around the course's own, cut at each `part:` line;
# {{name}} is a slot the tool fills (a slot alone on its line: lines). setup and check: the
# handouts' (tools/exercises.py); visible, hidden and autograde: nbgrader's
# (tools/nbgrader_course.py).

# --- part: setup ---
# notebook-only: setup. Inside a copy of the repository this finds
# data/names.txt; anywhere else (Colab) it downloads that one file.
# The settings find the data through __file__, which is defined here.
{{code}}
# --- part: check ---
# check for exercise {{id}}: run this cell after writing your code
{{check}}


run_check({{function}})
# --- part: visible ---
# check for exercise {{id}}: run this cell after writing your code (it defines
# its own helpers, so that no other cell can change what it checks)
{{check}}
# --- part: hidden ---
# hidden check for exercise {{id}}: only the autograder runs it
### BEGIN HIDDEN TESTS
{{check}}
### END HIDDEN TESTS
# --- part: autograde ---
# nbgrader: when nbgrader runs this notebook (to autograde or validate it), train a
# tiny model for one step: grading needs only the exercise cells
if os.environ.get('NBGRADER_EXECUTION'):
    {{settings}}
