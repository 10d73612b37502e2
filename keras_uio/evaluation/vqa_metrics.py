"""VQA accuracy, with the answer normalisation of the VQA evaluation.

The VQA benchmark (Antol et al. 2015; Goyal et al. 2017 for v2) scores an
answer against the 10 answers human annotators gave: an answer is right
as far as at least 3 humans agree, `min(#humans who said it / 3, 1)`,
averaged over the 10 ways to leave one annotator out (so that a machine
is scored as one human is against the other nine).

Before comparing, predicted and human answers are normalised by the
rules the VQA evaluation page describes (implemented here from that
description):

1. lower case (and newlines / tabs to spaces);
2. periods removed, except in decimals (a period followed by a digit);
3. a comma between digits removed ("100,978" -> "100978");
4. every other punctuation character except the apostrophe and the
   colon replaced by a space (the colon keeps times such as "2:20");
5. number words zero to ten (and "none") written as digits;
6. the articles "a", "an" and "the" removed;
7. a missing apostrophe put back in a contraction ("dont" -> "don't").

The official script (`vqaEval.py`) only normalises a question's answers
when its annotators disagree; `vqa_accuracy(..., always_normalize=False)`
does the same (it differs only where all 10 humans wrote the same string
and the prediction differs from it by case or punctuation). Its
punctuation list also leaves a few symbols (`#$%&*^|~`) alone that rule
4 replaces here.

Example:
>>> normalize_answer("Two dogs.")
'2 dogs'
>>> vqa_accuracy("yes", ["yes"] * 3 + ["no"] * 7)
0.9
"""

import re
import string

NUMBER_WORDS = {
    "none": "0",
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
}
ARTICLES = frozenset(("a", "an", "the"))


def _contractions():
    """`{written without apostrophe: with it}`; forms that are English words
    without the apostrophe ("its", "well", "were", "ill", "shell", ...)
    are left out."""
    table = {}
    negated = (
        "are",
        "could",
        "did",
        "does",
        "do",
        "had",
        "has",
        "have",
        "is",
        "might",
        "must",
        "need",
        "should",
        "was",
        "were",
        "would",
        "ai",
        "ca",
        "wo",
        "sha",
    )
    for base in negated:
        table[f"{base}nt"] = f"{base}n't"
    for base in ("could", "would", "should", "might", "must"):
        table[f"{base}ntve"] = f"{base}n't've"
        table[f"{base}ve"] = f"{base}'ve"
    suffixes = {
        "m": ("i",),
        "re": ("you", "they", "what", "who"),
        "ve": ("i", "you", "we", "they", "who", "what"),
        "ll": ("you", "they", "it", "that", "there", "who", "what"),
        "d": ("you", "they", "he", "it", "that", "there", "who", "what"),
        "s": (
            "he",
            "she",
            "that",
            "there",
            "what",
            "where",
            "who",
            "how",
            "here",
            "somebody",
            "someone",
            "nobody",
            "everyone",
        ),
    }
    for suffix, bases in suffixes.items():
        for base in bases:
            table[f"{base}{suffix}"] = f"{base}'{suffix}"
    table.update({"yall": "y'all", "maam": "ma'am", "oclock": "o'clock"})
    return table


CONTRACTIONS = _contractions()
_PERIOD = re.compile(r"\.(?!\d)")
_DIGIT_COMMA = re.compile(r"(?<=\d),(?=\d)")
_PUNCTUATION = re.compile(
    "[" + re.escape("".join(c for c in string.punctuation if c not in "':.")) + "]"
)


def normalize_answer(answer):
    """An answer in the VQA evaluation's normal form (see the module doc).

    Example:
    >>> [normalize_answer(a) for a in ("Two", "the dog.", "isnt", "2.5",
    ...                                "hot-dog", "100,978", "2:20 PM")]
    ['2', 'dog', "isn't", '2.5', 'hot dog', '100978', '2:20 pm']
    """
    text = str(answer).replace("\n", " ").replace("\t", " ").strip().lower()
    text = _DIGIT_COMMA.sub("", text)
    text = _PERIOD.sub("", text)
    text = _PUNCTUATION.sub(" ", text)
    words = []
    for word in text.split():
        word = NUMBER_WORDS.get(word, word)
        if word not in ARTICLES:
            words.append(CONTRACTIONS.get(word, word))
    return " ".join(words)


def vqa_accuracy(answer, human_answers, always_normalize=True):
    """The VQA accuracy of one answer against the humans' answers.

    Args:
        answer: the predicted answer.
        human_answers: the annotators' answers (10 in VQA v2).
        always_normalize: normalise every answer; `False` normalises only
            when the annotators disagree, as the official script does.

    Returns:
        the mean over the leave-one-annotator-out subsets of
        `min(#matches in the subset / 3, 1)`, in [0, 1]. With a single
        human answer: 1.0 on a match, else 0.0.

    Example:
    >>> humans = ["2"] * 2 + ["3"] * 8
    >>> vqa_accuracy("two", humans), vqa_accuracy("3", humans)
    (0.6, 1.0)
    """
    humans = [
        str(a).replace("\n", " ").replace("\t", " ").strip() for a in human_answers
    ]
    if not humans:
        raise ValueError(
            "`human_answers` is empty: VQA accuracy needs at least one human answer."
        )
    predicted = str(answer).replace("\n", " ").replace("\t", " ").strip()
    if always_normalize or len(set(humans)) > 1:
        humans = [normalize_answer(a) for a in humans]
        predicted = normalize_answer(predicted)
    matches = sum(h == predicted for h in humans)
    if len(humans) == 1:
        return float(matches)
    total = 0.0
    for human in humans:
        others = matches - (human == predicted)
        total += min(others / 3.0, 1.0)
    return round(total / len(humans), 10)
