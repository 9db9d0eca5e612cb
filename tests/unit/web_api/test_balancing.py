"""The gateway's balancing policy on its own: which worker's idle connection, and which
replica address, the next request takes. No sockets and no clock: the time is a number."""

from __future__ import annotations

import pytest

from web_api.gateway.balancing import (
    DOWN_SECONDS,
    MAX_WORKERS_REMEMBERED,
    AddressRotation,
    WorkerBalance,
)

A, B, C = b"a", b"b", b"c"
ONE, TWO, THREE = ("10.0.0.1", 8000), ("10.0.0.2", 8000), ("10.0.0.3", 8000)


# WorkerBalance


def test_the_worker_with_the_fewest_requests_under_way_is_picked() -> None:
    balance = WorkerBalance()
    for worker in (A, A, B, C, C):
        balance.sent(worker)
    assert balance.pick([A, B, C]) == 1
    assert balance.pick([C, A]) == 1  # two under way each: a was sent to before c
    balance.done(C)
    assert balance.pick([A, C]) == 1  # c, sent to most recently, but one under way beats two


def test_nothing_under_way_the_worker_sent_to_least_recently_is_picked() -> None:
    balance = WorkerBalance()
    for worker in (A, B, C):
        balance.sent(worker)
        balance.done(worker)
    assert balance.pick([C, B, A]) == 2
    balance.sent(A)
    balance.done(A)
    assert balance.pick([C, B, A]) == 1
    balance.sent(B)
    balance.done(B)
    assert balance.pick([C, B, A]) == 0


def test_a_worker_never_sent_to_comes_before_every_other() -> None:
    balance = WorkerBalance()
    balance.sent(A)
    balance.done(A)
    balance.sent(B)
    balance.done(B)
    assert balance.pick([A, B, C, A]) == 2


def test_of_connections_to_the_same_worker_the_most_recently_used_is_picked() -> None:
    """The list runs oldest first: among equals, the last one (the least likely stale)."""
    balance = WorkerBalance()
    assert balance.pick([A]) == 0
    assert balance.pick([A, A, A]) == 2
    assert balance.pick([A, B]) == 1  # neither sent to: the most recently used connection
    balance.sent(A)
    balance.done(A)
    assert balance.pick([B, A, B, A]) == 2  # b, never sent to; its newest connection


def test_a_completion_lowers_the_count_and_forgets_a_worker_at_zero() -> None:
    balance = WorkerBalance()
    balance.sent(A)
    balance.sent(A)
    balance.sent(B)
    assert (balance.under_way(A), balance.under_way(B)) == (2, 1)
    assert balance.pick([A, B]) == 1
    balance.done(A)
    assert balance.under_way(A) == 1
    assert balance.pick([A, B]) == 0  # one each: a was sent to before b
    balance.done(A)
    balance.done(B)
    assert (balance.under_way(A), balance.under_way(B)) == (0, 0)
    assert balance._under_way == {}


def test_a_completion_without_a_send_is_a_mistake() -> None:
    with pytest.raises(KeyError):
        WorkerBalance().done(A)


def test_a_connection_that_has_not_answered_yet_counts_as_worker_none() -> None:
    """A fresh connection's request is counted under None, and done under None, even
    though its answer then names the worker."""
    balance = WorkerBalance()
    balance.sent(None)
    assert balance.under_way(None) == 1
    assert balance.pick([None, A]) == 1  # a: nothing under way, never sent to
    balance.done(None)
    assert balance.under_way(None) == 0
    assert balance.pick([None, A]) == 1  # None was sent to; a never
    balance.sent(A)
    balance.done(A)
    assert balance.pick([None, A]) == 0  # None's send was the older


def test_the_record_of_latest_sends_starts_over_past_its_bound() -> None:
    balance = WorkerBalance()
    for number in range(MAX_WORKERS_REMEMBERED + 1):
        worker = b"%d" % number
        balance.sent(worker)
        balance.done(worker)
    assert len(balance._sent_at) == MAX_WORKERS_REMEMBERED + 1
    balance.sent(A)  # one too many remembered: forgotten before this send is written
    balance.done(A)
    assert balance._sent_at == {A: MAX_WORKERS_REMEMBERED + 2}
    assert balance.pick([A, b"0"]) == 1  # b"0", forgotten, counts as never sent to


def test_requests_under_way_are_kept_when_latest_sends_are_forgotten() -> None:
    balance = WorkerBalance()
    balance.sent(A)
    for number in range(MAX_WORKERS_REMEMBERED + 1):
        balance.sent(b"%d" % number)
        balance.done(b"%d" % number)
    balance.sent(B)
    assert balance.under_way(A) == 1
    assert balance.pick([b"0", A]) == 0


# AddressRotation


def test_addresses_are_taken_in_turn_with_the_others_after() -> None:
    rotation = AddressRotation()
    addresses = [ONE, TWO, THREE]
    picks = [rotation.pick(addresses, now=0.0) for _ in range(4)]
    assert picks == [
        (TWO, [THREE, ONE]),
        (THREE, [ONE, TWO]),
        (ONE, [TWO, THREE]),
        (TWO, [THREE, ONE]),
    ]
    assert addresses == [ONE, TWO, THREE]  # the caller's list is left as it was


def test_a_single_address_has_no_fallback() -> None:
    assert AddressRotation().pick([ONE], now=0.0) == (ONE, [])


def test_an_address_marked_down_is_left_out_until_its_time_is_up() -> None:
    rotation = AddressRotation()
    rotation.mark_down(TWO, now=100.0)
    assert rotation.is_down(TWO, now=100.0) and not rotation.is_down(ONE, now=100.0)
    during = [rotation.pick([ONE, TWO, THREE], now=100.0 + DOWN_SECONDS - 0.001)[0]]
    during += [rotation.pick([ONE, TWO, THREE], now=101.0)[0] for _ in range(3)]
    assert TWO not in during and set(during) == {ONE, THREE}
    assert rotation.pick([ONE, TWO, THREE], now=101.0)[1] in ([ONE], [THREE])  # not two
    # At exactly its time it is back (down until, not through).
    assert not rotation.is_down(TWO, now=100.0 + DOWN_SECONDS)
    after = {rotation.pick([ONE, TWO, THREE], now=100.0 + DOWN_SECONDS)[0] for _ in range(3)}
    assert after == {ONE, TWO, THREE}


def test_the_turn_counts_on_over_the_live_addresses_alone() -> None:
    rotation = AddressRotation()
    rotation.mark_down(ONE, now=0.0)
    assert rotation.pick([ONE, TWO, THREE], now=1.0) == (THREE, [TWO])  # turn 1 of 2 live
    assert rotation.pick([ONE, TWO, THREE], now=1.0) == (TWO, [THREE])  # turn 2 of 2 live
    assert rotation.pick([ONE, TWO, THREE], now=5.0) == (ONE, [TWO, THREE])  # turn 3 of 3


def test_when_every_address_is_down_all_are_tried_anyway() -> None:
    rotation = AddressRotation()
    for address in (ONE, TWO):
        rotation.mark_down(address, now=0.0)
    assert rotation.pick([ONE, TWO], now=1.0) == (TWO, [ONE])
    assert rotation.pick([ONE, TWO], now=1.0) == (ONE, [TWO])


def test_marking_down_again_moves_the_end_later() -> None:
    rotation = AddressRotation(down_seconds=5.0)
    rotation.mark_down(ONE, now=0.0)
    rotation.mark_down(ONE, now=3.0)
    assert rotation.is_down(ONE, now=7.9) and not rotation.is_down(ONE, now=8.0)


def test_an_address_down_but_no_longer_listed_changes_nothing() -> None:
    rotation = AddressRotation()
    rotation.mark_down(THREE, now=0.0)
    assert rotation.pick([ONE, TWO], now=0.0) == (TWO, [ONE])
