"""The peers benchmark's verdicts: a ratio is met only if it holds per round and against
the other server's best round (a peer's round can be slow for reasons of its own)."""

from __future__ import annotations

from bench.peers import report


def record(round_: int, measurement: str, rps: float) -> dict:
    return {"round": round_, "measurement": measurement, "rps": rps, "p50_ms": 1.0}


def fastapi_ratio(records: list[dict]) -> dict:
    found = report.ratios(records)
    return next(r for r in found if r["what"] == "full stack unique / plain FastAPI 2 workers")


def test_a_peers_bad_round_does_not_make_a_target_met() -> None:
    # FastAPI's 2 workers ran like 1 in two rounds of three (one worker took the connections)
    records = [
        *(record(i, "mlserve-unique", 1000) for i in range(3)),
        record(0, "fastapi-2w", 700),
        record(1, "fastapi-2w", 700),
        record(2, "fastapi-2w", 1600),
    ]
    ratio = fastapi_ratio(records)
    assert ratio["median"] == round(1000 / 700, 3)  # per round: met
    assert ratio["against_best_round"] == 0.625  # against its best round: not
    assert ratio["met"] is False


def test_a_ratio_that_holds_both_ways_is_met() -> None:
    records = [
        *(record(i, "mlserve-unique", 1000 + 10 * i) for i in range(3)),
        *(record(i, "fastapi-2w", 900 + 20 * i) for i in range(3)),
    ]
    ratio = fastapi_ratio(records)
    assert ratio["per_round"] == [round(1000 / 900, 3), round(1010 / 920, 3), round(1020 / 940, 3)]
    assert ratio["against_best_round"] == round(1010 / 940, 3)
    assert ratio["met"] is True
