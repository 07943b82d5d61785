"""A prompt built in Python for examples/promptlab.yaml: fn(vars) -> text, or a list of {role, content}."""

TEAMS = ("billing", "technical", "account")


def build(variables: dict) -> list[dict]:
    """A system turn naming the teams, one worked example, then the ticket."""
    return [
        {"role": "system", "content": f"Route the support ticket to one team: {', '.join(TEAMS)}."},
        {"role": "user", "content": "My card was charged twice."},
        {"role": "assistant", "content": "billing"},
        {"role": "user", "content": variables["input"]},
    ]
