"""Metric functions checked against hand-computed examples (definitions in shared/data/README.md)."""

from __future__ import annotations

import math

import pytest

from switchyard.retrieval.metrics import (
    complete_at_k,
    mean_metrics,
    ndcg_at_k,
    query_metrics,
    recall_at_k,
    server_groups,
    server_ranking,
)

RANKED = ["s1/a", "s2/b", "s1/c", "s3/d", "s2/e", "s4/f"]
SERVER_OF = {k: k.split("/")[0] for k in [*RANKED, "s5/g", "s9/z"]}


def test_recall_counts_groups_hit_by_any_member() -> None:
    groups = [{"s1/c", "s9/z"}, {"s4/f"}, {"s5/g"}]
    assert recall_at_k(RANKED, groups, 1) == 0.0
    assert recall_at_k(RANKED, groups, 3) == pytest.approx(1 / 3)
    assert recall_at_k(RANKED, groups, 6) == pytest.approx(2 / 3)


def test_recall_at_1_is_top1_accuracy_for_single_gold() -> None:
    assert recall_at_k(RANKED, [{"s1/a"}], 1) == 1.0
    assert recall_at_k(RANKED, [{"s2/b"}], 1) == 0.0


def test_ndcg_uses_first_hit_of_each_group_against_all_groups_on_top() -> None:
    # groups hit at ranks 2 and 4; a third group is missed; ideal = ranks 1, 2, 3.
    groups = [{"s2/b", "s1/c"}, {"s3/d"}, {"s9/z"}]
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    ideal = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(RANKED, groups, 10) == pytest.approx(dcg / ideal)
    assert ndcg_at_k(RANKED, [{"s1/a"}], 10) == 1.0


def test_ndcg_ideal_is_capped_at_k_groups() -> None:
    groups = [{k} for k in RANKED]  # six groups, all hit in order; k = 3 keeps three, ideal has three
    assert ndcg_at_k(RANKED, groups, 3) == pytest.approx(1.0)


def test_completeness_needs_every_group_in_top_10() -> None:
    assert complete_at_k(RANKED, [{"s1/a"}, {"s4/f"}]) == 1.0
    assert complete_at_k(RANKED, [{"s1/a"}, {"s5/g"}]) == 0.0


def test_server_recall_ranks_servers_by_first_occurrence() -> None:
    assert server_ranking(RANKED, SERVER_OF) == ["s1", "s2", "s3", "s4"]
    # Two tool groups on s1 collapse into one server group; s5 is never retrieved.
    groups = [{"s1/a"}, {"s1/c"}, {"s5/g"}]
    assert server_groups(groups, SERVER_OF) == [frozenset({"s1"}), frozenset({"s5"})]
    assert query_metrics(RANKED, groups, SERVER_OF)["srvR@5"] == pytest.approx(0.5)


def test_query_metrics_and_mean() -> None:
    one = query_metrics(RANKED, [{"s2/b"}], SERVER_OF)
    assert one == {
        "R@1": 0.0,
        "R@5": 1.0,
        "R@10": 1.0,
        "nDCG@10": pytest.approx(1 / math.log2(3)),
        "Compl@10": 1.0,
        "srvR@5": 1.0,
    }
    two = query_metrics(RANKED, [{"s9/z"}], SERVER_OF)
    assert mean_metrics([one, two])["R@5"] == 0.5
    assert mean_metrics([]) == {}
