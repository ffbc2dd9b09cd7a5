"""The data-scale ladder (ncutils.claims.data_scale, ncutils.studies.data_scale): each rung's claims are the
clean and label-noise chapters' claims judged from that rung's runs alone; the ladder, the changed claims,
the claims page's rows and the landing page's paragraph all read the same verdicts."""
import pandas as pd
import pytest

from ncutils.claims import clean, data_scale, label_noise, table
from ncutils.results import StudyResults
from ncutils.scales import get_scale
from ncutils.studies import DATA_RUNGS, DEPTH_NOISE, study_configs


@pytest.mark.parametrize("scale", ["smoke", "cpu", "paper"])
def test_the_smallest_rung_is_the_other_studies_runs_and_larger_ones_run_once(scale):
    ladder = study_configs("data_scale", scale)
    others = set(study_configs("clean", scale)) | set(study_configs("label_noise", scale))
    assert sorted({c.n_per_class or 10**9 for c in ladder}) == sorted(n or 10**9 for n in DATA_RUNGS[scale])
    assert {(c.model, c.noise) for c in ladder} == {(m, n) for m in ("resnet18", "swin_t") for n in ("clean", DEPTH_NOISE)}
    own = get_scale(scale).n_per_class  # the scale's own rung: the clean and label-noise runs, their seeds
    assert set(c for c in ladder if c.n_per_class == own) <= others
    assert len({c.seed for c in ladder if c.n_per_class == own}) > 1
    assert all(c.seed == 0 and c not in others for c in ladder if c.n_per_class != own)


RUNGS = (100, 300, 1000)
# (claim, {rung: verdict}) that the fake chapters judge: one changes, one does not, one needs another model
VERDICTS = {"(1) rises": {100: "holds", 300: "inconclusive", 1000: "does not hold"},
            "(3) stays": {100: "holds", 300: "holds", 1000: "holds"},
            "(4) needs resnet34": {100: "not computed", 300: "not computed", 1000: "not computed"},
            "(5) only at the top": {100: "not computed", 300: "not computed", 1000: "holds"}}


@pytest.fixture
def fake(monkeypatch):
    """A study of every rung (no run stored) whose clean and label-noise claims are :data:`VERDICTS`, read off
    the rung of the runs each chapter's ``claims`` is given (clean: its clean runs only)."""
    configs = [c for n in RUNGS for c in study_configs("data_scale", "cpu") if c.n_per_class == n]
    seen = []

    def chapter(claims_of, figure):
        def judge(found):
            rung = {c.n_per_class for c in found.configs}
            assert len(rung) == 1, "a rung's claims read that rung's runs only"
            seen.append((claims_of, {c.noise for c in found.configs}))
            n = rung.pop()
            return table([{"claim": claim, "statistic": f"{claims_of} at {n}", "verdict": v[n], "figure": figure}
                          for claim, v in VERDICTS.items() if (claims_of == "clean") == claim.startswith("(1)")])
        return judge

    monkeypatch.setattr(clean, "claims", chapter("clean", clean.ACCURACY))
    monkeypatch.setattr(label_noise, "claims", chapter("label_noise", label_noise.RANDOM_FIGURE))
    empty = pd.DataFrame(columns=["key"])
    return StudyResults(empty, empty, [(c, "missing") for c in configs], store=None), seen


def test_the_ladder_has_every_claim_judged_at_some_rung(fake):
    found, seen = fake
    wide = data_scale.ladder(found)
    assert list(wide.claim) == ["(1) rises", "(3) stays", "(5) only at the top"]  # "(4)" is computed nowhere
    assert list(wide["verdict 1,000"]) == ["does not hold", "holds", "holds"]
    assert wide.loc[0, "statistic 300"] == "clean at 300"
    assert ("clean", {"clean"}) in seen and ("label_noise", {"clean", DEPTH_NOISE}) in seen


def test_changed_claims_are_those_judged_at_both_ends_with_another_verdict(fake):
    found, _ = fake
    moved = data_scale.changed(data_scale.ladder(found))
    assert list(moved.claim) == ["(1) rises"]  # "(5)" is not computed at 100 images per class
    assert list(moved.iloc[0, 1:]) == ["holds", "does not hold"]


def test_the_claims_page_gets_the_largest_rung_and_the_chapter_links(fake):
    found, _ = fake
    rows = data_scale.claims(found)
    assert list(rows.claim) == [f"with 1,000 training images per class: {c}" for c in
                                ("(1) rises", "(3) stays", "(5) only at the top")]
    assert list(rows.verdict) == ["does not hold", "holds", "holds"]
    assert set(rows.figure) == {data_scale.ACCURACY, data_scale.CURVES}  # the accuracy claim to the accuracy figure


def test_the_landing_page_names_the_claims_that_change(fake, monkeypatch):
    found, _ = fake
    monkeypatch.setattr("ncutils.results.available", lambda configs, progress: found)
    text = data_scale.findings("cpu")
    assert "- (1) rises: holds → does not hold" in text
    assert "(3) stays" not in text and "(5) only at the top" not in text
    assert "100, 300 and 1,000 training images per class" in text and "are not stored yet" in text
