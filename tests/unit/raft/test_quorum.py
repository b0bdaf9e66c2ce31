from __future__ import annotations

import pytest

from mesoslite.raft.quorum import MajorityConfig, VoteResult


@pytest.mark.parametrize(
    ("voters", "acked", "expected"),
    [
        ((1,), {1: 7}, 7),
        ((1, 2, 3), {1: 5, 2: 3, 3: 1}, 3),
        ((1, 2, 3), {1: 5}, 0),  # absent voters count as 0
        ((1, 2, 3, 4), {1: 9, 2: 8, 3: 2, 4: 1}, 2),  # 3 of 4 needed
        ((1, 2, 3, 4, 5), {1: 9, 2: 8, 3: 7, 4: 1, 5: 1, 6: 99}, 7),  # 6 is no voter
        ((), {1: 5}, 0),
    ],
)
def test_committed_index_is_the_largest_index_a_majority_holds(
    voters: tuple[int, ...], acked: dict[int, int], expected: int
) -> None:
    assert MajorityConfig(voters).committed_index(acked) == expected


@pytest.mark.parametrize(
    ("voters", "votes", "expected"),
    [
        ((1, 2, 3), {1: True}, VoteResult.PENDING),
        ((1, 2, 3), {1: True, 2: True}, VoteResult.WON),
        ((1, 2, 3), {1: True, 2: False}, VoteResult.PENDING),
        ((1, 2, 3), {1: True, 2: False, 3: False}, VoteResult.LOST),
        ((1, 2, 3, 4), {1: True, 2: True}, VoteResult.PENDING),
        ((1, 2, 3, 4), {1: True, 2: False, 3: False}, VoteResult.LOST),
        ((1, 2, 3), {1: True, 9: True}, VoteResult.PENDING),  # non-voters do not count
        ((), {}, VoteResult.WON),
    ],
)
def test_vote_result(voters: tuple[int, ...], votes: dict[int, bool], expected: VoteResult) -> None:
    assert MajorityConfig(voters).vote_result(votes) is expected
