"""Caption scorers of the COCO caption evaluation (`pycocoevalcap`).

BLEU-1..4 (Papineni et al. 2002) and CIDEr-D (Vedantam et al. 2015; the
`Cider` scorer of `pycocoevalcap` is the CIDEr-D variant, with clipped
counts and a length penalty) are pure Python and always run. The
reference evaluation tokenises with the Stanford PTB tokenizer, and
METEOR and SPICE are Java programs; `caption_metrics` uses them only
when `java` is on the PATH (SPICE also needs the Stanford CoreNLP models
that `pycocoevalcap` downloads on first use: they must already be there,
no download is attempted). Without Java the text is tokenised by
`simple_tokenize` instead, and the returned notes say so.

CIDEr-D weighs n-grams by their document frequency over the references
of the images evaluated, so it depends on which images are scored.

Example:
>>> refs = {1: ["a black dog runs on the grass"],
...         2: ["two red buses parked near a station"]}
>>> scores, notes = caption_metrics(refs, {1: "a black dog runs on the grass",
...                                        2: "two red buses parked near a station"},
...                                 use_java=False)
>>> round(scores["bleu_4"], 4), round(scores["cider_d"], 4)
(1.0, 10.0)
"""

import contextlib
import io
import os
import re
import shutil

_NOT_WORD = re.compile(r"[^\w\s']|_")


def java_available():
    """Whether a `java` program is on the PATH."""
    return shutil.which("java") is not None


def simple_tokenize(text):
    """Lower case, every punctuation character but the apostrophe made a
    space, split on white space; the tokens joined by single spaces.

    Example:
    >>> simple_tokenize("A dog, running (fast) on the grass.")
    'a dog running fast on the grass'
    """
    return " ".join(_NOT_WORD.sub(" ", str(text).lower()).split())


def _tokenize(references, candidates, use_java):
    if use_java:
        from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

        tokenizer = PTBTokenizer()
        with contextlib.redirect_stdout(io.StringIO()):
            refs = tokenizer.tokenize(
                {k: [{"caption": c} for c in v] for k, v in references.items()}
            )
            cands = tokenizer.tokenize(
                {k: [{"caption": c}] for k, c in candidates.items()}
            )
        return refs, cands
    refs = {k: [simple_tokenize(c) for c in v] for k, v in references.items()}
    cands = {k: [simple_tokenize(c)] for k, c in candidates.items()}
    return refs, cands


def _spice_models_present():
    import pycocoevalcap.spice as spice

    folder = os.path.join(os.path.dirname(spice.__file__), "lib")
    return os.path.isfile(os.path.join(folder, "stanford-corenlp-3.6.0.jar"))


def _java_scores(refs, cands, notes):
    from pycocoevalcap.meteor.meteor import Meteor

    scores = {}
    meteor = Meteor()
    scores["meteor"] = float(meteor.compute_score(refs, cands)[0])
    del meteor
    notes.append("METEOR from pycocoevalcap (java)")
    if _spice_models_present():
        from pycocoevalcap.spice.spice import Spice

        scores["spice"] = float(Spice().compute_score(refs, cands)[0])
        notes.append("SPICE from pycocoevalcap (java)")
    else:
        notes.append(
            "SPICE skipped: the Stanford CoreNLP models it needs "
            "are not in pycocoevalcap/spice/lib"
        )
    return scores


def caption_metrics(references, candidates, use_java=None, java_metrics=True):
    """BLEU-1..4 and CIDEr-D (and with Java METEOR, SPICE) of captions.

    Args:
        references: `{image_id: [reference captions]}`.
        candidates: `{image_id: predicted caption}`, the same keys.
        use_java: PTB tokenizer and the Java metrics; `None` (default)
            uses them when `java` is on the PATH.
        java_metrics: with Java, also METEOR (and SPICE); `False` keeps
            the PTB tokenizer only (METEOR loads for ~20 s).

    Returns:
        `(scores, notes)`: `{"bleu_1", ..., "bleu_4", "cider_d"}` (plus
        `"meteor"`, `"spice"`), each a corpus score as `pycocoevalcap`
        computes it (papers report them x 100), and a list of strings
        saying which tokenizer and scorers ran.
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    if set(references) != set(candidates):
        raise ValueError(
            "`references` and `candidates` must have the same image ids; "
            f"only in references: {sorted(set(references) - set(candidates))[:5]}, "
            f"only in candidates: {sorted(set(candidates) - set(references))[:5]}"
        )
    empty = [k for k, v in references.items() if not v]
    if empty:
        raise ValueError(f"Images {empty[:5]} have no reference caption.")
    use_java = java_available() if use_java is None else bool(use_java)
    refs, cands = _tokenize(references, candidates, use_java)
    notes = [
        "tokenizer: Stanford PTBTokenizer (java)"
        if use_java
        else "tokenizer: simple_tokenize (no java: lower case, punctuation "
        "removed); METEOR and SPICE skipped"
    ]
    bleu, _ = Bleu(4).compute_score(refs, cands, verbose=0)
    scores = {f"bleu_{n + 1}": float(b) for n, b in enumerate(bleu)}
    scores["cider_d"] = float(Cider().compute_score(refs, cands)[0])
    if use_java and java_metrics:
        scores.update(_java_scores(refs, cands, notes))
    return scores, notes
