"""Notebook display: plots (plotly, PNG through matplotlib), the variant explorer, the review viewer, shareable
HTML reports."""

from .._face import declare

declare(__name__, globals(), {
    "plot_accuracy": "._plots", "plot_latency": "._plots", "plot_significance": "._plots",
    "plot_cost_quality": "._plots", "plot_sequential": "._plots", "plot_power": "._plots", "to_png": "._plots",
    "explore": "._widgets", "view": "._viewer", "notebook_report": "._report", "execute_notebook": "._report",
})
