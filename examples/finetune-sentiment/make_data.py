"""Generate the sentiment dataset shipped with this example (deterministic: same seed, same files).

Reviews of films, restaurants, hotels, gadgets and books, built from templates with negation
("not bad"), contrast ("the plot drags, but the acting is superb": the clause after "but" decides),
intensifiers, hedges and neutral filler. No single word decides the label: "good" appears in
negative reviews ("not good", "good ... but awful") and "bad" in positive ones ("not bad at all").
4% of the labels are flipped, like annotator mistakes, so about 96% is the best possible accuracy.

    python make_data.py            # writes data/train.csv (2,400 rows) and data/test.csv (600 rows)
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

SEED = 20240521
NOISE = 0.04  # share of flipped labels: the best possible accuracy is about 96%
DOMAINS = {
    "film": (["the plot", "the acting", "the soundtrack", "the ending", "the dialogue", "the pacing", "the cast"],
             ["this film", "the movie", "this sequel", "the documentary"]),
    "restaurant": (["the food", "the service", "the dessert", "the wine list", "the staff", "the pasta"],
                   ["this restaurant", "the bistro", "this place", "the cafe"]),
    "hotel": (["the room", "the breakfast", "the location", "the front desk", "the pool", "the bed"],
              ["this hotel", "the resort", "the guesthouse", "our stay"]),
    "gadget": (["the battery", "the screen", "the camera", "the build quality", "the charger", "the app"],
               ["this phone", "the laptop", "these headphones", "the tablet"]),
    "book": (["the writing", "the characters", "the plot twist", "the translation", "the last chapter"],
             ["this novel", "the book", "this memoir", "the series"]),
}
POSITIVE = ["good", "great", "superb", "delightful", "excellent", "charming", "wonderful", "solid", "brilliant",
            "lovely", "impressive", "enjoyable", "fantastic", "pleasant", "outstanding"]
NEGATIVE = ["bad", "awful", "dull", "terrible", "disappointing", "mediocre", "poor", "boring", "clumsy",
            "dreadful", "sloppy", "forgettable", "annoying", "bland", "frustrating"]
INTENSIFIERS = ["", "", "really ", "truly ", "quite ", "very ", "remarkably ", "rather "]
FILLER = ["", "", "", "honestly, ", "to be fair, ", "overall, ", "in the end, ", "frankly, ", "as expected, "]
VERBS = ["was", "is", "felt", "seemed", "turned out to be"]
RECOMMEND_POS = ["i would go back", "i would recommend it", "worth every penny", "i want more",
                 "i would buy it again", "five stars from me"]
RECOMMEND_NEG = ["i would not go back", "i would not recommend it", "not worth the money", "never again",
                 "i want a refund", "one star from me"]


def _clause(rng: random.Random, aspect: str, positive: bool) -> str:
    """A clause about ``aspect`` with the given polarity, sometimes through negation."""
    verb = rng.choice(VERBS)
    if rng.random() < 0.3:  # negated opposite word: "was not bad" is positive
        word = rng.choice(NEGATIVE if positive else POSITIVE)
        return f"{aspect} {verb} not {word}" + (" at all" if rng.random() < 0.3 else "")
    word = rng.choice(POSITIVE if positive else NEGATIVE)
    return f"{aspect} {verb} {rng.choice(INTENSIFIERS)}{word}"


def review(rng: random.Random) -> tuple[str, str]:
    """One review and its label (``positive`` / ``negative``)."""
    aspects, subjects = DOMAINS[rng.choice(sorted(DOMAINS))]
    positive = rng.random() < 0.5
    style = rng.random()
    if style < 0.35:  # contrast: the clause after "but" decides
        first, second = rng.sample(aspects, 2)
        text = f"{_clause(rng, first, not positive)}, but {_clause(rng, second, positive)}"
    elif style < 0.6:  # two clauses agreeing
        first, second = rng.sample(aspects, 2)
        text = f"{_clause(rng, first, positive)} and {_clause(rng, second, positive)}"
    elif style < 0.8:  # verdict on the whole thing
        verdict = rng.choice(RECOMMEND_POS if positive else RECOMMEND_NEG)
        text = f"{_clause(rng, rng.choice(subjects), positive)}; {verdict}"
    else:  # a single aspect with a hedge
        hedge = rng.choice(["although i expected more", "despite the hype", "for the price", "to my surprise"])
        text = f"{hedge}, {_clause(rng, rng.choice(aspects), positive)}"
    text = rng.choice(FILLER) + text + rng.choice([".", ".", "!", ""])
    return text[0].upper() + text[1:], "positive" if positive else "negative"


def generate(count: int, seed: int, noise: float = NOISE) -> list[tuple[str, str]]:
    """``count`` distinct reviews; a ``noise`` share of labels is flipped, as in real annotations."""
    rng = random.Random(seed)
    flips = random.Random(seed + 1)
    seen: set[str] = set()
    rows = []
    while len(rows) < count:
        text, label = review(rng)
        if text not in seen:
            seen.add(text)
            if flips.random() < noise:
                label = "negative" if label == "positive" else "positive"
            rows.append((text, label))
    return rows


def write(path: Path, rows: list[tuple[str, str]]) -> None:
    """Write ``rows`` as a ``text,label`` CSV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["text", "label"])
        writer.writerows(rows)


def main() -> None:
    """Write data/train.csv and data/test.csv next to this script."""
    rows = generate(3000, SEED)
    here = Path(__file__).resolve().parent
    write(here / "data" / "train.csv", rows[:2400])
    write(here / "data" / "test.csv", rows[2400:])
    print(f"wrote {len(rows[:2400])} training and {len(rows[2400:])} test reviews to {here / 'data'}")


if __name__ == "__main__":
    main()
