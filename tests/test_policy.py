"""Tests for bot.core.policy: the TOML permission policy (SPEC 4) and the user group cache."""

import threading
from pathlib import Path

import pytest
from slack_sdk.errors import SlackApiError

from bot.core.policy import Decision, Policy, PolicyError, UsergroupCache

LIB = "8b69f969c65e481385281331520cf1e2"
OTHER = "41ee4f5a7a08bca241ee4f5a7a08bca2"
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "policy.example.toml"

POLICY = f"""
admins = ["U0ADMIN"]

[[allow]]
libraries = ["{LIB.upper()}"]
users = ["U0ALICE"]

[[allow]]
libraries = ["{OTHER}"]
usergroups = ["S0EDITORS"]
channels = ["C0MEDIA", "C0OPS"]

[[allow]]
libraries = ["*"]
users = ["W0BOSS"]
"""


def no_groups(user_id):
    return set()


def groups_never_asked(user_id):
    raise AssertionError("groups_of should not be called")


class FakeSlack:
    """A stand-in for slack_sdk's WebClient.usergroups_users_list (Slack's API, not ours)."""

    def __init__(self, members, fail_for=()):
        self.members = members
        self.fail_for = set(fail_for)
        self.calls = []

    def usergroups_users_list(self, usergroup):
        self.calls.append(usergroup)
        if usergroup in self.fail_for:
            raise SlackApiError("boom", {"ok": False, "error": "no_such_subteam"})
        return {"ok": True, "users": list(self.members.get(usergroup, []))}


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def policy():
    return Policy.from_text(POLICY, source="policy.toml")


def policy_error(text):
    with pytest.raises(PolicyError) as info:
        Policy.from_text(text, source="policy.toml")
    return str(info.value)


# -- deny by default ----------------------------------------------------------------------


def test_missing_file_denies_everything(tmp_path):
    path = tmp_path / "policy.toml"
    policy = Policy.load(path)
    decision = policy.check("U0ALICE", LIB, "C0MEDIA", no_groups)
    assert decision == Decision(
        False,
        f"No permission policy is configured (ADDTOLIB_POLICY={path} not found); "
        "an administrator must create one.",
    )
    assert policy.allowed_libraries("U0ALICE", "C0MEDIA", no_groups) == set()
    assert not policy.is_admin("U0ALICE")


def test_empty_policy_denies(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text("# nothing yet\n")
    decision = Policy.load(path).check("U0ALICE", LIB, None, no_groups)
    assert not decision.allowed
    assert LIB in decision.reason


def test_library_in_no_entry_is_refused_by_name():
    policy = Policy.from_text(f'[[allow]]\nlibraries = ["{LIB}"]\nusers = ["U0ALICE"]\n')
    unknown = "ab" * 16
    decision = policy.check("U0ALICE", unknown, "C0MEDIA", no_groups)
    assert not decision.allowed
    assert f"library {unknown} is not named in any [[allow]] entry" in decision.reason


# -- who is allowed -----------------------------------------------------------------------


def test_admin_may_do_anything(policy):
    assert policy.is_admin("U0ADMIN")
    assert policy.check("U0ADMIN", "ab" * 16, None, groups_never_asked) == Decision(True, "admin")
    assert policy.allowed_libraries("U0ADMIN", None, groups_never_asked) == "*"


def test_user_named_in_an_entry(policy):
    decision = policy.check("U0ALICE", LIB, "C0ANY", groups_never_asked)
    assert decision.allowed
    assert "[[allow]] entry 1" in decision.reason


def test_library_id_is_compared_in_lower_case(policy):
    assert policy.check("U0ALICE", LIB.upper(), "C0ANY", no_groups).allowed


def test_user_not_named_is_refused_with_the_missing_rule(policy):
    decision = policy.check("U0BOB", LIB, "C0ANY", no_groups)
    assert not decision.allowed
    assert decision.reason == (
        f"you (<@U0BOB>) are not named in any [[allow]] entry for library {LIB} "
        "(directly or through a user group)"
    )


def test_user_allowed_through_a_usergroup(policy):
    asked = []

    def groups_of(user_id):
        asked.append(user_id)
        return {"S0EDITORS"}

    decision = policy.check("U0CAROL", OTHER, "C0MEDIA", groups_of)
    assert decision.allowed
    assert "S0EDITORS" in decision.reason
    assert asked == ["U0CAROL"]


def test_groups_are_not_asked_when_no_entry_lists_groups(policy):
    assert not policy.check("U0BOB", LIB, "C0ANY", groups_never_asked).allowed


def test_channel_restriction(policy):
    def editors(user_id):
        return {"S0EDITORS"}

    decision = policy.check("U0CAROL", OTHER, "C0RANDOM", editors)
    assert not decision.allowed
    assert decision.reason == (
        "the [[allow]] entry for this library only allows channels <#C0MEDIA>, <#C0OPS>"
    )
    assert policy.check("U0CAROL", OTHER, "C0OPS", editors).allowed
    assert not policy.check("U0CAROL", OTHER, None, editors).allowed


def test_star_allows_every_library(policy):
    assert policy.check("W0BOSS", "ab" * 16, None, no_groups).allowed
    assert policy.allowed_libraries("W0BOSS", None, no_groups) == "*"


def test_allowed_libraries_for_help(policy):
    def editors(user_id):
        return {"S0EDITORS"}

    assert policy.allowed_libraries("U0ALICE", None, no_groups) == {LIB}
    assert policy.allowed_libraries("U0CAROL", "C0MEDIA", editors) == {OTHER}
    assert policy.allowed_libraries("U0CAROL", "C0RANDOM", editors) == set()
    assert policy.allowed_libraries("U0BOB", None, no_groups) == set()


def test_policy_lists_its_usergroups(policy):
    assert policy.usergroups == {"S0EDITORS"}


def test_from_dict():
    policy = Policy.from_dict({"allow": [{"libraries": [LIB], "users": ["U1"]}]})
    assert policy.check("U1", LIB, None, no_groups).allowed
    assert not policy.check("U2", LIB, None, no_groups).allowed


def test_example_policy_loads():
    policy = Policy.load(EXAMPLE)
    assert policy.deny_reason is None
    assert policy.is_admin("U012ADMIN")
    assert len(policy.rules) == 3
    assert policy.check("U0123ABCD", LIB, "C0RANDOM", no_groups).allowed


# -- malformed files ----------------------------------------------------------------------


def test_malformed_toml_names_the_file_and_line(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text('admins = ["U1"]\n\n[[allow]]\nlibraries = ["*"\nusers = ["U1"]\n')
    with pytest.raises(PolicyError) as info:
        Policy.load(path)
    message = str(info.value)
    assert str(path) in message
    assert "line 5" in message


def test_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_bytes(b'admins = ["\xff"]\n')
    with pytest.raises(PolicyError, match="not UTF-8"):
        Policy.load(path)


def test_unreadable_path_is_a_policy_error(tmp_path):
    with pytest.raises(PolicyError, match="cannot read"):
        Policy.load(tmp_path)


def test_unknown_top_level_key_names_the_line():
    message = policy_error('admins = ["U1"]\nadmin = ["U2"]\n')
    assert "unknown setting `admin`" in message
    assert "line 2" in message


def test_entry_missing_libraries_names_the_entry_and_line():
    text = f'[[allow]]\nlibraries = ["{LIB}"]\nusers = ["U1"]\n\n[[allow]]\nusers = ["U2"]\n'
    message = policy_error(text)
    assert "[[allow]] entry 2 has no `libraries`" in message
    assert "(line 5)" in message


def test_bad_user_id_names_the_entry_and_line():
    text = f'[[allow]]\nlibraries = ["{LIB}"]\nusers = ["U1"]\n\n[[allow]]\nlibraries = ["*"]\n'
    text += 'users = ["alice"]\n'
    message = policy_error(text)
    assert "[[allow]] entry 2" in message
    assert "'alice'" in message
    assert "Slack user ids" in message
    assert "(line 7)" in message


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ('users = ["U1"]\nusergroups = ["U2"]', "Slack user group ids (S…)"),
        ('users = ["U1"]\nchannels = ["general"]', "Slack channel ids"),
        ('users = "U1"', "`users` must be a list"),
        ("users = [1]", "Slack user ids"),
        ('users = ["U1"]\nchannel = ["C1"]', "unknown key `channel`"),
        ("", "names no `users` and no `usergroups`"),
    ],
)
def test_schema_errors_name_the_entry(entry, expected):
    message = policy_error(f'[[allow]]\nlibraries = ["*"]\n{entry}\n')
    assert "[[allow]] entry 1" in message
    assert expected in message
    assert "line" in message


@pytest.mark.parametrize(
    ("libraries", "expected"),
    [
        ("[]", "non-empty list"),
        ('"*"', "non-empty list"),
        ('["Marketing Library"]', "'Marketing Library'"),
        ("[42]", "library ids"),
    ],
)
def test_bad_libraries(libraries, expected):
    message = policy_error(f'[[allow]]\nlibraries = {libraries}\nusers = ["U1"]\n')
    assert "[[allow]] entry 1" in message
    assert expected in message
    assert "line 2" in message


def test_bad_admins():
    message = policy_error('admins = ["U1", "bob"]\n')
    assert "`admins`" in message
    assert "'bob'" in message
    assert "line 1" in message


def test_allow_must_be_tables():
    assert "[[allow]] tables" in policy_error('allow = ["x"]\n')


def test_inline_allow_tables_are_accepted():
    policy = Policy.from_text(f'allow = [{{libraries = ["{LIB}"], users = ["U1"]}}]\n')
    assert policy.check("U1", LIB, None, no_groups).allowed


# -- the user group cache -----------------------------------------------------------------


def test_cache_resolves_only_the_policy_groups():
    slack = FakeSlack({"S1": ["U1", "U2"], "S2": ["U2"], "S3": ["U1"]})
    cache = UsergroupCache(slack, group_ids={"S1", "S2"})
    assert cache.groups_of("U1") == {"S1"}
    assert cache.groups_of("U2") == {"S1", "S2"}
    assert cache.groups_of("U9") == set()
    assert sorted(slack.calls) == ["S1", "S2"]


def test_cache_expires_after_ttl():
    slack = FakeSlack({"S1": ["U1"]})
    clock = Clock()
    cache = UsergroupCache(slack, ttl=300, clock=clock, group_ids=["S1"])
    assert cache.groups_of("U1") == {"S1"}
    clock.now += 299
    assert cache.groups_of("U1") == {"S1"}
    assert slack.calls == ["S1"]
    slack.members["S1"] = []
    clock.now += 2
    assert cache.groups_of("U1") == set()
    assert slack.calls == ["S1", "S1"]


def test_slack_errors_fail_closed_and_are_retried_soon(caplog):
    slack = FakeSlack({"S1": ["U1"]}, fail_for={"S1"})
    clock = Clock()
    cache = UsergroupCache(slack, ttl=300, clock=clock, group_ids=["S1"], error_ttl=10)
    assert cache.groups_of("U1") == set()
    assert "no_such_subteam" in caplog.text
    assert cache.groups_of("U1") == set()
    assert slack.calls == ["S1"]
    slack.fail_for.clear()
    clock.now += 11
    assert cache.groups_of("U1") == {"S1"}
    assert slack.calls == ["S1", "S1"]


def test_not_ok_response_and_network_errors_fail_closed():
    class Broken:
        def __init__(self):
            self.calls = 0

        def usergroups_users_list(self, usergroup):
            self.calls += 1
            if usergroup == "S1":
                return {"ok": False, "error": "missing_scope"}
            raise TimeoutError("slow")

    cache = UsergroupCache(Broken(), group_ids=["S1", "S2"])
    assert cache.groups_of("U1") == set()


def test_cache_with_policy_end_to_end(policy):
    slack = FakeSlack({"S0EDITORS": ["U0CAROL"]})
    cache = UsergroupCache(slack, group_ids=policy.usergroups)
    assert policy.check("U0CAROL", OTHER, "C0MEDIA", cache.groups_of).allowed
    assert not policy.check("U0DAVE", OTHER, "C0MEDIA", cache.groups_of).allowed
    assert slack.calls == ["S0EDITORS"]


def test_set_group_ids_and_invalidate():
    slack = FakeSlack({"S1": ["U1"], "S2": ["U1"]})
    cache = UsergroupCache(slack, group_ids=["S1"])
    assert cache.groups_of("U1") == {"S1"}
    cache.set_group_ids(["S1", "S2"])
    assert cache.groups_of("U1") == {"S1", "S2"}
    cache.invalidate()
    cache.groups_of("U1")
    assert sorted(slack.calls) == ["S1", "S1", "S2", "S2"]


def test_cache_is_thread_safe_and_fetches_once():
    gate = threading.Event()

    class Slow(FakeSlack):
        def usergroups_users_list(self, usergroup):
            gate.wait(5)
            return super().usergroups_users_list(usergroup)

    slack = Slow({"S1": ["U1"]})
    cache = UsergroupCache(slack, group_ids=["S1"])
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.groups_of("U1"))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in threads:
        thread.join(5)
    assert results == [{"S1"}] * 8
    assert slack.calls == ["S1"]
