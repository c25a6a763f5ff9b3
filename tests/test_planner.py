"""The planner, table-driven: pure inputs, pure outputs, no I/O."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from sync.engine import HUBSPOT, LINES, QUICKBOOKS, Dependency, Filter, Line, Link, Record, SyncRules, plan

DIRECTIONS = ("hubspot_to_qbo", "qbo_to_hubspot", "two_way")


def rules(**overrides) -> SyncRules:
    base = SyncRules(
        direction="two_way",
        conflict_winner=HUBSPOT,
        fields=("name",),
        natural_key=lambda r: (r.fields.get("email") or "").strip().lower() or None,
    )
    return replace(base, **overrides)


def hs(record_id="h1", **fields) -> Record:
    return Record(HUBSPOT, record_id, fields)


def qb(record_id="q1", **fields) -> Record:
    return Record(QUICKBOOKS, record_id, fields)


def apply(result, hub: Record, qbo: Record) -> tuple[Record, Record]:
    """What the runtime would do: write the changes (as the remote stores them)."""
    for action in result.writes():
        if action.kind == "update" and action.target_side == HUBSPOT:
            hub = replace(hub, fields={**hub.fields, **action.changes})
        elif action.kind in ("update", "link") and action.target_side == QUICKBOOKS:
            qbo = replace(qbo, fields={**qbo.fields, **action.changes})
    return hub, qbo


def new_base(result, link: Link) -> Link:
    bases = [a.base_after for a in result.actions if a.link_id == link.id and a.base_after]
    return replace(link, base=bases[-1]) if bases else link


# --- the field merge: every cell of direction × winner × situation -----------------------------------

# situation: (base, hubspot, qbo)
SITUATIONS = {
    "neither": ("A", "A", "A"),
    "here": ("A", "H", "A"),  # changed in HubSpot only
    "there": ("A", "A", "Q"),  # changed in QBO only
    "both alike": ("A", "B", "B"),
    "both": ("A", "H", "Q"),
    "cleared here": ("A", None, "A"),
    "cleared there": ("A", "A", None),
    "winner blank": ("A", None, "Q"),  # cleared in HubSpot, changed in QBO
}
# expected (write to HubSpot, write to QBO, base after) per direction; "W" = depends on the winner
EXPECTED = {
    "two_way": {
        "neither": (None, None, "A"),
        "here": (None, "H", "H"),
        "there": ("Q", None, "Q"),
        "both alike": (None, None, "B"),
        "cleared here": (None, None, None),
        "cleared there": (None, None, None),
    },
    "hubspot_to_qbo": {
        "neither": (None, None, "A"),
        "here": (None, "H", "H"),
        "there": (None, None, "A"),
        "both alike": (None, None, "B"),
        "both": (None, "H", "H"),
        "cleared here": (None, None, None),
        "cleared there": (None, None, "A"),
        "winner blank": (None, None, None),
    },
    "qbo_to_hubspot": {
        "neither": (None, None, "A"),
        "here": (None, None, "A"),
        "there": ("Q", None, "Q"),
        "both alike": (None, None, "B"),
        "both": ("Q", None, "Q"),
        "cleared here": (None, None, "A"),
        "cleared there": (None, None, None),
        "winner blank": ("Q", None, "Q"),
    },
}
TWO_WAY_CONFLICTS = {  # (winner, situation) → expected
    (HUBSPOT, "both"): (None, "H", "H"),
    (QUICKBOOKS, "both"): ("Q", None, "Q"),
    (HUBSPOT, "winner blank"): ("Q", None, "Q"),  # HubSpot's blank does not overwrite QBO's value
    (QUICKBOOKS, "winner blank"): ("Q", None, "Q"),
}
CLEAR_WRITES = {
    ("two_way", "cleared here"): (None, None),
    ("two_way", "cleared there"): (None, None),
    ("hubspot_to_qbo", "cleared here"): (None, None),
    ("qbo_to_hubspot", "cleared there"): (None, None),
}


def expected_for(direction: str, winner: str, situation: str) -> tuple:
    if direction == "two_way" and situation in ("both", "winner blank"):
        return TWO_WAY_CONFLICTS[(winner, situation)]
    return EXPECTED[direction][situation]


CELLS = list(itertools.product(DIRECTIONS, (HUBSPOT, QUICKBOOKS), SITUATIONS))


@pytest.mark.parametrize(("direction", "winner", "situation"), CELLS)
def test_every_cell_of_the_field_merge(direction, winner, situation):
    base, hub_value, qbo_value = SITUATIONS[situation]
    hub, qbo = hs(name=hub_value), qb(name=qbo_value)
    link = Link(1, "h1", "q1", base={"name": base})
    result = plan([hub], [qbo], [link], rules(direction=direction, conflict_winner=winner))
    writes = {a.target_side: a.changes for a in result.writes()}
    to_hub, to_qbo, base_after = expected_for(direction, winner, situation)
    cleared = situation.startswith("cleared") and (direction, situation) in CLEAR_WRITES
    if cleared:  # a cleared field goes across as a blank
        target = QUICKBOOKS if situation == "cleared here" else HUBSPOT
        assert writes == {target: {"name": None}}
    else:
        assert writes.get(HUBSPOT, {}).get("name") == to_hub
        assert writes.get(QUICKBOOKS, {}).get("name") == to_qbo
        assert set(writes) == {s for s, v in ((HUBSPOT, to_hub), (QUICKBOOKS, to_qbo)) if v is not None}
    actions = [a for a in result.actions if a.link_id == 1]
    assert actions[-1].base_after["name"] == base_after


@pytest.mark.parametrize(("direction", "winner", "situation"), CELLS)
def test_a_two_way_or_one_way_sync_settles(direction, winner, situation):
    """Echo suppression: once the writes are made and the base stored, planning again writes nothing."""
    base, hub_value, qbo_value = SITUATIONS[situation]
    hub, qbo = hs(name=hub_value), qb(name=qbo_value)
    link = Link(1, "h1", "q1", base={"name": base})
    sync_rules = rules(direction=direction, conflict_winner=winner)
    first = plan([hub], [qbo], [link], sync_rules)
    hub, qbo = apply(first, hub, qbo)
    again = plan([hub], [qbo], [new_base(first, link)], sync_rules)
    assert again.is_settled(), [a.changes for a in again.writes()]


def test_edits_to_different_fields_on_both_sides_are_both_kept():
    sync_rules = rules(fields=("name", "phone"))
    link = Link(1, "h1", "q1", base={"name": "Ana", "phone": "1"})
    result = plan([hs(name="Ana Silva", phone="1")], [qb(name="Ana", phone="2")], [link], sync_rules)
    writes = {a.target_side: dict(a.changes) for a in result.writes()}
    assert writes == {QUICKBOOKS: {"name": "Ana Silva"}, HUBSPOT: {"phone": "2"}}
    assert result.writes()[0].base_after == {"name": "Ana Silva", "phone": "2"}


# --- new records: filters, keys, matching ---------------------------------------------------------------


def test_filters_gate_new_records_only():
    only_customers = Filter("billing contacts only", lambda r: r.fields.get("billing") is True)
    sync_rules = rules(filters={HUBSPOT: only_customers})
    new = hs("h2", name="New", email="new@example.com")
    linked = hs("h3", name="Linked changed", email="linked@example.com")
    link = Link(7, "h3", "q3", base={"name": "Linked"})
    result = plan([new, linked], [qb("q3", name="Linked", email="linked@example.com")], [link], sync_rules)
    (excluded,) = result.of_kind("exclude")
    assert excluded.source.id == "h2" and excluded.filter_name == "billing contacts only"
    (update,) = result.of_kind("update")
    assert update.source.id == "h3" and update.changes == {"name": "Linked changed"}  # keeps syncing


def test_a_filter_that_cannot_decide_fails_the_record_instead_of_guessing():
    def ambiguous(record):
        if record.fields.get("billing") == "several":
            return ("ambiguous billing contact", "its invoice has several contacts", "Keep one contact.")
        return None

    sync_rules = rules(
        filters={HUBSPOT: Filter("billing contacts", lambda r: r.fields.get("billing") == "one", ambiguous)}
    )
    result = plan([hs("h1", billing="several"), hs("h2", billing=None), hs("h3", billing="one")], [], [], sync_rules)
    (failed,) = result.of_kind("fail")
    assert (failed.source.id, failed.category, failed.fix) == ("h1", "ambiguous billing contact", "Keep one contact.")
    assert [a.source.id for a in result.of_kind("exclude")] == ["h2"]
    assert [a.source.id for a in result.of_kind("create")] == ["h3"]


def test_no_key_is_excluded_with_the_reason():
    result = plan([hs("h1", name="No Email")], [], [], rules(key_required=True))
    (excluded,) = result.of_kind("exclude")
    assert "no matching key" in excluded.reason and excluded.filter_name is None


def test_one_candidate_links_several_fail_none_creates():
    hub = hs("h1", name="Ana", email=" ANA@example.com ")
    one = plan([hub], [qb("q1", name="Ana B", email="ana@example.com")], [], rules())
    (link,) = one.of_kind("link")
    assert link.target_side == QUICKBOOKS and link.target_id == "q1" and link.changes == {"name": "Ana"}
    two = plan([hub], [qb("q1", email="ana@example.com"), qb("q2", email="Ana@example.com")], [], rules())
    (failed,) = two.of_kind("fail")
    assert failed.category == "ambiguous match" and "q1" in failed.reason and "q2" in failed.reason
    none = plan([hub], [qb("q9", email="other@example.com")], [], rules())
    creates = {a.source.id: a for a in none.of_kind("create")}
    assert creates["h1"].target_side == QUICKBOOKS and creates["h1"].changes == {"name": "Ana"}
    assert creates["q9"].target_side == HUBSPOT


def test_a_first_link_goes_from_the_winner_to_the_loser_whichever_record_was_new():
    """Two-way with QuickBooks winning: the HubSpot record is planned first, yet the link's source is the
    QBO record and its target the HubSpot one (a source equal to its target would link nothing)."""
    result = plan(
        [hs("h1", email="a@example.com", name="From HubSpot")],
        [qb("q1", email="a@example.com", name="From QBO")],
        [],
        rules(conflict_winner=QUICKBOOKS),
    )
    (link,) = result.of_kind("link")
    assert (link.source.side, link.source.id, link.target_side, link.target_id) == (QUICKBOOKS, "q1", HUBSPOT, "h1")
    assert link.changes == {"name": "From QBO"}


def test_first_link_fills_a_blank_winner_from_the_other_record():
    result = plan(
        [hs("h1", email="a@example.com", name=None)],
        [qb("q1", email="a@example.com", name="From QBO")],
        [],
        rules(conflict_winner=HUBSPOT),
    )
    (link,) = result.of_kind("link")
    assert link.changes == {}
    (fill,) = result.of_kind("update")
    assert fill.target_side == HUBSPOT and fill.changes == {"name": "From QBO"}
    assert link.base_after == {"name": "From QBO"}


def test_a_key_used_by_a_linked_record_fails_instead_of_duplicating():
    link = Link(1, "h1", "q1", base={"name": "Ana"})
    result = plan(
        [hs("h1", name="Ana", email="ana@example.com"), hs("h2", name="Copy", email="ana@example.com")],
        [qb("q1", name="Ana", email="ana@example.com")],
        [link],
        rules(),
    )
    (failed,) = result.of_kind("fail")
    assert failed.source.id == "h2" and failed.category == "key in use"
    assert not result.of_kind("create")


def test_a_changed_email_never_creates_a_duplicate():
    link = Link(1, "h1", "q1", base={"name": "Ana"})
    result = plan(
        [hs("h1", name="Ana", email="new@example.com")],
        [qb("q1", name="Ana", email="old@example.com")],
        [link],
        rules(),
    )
    assert not result.of_kind("create") and not result.of_kind("link")


def test_one_way_sync_does_not_start_records_from_the_target_side():
    result = plan([], [qb("q1", name="Only in QBO", email="x@example.com")], [], rules(direction="hubspot_to_qbo"))
    assert not result.writes() and "do not start syncing" in result.actions[0].reason


@pytest.mark.parametrize("direction", ["hubspot_to_qbo", "qbo_to_hubspot"])
def test_one_way_sync_links_a_new_source_record_to_its_match_on_the_target_side(direction):
    source_is_hubspot = direction == "hubspot_to_qbo"
    hub, qbo = hs("h1", name="New", email="dee@example.com"), qb("q1", name="Old", email="DEE@example.com")
    result = plan([hub], [qbo], [], rules(direction=direction))
    (link,) = result.of_kind("link")
    assert link.source.id == ("h1" if source_is_hubspot else "q1")
    assert link.target_id == ("q1" if source_is_hubspot else "h1")
    assert not result.of_kind("create") and not result.of_kind("skip")


# --- prerequisites -------------------------------------------------------------------------------------------


def test_waits_for_a_prerequisite_and_is_released_by_its_link():
    customer = Dependency("contacts", HUBSPOT, "c1")
    invoice = Record(HUBSPOT, "i1", {"name": "INV-1"}, depends_on=(customer,))
    linked: set[Dependency] = set()
    waiting = plan([invoice], [], [], rules(), is_linked=lambda d: d in linked)
    (wait,) = waiting.of_kind("wait")
    assert wait.waiting_for == (customer,) and "contacts c1 in hubspot" in wait.reason
    assert waiting.waiting_on() == {customer}
    linked.add(customer)
    released = plan([invoice], [], [], rules(), is_linked=lambda d: d in linked)
    assert [a.kind for a in released.actions] == ["create"]


# --- compound records -------------------------------------------------------------------------------------------


def invoice_rules() -> SyncRules:
    return rules(fields=("number",), line_fields=("quantity", "price"))


def test_a_new_invoice_creates_with_its_lines():
    invoice = Record(HUBSPOT, "i1", {"number": "1001"}, lines=(Line("l1", {"quantity": 2, "price": 10}),))
    (create,) = plan([invoice], [], [], invoice_rules()).of_kind("create")
    assert create.changes[LINES] == {"add": [{"key": "l1", "fields": {"quantity": 2, "price": 10}}]}


def test_line_changes_added_removed_and_changed_on_both_sides():
    link = Link(
        1,
        "i1",
        "q1",
        base={
            "number": "1001",
            LINES: {
                "l1": {"quantity": 1, "price": 10},
                "l2": {"quantity": 1, "price": 20},
                "l3": {"quantity": 1, "price": 30},
            },
        },
        line_pairs={"l1": "1", "l2": "2", "l3": "3"},
    )
    hub = Record(
        HUBSPOT,
        "i1",
        {"number": "1001"},
        lines=(
            Line("l1", {"quantity": 5, "price": 10}),  # quantity changed in HubSpot
            Line("l2", {"quantity": 1, "price": 20}),  # price changed in QBO (below)
            # l3 removed in HubSpot
            Line("l4", {"quantity": 1, "price": 40}),  # added in HubSpot
        ),
    )
    qbo = Record(
        QUICKBOOKS,
        "q1",
        {"number": "1001"},
        lines=(
            Line("1", {"quantity": 1, "price": 10}),
            Line("2", {"quantity": 1, "price": 25}),
            Line("3", {"quantity": 1, "price": 30}),
            Line("9", {"quantity": 3, "price": 5}),  # added in QBO
        ),
    )
    result = plan([hub], [qbo], [link], invoice_rules())
    writes = {a.target_side: a.changes[LINES] for a in result.writes()}
    assert writes[QUICKBOOKS] == {
        "add": [{"key": "l4", "fields": {"quantity": 1, "price": 40}}],
        "remove": ["3"],
        "update": {"1": {"quantity": 5}},
    }
    assert writes[HUBSPOT] == {
        "add": [{"key": "q:9", "fields": {"quantity": 3, "price": 5}}],
        "update": {"l2": {"price": 25}},
    }
    base_lines = result.writes()[0].base_after[LINES]
    assert base_lines["l1"] == {"quantity": 5, "price": 10} and base_lines["l2"] == {"quantity": 1, "price": 25}
    assert "l3" not in base_lines and "l4" in base_lines and "q:9" in base_lines


def test_the_same_new_line_on_both_sides_is_adopted_as_a_pair_not_added_twice():
    """A write interrupted after the new line reached the other side but before its pair was recorded:
    the next plan finds it on both sides and pairs them, writing nothing."""
    link = Link(
        1, "i1", "q1", base={"number": "1001", LINES: {"l1": {"quantity": 1, "price": 10}}}, line_pairs={"l1": "1"}
    )
    hub = Record(
        HUBSPOT, "i1", {"number": "1001"},
        lines=(Line("l1", {"quantity": 1, "price": 10}), Line("l7", {"quantity": 2, "price": 3})),
    )  # fmt: skip
    qbo = Record(
        QUICKBOOKS, "q1", {"number": "1001"},
        lines=(
            Line("1", {"quantity": 1, "price": 10}),
            Line("5", {"quantity": 2, "price": 3}),
            Line("6", {"quantity": 9, "price": 1}),
        ),
    )  # fmt: skip
    result = plan([hub], [qbo], [link], invoice_rules())
    (write,) = result.writes()  # only QBO's own new line 6 crosses; 5 and l7 are the same line
    assert write.target_side == HUBSPOT and write.changes[LINES] == {
        "add": [{"key": "q:6", "fields": {"quantity": 9, "price": 1}}]
    }
    assert write.line_pairs == {"l1": "1", "l7": "5"}
    assert write.base_after[LINES]["l7"] == {"quantity": 2, "price": 3}


def test_a_line_waits_for_its_product():
    product = Dependency("products", HUBSPOT, "p1")
    invoice = Record(HUBSPOT, "i1", {"number": "1"}, lines=(Line("l1", {"quantity": 1}, depends_on=(product,)),))
    link = Link(1, "i1", "q1", base={"number": "1", LINES: {}})
    result = plan(
        [invoice],
        [Record(QUICKBOOKS, "q1", {"number": "1"}, lines=())],
        [link],
        invoice_rules(),
        is_linked=lambda d: False,
    )
    assert [a.kind for a in result.actions] == ["wait"] and result.waiting_on() == {product}


# --- deletes and merges ------------------------------------------------------------------------------------------


def test_a_delete_leaves_a_tombstone_and_is_never_recreated():
    link = Link(1, "h1", "q1", base={"name": "A"})
    result = plan([Record(HUBSPOT, "h1", {"name": "A"}, deleted=True)], [qb("q1", name="A")], [link], rules())
    assert [a.kind for a in result.actions] == ["tombstone"] and not result.writes()
    tombstoned = replace(link, tombstone=HUBSPOT)
    later = plan([], [qb("q1", name="A changed")], [tombstoned], rules())
    assert not later.writes() and "never recreated" in later.actions[0].reason


def test_deletes_propagate_when_the_policy_says_so():
    link = Link(1, "h1", "q1", base={"name": "A"})
    result = plan(
        [Record(HUBSPOT, "h1", {}, deleted=True)], [qb("q1", name="A")], [link], rules(delete_policy="propagate")
    )
    (delete,) = result.of_kind("delete")
    assert delete.target_side == QUICKBOOKS and delete.target_id == "q1"
    one_way = plan(
        [Record(HUBSPOT, "h1", {}, deleted=True)],
        [qb("q1", name="A")],
        [link],
        rules(delete_policy="propagate", direction="qbo_to_hubspot"),
    )
    assert [a.kind for a in one_way.actions] == ["tombstone"]


def test_a_merge_moves_the_link_to_the_survivor():
    link = Link(1, "h2", "q1", base={"name": "A"})
    merged = Record(HUBSPOT, "h2", {}, merged_into="h1")
    result = plan([merged, hs("h1", name="A")], [qb("q1", name="A")], [link], rules())
    (relink,) = result.of_kind("relink")
    assert relink.link_id == 1 and relink.target_id == "h1"
    assert result.of_kind("create") == [] and result.of_kind("fail") == []  # the survivor is not new


def test_the_survivor_of_a_merge_syncs_its_values_through_the_link_it_takes_over():
    link = Link(1, "h2", "q1", base={"name": "Old", "email": "old@example.com"})
    merged = Record(HUBSPOT, "h2", {}, merged_into="h1")
    survivor = hs("h1", name="Old", email="new@example.com")
    qbo = qb("q1", name="Old", email="old@example.com")
    result = plan([merged, survivor], [qbo], [link], rules(fields=("name", "email")))
    assert [a.kind for a in result.actions] == ["relink", "update"]
    (update,) = result.of_kind("update")
    assert (update.link_id, update.target_side, update.target_id) == (1, QUICKBOOKS, "q1")
    assert update.changes == {"email": "new@example.com"}


def test_two_links_merging_into_one_is_a_planned_conflict():
    links = [Link(1, "h2", "q1", base={}), Link(2, "h1", "q2", base={})]
    merged, survivor = Record(HUBSPOT, "h2", {}, merged_into="h1"), hs("h1", email="h1@example.com")
    result = plan([merged, survivor], [qb("q1", email="q1@example.com"), qb("q2")], links, rules())
    (failed,) = result.of_kind("fail")
    assert failed.category == "merge conflict" and failed.link_id == 1
    assert result.of_kind("create") == []  # q1 keeps its (failed) link: it is not a new record


def test_an_empty_string_and_a_missing_value_are_the_same_blank():
    link = Link(1, "h1", "q1", base={"name": None})
    result = plan([hs(name="")], [qb(name=None)], [link], rules())
    assert result.is_settled()
    conflict = plan([hs(name="")], [qb(name="Q")], [Link(1, "h1", "q1", base={"name": "A"})], rules())
    assert {a.target_side: dict(a.changes) for a in conflict.writes()} == {HUBSPOT: {"name": "Q"}}


def test_the_engine_is_pure():
    """sync/engine imports no HTTP client, SDK, database or Flask."""
    import subprocess
    import sys

    code = (
        "import sys, sync.engine; bad = [m for m in ('requests', 'sqlalchemy', 'hubspot', 'quickbooks', 'flask', "
        "'redis', 'urllib3') if m in sys.modules]; print(bad)"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"


def test_an_already_exists_answer_becomes_a_link():
    from sync.engine import link_after_duplicate

    result = link_after_duplicate(hs("h1", name="Acme", email="a@example.com"), qb("q7", name="ACME Inc"), rules())
    (link,) = result.of_kind("link")
    assert link.target_id == "q7" and link.changes == {"name": "Acme"} and link.base_after == {"name": "Acme"}
