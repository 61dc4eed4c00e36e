"""Counts in messages, in the right number: "1 row is", "2 rows are"."""

from __future__ import annotations

# Plural problem phrases whose singular is more than a changed verb.
_SINGULAR = {
    "are not numbers": "is not a number",
    "are not finite numbers": "is not a finite number",
    "are not timestamps": "is not a timestamp",
    "are not valid class labels": "is not a valid class label",
}
_VERBS = {"are": "is", "have": "has", "do": "does", "were": "was", "repeat": "repeats", "disagree": "disagrees"}


def count(n: int, singular: str, plural: str | None = None) -> str:
    """``1 row``, ``2 rows``."""
    return f"{n} {singular if n == 1 else (plural or singular + 's')}"


def agree(n: int, phrase: str) -> str:
    """A plural predicate (``are not numbers``, ``have no id``) in the number of ``n``."""
    if n != 1:
        return phrase
    for plural, singular in _SINGULAR.items():
        if phrase == plural or phrase.startswith(plural + " "):
            return singular + phrase[len(plural) :]
    verb, _, rest = phrase.partition(" ")
    if verb in _VERBS:
        phrase = f"{_VERBS[verb]} {rest}".rstrip()
    return phrase.replace(" their ", " its ")


def counted(n: int, noun: str, phrase: str, plural: str | None = None) -> str:
    """``1 row is not a number``, ``3 rows are not numbers``."""
    return f"{count(n, noun, plural)} {agree(n, phrase)}"
