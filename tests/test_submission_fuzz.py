"""Mutated submissions: every change to a valid entry is refused cleanly or provably harmless.

Hypothesis mutates a copy of the committed oracle entry (its four embedded-suite files, card and gallery): JSON
and YAML values (numbers to strings, NaN, infinities, huge or negative numbers; lists cut or grown; keys deleted,
renamed or added; types swapped; values nested), raw bytes, file names, missing and extra files. `validate` must
then either raise `SubmissionError` naming a file of the entry (never another exception, never a hang), or pass
with the leaderboard showing exactly the original's numbers. The counts are published through `reliability_tally`.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import io
import json
import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fnmatch import fnmatch
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import cxrbench.validate
from cxrbench.errors import SubmissionError
from cxrbench.leaderboard.table import build_table, read_board, seed_scores
from cxrbench.samples import split_hash
from cxrbench.submission import decode_predictions, encode_predictions
from cxrbench.validate import validate

from .test_submissions import ENTRY, SUBMISSIONS, pytestmark, without_quality  # noqa: F401 - the same skip

CLOSEST_PAIRS = "*__closest_pairs.png"
"""Quality's figures: left out of the copied entry with the quality they show."""
TASK_FILES = tuple(sorted(p.name for p in (SUBMISSIONS / ENTRY).glob("embedded__*.json")))
CARD = "generator.yaml"
SHOWN = ["suite", "task", "regime", "n_real", "metric", "generator", "role", "ratio", "reference", "delta", "verdict",
         "ci_low", "ci_high", "p", "p_holm", "p_bonferroni", "mde", "t_ci_low", "t_ci_high", "boot_ci_low",
         "boot_ci_high", "p_t_greater", "reference_score", "arm_score", "arm_std", "n_seeds", "verification", "ranked"]
"""The board's numbers and what names them; the card's and file's declared text (date, revisions, conditioning)
is the submitter's to write."""
TIME_LIMIT_SECONDS = 120
FUZZ = settings(deadline=None, derandomize=True, database=None, print_blob=False,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.large_base_example])


# ---- the entry --------------------------------------------------------------------------------------------------

def _copy_entry(board: Path) -> Path:
    """The committed entry's embedded task files and card, without quality (tests/test_quality_submissions.py fuzzes
    none of it: each example would recompute it)."""
    folder = board / ENTRY
    folder.mkdir(parents=True)
    shutil.copy(SUBMISSIONS / ENTRY / CARD, folder / CARD)
    for name in TASK_FILES:
        (folder / name).write_text(json.dumps(_document(name), indent=1, ensure_ascii=False))
    shutil.copytree(SUBMISSIONS / ENTRY / "gallery", folder / "gallery", ignore=shutil.ignore_patterns(CLOSEST_PAIRS))
    return folder


@cache
def _document(name: str) -> Any:
    text = (SUBMISSIONS / ENTRY / name).read_text()
    return yaml.safe_load(text) if name == CARD else without_quality(json.loads(text))


def _shown(board: Path) -> str:
    """What the leaderboard shows of the board's numbers, and which entries it refuses."""
    read = read_board(board)
    table = build_table(read.entries)
    shown = {"rows": table[SHOWN].to_dict("records") if len(table) else [],
             "seeds": [seed_scores(entry).to_dict("records") for entry in read.entries],
             "refused": sorted(read.refused)}
    return json.dumps(shown, sort_keys=True, default=str)


@cache
def _original_shown() -> str:
    with tempfile.TemporaryDirectory() as board:
        folder = _copy_entry(Path(board))
        validate([folder])
        return _shown(Path(board))


# ---- mutations --------------------------------------------------------------------------------------------------

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Mutation:
    """One change to one file of the entry; `apply` makes it on a copy."""

    file: str
    op: str
    path: Path_ = ()
    value: Any = None

    def target(self, folder: Path) -> Path:
        """The file a refusal must name (or the entry's folder)."""
        if self.op in ("rename_file", "copy_file", "extra_file"):
            return folder / self.value[0] if isinstance(self.value, tuple) else folder / self.value
        return folder / self.file

    def apply(self, folder: Path) -> None:
        path = folder / self.file
        if self.op in ("rename_file", "copy_file", "extra_file"):
            self.target(folder).parent.mkdir(parents=True, exist_ok=True)
        if self.op == "delete_file":
            path.unlink()
        elif self.op == "rename_file":
            path.rename(folder / self.value)
        elif self.op == "copy_file":
            shutil.copy(path, folder / self.value)
        elif self.op == "extra_file":
            (folder / self.value[0]).write_bytes(self.value[1])
        elif self.op == "cut_bytes":
            path.write_bytes(path.read_bytes()[: self.value])
        elif self.op == "insert_bytes":
            at, inserted = self.value
            data = path.read_bytes()
            path.write_bytes(data[:at] + inserted + data[at:])
        else:
            document = _changed(copy.deepcopy(_document(self.file)), self)
            path.write_text(_serialised(self.file, document, self.op == "reformat" and self.value))

    def __repr__(self) -> str:  # the failing example, ready to paste into an @example
        return f"Mutation({self.file!r}, {self.op!r}, {self.path!r}, {self.value!r})"


def _serialised(name: str, document: Any, style: int | None) -> str:
    if name == CARD:
        return yaml.safe_dump(document, sort_keys=bool(style), default_flow_style=style == 2, allow_unicode=True)
    return json.dumps(document, indent=style or None, sort_keys=bool(style))


def _changed(document: Any, mutation: Mutation) -> Any:
    """The document with the node at `mutation.path` changed by `mutation.op`."""
    if mutation.op == "reformat":
        return document
    *parents, last = mutation.path if mutation.path else (None,)
    holder = document
    for key in parents:
        holder = holder[key]
    node = document if last is None else holder[last]
    op, value = mutation.op, mutation.value
    if op == "delete":
        del holder[last]
        return document
    if op == "rename":
        holder[value] = holder.pop(last)
        return document
    if op == "add":
        node[value[0]] = value[1]
    elif op == "append":
        node.append(value)
    new = {"replace": lambda: value, "cut": lambda: node[:value], "wrap": lambda: [node], "nest": lambda: {value: node},
           "scale": lambda: node * value, "negate": lambda: -node, "as_text": lambda: str(node),
           "add": lambda: node, "append": lambda: node, "array": lambda: _with_array_changed(node, *value)}[op]()
    if last is None:
        return new
    holder[last] = new
    return document


ARRAY_CHANGES = {
    "0-d": lambda a: np.asarray(a.ravel()[0]),
    "one more column": lambda a: np.concatenate([a, a[:, :1]], axis=1) if a.ndim > 1 else np.stack([a, a], axis=1),
    "one column less": lambda a: a[:, :-1] if a.ndim > 1 else a[:, None][:, :0],
    "flattened": lambda a: a.reshape(-1),
    "one more axis": lambda a: a[..., None],
    "one row less": lambda a: a[:-1],
    "as text": lambda a: a.astype(str),
    "as complex": lambda a: a.astype(complex),
    "as dates": lambda a: np.zeros(a.shape, dtype="datetime64[s]"),
    "as records": lambda a: np.zeros(len(a) if a.ndim else 1, dtype=[("x", "f4")]),
    "negated": lambda a: ~a if a.dtype == bool else -a,
    "all zero": np.zeros_like,
    "removed": lambda a: None,
}
"""Changes to one array inside the predictions blob: wrong shapes, types and values the scoring code must not
trip over."""


def _with_array_changed(blob: str, key: str, change: str) -> str:
    arrays = decode_predictions(blob)
    changed = ARRAY_CHANGES[change](arrays.pop(key))
    return encode_predictions(arrays if changed is None else {**arrays, key: changed})


@cache
def _array_keys(name: str) -> list[str]:
    return sorted(decode_predictions(_document(name)["predictions"]))


JSON_LEAVES = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats()
               | st.sampled_from([10**400, -1, 0, 1e308, 5e-324]) | st.text(max_size=12))
JSON_VALUES = st.recursive(JSON_LEAVES, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6)
KEYS = st.sampled_from(["", "extra", "x" * 64, "schema_version", "Name", "__proto__", "0", "é"]) | st.text(max_size=8)


@st.composite
def node_paths(draw, name: str) -> Path_:
    """A path into the document: a random depth, a random child at each level."""
    node, path = _document(name), []
    for _ in range(draw(st.integers(0, 7))):
        if isinstance(node, dict) and node:
            key = draw(st.sampled_from(list(node)))
        elif isinstance(node, list) and node:
            key = draw(st.integers(0, len(node) - 1))
        else:
            break
        path.append(key)
        node = node[key]
    return tuple(path)


def _node(name: str, path: Path_) -> Any:
    node = _document(name)
    for key in path:
        node = node[key]
    return node


@st.composite
def value_mutations(draw, files: tuple[str, ...] = (*TASK_FILES, CARD)) -> Mutation:
    """A change to one value of one file's parsed document, written back as JSON or YAML."""
    name = draw(st.sampled_from(files))
    if name != CARD and draw(st.sampled_from(["tree"] * 4 + ["array"])) == "array":
        return Mutation(name, "array", ("predictions",), (draw(st.sampled_from(_array_keys(name))),
                                                          draw(st.sampled_from(list(ARRAY_CHANGES)))))
    path = draw(node_paths(name))
    node = _node(name, path)
    ops = ["replace", "wrap", "nest"] + (["delete"] if path else [])
    if path and isinstance(path[-1], str):
        ops.append("rename")
    if isinstance(node, (int, float)) and not isinstance(node, bool):
        ops += ["scale", "negate", "as_text"]
    if isinstance(node, (list, str)):
        ops += ["cut", "append"] if isinstance(node, list) else ["cut"]
    if isinstance(node, dict):
        ops.append("add")
    op = draw(st.sampled_from(ops))
    value = {
        "replace": lambda: draw(JSON_VALUES),
        "rename": lambda: draw(KEYS),
        "nest": lambda: draw(KEYS),
        "scale": lambda: draw(st.sampled_from([2, 1e300, float("inf"), float("nan"), 10**30, 0.5, 0])),
        "cut": lambda: draw(st.integers(0, max(len(node) - 1, 0))),
        "append": lambda: draw(st.sampled_from(node) if node and draw(st.booleans()) else JSON_VALUES),
        "add": lambda: (draw(KEYS), draw(JSON_VALUES)),
    }.get(op, lambda: None)()
    return Mutation(name, op, path, value)


OTHER_NAMES = st.sampled_from([
    "embedded__phantom_cls__huge.json", "embedded__phantom_seg__scarce.JSON", "open__phantom_cls__scarce.json",
    "embedded__phantom_cls__scarce.json.bak", ".embedded__phantom_cls__full.json", "x__y.json", "__.json",
    "generator.yml", "Generator.yaml", "notes.txt", "gallery/extra.png", "sub/embedded__phantom_cls__full.json",
    "embedded__phantom_cls__full__copy.json"])
CONTENTS = st.sampled_from([b"", b"{}", b"[]", b"null", b"\xff\xfe", b"name: oracle\n", b"\x89PNG\r\n\x1a\n"]) \
    | st.binary(max_size=64)


@st.composite
def file_mutations(draw) -> Mutation:
    """A change to the entry's files: bytes cut or inserted, a file deleted, renamed, copied, or one added."""
    gallery = sorted(f"gallery/{p.name}" for p in (SUBMISSIONS / ENTRY / "gallery").iterdir()
                     if not fnmatch(p.name, CLOSEST_PAIRS))
    name = draw(st.sampled_from([*TASK_FILES, CARD, *gallery]))
    size = (SUBMISSIONS / ENTRY / name).stat().st_size
    op = draw(st.sampled_from(["cut_bytes", "insert_bytes", "delete_file", "rename_file", "copy_file",
                               "extra_file"]))
    value = {
        "cut_bytes": lambda: draw(st.integers(0, size - 1)),
        "insert_bytes": lambda: (draw(st.integers(0, size)), draw(CONTENTS.filter(bool))),
        "rename_file": lambda: draw(OTHER_NAMES),
        "copy_file": lambda: draw(OTHER_NAMES),
        "extra_file": lambda: (draw(OTHER_NAMES), draw(CONTENTS)),
    }.get(op, lambda: None)()
    return Mutation(name, op, (), value)


# ---- the property -----------------------------------------------------------------------------------------------

@contextmanager
def _time_limit(seconds: int) -> Iterator[None]:
    def hung(signum, frame):
        raise TimeoutError(f"validate ran over {seconds} s")
    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _outcome(mutation: Mutation) -> str:
    """'refused' or 'harmless'; anything else fails the test with the mutation."""
    with tempfile.TemporaryDirectory() as board:
        folder = _copy_entry(Path(board))
        mutation.apply(folder)
        try:
            with _time_limit(TIME_LIMIT_SECONDS):
                validate([folder])
        except SubmissionError as error:
            files = [Path(file) for file, _, _ in error.problems]
            assert files and all(f == folder or folder in f.parents for f in files), error
            changed = {mutation.target(folder), folder / mutation.file}  # a renamed file: either name
            named = (changed | {folder}) & set(files) or any(str(p.relative_to(folder)) in str(error) for p in changed)
            assert named, f"{mutation}: no problem names {' or '.join(map(str, changed))}:\n{error}"
            return "refused"
        assert _shown(Path(board)) == _original_shown(), f"{mutation} validates but changes the board"
        return "harmless"


def _fingerprint(tasks, n_boot: int) -> str:
    """Everything `score_predictions` reads, hashed: equal fingerprints score to equal numbers."""
    digest = hashlib.sha256(repr(n_boot).encode())
    for item in tasks:
        digest.update(repr((item.task.meta.model_dump_json(), item.regime, split_hash(item.splits))).encode())
        for group in ([item.baseline], item.arms, item.references):
            digest.update(b"|group")
            for arm in group:
                digest.update(repr((arm.meta.model_dump_json(), arm.revision, arm.ratio, arm.n_synthetic)).encode())
                for seed, cell, predictions in arm.seeds:
                    digest.update(repr((seed, cell, sorted(predictions))).encode())
                    for name in sorted(predictions):
                        array = np.ascontiguousarray(predictions[name])
                        digest.update(f"{array.dtype.str}{array.shape}".encode() + array.tobytes())
    return digest.hexdigest()


@pytest.fixture(scope="module", autouse=True)
def _score_each_family_once():
    """Scoring is a pure function of its inputs (tests/test_runner.py checks it reproduces); most mutations leave
    the predictions alone, so the seconds of bootstrap per recomputation are spent once per distinct input."""
    score = cxrbench.validate.score_predictions
    scored: dict[str, Any] = {}

    def once(tasks, *, n_boot):
        key = _fingerprint(tasks, n_boot)
        if key not in scored:
            scored[key] = score(tasks, n_boot=n_boot)
        return copy.deepcopy(scored[key])

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cxrbench.validate, "score_predictions", once)
        yield


def _check(mutation: Mutation, tally) -> None:
    outcome = _outcome(mutation)
    tally(mutations_tried=1, **{f"mutations_{outcome}": 1})


@pytest.mark.reliability("hostile_file")
@settings(FUZZ, max_examples=110)
@given(mutation=value_mutations(TASK_FILES))
@example(mutation=Mutation("embedded__phantom_cls__scarce.json", "cut", ("predictions",), 4000))  # BadZipFile
@example(mutation=Mutation("embedded__phantom_cls__full.json", "array", ("predictions",),
                           ("oracle|1|0|test_prob", "0-d")))  # TypeError: len() of unsized object
@example(mutation=Mutation("embedded__phantom_seg__full.json", "array", ("predictions",),
                           ("oracle|2|0|test_mask", "one more column")))  # RuntimeError from torch
def test_a_mutated_task_file_is_refused_or_harmless(mutation, reliability_tally):
    _check(mutation, reliability_tally)


@pytest.mark.reliability("hostile_file")
@settings(FUZZ, max_examples=40)
@given(mutation=value_mutations((CARD,)))
def test_a_mutated_card_is_refused_or_harmless(mutation, reliability_tally):
    _check(mutation, reliability_tally)


@pytest.mark.reliability("hostile_file")
@settings(FUZZ, max_examples=40)
@given(mutation=file_mutations())
@example(mutation=Mutation("embedded__phantom_cls__full.json", "copy_file", (), "embedded__phantom_cls__huge.json"))
@example(mutation=Mutation("gallery/phantom_cls__full__cardiomegaly.png", "rename_file", (),
                           "embedded__phantom_seg__scarce.JSON"))
@example(mutation=Mutation(TASK_FILES[0], "rename_file", (), f"sub/{TASK_FILES[0]}"))
def test_mutated_bytes_and_file_names_are_refused_or_harmless(mutation, reliability_tally):
    _check(mutation, reliability_tally)


@pytest.mark.reliability("hostile_file")
@settings(FUZZ, max_examples=10)
@given(mutation=st.builds(Mutation, st.sampled_from([*TASK_FILES, CARD]), st.just("reformat"), st.just(()),
                          st.sampled_from([0, 1, 2, 3])))
def test_a_reformatted_entry_validates_and_shows_the_same_numbers(mutation, reliability_tally):
    """Key order, indentation and YAML style are provably harmless: they must not be refused either."""
    assert _outcome(mutation) == "harmless"
    reliability_tally(mutations_tried=1, mutations_harmless=1)


@pytest.mark.reliability("hostile_file")
def test_a_mask_claiming_more_pixels_than_it_stores_is_refused_before_any_allocation():
    """A few bytes of packed bits with a shape of 2**40 pixels: unpacking would allocate a terabyte of zeros."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{"oracle|2|0|test_mask#bits": np.zeros(1, np.uint8),
                                   "oracle|2|0|test_mask#shape": np.array([2**20, 2**20])})
    with pytest.raises(ValueError, match=r"claims shape \(1048576, 1048576\), more values than its 8 bits"):
        decode_predictions(base64.b64encode(buffer.getvalue()).decode())
