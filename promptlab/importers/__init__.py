"""Paths in: convert another tool's evaluation setup into promptlab's files (prompts, suites, the eval file).

``import_promptfoo(config, out_dir)`` converts a promptfoo config; ``promptlab import promptfoo`` is its command.
What cannot be converted is never dropped silently: `ImportReport.skipped` lists it with the reason.
"""

from .._face import declare

declare(__name__, globals(), {"import_promptfoo": "._promptfoo", "ImportReport": "._promptfoo"})
