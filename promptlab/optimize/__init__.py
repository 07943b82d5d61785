"""Making prompts cheaper and keeping them working when models change.

* `compression` — named rules that shorten a prompt; `compress` gives the new version and the tokens saved.
* `noninferiority` — the paired test that a cheaper variant lost no more than a stated margin of accuracy.
* `routing` — the cheapest model per task whose accuracy lower bound meets the bar; Pareto frontier;
  a routing table file the production client reads.
* `pinning` — floating model aliases, served-model drift, the model lockfile, model compatibility matrices.
"""
