"""One claim's row of a claims table, for the tests of every chapter's claims."""
import pandas as pd


def claim_row(table: pd.DataFrame, claim: str, view: str | None = None) -> pd.Series:
    """The one row of ``table`` whose claim contains ``claim`` and, if it is judged per view, ``view`` (e.g.
    "train split, flat features"; None: any view); a claim about no view matches any ``view``."""
    chosen = table[table.claim.str.contains(claim, regex=False)]
    if view is not None:
        names = chosen.claim.str
        chosen = chosen[~names.contains(" split, ", regex=False) | names.contains(view, regex=False)]
    assert len(chosen) == 1, (claim, view, (chosen if len(chosen) else table).claim.tolist())
    return chosen.iloc[0]
