"""[[protect]] entries (SPEC 7): validated at load, grant nothing, decide who may approve."""

from __future__ import annotations

import pytest

from bot.core.policy import Policy, PolicyError

LIB = "f52faec1fab30e9d074c1a67c434f5b9"
OTHER_LIB = "f6125eeb1a58cb4310952b35a1b41037"
GOOD = f"""admins = ["U0ADMIN"]

[[allow]]
libraries = ["*"]
users = ["U0USER"]

[[protect]]
libraries = ["{LIB}"]
approvers = ["U0LEAD"]
approver_usergroups = ["S0LEADS"]
approvals = 2
"""


def groups(user: str) -> set[str]:
    return {"S0LEADS"} if user == "U0GROUPIE" else set()


def test_protect_grants_nothing_and_names_who_may_approve() -> None:
    policy = Policy.from_text(GOOD)
    assert not policy.check("U0LEAD", LIB, None, groups).allowed  # grants nothing
    assert policy.may_approve("U0LEAD", LIB, groups)
    assert policy.may_approve("U0GROUPIE", LIB, groups)
    assert policy.may_approve("U0ADMIN", LIB, groups)
    assert not policy.may_approve("U0USER", LIB, groups)
    assert not policy.may_approve("U0LEAD", OTHER_LIB, groups)  # not protected
    assert policy.approvals_needed(LIB) == 2 and policy.approvals_needed(OTHER_LIB) == 0
    assert policy.approvals_missing(LIB, ["U0LEAD"], groups) == 1
    assert policy.approvals_missing(LIB, ["U0LEAD", "U0LEAD"], groups) == 1  # distinct people
    assert policy.approvals_missing(LIB, ["U0LEAD", "U0USER"], groups) == 1  # not an approver
    assert policy.approvals_missing(LIB, ["U0LEAD", "U0GROUPIE"], groups) == 0
    assert "S0LEADS" in policy.usergroups  # resolved by the user group cache


@pytest.mark.parametrize(
    ("entry", "problem", "line"),
    [
        ('approvers = ["U0LEAD"]', "[[protect]] entry 1 has no `libraries`", 7),
        (f'libraries = ["{LIB}"]\nwho = ["U0LEAD"]', "unknown key `who`", 9),
        ('libraries = ["Ad Breaks"]\napprovers = ["U0LEAD"]', "`libraries` must hold", 8),
        (f'libraries = ["{LIB}"]\napprovers = ["lead"]', "`approvers` must hold Slack user", 9),
        (
            f'libraries = ["{LIB}"]\napprover_usergroups = ["U0LEAD"]',
            "`approver_usergroups` must hold Slack user group ids",
            9,
        ),
        (f'libraries = ["{LIB}"]\napprovers = ["U0LEAD"]\napprovals = 0', "at least 1", 10),
        (f'libraries = ["{LIB}"]\napprovers = ["U0LEAD"]\napprovals = "2"', "whole number", 10),
        (
            f'libraries = ["{LIB}"]\napprovers = ["U0LEAD"]\napprovals = 3',
            "needs 3 distinct approvals but only 2 people",
            10,
        ),
    ],
)
def test_malformed_protect_entries_name_their_line(entry: str, problem: str, line: int) -> None:
    head = 'admins = ["U0ADMIN"]\n\n[[allow]]\nlibraries = ["*"]\nusers = ["U0USER"]\n\n'
    text = f"{head}[[protect]]\n{entry}\n"
    with pytest.raises(PolicyError) as error:
        Policy.from_text(text, source="policy.toml")
    assert problem in error.value.message
    assert f"policy.toml (line {line}):" in error.value.message
