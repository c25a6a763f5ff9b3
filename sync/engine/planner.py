"""The planner: given both sides' records, the links and the rules, decide what to write. Pure.

    plan(hubspot_records, qbo_records, links, rules, is_linked) -> Plan

Decisions, in order, for every record:

1. **Merges** — a record merged into a survivor moves its link to the survivor (relink); if
   the survivor has a link of its own, two links would become one: a planned failure
   ("merge conflict"), never a crash.
2. **Links first** — a linked pair is merged field by field against the link's base:
   changed on one side only → goes to the other side (a cleared field too); changed on both
   → the configured winner (the direction's source in a one-way sync), except that a blank
   in the winner never overwrites a value; changed on neither → nothing. Lines of compound
   records are merged the same way, line by line (added, removed, changed). Filters do not
   apply: a linked record keeps syncing.
3. **Deletes** — a deleted record leaves a tombstone on its link, and a tombstoned record is
   never recreated; with the "propagate" policy the other side is deleted instead.
4. **New records** — the direction's filter decides whether a record may start syncing
   (exclude, naming the filter); then the natural key: none → excluded (when the object needs
   one); shared with another record on its own side → failed (when keys must be unique there,
   e.g. "duplicate SKU"); one unlinked candidate on the other side → link (and merge their
   fields); several → failed "ambiguous match"; a candidate already linked to another → failed
   "key in use"; none → create.
5. **Prerequisites** — a record whose dependencies (its customer, its items) are not linked
   yet waits, saying for what; the runtime plans it again when the link appears.

`base_after` on each write is the agreed value of every field; the runtime replaces it with
what it reads back after the write (both APIs normalize), which is what makes our own write,
coming back as a change, plan nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from sync.engine.types import (
    HUBSPOT,
    LINES,
    QUICKBOOKS,
    Action,
    Dependency,
    Line,
    Link,
    Plan,
    Record,
    SyncRules,
    flows,
    narrowed,
    other,
)

BLANK = (None, "")


def plan(
    hubspot_records: Iterable[Record],
    qbo_records: Iterable[Record],
    links: Iterable[Link],
    rules: SyncRules,
    is_linked: Callable[[Dependency], bool] = lambda dependency: True,
) -> Plan:
    records = {HUBSPOT: {r.id: r for r in hubspot_records}, QUICKBOOKS: {r.id: r for r in qbo_records}}
    links = list(links)
    by_id = {
        HUBSPOT: {link.hubspot_id: link for link in links if link.hubspot_id},
        QUICKBOOKS: {link.qbo_id: link for link in links if link.qbo_id},
    }
    result = Plan()
    done: set[tuple[str, str]] = set()

    for side in (HUBSPOT, QUICKBOOKS):
        for record in records[side].values():
            if record.merged_into is not None:
                merged_link = by_id[side].get(record.id)
                moved = _plan_merge(record, by_id, result)
                done.add((side, record.id))
                if merged_link is not None and moved is None:  # a conflict: its partner is not new either
                    done.add((other(side), merged_link.id_on(other(side))))
                if moved is not None:  # the survivor is planned against the link it takes over
                    links = [moved if link.id == moved.id else link for link in links]
                    by_id[side].pop(record.id, None)
                    by_id[side][record.merged_into] = moved

    for link in links:
        hub, qbo = records[HUBSPOT].get(link.hubspot_id or ""), records[QUICKBOOKS].get(link.qbo_id or "")
        if hub is None and qbo is None:
            continue
        if (HUBSPOT, link.hubspot_id) in done or (QUICKBOOKS, link.qbo_id) in done:
            continue
        done.update({(HUBSPOT, link.hubspot_id), (QUICKBOOKS, link.qbo_id)})
        _plan_linked(link, hub, qbo, rules, is_linked, result)

    keyed = {side: _index_by_key(records[side].values(), rules) for side in (HUBSPOT, QUICKBOOKS)}
    # The side that flows goes first: in a one-way sync a new record must find its match on the
    # other side before that match is set aside as "does not start syncing".
    for side in sorted((HUBSPOT, QUICKBOOKS), key=lambda s: not flows(rules.direction, s)):
        for record in records[side].values():
            if (side, record.id) in done:
                continue
            done.add((side, record.id))
            _plan_new(record, records, by_id, keyed, rules, is_linked, result, done)
    return result


# --- merges ---------------------------------------------------------------------------------------------


def _plan_merge(record: Record, by_id, result: Plan) -> Link | None:
    """A relink returns the link as it is once moved to the survivor."""
    merged_link = by_id[record.side].get(record.id)
    survivor_link = by_id[record.side].get(record.merged_into)
    if merged_link is None:
        result.add(Action("skip", record, reason="merged away; it had no link"))
    elif survivor_link is not None and survivor_link.id != merged_link.id:
        result.add(
            Action(
                "fail",
                record,
                link_id=merged_link.id,
                category="merge conflict",
                reason=f"{record.id} was merged into {record.merged_into}, and both are linked to "
                "different records on the other side",
                fix="Merge or delete the duplicate on the other side, then retry.",
            )
        )
    else:
        result.add(
            Action(
                "relink",
                record,
                target_side=record.side,
                target_id=record.merged_into,
                link_id=merged_link.id,
                reason=f"merged into {record.merged_into}: the link follows",
            )
        )
        ids = {"hubspot_id": record.merged_into} if record.side == HUBSPOT else {"qbo_id": record.merged_into}
        return replace(merged_link, **ids)
    return None


# --- linked pairs -----------------------------------------------------------------------------------------


def _plan_linked(link: Link, hub: Record | None, qbo: Record | None, rules: SyncRules, is_linked, result: Plan) -> None:
    pair = {HUBSPOT: hub, QUICKBOOKS: qbo}
    if link.tombstone:
        result.add(
            Action(
                "skip", hub or qbo, link_id=link.id, reason=f"tombstoned: deleted in {link.tombstone}; never recreated"
            )
        )
        return
    for side in (HUBSPOT, QUICKBOOKS):
        record = pair[side]
        if record is not None and record.deleted:
            target = other(side)
            if rules.delete_policy == "propagate" and flows(rules.direction, side) and pair[target] is not None:
                result.add(
                    Action(
                        "delete",
                        record,
                        target_side=target,
                        target_id=link.id_on(target),
                        link_id=link.id,
                        reason=f"deleted in {side}; deletes are propagated",
                    )
                )
            else:
                result.add(
                    Action(
                        "tombstone",
                        record,
                        link_id=link.id,
                        reason=f"deleted in {side}; the other side is kept (deletes are not propagated)",
                    )
                )
            return
    if hub is None or qbo is None:
        result.add(
            Action("skip", hub or qbo, link_id=link.id, reason="the other side of the link was not read in this run")
        )
        return
    waiting = _unmet(hub, qbo, is_linked)
    if waiting:
        result.add(
            Action(
                "wait",
                hub,
                link_id=link.id,
                waiting_for=waiting,
                reason="waiting for " + ", ".join(str(d) for d in waiting),
            )
        )
        return
    changes = {HUBSPOT: {}, QUICKBOOKS: {}}
    base_after: dict[str, Any] = {}
    for name in rules.fields:
        outcome = _merge_field(link.base.get(name), hub.fields.get(name), qbo.fields.get(name), rules, name)
        base_after[name] = outcome.value
        for side, value in outcome.writes.items():
            changes[side][name] = value
    line_pairs = None
    if hub.lines is None or qbo.lines is None:  # lines not known on one side (a voided document): kept
        if LINES in link.base:
            base_after[LINES] = link.base[LINES]
    else:
        line_changes, base_lines, adopted = _merge_lines(link, hub.lines, qbo.lines, rules)
        base_after[LINES] = base_lines
        line_pairs = {**link.line_pairs, **adopted} if adopted else None
        for side, change in line_changes.items():
            if change:
                changes[side][LINES] = change
    wrote = False
    for target in (QUICKBOOKS, HUBSPOT):
        if changes[target]:
            wrote = True
            result.add(
                Action(
                    "update",
                    pair[other(target)],
                    target_side=target,
                    target_id=pair[target].id,
                    link_id=link.id,
                    changes=changes[target],
                    base_after=base_after,
                    reason="changed in " + other(target),
                    line_pairs=line_pairs,
                )
            )
    if not wrote:
        result.add(
            Action(
                "skip",
                hub,
                link_id=link.id,
                base_after=base_after,
                reason="in sync" if base_after == dict(link.base) and not line_pairs else "in sync (base refreshed)",
                line_pairs=line_pairs,
            )
        )


class _Outcome:
    def __init__(self, value: Any, writes: dict[str, Any] | None = None) -> None:
        self.value, self.writes = value, writes or {}


def _same(a: Any, b: Any) -> bool:
    return (a in BLANK and b in BLANK) or a == b


def _merge_field(base: Any, hub: Any, qbo: Any, rules: SyncRules, name: str = "", line: bool = False) -> _Outcome:
    """The three-way merge of one field (in its own direction: `rules.field_directions`, or for a line's
    field `rules.line_field_directions`)."""
    own = (rules.line_field_directions if line else rules.field_directions).get(name)
    direction = narrowed(rules.direction, own)
    hub_changed, qbo_changed = not _same(hub, base), not _same(qbo, base)
    if _same(hub, qbo):
        return _Outcome(hub)  # equal (or both changed alike): settled
    if hub_changed and not qbo_changed:
        return _Outcome(hub, {QUICKBOOKS: hub}) if flows(direction, HUBSPOT) else _Outcome(base)
    if qbo_changed and not hub_changed:
        return _Outcome(qbo, {HUBSPOT: qbo}) if flows(direction, QUICKBOOKS) else _Outcome(base)
    # Changed on both sides, differently: a conflict.
    if direction == "none":
        return _Outcome(base)
    if direction == "two_way":
        winner = rules.conflict_winner
    else:
        winner = HUBSPOT if direction == "hubspot_to_qbo" else QUICKBOOKS
    values = {HUBSPOT: hub, QUICKBOOKS: qbo}
    if values[winner] in BLANK:  # a blank in the winner never overwrites a value
        loser = other(winner)
        if flows(direction, loser):
            return _Outcome(values[loser], {winner: values[loser]})  # the only value, on both sides
        return _Outcome(values[winner])  # one-way: nothing crosses; the loser's edit stays its own
    return _Outcome(values[winner], {other(winner): values[winner]})


def _merge_lines(
    link: Link, hub_lines: tuple[Line, ...], qbo_lines: tuple[Line, ...], rules: SyncRules
) -> tuple[dict[str, dict], dict[str, dict], dict[str, str]]:
    """Three-way merge of a compound record's lines, keyed by the HubSpot line id when paired.

    A line new on both sides with the same fields is one line, not two: it is adopted as a pair
    (returned as {hubspot line id: qbo line id}). That is how a write interrupted between creating
    lines and recording their pairs finishes without duplicating them."""
    qbo_to_hub = {q: h for h, q in link.line_pairs.items()}
    hub_by_key = {line.id: line for line in hub_lines}
    qbo_by_key = {qbo_to_hub.get(line.id, f"q:{line.id}"): line for line in qbo_lines}
    base_lines: Mapping[str, Mapping[str, Any]] = link.base.get(LINES, {})
    adopted: dict[str, str] = {}
    loose_qbo = [key for key in qbo_by_key if key.startswith("q:") and key not in base_lines]
    for key, hub in hub_by_key.items():
        if key in base_lines or key in qbo_by_key:
            continue
        twin = next((q for q in loose_qbo if _same_line(hub, qbo_by_key[q], rules)), None)
        if twin is not None:
            loose_qbo.remove(twin)
            qbo_line = qbo_by_key.pop(twin)
            qbo_by_key[key] = qbo_line
            adopted[key] = qbo_line.id
    changes = {HUBSPOT: {"add": [], "remove": [], "update": {}}, QUICKBOOKS: {"add": [], "remove": [], "update": {}}}
    base_after: dict[str, dict] = {}
    for key in sorted(set(hub_by_key) | set(qbo_by_key) | set(base_lines)):
        hub, qbo, base = hub_by_key.get(key), qbo_by_key.get(key), base_lines.get(key)
        if base is None and key in adopted:  # the same new line on both sides
            base_after[key] = {name: hub.fields.get(name) for name in rules.line_fields}
            continue
        if base is None:  # a line added on one side
            for source, line in ((HUBSPOT, hub), (QUICKBOOKS, qbo)):
                if line is not None and (hub is None or qbo is None) and flows(rules.direction, source):
                    changes[other(source)]["add"].append({"key": key, "fields": dict(line.fields)})
                    base_after[key] = dict(line.fields)
            continue
        if hub is None or qbo is None:  # removed on one side
            removed_on = HUBSPOT if hub is None else QUICKBOOKS
            survivor = qbo if hub is None else hub
            if flows(rules.direction, removed_on) and survivor is not None:
                target_id = survivor.id
                changes[other(removed_on)]["remove"].append(target_id)
            elif survivor is not None:
                base_after[key] = dict(base)
            continue
        merged, writes = {}, {HUBSPOT: {}, QUICKBOOKS: {}}
        for name in rules.line_fields:
            outcome = _merge_field(base.get(name), hub.fields.get(name), qbo.fields.get(name), rules, name, line=True)
            merged[name] = outcome.value
            for side, value in outcome.writes.items():
                writes[side][name] = value
        base_after[key] = merged
        for side in (HUBSPOT, QUICKBOOKS):
            if writes[side]:
                line_id = hub.id if side == HUBSPOT else qbo.id
                changes[side]["update"][line_id] = writes[side]
    compact = {side: {k: v for k, v in change.items() if v} for side, change in changes.items()}
    return compact, base_after, adopted


def _same_line(hub: Line, qbo: Line, rules: SyncRules) -> bool:
    return all(_same(hub.fields.get(name), qbo.fields.get(name)) for name in rules.line_fields)


def _unmet(hub: Record | None, qbo: Record | None, is_linked) -> tuple[Dependency, ...]:
    needed = []
    for record in (hub, qbo):
        if record is None:
            continue
        needed += list(record.depends_on)
        for line in record.lines or ():
            needed += list(line.depends_on)
    return tuple(dict.fromkeys(d for d in needed if not is_linked(d)))


# --- new records ------------------------------------------------------------------------------------------


def _index_by_key(records: Iterable[Record], rules: SyncRules) -> dict[str, list[Record]]:
    index: dict[str, list[Record]] = {}
    for record in records:
        if record.deleted or record.merged_into is not None:
            continue
        key = rules.natural_key(record)
        if key:
            index.setdefault(key, []).append(record)
    return index


def _plan_new(
    record: Record, records, by_id, keyed, rules: SyncRules, is_linked, result: Plan, done: set[tuple[str, str]]
) -> None:
    side, target = record.side, other(record.side)
    if record.deleted:
        result.add(Action("skip", record, reason="deleted before it was ever linked"))
        return
    if not flows(rules.direction, side):
        result.add(
            Action(
                "skip", record, reason=f"the sync runs {rules.direction}: records new in {side} do not start syncing"
            )
        )
        return
    sync_filter = rules.filters.get(side)
    if sync_filter is not None and not sync_filter.accepts(record):
        failure = sync_filter.failure(record) if sync_filter.failure else None
        if failure is not None:
            category, reason, fix = failure
            result.add(Action("fail", record, category=category, reason=reason, fix=fix, filter_name=sync_filter.name))
            return
        result.add(
            Action(
                "exclude",
                record,
                filter_name=sync_filter.name,
                reason=f"left out by the filter “{sync_filter.name}” (filters decide what starts syncing)",
            )
        )
        return
    key = rules.natural_key(record)
    if key is None and rules.key_required:
        result.add(Action("exclude", record, reason=rules.key_missing_reason))
        return
    twins = [r for r in keyed[side].get(key, []) if r.id != record.id] if key and rules.duplicate_key else []
    if twins:
        category, fix = rules.duplicate_key
        named = ", ".join(sorted([record.id, *(r.id for r in twins)]))
        result.add(
            Action("fail", record, category=category, reason=f"{side} records {named} share the key {key}", fix=fix)
        )
        return
    candidates = [c for c in keyed[target].get(key, []) if key] if key else []
    unlinked = [c for c in candidates if c.id not in by_id[target] and (target, c.id) not in done]
    taken = [c for c in candidates if c.id in by_id[target]]
    if len(unlinked) > 1:
        result.add(
            Action(
                "fail",
                record,
                category="ambiguous match",
                reason=f"{len(unlinked)} records in {target} have the key {key}: " + ", ".join(c.id for c in unlinked),
                fix="Merge or change the duplicates so that one record has this key, then retry.",
            )
        )
        return
    waiting = _unmet(record, None, is_linked)
    if waiting:
        result.add(
            Action("wait", record, waiting_for=waiting, reason="waiting for " + ", ".join(str(d) for d in waiting))
        )
        return
    if len(unlinked) == 1:
        match = unlinked[0]
        done.add((target, match.id))
        _plan_first_link(record, match, rules, result)
        return
    if taken:
        result.add(
            Action(
                "fail",
                record,
                category="key in use",
                reason=f"{target} record {taken[0].id} has the key {key} but is linked to another record",
                fix="Two records share this key on one side: merge them, or change the key of one.",
            )
        )
        return
    fields = {
        name: record.fields.get(name)
        for name in (*rules.fields, *rules.create_fields)
        if record.fields.get(name) not in BLANK
    }
    changes: dict[str, Any] = dict(fields)
    if record.lines is not None:
        changes[LINES] = {"add": [{"key": line.id, "fields": dict(line.fields)} for line in record.lines]}
    result.add(
        Action(
            "create",
            record,
            target_side=target,
            changes=changes,
            base_after={
                **{n: record.fields.get(n) for n in rules.fields},
                **({LINES: {line.id: dict(line.fields) for line in record.lines}} if record.lines else {}),
            },
            reason=f"new in {side}",
        )
    )


def _plan_first_link(record: Record, match: Record, rules: SyncRules, result: Plan) -> None:
    """Two records found to be the same: link them, and make their fields agree."""
    pair = {record.side: record, match.side: match}
    if rules.direction == "two_way":
        winner = rules.conflict_winner
    else:
        winner = HUBSPOT if rules.direction == "hubspot_to_qbo" else QUICKBOOKS
    loser = other(winner)
    changes, fill_winner, base_after = {}, {}, {}
    for name in rules.fields:
        won, lost = pair[winner].fields.get(name), pair[loser].fields.get(name)
        if won in BLANK and lost not in BLANK:  # a blank never overwrites a value
            if flows(rules.direction, loser):
                fill_winner[name] = lost
                base_after[name] = lost
            else:
                base_after[name] = won
            continue
        base_after[name] = won
        if not _same(won, lost):
            changes[name] = won
    # The link is written from the winner's side (its values go to the loser), whichever of the two was
    # being planned: with the new record as the loser, source and target would be the same record.
    result.add(
        Action(
            "link",
            pair[winner],
            target_side=loser,
            target_id=pair[loser].id,
            changes=changes,
            base_after=base_after,
            reason=f"matched by key with {match.side} record {match.id}",
        )
    )
    if fill_winner:
        result.add(
            Action(
                "update",
                pair[loser],
                target_side=winner,
                target_id=pair[winner].id,
                changes=fill_winner,
                base_after=base_after,
                reason="filling blanks from the record it was matched with",
            )
        )


def link_after_duplicate(record: Record, existing: Record, rules: SyncRules) -> Plan:
    """A create was answered "already exists" (HubSpot 409, QBO 6240): link the two records instead, and
    make their fields agree, exactly as a match by key would have."""
    result = Plan()
    _plan_first_link(record, existing, rules, result)
    return result
