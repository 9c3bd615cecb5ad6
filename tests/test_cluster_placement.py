"""Placement (xdv.cluster.place): a pure function of the job id, the epoch's members and the
policy; balanced; a leaving member moves only its own jobs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xdv.cluster import PlacementPolicy, assignment, place
from xdv.errors import ErrorCode, XdvError

node_ids = st.lists(
    st.text(alphabet="abcdefghij-0123456789", min_size=1, max_size=8),
    min_size=1,
    max_size=8,
    unique=True,
)
job_ids = st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=20, unique=True)
salts = st.text(max_size=8)


@pytest.mark.spec("XDV-041-3.3")
@settings(max_examples=30, deadline=None)
@given(members=node_ids, jobs=job_ids, salt=salts, data=st.data())
def test_placement_is_a_function_of_job_members_and_policy(
    members: list[str], jobs: list[str], salt: str, data: st.DataObject
) -> None:
    policy = PlacementPolicy(salt=salt)
    shuffled = data.draw(st.permutations(members))
    for job in jobs:
        chosen = place(job, members, policy)
        assert chosen in members
        # The order in which members are listed (or arrived) does not matter.
        assert place(job, shuffled, policy) == chosen
        # The same policy rebuilt from its record places the same way (policy as data).
        assert place(job, members, PlacementPolicy.from_record(policy.to_record())) == chosen


@pytest.mark.spec("XDV-041-6.3")
@settings(max_examples=30, deadline=None)
@given(members=node_ids.filter(lambda m: len(m) >= 2), jobs=job_ids, data=st.data())
def test_a_leaving_member_moves_only_its_own_jobs(
    members: list[str], jobs: list[str], data: st.DataObject
) -> None:
    leaving = data.draw(st.sampled_from(members))
    rest = [node for node in members if node != leaving]
    for job in jobs:
        before = place(job, members)
        after = place(job, rest)
        if before != leaving:
            assert after == before
        else:
            assert after in rest


@pytest.mark.spec("XDV-041-3.3")
def test_placement_is_balanced() -> None:
    members = [f"node-{n}" for n in range(1, 5)]
    placed = assignment([f"job-{n:04d}" for n in range(4000)], members)
    counts = sorted(len(jobs) for jobs in placed.values())
    # 1,000 expected per node; a binomial spread of a few percent.
    assert counts[0] > 900 and counts[-1] < 1100, counts


@pytest.mark.spec("XDV-041-3.3")
@settings(max_examples=10, deadline=None)
@given(
    members=st.lists(
        st.text(alphabet="abcdef0123456789", min_size=1, max_size=6),
        min_size=2,
        max_size=6,
        unique=True,
    ),
    salt=salts,
)
def test_every_member_set_gets_balanced_shares(members: list[str], salt: str) -> None:
    jobs = [f"job-{n}" for n in range(1500)]
    placed = assignment(jobs, members, PlacementPolicy(salt=salt))
    expected = len(jobs) / len(members)
    for node, share in placed.items():
        # A binomial share: within 30% of the mean (over 5 standard deviations at 6 members).
        assert abs(len(share) - expected) < 0.3 * expected, (node, len(share), expected)


def test_weights_give_proportional_shares_and_domains_restrict() -> None:
    policy = PlacementPolicy(weights={"big": 3, "small": 1})
    placed = assignment([f"j{n}" for n in range(4000)], ["big", "small"], policy)
    share = len(placed["big"]) / 4000
    assert 0.70 < share < 0.80, share
    q_only = PlacementPolicy(domains={"k-node": ["K"], "q-node": ["K", "Q"]})
    for n in range(50):
        assert place(f"q{n}", ["k-node", "q-node"], q_only, needs=["Q"]) == "q-node"
    with pytest.raises(XdvError) as caught:
        place("q", ["k-node"], q_only, needs=["Q"])
    assert caught.value.code is ErrorCode.CLUSTER_NO_NODE
    with pytest.raises(XdvError) as caught:
        place("q", [])
    assert caught.value.code is ErrorCode.CLUSTER_NO_NODE


def test_a_salt_changes_the_placement_and_bad_policies_are_refused() -> None:
    jobs = [f"j{n}" for n in range(64)]
    members = ["a", "b", "c"]
    plain = [place(job, members) for job in jobs]
    salted = [place(job, members, PlacementPolicy(salt="x")) for job in jobs]
    assert plain != salted
    for bad in ({"algorithm": "random"}, {"algorithm": "hrw-sha256", "weights": {"a": 0}}, [1]):
        with pytest.raises(XdvError) as caught:
            PlacementPolicy.from_record(bad)
        assert caught.value.code is ErrorCode.CLUSTER_POLICY_INVALID
