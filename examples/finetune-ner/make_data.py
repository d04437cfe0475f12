"""Generate the CoNLL-2003-style NER dataset shipped with this example (deterministic).

Sentences about people (PER), organisations (ORG), locations (LOC) and miscellaneous names (MISC:
events, nationalities, products) with BIO tags, one ``TOKEN POS CHUNK TAG`` line per token and a
blank line between sentences, as in CoNLL-2003. Multi-word names get ``B-``/``I-`` tags; the same
word can be an ORG or a LOC depending on context ("Jordan" the person, "Jordan" the country).

    python make_data.py            # writes data/train.conll (1,500 sentences) and data/test.conll (300)
"""

from __future__ import annotations

import random
from pathlib import Path

SEED = 7
FIRST = ["Anna", "Carlos", "Mei", "Omar", "Sofia", "Lars", "Priya", "Kofi", "Elena", "Jordan", "Hiro", "Fatima",
         "Tomas", "Grace", "Ivan", "Amara"]
LAST = ["Schmidt", "Okafor", "Tanaka", "Silva", "Novak", "Haddad", "Lindqvist", "Mensah", "Rossi", "Kowalski",
        "Nguyen", "Brennan"]
ORGS = [["Siemens"], ["Reuters"], ["Toyota"], ["the", "United", "Nations"], ["Deutsche", "Bank"], ["Ajax"],
        ["Microsoft"], ["Real", "Madrid"], ["Greenpeace"], ["the", "World", "Bank"], ["Nokia"], ["Unilever"]]
LOCS = [["Paris"], ["Nairobi"], ["Jordan"], ["Brazil"], ["New", "York"], ["Lake", "Geneva"], ["Osaka"],
        ["the", "Alps"], ["Lisbon"], ["Cape", "Town"], ["Vietnam"], ["Oslo"]]
MISC = [["Olympics"], ["German"], ["World", "Cup"], ["Nobel", "Prize"], ["Japanese"], ["Brexit"],
        ["Champions", "League"], ["Euro"], ["Kenyan"], ["Tour", "de", "France"]]
# Names that appear only in the test set: the model must generalise from context, not memorise names.
TEST_ONLY = {
    "FIRST": ["Ingrid", "Tunde", "Yuki", "Rafael"], "LAST": ["Moreau", "Adeyemi", "Park", "Eriksen"],
    "ORG": [["Philips"], ["Airbus"], ["Barclays"]], "LOC": [["Quito"], ["Tasmania"], ["Rabat"]],
    "MISC": [["Paralympics"], ["Brazilian"], ["Grammy", "Award"]],
}
TEMPLATES = [
    "{PER} joined {ORG} in {LOC} last year .",
    "{ORG} opened a new office in {LOC} .",
    "{PER} won the {MISC} for the second time .",
    "The {MISC} team met {PER} at {ORG} headquarters .",
    "{PER} told reporters in {LOC} that {ORG} would grow .",
    "Shares of {ORG} fell after the {MISC} announcement .",
    "{PER} and {PER} travelled from {LOC} to {LOC} .",
    "A {MISC} delegation visited {LOC} on Monday .",
    "{ORG} hired {PER} as chief economist .",
    "Rain delayed the {MISC} final in {LOC} .",
    "{PER} , a {MISC} engineer , works for {ORG} .",
    "Officials in {LOC} praised {ORG} and {PER} .",
]


def _entity(rng: random.Random, kind: str, test: bool) -> list[str]:
    extra = TEST_ONLY if test else {}
    if kind == "PER":
        first = FIRST + extra.get("FIRST", [])
        last = LAST + extra.get("LAST", [])
        return [rng.choice(first), rng.choice(last)] if rng.random() < 0.7 else [rng.choice(last)]
    return list(rng.choice({"ORG": ORGS, "LOC": LOCS, "MISC": MISC}[kind] + extra.get(kind, [])))


def sentence(rng: random.Random, test: bool = False) -> list[tuple[str, str]]:
    """One sentence as ``(token, BIO tag)`` pairs (``test``: also draw names never seen in training)."""
    out: list[tuple[str, str]] = []
    for piece in rng.choice(TEMPLATES).split():
        if piece.startswith("{") and piece.endswith("}"):
            kind = piece[1:-1]
            words = _entity(rng, kind, test)
            for i, word in enumerate(words):
                if word == "the" and i == 0:  # "the" before a name is not part of it in CoNLL
                    out.append((word, "O"))
                    continue
                inside = any(tag.endswith(kind) for _, tag in out[-1:]) and i > 0 and out[-1][1] != "O"
                out.append((word, f"{'I' if inside else 'B'}-{kind}"))
        else:
            out.append((piece, "O"))
    return out


def write(path: Path, sentences: list[list[tuple[str, str]]]) -> None:
    """CoNLL-2003 layout: ``TOKEN POS CHUNK TAG`` (POS/CHUNK are placeholders), blank line between sentences."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        handle.write("-DOCSTART- -X- -X- O\n\n")
        for sent in sentences:
            for token, tag in sent:
                handle.write(f"{token} NN O {tag}\n")
            handle.write("\n")


def main() -> None:
    """Write data/train.conll and data/test.conll next to this script."""
    rng = random.Random(SEED)
    train = [sentence(rng) for _ in range(1500)]
    test = [sentence(rng, test=True) for _ in range(300)]
    here = Path(__file__).resolve().parent
    write(here / "data" / "train.conll", train)
    write(here / "data" / "test.conll", test)
    print(f"wrote 1500 training and 300 test sentences to {here / 'data'}")


if __name__ == "__main__":
    main()
