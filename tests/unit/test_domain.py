"""The domain tables, read as the contract states them (§2, §4)."""

import pytest

from audittrail.domain import TRANSITIONS
from audittrail.domain import ActionStatus
from audittrail.domain import Mode
from audittrail.domain import Transition
from audittrail.domain import expected_confirmation
from audittrail.domain import rule_for
from audittrail.domain import tier_of


@pytest.mark.parametrize(
    ("action_type", "tier"),
    [
        ("alert", 1),
        ("tag_trace", 1),
        ("create_incident", 1),
        ("throttle", 2),
        ("switch_model", 2),
        ("disable_flag", 2),
        ("kill_run", 3),
        ("rollback_deploy", 3),
        ("scale_down", 3),
    ],
)
def test_tier_is_derived_from_action_type(action_type, tier):
    assert tier_of(action_type) == tier


def test_unknown_action_type_has_no_tier():
    with pytest.raises(ValueError):
        tier_of("reboot_everything")


@pytest.mark.parametrize("status", [ActionStatus.REJECTED, ActionStatus.EXECUTED, ActionStatus.EXPIRED])
def test_final_statuses_have_no_outgoing_transition(status):
    assert all(rule_for(transition, status) is None for transition in Transition)


def test_transition_table_is_the_contracts_diagram():
    edges = {(rule.transition.value, rule.source.value, rule.target.value) for rule in TRANSITIONS}
    assert edges == {
        ("approve", "proposed", "approved"),
        ("reject", "proposed", "rejected"),
        ("reject", "approved", "rejected"),
        ("mark-executed", "approved", "executed"),
    }


def test_dry_run_refuses_approve_and_execute_but_not_reject():
    refused = {rule.transition for rule in TRANSITIONS if Mode.DRY_RUN in rule.refused_modes}
    assert refused == {Transition.APPROVE, Transition.MARK_EXECUTED}


@pytest.mark.parametrize(
    ("target_ref", "expected"),
    [("run_8f3a2c91d4e7", "run_8f3a"), ("pod-1", "pod-1"), ("exactly8", "exactly8"), ("r", "r")],
)
def test_confirmation_is_first_eight_characters_or_whole_ref(target_ref, expected):
    assert expected_confirmation(target_ref) == expected
