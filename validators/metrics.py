"""The metric registry: every metric's name, direction, task types, submission kind, what it
says in a task description, and where its scorer is. Every other list of metrics is derived
from this one.

Core (seed cards, agents, synthesis and validators all read it), so it imports no layer. The
scorer of an implemented metric is the function of the same name in `METRICS` of the
standalone evaluator template (validators/evaluator_template.py, shipped in every bundle as
evaluator.py, so it cannot import this module); tests/validators/test_grader.py holds the template's
tables (metric names, submission kinds) to this registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class TaskType(StrEnum):
    BINARY = "binary"
    MULTICLASS = "multiclass"
    ORDINAL = "ordinal"
    MULTILABEL = "multilabel"
    REGRESSION = "regression"
    MULTI_TARGET_REGRESSION = "multi_target_regression"
    RANKING = "ranking"
    RETRIEVAL = "retrieval"
    SEGMENTATION = "segmentation"
    RECONSTRUCTION = "reconstruction"
    SEQ2SEQ = "seq2seq"
    SPAN_EXTRACTION = "span_extraction"


# Task types the synthesizer can produce today (tabular only).
GENERATABLE_TASK_TYPES = frozenset(
    {
        TaskType.BINARY,
        TaskType.MULTICLASS,
        TaskType.ORDINAL,
        TaskType.MULTILABEL,
        TaskType.REGRESSION,
        TaskType.MULTI_TARGET_REGRESSION,
    }
)


class SubmissionKind(StrEnum):
    LABEL = "label"  # one column per target holding a class label
    PROBABILITY = "probability"  # one column per target holding P(positive)
    CLASS_PROBABILITIES = "class_probabilities"  # one column per class
    VALUE = "value"  # one numeric column per target


@dataclass(frozen=True)
class MetricInfo:
    name: str
    lower_is_better: bool
    task_types: frozenset[TaskType]
    submission: SubmissionKind | None  # None: not implemented by the evaluator template
    bounded: bool  # score lives in [0, 1] (or [-1, 1]); losses are unbounded
    description: str  # how a task description names it (implemented metrics)

    @property
    def implemented(self) -> bool:
        return self.submission is not None

    @property
    def direction(self) -> str:
        return "lower" if self.lower_is_better else "higher"


def _m(name, lower, types, submission, text="", bounded=True) -> MetricInfo:
    return MetricInfo(name, lower, frozenset(types), submission, bounded, text)


T, S = TaskType, SubmissionKind
METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in [
        _m(
            "accuracy",
            False,
            [T.BINARY, T.MULTICLASS, T.ORDINAL, T.SEQ2SEQ],
            S.LABEL,
            "accuracy: the share of rows whose predicted label is exactly right",
        ),
        _m(
            "macro_f1",
            False,
            [T.BINARY, T.MULTICLASS, T.ORDINAL],
            S.LABEL,
            "macro-averaged F1: the F1 score of each class, averaged with equal weight",
        ),
        _m(
            "roc_auc",
            False,
            [T.BINARY],
            S.PROBABILITY,
            "area under the ROC curve of your predicted probabilities",
        ),
        _m(
            "log_loss",
            True,
            [T.BINARY],
            S.PROBABILITY,
            "binary log-loss of your predicted probabilities",
            bounded=False,
        ),
        _m(
            "multiclass_log_loss",
            True,
            [T.MULTICLASS],
            S.CLASS_PROBABILITIES,
            "multi-class log-loss; each row's probabilities are rescaled to sum 1",
            bounded=False,
        ),
        _m(
            "quadratic_weighted_kappa",
            False,
            [T.ORDINAL],
            S.LABEL,
            "quadratic weighted kappa between predicted and true grades",
        ),
        _m(
            "rmse",
            True,
            [T.REGRESSION, T.RECONSTRUCTION],
            S.VALUE,
            "root mean squared error",
            bounded=False,
        ),
        _m("mae", True, [T.REGRESSION], S.VALUE, "mean absolute error", bounded=False),
        _m(
            "rmsle",
            True,
            [T.REGRESSION],
            S.VALUE,
            "root mean squared logarithmic error, sqrt(mean((log1p(pred) - log1p(true))^2))",
            bounded=False,
        ),
        _m(
            "mean_columnwise_roc_auc",
            False,
            [T.MULTILABEL],
            S.PROBABILITY,
            "ROC AUC of each target column, averaged over the columns",
        ),
        _m(
            "mean_columnwise_rmse",
            True,
            [T.MULTI_TARGET_REGRESSION],
            S.VALUE,
            "RMSE of each target column, averaged over the columns",
            bounded=False,
        ),
        _m(
            "mean_columnwise_rmsle",
            True,
            [T.MULTI_TARGET_REGRESSION],
            S.VALUE,
            "RMSLE of each target column, averaged over the columns",
            bounded=False,
        ),
        # Known so that cards of non-tabular competitions validate; not graded yet.
        _m("micro_f1", False, [T.MULTICLASS, T.MULTILABEL], None),
        _m("map_at_k", False, [T.RANKING, T.RETRIEVAL], None),
        _m("dice", False, [T.SEGMENTATION], None),
        _m("mean_iou_precision", False, [T.SEGMENTATION], None),
        _m("word_jaccard", False, [T.SPAN_EXTRACTION], None),
        _m("pearson", False, [T.REGRESSION], None),
        _m("columnwise_spearman", False, [T.MULTI_TARGET_REGRESSION], None),
        _m("label_ranking_average_precision", False, [T.MULTILABEL], None),
        _m("kendall_tau", False, [T.RANKING], None),
        _m("mean_absolute_error_log_by_type", True, [T.REGRESSION], None, bounded=False),
    ]
}


class UnknownMetricError(ValueError):
    pass


def metric_info(name: str) -> MetricInfo:
    try:
        return METRICS[name]
    except KeyError:
        raise UnknownMetricError(
            f"unknown metric {name!r} (known: {', '.join(sorted(METRICS))})"
        ) from None


def metrics_for(task_type: TaskType) -> list[MetricInfo]:
    """Implemented metrics that fit a task type, in catalogue order."""
    return [m for m in METRICS.values() if m.implemented and task_type in m.task_types]
