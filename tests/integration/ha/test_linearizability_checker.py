"""The checker itself: it accepts linearizable histories and catches violations."""

from __future__ import annotations

from tests.integration.ha.linearizability import Operation, check_registers, linearizable


def w(value: object, start: float, end: float | None, key: str = "r") -> Operation:
    return Operation(key, "write", value, start, end)


def r(value: object, start: float, end: float, key: str = "r") -> Operation:
    return Operation(key, "read", value, start, end)


def test_sequential_history_is_linearizable() -> None:
    assert linearizable([w(1, 0, 1), r(1, 2, 3), w(2, 4, 5), r(2, 6, 7)])


def test_a_stale_read_after_a_completed_write_is_caught() -> None:
    assert not linearizable([w(1, 0, 1), w(2, 2, 3), r(1, 4, 5)])


def test_concurrent_write_may_be_seen_or_not() -> None:
    assert linearizable([w(1, 0, 1), w(2, 2, 10), r(1, 3, 4), r(2, 5, 6)])
    # ...but not seen, then unseen.
    assert not linearizable([w(1, 0, 1), w(2, 2, 10), r(2, 3, 4), r(1, 5, 6)])


def test_a_write_of_unknown_outcome_may_have_happened_or_not() -> None:
    assert linearizable([w(1, 0, 1), w(2, 2, None), r(1, 3, 4)])
    assert linearizable([w(1, 0, 1), w(2, 2, None), r(2, 3, 4)])
    assert not linearizable([w(1, 0, 1), w(2, 2, None), r(2, 3, 4), r(1, 5, 6)])


def test_reading_a_value_never_written_is_caught() -> None:
    assert not linearizable([w(1, 0, 1), r(3, 2, 3)])
    assert linearizable([r(None, 0, 1), w(1, 2, 3)])


def test_keys_are_checked_independently() -> None:
    history = [w(1, 0, 1, "a"), r(1, 2, 3, "a"), w(5, 0, 1, "b"), r(4, 2, 3, "b")]
    assert check_registers(history) == ["b"]


def test_a_history_longer_than_the_recursion_limit_is_checked() -> None:
    history = []
    for number in range(600):  # 1,200 operations
        start = 4 * number
        history += [w(number, start, start + 1), r(number, start + 2, start + 3)]
    assert linearizable(history)
    history.append(r(0, 10**6, 10**6 + 1))
    assert not linearizable(history)


def test_unseen_writes_of_unknown_outcome_do_not_blow_up_the_search() -> None:
    # A partition leaves many writes of unknown outcome; none of these was ever read.
    history = [w(0, 0, 1)]
    for number in range(1, 200):
        history.append(w(number, 2 + number, None))
    for number in range(300):
        history.append(r(0, 500 + 2 * number, 501 + 2 * number))
    assert linearizable(history)
    history.append(r(7, 2000, 2001))  # an unknown write seen late: still possible
    assert linearizable(history)
    history.append(r(0, 2002, 2003))  # ...but then not unseen again
    assert not linearizable(history)
