"""Words -> running text for a translator (MT systems translate text, not CoNLL token lists)."""

from __future__ import annotations

from typing import Sequence

NO_SPACE_BEFORE = set(".,;:!?%)]}»”’…") | {"n't", "'s", "'re", "'ve", "'m", "'ll", "'d", "''"}
NO_SPACE_AFTER = set("([{¿¡«“‘$") | {"``"}


def detokenize(tokens: Sequence[str]) -> str:
    """Join words with spaces except around punctuation that attaches to a neighbour.

    Straight double quotes alternate between opening and closing. Empty tokens are skipped.
    """
    out: list[str] = []
    attach_next = False
    open_quote = False
    for tok in tokens:
        if not tok:
            continue
        if tok == '"':
            attach_left = open_quote
            open_quote = not open_quote
            attach_right = open_quote
        else:
            attach_left = tok in NO_SPACE_BEFORE
            attach_right = tok in NO_SPACE_AFTER
        if out and not attach_left and not attach_next:
            out.append(" ")
        out.append(tok)
        attach_next = attach_right
    return "".join(out)
