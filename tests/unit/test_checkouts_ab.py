"""bench.checkouts_ab's pure parts: the order of the runs and the summary of their JSONs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.checkouts_ab import _load, markdown, order, summarise


def _peers_json(path: Path, rps: dict[str, float]) -> Path:
    """A one-round file as `bench.peers --rounds 1` writes it (the fields the summary reads
    and their neighbours)."""
    targets = {"mlserve-hits": "mlserve", "mlserve-unique": "mlserve"}
    records = [
        {
            "round": 1,
            "target": targets.get(name, name),
            "measurement": name,
            "family": "mlserve" if name.startswith("mlserve") else "peer",
            "clients": 32,
            "images": "same" if name.endswith("hits") else "cycle",
            "rps": value,
            "p50_ms": 10.0,
            "p99_ms": 30.0,
            "failures": 0,
        }
        for name, value in rps.items()
    ]
    medians = {
        r["measurement"]: {"rps": round(r["rps"], 1), "rps_per_round": [r["rps"]]} for r in records
    }
    path.write_text(
        json.dumps(
            {"settings": {"rounds": 1}, "medians": medians, "records": records, "errors": []}
        )
    )
    return path


def test_the_first_run_alternates_pair_by_pair() -> None:
    assert [order(i) for i in (1, 2, 3, 4)] == [
        ("before", "after"),
        ("after", "before"),
        ("before", "after"),
        ("after", "before"),
    ]


def test_summary_divides_out_the_drift_then_compares_after_with_before(tmp_path: Path) -> None:
    # pair 2 ran on a machine 2x slower: the ratios do not move, the raw req/s do
    figures = {
        "before_1": {
            "mlserve-hits": 1000,
            "floor-2w": 4000,
            "mlserve-unique": 300,
            "fastapi-2w": 400,
        },
        "after_1": {
            "mlserve-hits": 1200,
            "floor-2w": 4000,
            "mlserve-unique": 330,
            "fastapi-2w": 400,
        },
        "before_2": {
            "mlserve-hits": 500,
            "floor-2w": 2000,
            "mlserve-unique": 150,
            "fastapi-2w": 200,
        },
        "after_2": {
            "mlserve-hits": 1200,
            "floor-2w": 4000,
            "mlserve-unique": 330,
            "fastapi-2w": 400,
        },
    }
    docs = {k: _load(_peers_json(tmp_path / f"{k}.json", v)) for k, v in figures.items()}
    rows = {
        r["what"]: r
        for r in summarise(
            [(docs["before_1"], docs["after_1"]), (docs["before_2"], docs["after_2"])]
        )
    }

    hits = rows["mlserve-hits / floor-2w"]
    assert [(p["before"], p["after"]) for p in hits["pairs"]] == [(0.25, 0.3), (0.25, 0.3)]
    assert hits["median"] == pytest.approx(1.2)
    assert rows["mlserve-unique / fastapi-2w"]["median"] == pytest.approx(1.1)
    assert [p["change"] for p in rows["mlserve-hits req/s"]["pairs"]] == pytest.approx([1.2, 2.4])
    assert rows["mlserve-hits req/s"]["median"] == pytest.approx(1.8)
    assert list(rows)[:2] == ["mlserve-unique / fastapi-2w", "mlserve-hits / floor-2w"]
    assert "mlserve-v2-hits / floor-2w" not in rows  # not measured: no row


def test_a_missing_load_or_file_is_a_gap_not_a_zero(tmp_path: Path) -> None:
    before = _load(_peers_json(tmp_path / "b.json", {"mlserve-hits": 1000, "floor-2w": 4000}))
    after = _load(_peers_json(tmp_path / "a.json", {"floor-2w": 4000}))  # mlserve failed to start
    rows = {
        r["what"]: r for r in summarise([(before, after), (before, _load(tmp_path / "none.json"))])
    }
    assert rows["mlserve-hits / floor-2w"]["pairs"][0] == {
        "before": 0.25,
        "after": None,
        "change": None,
    }
    assert rows["mlserve-hits / floor-2w"]["median"] is None
    assert rows["floor-2w req/s"]["median"] == 1.0  # pair 2's after is absent, left out


def test_markdown_has_a_column_per_pair_saying_which_ran_first(tmp_path: Path) -> None:
    doc = _load(_peers_json(tmp_path / "x.json", {"mlserve-hits": 1000, "floor-2w": 4000}))
    text = markdown(summarise([(doc, doc), (doc, doc)]), "# title")
    assert "pair 1 (before first)" in text and "pair 2 (after first)" in text
    assert "| mlserve-hits / floor-2w | 1.000 | 0.250 → 0.250 (1.000) |" in text
    assert "| mlserve-hits req/s | 1.000 | 1,000 → 1,000 (1.000) |" in text
