"""A batch summary as the Prefect UI and the HTML report show it (sandforge.summary_tables,
sandforge.report), and where the report is kept: beside the bundles, in either store."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from sandforge.storage.local import LocalStore

from sandforge.report import render_report, report_name, write_report
from sandforge.summary_tables import summary_markdown, task_rows


def sample_summary(task_id: str = "reef-bleaching-1") -> dict[str, Any]:
    task = {
        "task_id": task_id,
        "version": 1,
        "seed_id": "spaceship-titanic",
        "domain": "coral_reef",
        "modality": "tabular",
        "task_type": "binary",
        "metric": "log_loss",
        "is_lower_better": True,
        "rule_family": "logistic",
        "thresholds": {"median": 0.6, "bronze": 0.5, "silver": 0.45, "gold": 0.4},
        "scores": {"sample": 0.69, "trivial": 0.69, "simple": 0.52, "strong": 0.5, "oracle": 0.3},
        "path": "/store/x/1",
        "reused": True,
    }
    return {
        "candidates": 3,
        "accepted": 1,
        "rejected": 2,
        "reused": 1,
        "acceptance_rate": 0.333,
        "funnel": [
            {"stage": "review", "entered": 3, "rejected": 1},
            {"stage": "thresholds", "entered": 2, "rejected": 1},
            {"stage": "publish", "entered": 1, "rejected": 0},
        ],
        "rejections_by_stage": {"review": {"leak": 1}, "thresholds": {"flat ladder": 1}},
        "tasks": [task],
        "diversity": {
            "domain": {"coral_reef": 1},
            "modality": {"tabular": 1},
            "task_type": {"binary": 1},
            "metric": {"log_loss": 1},
        },
        "short_of_quota": {},
        "median_stage_seconds": {"review": 0.01, "thresholds": 0.002, "publish": 0.05},
    }


def test_task_table_has_thresholds_and_baseline_scores():
    (row,) = task_rows(sample_summary())
    assert row["task"] == "reef-bleaching-1@1"
    assert (row["median"], row["gold"]) == (0.6, 0.4)
    assert (row["score_trivial"], row["score_oracle"]) == (0.69, 0.3)


def test_summary_markdown_has_funnel_reasons_diversity_and_the_report_link():
    text = summary_markdown(sample_summary(), "file:///store/_reports/r.html")
    assert "(file:///store/_reports/r.html)" in text
    assert "| thresholds | 2 | 1 |" in text
    assert "| review | leak | 1 |" in text
    for field in ("domain", "modality", "task type", "metric"):
        assert f"| {field} | count |" in text


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        assert not (tag in ("script", "img", "link") or any(k == "src" for k, _ in attrs))


def test_report_is_one_self_contained_file_with_plots():
    html = render_report(sample_summary("evil<script>"), "batch", {"seeds": "all"})
    parser = _Collect()
    parser.feed(html)
    assert "evil&lt;script&gt;" in html
    svgs = html.split("<svg")[1:]
    assert len(svgs) == 1 + 1 + 1 + 4  # funnel, stage times, one ladder, four diversity charts
    for svg in svgs:
        ET.fromstring("<svg" + svg.split("</svg>")[0] + "</svg>")  # well-formed
    assert "0.05 s" in html  # publish's median time
    for heading in ("Funnel", "Stage times", "Threshold ladders", "Diversity", "Tasks"):
        assert f"<h2>{heading}</h2>" in html


def test_report_names_sort_by_time_and_name_the_run():
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert report_name("brave-otter", when) == "20260102T030405Z-brave-otter"
    assert report_name("../../etc/brave-otter", when) == "20260102T030405Z-brave-otter"


def test_report_lands_beside_the_bundles_without_becoming_one(tmp_path: Path):
    store = LocalStore(tmp_path)
    url = write_report(store, "20260101T000000Z-run", "<html></html>")
    assert url == (tmp_path / "_reports" / "20260101T000000Z-run.html").as_uri()
    assert store.latest_versions() == []


def test_report_lands_beside_bundles_in_an_s3_store(s3_url: str):
    from sandforge.storage.s3 import S3Store

    store = S3Store.from_url(s3_url)
    url = write_report(store, "run", "<html>report</html>")
    assert url == f"{s3_url}/_reports/run.html"
    key = url.removeprefix(f"s3://{store.bucket}/")
    got = store.client.get_object(Bucket=store.bucket, Key=key)
    assert got["Body"].read() == b"<html>report</html>" and got["ContentType"] == "text/html"
    assert store.latest_versions() == []
