"""Errors read like a tool in a notebook: IPython shows a promptlab error's message, not the library's stack."""

from __future__ import annotations

from IPython.core.interactiveshell import InteractiveShell


def test_a_refusal_in_a_notebook_cell_shows_the_message_not_a_traceback(capsys, tmp_path):
    shell = InteractiveShell.instance()
    shell.run_cell(f"import promptlab as pl\npl.load_suite({str(tmp_path / 'missing.yaml')!r})")
    shown = capsys.readouterr().out
    assert "SuiteFileError" in shown and "does not exist. Check the path." in shown
    assert "Traceback" not in shown and "File " not in shown and "suite.py" not in shown


def test_other_exceptions_keep_their_traceback(capsys):
    shell = InteractiveShell.instance()
    shell.run_cell("def boom():\n    raise KeyError('x')\nboom()")
    assert "Traceback" in capsys.readouterr().out
