"""One claim's row of a claims table, and the note naming the runs a claim left out, for the tests of every
chapter's claims."""
import pandas as pd

# how a statistic names the runs it left out for falling short of the terminal phase (train accuracy 0.99)
LEFT_OUT = "left out (train accuracy < 99% on the labels and inputs trained with)"


def claim_row(table: pd.DataFrame, claim: str, view: str | None = None) -> pd.Series:
    """The one row of ``table`` whose claim contains ``claim`` and, if it is judged per view, ``view`` (e.g.
    "train split, flat features"; None: any view); a claim about no view matches any ``view``."""
    chosen = table[table.claim.str.contains(claim, regex=False)]
    if view is not None:
        names = chosen.claim.str
        chosen = chosen[~names.contains(" split, ", regex=False) | names.contains(view, regex=False)]
    assert len(chosen) == 1, (claim, view, (chosen if len(chosen) else table).claim.tolist())
    return chosen.iloc[0]
