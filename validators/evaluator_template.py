"""Scores one submission CSV against the hidden answers of one task.

Copied verbatim into every task bundle as `prepared/public/evaluator.py` with `CONFIG` filled in,
so it must import nothing but the standard library and finish fast as a fresh process. The
factory imports the same module to score in-process, so a bundle and the factory can never
disagree on a score. Metric semantics follow scikit-learn.

CLI: `python evaluator.py --submission_path PATH` prints one JSON object on success (exit 0),
"invalid submission: <reason>" on stderr for a bad submission (exit 1), or an evaluator error
for a broken bundle (exit 2).

Trainers run it with no timeout, with their own privileges, on any path the agent passes, so it
defends itself:
- it opens only a regular file, never through a final symbolic link and never blocking
  (lstat, then O_NOFOLLOW | O_NONBLOCK, then fstat of the opened descriptor);
- it refuses the answers and every file in their folder, by device and inode (hard links) and
  by real path (symbolic links to a folder on the way);
- the answers are where ANSWERS says, never looked for in the working folder;
- it refuses a file larger than a submission of this task can need, or empty (as /proc's
  pseudo-files are), before reading it, and parses at most the header plus one row per test
  id, with linear-time checks;
- a non-finite or out-of-range value is an invalid submission naming its line and column;
- a message quotes file content only when the header is this task's, a few short column names
  when the file at least has the id column, and nothing otherwise.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import stat
import sys
from collections.abc import Callable, Sequence

CONFIG = None
# Where the answers are, relative to this file's folder: outside the agent-visible folder. The
# SandMLE export that keeps answer.csv beside this file (an explicit option) rewrites this line.
ANSWERS = "../private/answer.csv"

EPS = sys.float_info.epsilon  # sklearn clips probabilities to [eps, 1 - eps] of float64
THRESHOLD_KEYS = ("gold", "silver", "bronze", "median")
DIGITS = 5  # the score is reported at the precision MLE-bench compares at (sandforge.tiers)
MAX_VALUE = 1e100  # |prediction| bound: n_test squares of such values still sum to a float
QUOTE = 24  # the longest piece of submission content a message repeats
NAMES_QUOTED = 3  # at most this many column names per problem in a message
PRIVATE_FILES = 1000  # files of the answers' folder compared by inode (more: by path only)
SLACK = 65536  # bytes a submission may have beyond its expected size, twice over

Metric = Callable[[Sequence, Sequence], float]
Rows = Sequence[Sequence[float]]  # one row per test id, one value per target
Table = dict[str, tuple[int, dict[str, str]]]  # id -> (line, column -> raw cell)


class InvalidSubmission(ValueError):
    """The submission, not the task, is at fault: the agent can fix it and resubmit."""


# ---------------------------------------------------------------------------------------------
# Metrics. Label metrics take class indices, probability metrics 0/1 truths and P(class 1),
# multiclass_log_loss class indices and rows of class probabilities, value metrics numbers.
# Columnwise metrics take rows (one value per target) and average the per-column score.


def accuracy(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    return sum(t == p for t, p in zip(y_true, y_pred, strict=True)) / len(y_true)


def macro_f1(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """sklearn f1_score(average="macro") over the labels seen in either vector."""
    scores = []
    for label in set(y_true) | set(y_pred):
        tp = sum(t == label and p == label for t, p in zip(y_true, y_pred, strict=True))
        false = sum((t == label) != (p == label) for t, p in zip(y_true, y_pred, strict=True))
        scores.append(2 * tp / (2 * tp + false))
    return sum(scores) / len(scores)


def _average_ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks with ties sharing their mean rank, as scipy.stats.rankdata."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for i in order[start : end + 1]:
            ranks[i] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def roc_auc(y_true: Sequence[int], y_score: Sequence[float]) -> float:
    """Mann-Whitney form of the ROC AUC: a tied pair counts half, as in sklearn."""
    n_pos = sum(1 for t in y_true if t == 1)
    n_neg = len(y_true) - n_pos
    if not n_pos or not n_neg:
        raise ValueError("ROC AUC is undefined: the answers hold a single class")
    ranks = _average_ranks(y_score)
    rank_sum = sum(r for r, t in zip(ranks, y_true, strict=True) if t == 1)
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def multiclass_log_loss(y_true: Sequence[int], y_proba: Sequence[Sequence[float]]) -> float:
    """Clip to [eps, 1 - eps] like sklearn, then renormalise each row to sum to 1."""
    losses = []
    for t, row in zip(y_true, y_proba, strict=True):
        clipped = [min(max(p, EPS), 1 - EPS) for p in row]
        losses.append(-math.log(clipped[t] / sum(clipped)))
    return sum(losses) / len(losses)


def log_loss(y_true: Sequence[int], y_proba: Sequence[float]) -> float:
    return multiclass_log_loss(y_true, [[1 - p, p] for p in y_proba])


def quadratic_weighted_kappa(y_true: Sequence[int], y_pred: Sequence[int]) -> float:
    """cohen_kappa_score(weights="quadratic", labels=all classes) on ordinal indices.

    Weights use the distance between class indices, so a class absent from both vectors still
    counts as a step on the scale. Observed and chance disagreement reduce to means of squared
    index differences over matched pairs and over all pairs.
    """
    n = len(y_true)
    observed = sum((t - p) ** 2 for t, p in zip(y_true, y_pred, strict=True)) / n
    mean_t, mean_p = sum(y_true) / n, sum(y_pred) / n
    var_t = sum((t - mean_t) ** 2 for t in y_true) / n
    var_p = sum((p - mean_p) ** 2 for p in y_pred) / n
    expected = var_t + var_p + (mean_t - mean_p) ** 2
    if expected == 0:
        raise ValueError("quadratic weighted kappa is undefined: the answers hold a single class")
    return 1 - observed / expected


def rmse(y_true: Sequence[float], y_pred: Sequence[float]) -> float:
    return math.sqrt(sum((t - p) ** 2 for t, p in zip(y_true, y_pred, strict=True)) / len(y_true))


def mae(y_true: Sequence[float], y_pred: Sequence[float]) -> float:
    return sum(abs(t - p) for t, p in zip(y_true, y_pred, strict=True)) / len(y_true)


def rmsle(y_true: Sequence[float], y_pred: Sequence[float]) -> float:
    if any(v < 0 for v in y_true) or any(v < 0 for v in y_pred):
        raise ValueError("rmsle needs non-negative values")
    return rmse([math.log1p(v) for v in y_true], [math.log1p(v) for v in y_pred])


def _columnwise(metric: Metric, y_true: Rows, y_pred: Rows) -> float:
    columns = list(zip(*y_true, strict=True))
    predicted = list(zip(*y_pred, strict=True))
    return sum(metric(t, p) for t, p in zip(columns, predicted, strict=True)) / len(columns)


def mean_columnwise_roc_auc(y_true: Rows, y_score: Rows) -> float:
    return _columnwise(roc_auc, y_true, y_score)


def mean_columnwise_rmse(y_true: Rows, y_pred: Rows) -> float:
    return _columnwise(rmse, y_true, y_pred)


def mean_columnwise_rmsle(y_true: Rows, y_pred: Rows) -> float:
    return _columnwise(rmsle, y_true, y_pred)


METRICS: dict[str, Metric] = {
    "accuracy": accuracy,
    "macro_f1": macro_f1,
    "roc_auc": roc_auc,
    "log_loss": log_loss,
    "multiclass_log_loss": multiclass_log_loss,
    "quadratic_weighted_kappa": quadratic_weighted_kappa,
    "rmse": rmse,
    "mae": mae,
    "rmsle": rmsle,
    "mean_columnwise_roc_auc": mean_columnwise_roc_auc,
    "mean_columnwise_rmse": mean_columnwise_rmse,
    "mean_columnwise_rmsle": mean_columnwise_rmsle,
}
# What one submission cell holds, per metric: the registry's (validators.metrics) submission
# kinds, copied because this file stands alone; tests hold the two to each other.
KINDS: dict[str, str] = {
    "accuracy": "label",
    "macro_f1": "label",
    "quadratic_weighted_kappa": "label",
    "roc_auc": "probability",
    "log_loss": "probability",
    "mean_columnwise_roc_auc": "probability",
    "multiclass_log_loss": "class_probabilities",
    "rmse": "value",
    "mae": "value",
    "rmsle": "value",
    "mean_columnwise_rmse": "value",
    "mean_columnwise_rmsle": "value",
}
COLUMNWISE = frozenset(name for name in METRICS if name.startswith("mean_columnwise_"))


# ---------------------------------------------------------------------------------------------
# Reading files. The answers are the task's own; the submission is hostile until proven a CSV
# of this task.


def _quote(text: str) -> str:
    """A piece of submission content, shortened, for a message."""
    return repr(text) if len(text) <= QUOTE else repr(text[:QUOTE]) + "..."


def _read_answers(path: str) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The answers' header and (line, cells) rows; any problem is the task's (ValueError)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            return _parse(csv.reader(handle), ValueError)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"cannot read the answers {path}: {exc}") from None


def _parse(
    reader, error: type[ValueError], expected: list[str] | None = None, max_rows: int = -1
) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and non-blank (line, cells) rows. With `expected`, the header is checked before
    any row is read, and more than `max_rows` rows stop the reading."""
    header: list[str] | None = None
    rows: list[tuple[int, list[str]]] = []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = row
            if expected is not None:
                _check_header(header, expected)
        elif len(rows) == max_rows:
            raise error(f"more data rows than the {max_rows} ids of the test set")
        else:
            rows.append((reader.line_num, row))
    if header is None:
        raise error("the file is empty (no header, no rows)")
    return header, rows


class Protected:
    """The answers and every file in their folder (when that is not the evaluator's own): a
    submission may be none of them, nor a link to one."""

    def __init__(self, answers: str, private: str | None = None):
        self.inodes: set[tuple[int, int]] = set()
        self.paths = {os.path.realpath(answers)}
        self.folders: list[str] = []
        self._add(answers)
        if private is not None and os.path.isdir(private):
            self.folders.append(os.path.realpath(private))
            seen = 0
            for folder, _, files in os.walk(private):
                for name in files:
                    seen += 1
                    if seen > PRIVATE_FILES:
                        return
                    self._add(os.path.join(folder, name))

    def _add(self, path: str) -> None:
        try:
            info = os.stat(path)
        except OSError:
            return
        self.inodes.add((info.st_dev, info.st_ino))

    def check(self, path: str, info: os.stat_result) -> None:
        """Refuse the submission at `path` whose stat (lstat or fstat) is `info`."""
        real = os.path.realpath(path)
        inside = any(real == f or real.startswith(f.rstrip(os.sep) + os.sep) for f in self.folders)
        if (info.st_dev, info.st_ino) in self.inodes or real in self.paths or inside:
            raise InvalidSubmission(
                "the submission is the task's hidden answers or a file beside them (or a link "
                "to one); submit a file of your own predictions"
            )


def _kind(mode: int) -> str:
    kinds = {
        stat.S_ISDIR: "directory",
        stat.S_ISFIFO: "named pipe",
        stat.S_ISCHR: "character device",
        stat.S_ISBLK: "block device",
        stat.S_ISSOCK: "socket",
        stat.S_ISLNK: "symbolic link",
    }
    return next((name for test, name in kinds.items() if test(mode)), "special file")


def read_submission(path: str, protected: Protected, limit: int) -> bytes:
    """The bytes of the submission file at `path`, at most `limit` of them, or InvalidSubmission.

    lstat first, so that a device, pipe or socket is never even opened (opening one can block
    or have effects); the descriptor's fstat then proves the opened file is the one checked.
    """
    try:
        info = os.lstat(path)
    except (OSError, ValueError) as exc:
        raise InvalidSubmission(f"cannot read the submission: {_reason(exc)}") from None
    if not stat.S_ISREG(info.st_mode):
        raise InvalidSubmission(
            f"the submission is a {_kind(info.st_mode)}, not a regular file; pass the CSV itself"
        )
    protected.check(path, info)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise InvalidSubmission(f"cannot open the submission: {_reason(exc)}") from None
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode) or (opened.st_dev, opened.st_ino) != (
            info.st_dev,
            info.st_ino,
        ):
            raise InvalidSubmission("the submission was replaced while it was being opened")
        protected.check(path, opened)
        if opened.st_size == 0:  # also /proc and other pseudo-files: never read those
            raise InvalidSubmission("the submission is empty (0 bytes)")
        if opened.st_size > limit:
            raise InvalidSubmission(
                f"the submission is {opened.st_size} bytes, more than the {limit} a submission "
                "of this task can need"
            )
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise InvalidSubmission(f"cannot read the submission: {_reason(exc)}") from None
    finally:
        os.close(fd)
    if size > limit:
        raise InvalidSubmission(f"the submission grew beyond {limit} bytes while it was read")
    return b"".join(chunks)


def _reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or type(exc).__name__


def size_limit(config: dict, answers: Table) -> int:
    """Twice the bytes a generous writer of this task's submission needs, plus SLACK: every
    cell as wide as the widest id or label, or a 32-character number, quoted and spaced."""
    labels = [label for values in config.get("classes", {}).values() for label in values]
    numeric = KINDS[config["metric"]] != "label"
    cell = max([32 if numeric else 0, *(len(label) for label in labels)]) + 4
    id_cell = max(len(key) for key in answers) + 4
    columns = config["submission_columns"]
    row = id_cell + cell * (len(columns) - 1) + 2
    header = sum(len(name) + 4 for name in columns) + 2
    return 2 * (header + row * len(answers)) + SLACK


# ---------------------------------------------------------------------------------------------
# Tables: header + rows of strings, checked against the config.


def _index_rows(
    header: list[str], rows: list[tuple[int, list[str]]], id_column: str, error: type[ValueError]
) -> Table:
    """Map id -> (line, {column: cell}), rejecting ragged rows and duplicate ids."""
    header = [cell.strip() for cell in header]
    ragged = [(line, row) for line, row in rows if len(row) != len(header)]
    if ragged:
        line, row = ragged[0]
        raise error(
            f"{len(ragged)} row(s) do not have {len(header)} fields like the header; "
            f"first: line {line} has {len(row)}"
        )
    table: Table = {}
    duplicates = []
    for line, row in rows:
        record = {name: cell.strip() for name, cell in zip(header, row, strict=True)}
        key = record[id_column]
        if key in table:
            duplicates.append((line, key))
        table[key] = (line, record)
    if duplicates:
        line, key = duplicates[0]
        raise error(
            f"{len(duplicates)} duplicate id row(s) ({len(rows)} rows, {len(table)} distinct "
            f"ids); first duplicate at line {line}: {id_column}={_quote(key)}"
        )
    return table


def _names(names: list[str]) -> str:
    """A few column names for a message: short printable ones quoted, the rest counted."""
    plain = [n for n in names if len(n) <= QUOTE and n.isprintable()]
    shown = ", ".join(repr(n) for n in plain[:NAMES_QUOTED])
    hidden = len(names) - min(len(plain), NAMES_QUOTED)
    if not shown:
        return f"{hidden} column(s)"
    return f"{shown} and {hidden} more" if hidden else shown


def _check_header(header: list[str], expected: list[str]) -> None:
    """Exactly the expected columns, in any order; linear in the header's length."""
    names = [cell.strip() for cell in header]
    wanted = set(expected)
    seen: set[str] = set()
    repeated, unexpected = [], []
    for name in names:
        if name in seen:
            if name in wanted:
                repeated.append(name)
        elif name not in wanted:
            unexpected.append(name)
        seen.add(name)
    missing = [c for c in expected if c not in seen]
    if not (missing or unexpected or repeated):
        return
    if expected[0] not in seen:  # not a submission of this task: say nothing of its content
        raise InvalidSubmission(
            f"the first row is not this task's header: expected the columns {list(expected)} "
            f"(the first row has {len(names)} field(s))"
        )
    problems = []
    if missing:
        problems.append(f"missing column(s) {missing}")
    if unexpected:
        problems.append(f"unexpected column(s) {_names(unexpected)}")
    if repeated:
        problems.append(f"repeated column(s) {sorted(set(repeated))}")
    raise InvalidSubmission(f"{'; '.join(problems)}; expected exactly {list(expected)}")


def _check_ids(submitted: Table, answers: Table, id_column: str) -> None:
    unknown = [key for key in submitted if key not in answers]
    missing = [key for key in answers if key not in submitted]
    counts = f"submission has {len(submitted)} rows, the test set {len(answers)}"
    if unknown:
        line = submitted[unknown[0]][0]
        raise InvalidSubmission(
            f"{len(unknown)} id(s) not in the test set ({counts}); first unknown at line "
            f"{line}: {id_column}={_quote(unknown[0])}"
        )
    if missing:
        raise InvalidSubmission(
            f"{len(missing)} test id(s) missing ({counts}); "
            f"first missing {id_column}={_quote(missing[0])}"
        )


def _column(
    table: Table,
    ids: list[str],
    column: str,
    parse: Callable[[str], object],
    error: type[ValueError] = InvalidSubmission,
) -> list:
    """Parse one column in answer order; report the first bad cell (line, column) and a count."""
    values, bad = [], []
    for key in ids:
        line, record = table[key]
        try:
            values.append(parse(record[column]))
        except ValueError as exc:
            bad.append((line, key, exc))
    if bad:
        line, key, exc = bad[0]
        raise error(
            f"column {column!r}: {len(bad)} bad value(s); first at line {line} "
            f"(id {_quote(key)}): {exc}"
        )
    return values


def _number(raw: str) -> float:
    if not raw:
        raise ValueError("empty value")
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{_quote(raw)} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{_quote(raw)} is not a finite number")
    if abs(value) > MAX_VALUE:
        raise ValueError(f"{_quote(raw)} is out of range (|value| <= {MAX_VALUE:g})")
    return value


def _probability(raw: str) -> float:
    value = _number(raw)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{_quote(raw)} is not a probability in [0, 1]")
    return value


def _non_negative(raw: str) -> float:
    value = _number(raw)
    if value < 0:
        raise ValueError(f"{_quote(raw)} is negative (rmsle needs predictions >= 0)")
    return value


def _label_parser(labels: list[str]) -> Callable[[str], int]:
    index = {label: i for i, label in enumerate(labels)}

    def parse(raw: str) -> int:
        if raw not in index:
            raise ValueError(f"{_quote(raw)} is not one of the labels {labels}")
        return index[raw]

    return parse


def _classes(config: dict, target: str) -> list[str]:
    classes = config.get("classes", {}).get(target)
    if classes is None and KINDS[config["metric"]] == "probability":
        return ["0", "1"]
    if not classes:
        raise ValueError(f"config has no classes for target {target!r}")
    return classes


def _truth(answers: Table, ids: list[str], target: str, parse: Callable[[str], object]) -> list:
    """Parse one answer column; a bad cell is the task's fault, hence ValueError."""
    return _column(answers, ids, target, parse, ValueError)


def _encode(config: dict, answers: Table, submitted: Table, ids: list[str]) -> tuple[list, list]:
    """Both sides as the metric functions take them, per target column."""
    kind, metric = KINDS[config["metric"]], config["metric"]
    truths, preds = [], []
    for target in config["target_columns"]:
        if kind == "value":
            parse = _non_negative if metric.endswith("rmsle") else _number
            truths.append(_truth(answers, ids, target, _number))
            preds.append(_column(submitted, ids, target, parse))
            continue
        labels = _classes(config, target)
        truths.append(_truth(answers, ids, target, _label_parser(labels)))
        if kind == "label":
            preds.append(_column(submitted, ids, target, _label_parser(labels)))
        elif kind == "probability":
            preds.append(_column(submitted, ids, target, _probability))
        else:
            columns = [_column(submitted, ids, label, _probability) for label in labels]
            preds.append(_rows(columns))
    if metric in COLUMNWISE:
        return _rows(truths), _rows(preds)
    if len(truths) != 1:
        raise ValueError(f"{metric} scores exactly one target, config has {len(truths)}")
    return truths[0], preds[0]


def _rows(columns: list[list]) -> list[list]:
    return [list(row) for row in zip(*columns, strict=True)]


def _check_config(config: object) -> None:
    if not isinstance(config, dict):
        raise ValueError("evaluator has no CONFIG (render it with validators.evaluator)")
    keys = ("metric", "id_column", "target_columns", "submission_columns", "is_lower_better")
    absent = [key for key in (*keys, "thresholds") if key not in config]
    if absent:
        raise ValueError(f"config lacks {absent}")
    if config["metric"] not in METRICS:
        raise ValueError(f"config names unknown metric {config['metric']!r}")
    if config["submission_columns"][:1] != [config["id_column"]]:
        raise ValueError("config submission_columns must start with the id column")


def _answer_table(config: dict, header: list[str], rows: list[tuple[int, list[str]]]) -> Table:
    needed = [config["id_column"], *config["target_columns"]]
    if [c for c in needed if c not in [h.strip() for h in header]]:
        raise ValueError(f"answers need columns {needed}, have {header}")
    if not rows:
        raise ValueError("answers hold no rows")
    return _index_rows(header, rows, config["id_column"], ValueError)


def _score(config: dict, answers: Table, header: list[str], rows: list) -> float:
    """The raw score of parsed submission rows; a non-finite metric blames the submission."""
    if not rows:
        raise InvalidSubmission(f"submission has a header but no rows (expected {len(answers)})")
    submitted = _index_rows(header, rows, config["id_column"], InvalidSubmission)
    _check_ids(submitted, answers, config["id_column"])
    y_true, y_pred = _encode(config, answers, submitted, list(answers))
    try:
        score = float(METRICS[config["metric"]](y_true, y_pred))
    except OverflowError:
        score = math.inf
    if not math.isfinite(score):
        raise InvalidSubmission(f"{config['metric']} of these predictions is not a finite number")
    return score


def check_shape(config: dict, header: list[str], n_rows: int, n_test: int) -> None:
    """The header and row count of a table handed over whole (MLE-bench's and MLE-Dojo's
    DataFrames), checked before it is turned into cells."""
    _check_config(config)
    _check_header(header, config["submission_columns"])
    if n_rows > n_test:
        raise InvalidSubmission(f"more data rows ({n_rows}) than the {n_test} ids of the test set")


def score_rows(
    config: dict,
    submission_header: list[str],
    submission_rows: list[list[str]],
    answer_header: list[str],
    answer_rows: list[list[str]],
) -> float:
    """Raw score of a parsed submission against parsed answers (all cells as strings; data
    rows only, numbered from line 2 as in a file without blank lines)."""
    _check_config(config)
    numbered = [(i, row) for i, row in enumerate(answer_rows, start=2)]
    answers = _answer_table(config, answer_header, numbered)
    _check_header(submission_header, config["submission_columns"])
    if len(submission_rows) > len(answers):
        raise InvalidSubmission(f"more data rows than the {len(answers)} ids of the test set")
    rows = [(i, row) for i, row in enumerate(submission_rows, start=2)]
    return _score(config, answers, submission_header, rows)


def score_files(
    config: dict, submission_path: str, answer_path: str, private: str | None = None
) -> float:
    """Raw score of a submission file against the answers file. The submission may not be the
    answers, nor any file in `private` (their folder), nor a link to one of them."""
    _check_config(config)
    answer_header, answer_rows = _read_answers(str(answer_path))
    answers = _answer_table(config, answer_header, answer_rows)
    protected = Protected(str(answer_path), None if private is None else str(private))
    data = read_submission(str(submission_path), protected, size_limit(config, answers))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidSubmission(f"the submission is not UTF-8 text (byte {exc.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header, rows = _parse(reader, InvalidSubmission, config["submission_columns"], len(answers))
    except csv.Error as exc:
        raise InvalidSubmission(f"not a CSV file (line {reader.line_num}: {exc})") from None
    return _score(config, answers, header, rows)


def reported(score: float) -> float:
    """The score as this task reports it: at the precision MLE-bench compares at."""
    return round(score, DIGITS)


def report(config: dict, score: float) -> dict:
    """The JSON object the trainer parses: score, direction and all four thresholds."""
    thresholds = config["thresholds"]
    result = {"score": reported(score), "is_lower_better": bool(config["is_lower_better"])}
    for key in THRESHOLD_KEYS:
        result[f"{key}_threshold"] = float(thresholds[key])
    return result


def answer_locations() -> tuple[str, str | None]:
    """(answers file, their folder if it is not this file's): where ANSWERS says, only."""
    here = os.path.dirname(os.path.abspath(__file__))
    answers = os.path.normpath(os.path.join(here, ANSWERS))
    folder = os.path.dirname(answers)
    private = None if os.path.realpath(folder) == os.path.realpath(here) else folder
    if not os.path.isfile(answers):
        raise FileNotFoundError(f"no answers at {answers} (this evaluator's ANSWERS)")
    return answers, private


USAGE = "usage: evaluator.py --submission_path PATH"


def submission_argument(argv: list[str]) -> str:
    """PATH from `--submission_path PATH` or `--submission_path=PATH` (argparse alone costs
    ~10 ms of imports per call, and trainers call this often); SystemExit(2) otherwise."""
    if len(argv) == 1 and argv[0].startswith("--submission_path="):
        return argv[0].split("=", 1)[1]
    if len(argv) == 2 and argv[0] == "--submission_path":
        return argv[1]
    if argv in (["-h"], ["--help"]):
        print(f"{USAGE}\nScore a submission CSV (like sample_submission.csv) for this task.")
        raise SystemExit(0)
    print(f"{USAGE}\nevaluator.py: error: expected --submission_path PATH", file=sys.stderr)
    raise SystemExit(2)


def main(argv: list[str] | None = None) -> int:
    submission = submission_argument(sys.argv[1:] if argv is None else argv)
    try:
        _check_config(CONFIG)
        answers, private = answer_locations()
        result = report(CONFIG, score_files(CONFIG, submission, answers, private))
    except InvalidSubmission as exc:
        print(f"invalid submission: {exc}", file=sys.stderr)
        return 1
    except (ValueError, KeyError, TypeError, OSError) as exc:
        print(f"evaluator error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
