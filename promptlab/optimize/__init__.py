"""Making prompts cheaper and keeping them working when models change.

* `compression` — named rules that shorten a prompt; `compress` gives the new version and the tokens saved.
* `noninferiority` — the paired test that a cheaper variant lost no more than a stated margin of accuracy.
* `routing` — the cheapest model per task whose accuracy lower bound meets the bar; the Pareto frontier;
  a routing table file the production client reads.
* `pinning` — floating model aliases, served-model drift, the model lockfile.
* `Candidate` — one prompt variant the prompt search may try; `start_candidate` is the search's starting point.
  Generators take a base candidate and return new ones: `fewshot_candidates` (random, per-label coverage,
  bootstrapped demos from `bootstrap_demos`, typical examples by embedding), `order_candidates`,
  `instruction_candidates` (the rewrite library `REWRITES`), `propose_instructions` (an LLM proposer fed the
  failures), `compression_candidates`, `routing_candidates`.
* `compatibility` — a prompt on several models: accuracy, categories, failures, paired against the current.
* `optimize_prompt` — the prompt search: a seeded, stratified split (`split_suite`), successive halving over
  candidates under a call/dollar budget, the winner confirmed on untouched cases (`SearchResult`).
"""

from .._face import declare

declare(__name__, globals(), {
    "Candidate": "._candidates",
    "start_candidate": "._candidates",
    "fewshot_candidates": "._fewshot",
    "order_candidates": "._fewshot",
    "bootstrap_demos": "._fewshot",
    "Bootstrap": "._fewshot",
    "instruction_candidates": "._instructions",
    "propose_instructions": "._instructions",
    "REWRITES": "._instructions",
    "compression_candidates": "._moves",
    "routing_candidates": "._moves",
    "floating_aliases": "._lockfile",
    "served_model_drift": "._lockfile",
    "Lockfile": "._lockfile",
    "LockCheck": "._lockfile",
    "DEFAULT_LOCKFILE": "._lockfile",
    "load_lockfile": "._lockfile",
    "write_lockfile": "._lockfile",
    "check_lockfile": "._lockfile",
    "CompatibilityMatrix": "._compatibility",
    "model_compatibility": "._compatibility",
    "test_model_compatibility": "._compatibility",
    "Compression": "._compression",
    "DEFAULT_RULES": "._compression",
    "RULES": "._compression",
    "Rule": "._compression",
    "compress": "._compression",
    "prompt_rule": "._compression",
    "text_rule": "._compression",
    "NonInferiority": "._noninferiority",
    "noninferiority": "._noninferiority",
    "RoutingDecision": "._routing",
    "RoutingTable": "._routing",
    "choose_model": "._routing",
    "load_routing_table": "._routing",
    "plot_frontier": "._routing",
    "routing_table": "._routing",
    "optimize_prompt": "._search",
    "SearchResult": "._search_report",
    "SearchSplit": "._search_split",
    "split_suite": "._search_split",
})
