"""Carrying out a plan: every write made safely, and every outcome kept on the record's row.

- a create is stored as a *pending write* (with its request id) before it is sent; QBO creates
  carry that id as `requestid`, so a repeat after a crash gets QBO's first answer; HubSpot creates
  are upserts on the object type's id property, so a repeat updates instead of duplicating. A run
  that finds a pending write finishes it first (`finish_pending_writes`).
- updates send only the changed fields (QBO: a sparse body with the SyncToken just read; a stale
  one (5010) means read again and plan again). A compound record's lines go in a full update of
  the QBO document (QBO replaces all lines); on HubSpot its line items are created, updated and
  archived one by one, each associated with the record.
- the link's base is what the target answered after the write, so our own write read back later
  plans nothing.
- failures are kept on the record's row with their category, explanation and advice, and retried
  with backoff.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

from sync.clients import errors
from sync.engine import HUBSPOT, LINES, QUICKBOOKS, Action, Record
from sync.engine.types import flows, narrowed
from sync.locks import LockLost
from sync.objects.base import ObjectType, RunContext
from sync.reader import Reader
from sync.store.links import id_attribute
from sync.store.models import RecordLink, utcnow

QBO_BATCH, HUBSPOT_BATCH = 30, 100  # the APIs' batch sizes
RETRY_BACKOFF = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
)


def category_of(error: errors.ApiError, kind: ObjectType | None = None) -> str:
    """The failure category a record is kept under (the object type may name its own first)."""
    named = kind.failure_category(error) if kind is not None else None
    if named:
        return named
    if isinstance(error, errors.Duplicate):
        return "duplicate display name" if error.side == QUICKBOOKS and error.code == "6240" else "duplicate"
    if isinstance(error, errors.ValidationFailed):
        return f"refused by {error.side}"
    if isinstance(error, errors.NotFound):
        return "not found"
    return "temporary failure"


class Writer:
    def __init__(
        self,
        kind: ObjectType,
        context: RunContext,
        reader: Reader,
        rules,
        summary,
        renew: Callable[[], bool],
        replan: Callable[[Action], None],
    ) -> None:
        self.kind, self.context, self.reader, self.rules, self.summary = kind, context, reader, rules, summary
        self.hubspot, self.qbo, self.links = context.hubspot, context.qbo, context.links
        self.renew, self.replan = renew, replan
        self.new_links: set[tuple[str, str]] = set()  # (side, id) linked by this page

    def carry_out(self, result, hub_records: dict[str, Record], qbo_records: dict[str, Record]) -> None:
        for action in result.of_kind("relink"):  # first: the survivor's writes go through the moved link
            self.guarded(lambda a=action: self._relink(a), [action])
        creates = [a for a in result.actions if a.kind == "create"]
        qbo_size = 1 if self.kind.qbo_creates_alone else QBO_BATCH
        for target, size in ((QUICKBOOKS, qbo_size), (HUBSPOT, HUBSPOT_BATCH)):
            group = [a for a in creates if a.target_side == target]
            for start in range(0, len(group), size):
                chunk = group[start : start + size]
                self.guarded(lambda c=chunk, t=target: self._create_batch(c, t), chunk)
        # plain field updates are batched alike; a compound record's goes alone (its lines, its associations)
        updates = [a for a in result.actions if a.kind in ("update", "link") and a.changes and not self._whole(a)]
        for target, size, write in (
            (QUICKBOOKS, QBO_BATCH, self._update_batch_qbo),
            (HUBSPOT, HUBSPOT_BATCH, self._update_batch_hubspot),
        ):
            group = [a for a in updates if a.target_side == target]
            for start in range(0, len(group), size):
                chunk = group[start : start + size]
                self.guarded(lambda c=chunk, w=write: w(c), chunk)
        for action in result.actions:
            if action.kind in ("create", "relink") or (
                action.kind in ("update", "link") and action.changes and not self._whole(action)
            ):
                continue
            self.guarded(lambda a=action: self.apply(a), [action])

    def _whole(self, action: Action) -> bool:
        """Written on its own: lines change, or an association (HubSpot writes those as associations)."""
        if LINES in action.changes:
            return True
        if action.target_side == QUICKBOOKS:  # a void, or what the object type writes itself, goes alone
            own = self.kind.written_by_object
            return self.kind.quickbooks_operation(action.changes) is not None or any(n in action.changes for n in own)
        own = (*(a.name for a in self.kind.associations), *self.kind.written_by_object)
        return any(name in action.changes for name in own)

    def guarded(self, step, actions: list[Action]) -> None:
        """Run one step; a failure of the remote is kept on each of its records, anything else stops the run."""
        if not self.renew():  # kept while working; lost means someone else runs now
            raise LockLost("the run lock expired")
        try:
            step()
        except (LockLost, errors.NeedsReconnect, errors.RateLimited):
            raise  # stop: the job is re-enqueued, or the connection needs the user
        except errors.ApiError as error:
            for action in actions:
                self.failed(action, category_of(error, self.kind), error.message, error.detail)

    def apply(self, action: Action) -> None:
        kind = action.kind
        self.summary.add(kind)
        if kind in ("update", "link"):
            self._update(action)
        elif kind in ("fail", "exclude", "wait"):
            self.remember_state(action)
        elif kind == "tombstone":
            self._tombstone(action)
        elif kind == "delete":
            self._delete(action)
        elif kind == "skip" and action.link_id and action.base_after:
            self._store_base(action.link_id, action.base_after, None, action.line_pairs)

    # --- creates -----------------------------------------------------------------------------------------

    def _qbo_body(self, changes: Mapping[str, Any], merged: Mapping[str, Any], creating: bool) -> dict[str, Any]:
        """The QBO body for canonical changes: the object type's fields, its associations' references,
        and (on create) its lines."""
        plain = {k: v for k, v in changes.items() if k != LINES}
        body = self.kind.to_quickbooks(plain, merged, creating=creating, options=self.context.options)
        for association in self.kind.associations:
            if association.name in changes:
                value = changes[association.name]
                body[association.qbo_field] = {"value": value} if value else None
        if creating and self.kind.has_lines:
            added = (changes.get(LINES) or {}).get("add", [])
            body["Line"] = [self.kind.line_to_quickbooks(entry["fields"], None) for entry in added]
        return body

    def _create_batch(self, actions: list[Action], target: str) -> None:
        """Creates in one call (QBO ≤ 30, HubSpot ≤ 100), each stored as a pending write before it is sent."""
        pending: dict[int, tuple[Action, dict]] = {}
        before: dict[int, str | None] = {}  # each row's state before it was staged (None: a new row)
        with self.links.writing() as session:
            for action in actions:
                self.summary.add("create")
                source = action.source
                link = self.links.own_row(session, source)
                previous = link.state if link is not None else None
                if link is None:
                    link = self.links.new_row(session, source.side, source.id)
                write = {"request_id": str(uuid.uuid4()), "target": target, "changes": dict(action.changes)}
                if target == QUICKBOOKS:
                    write["body"] = self._qbo_body(dict(action.changes), dict(source.fields), creating=True)
                link.state, link.pending_write = "pending", write
                session.flush()
                pending[link.id] = (action, write)
                before[link.id] = previous
        if target == QUICKBOOKS:
            try:
                if self.kind.qbo_creates_alone:  # one create, under the request id its pending write keeps
                    ((link_id, (_action, write)),) = pending.items()
                    try:
                        answers = {
                            str(link_id): self.qbo.create(
                                self.kind.qbo_entity, write["body"], request_id=write["request_id"]
                            )
                        }
                    except errors.RateLimited:
                        raise
                    except errors.ApiError as refused:
                        answers = {str(link_id): refused}
                else:
                    answers = self.qbo.batch_create(
                        self.kind.qbo_entity, {str(link_id): write["body"] for link_id, (_a, write) in pending.items()}
                    )
            except errors.RateLimited as limited:
                self._unstage(before, limited)
                raise
            created = {link_id: answers.get(str(link_id)) for link_id in pending}
            self._mark_hubspot({pending[i][0].source.id: r["Id"] for i, r in created.items() if isinstance(r, dict)})
            outcomes = {
                i: (r, self.reader.read_back(QUICKBOOKS, r) if isinstance(r, dict) else None)
                for i, r in created.items()
            }
        else:
            inputs = {a.source.id: self._hubspot_create_body(a.source.id, a.changes) for a, _write in pending.values()}
            try:
                answers = self.hubspot.batch_upsert(self.kind.hubspot_object, self.kind.id_property, inputs)
            except errors.RateLimited as limited:
                self._unstage(before, limited)
                raise
            outcomes = {}
            for link_id, (action, _write) in pending.items():
                answer = answers.get(action.source.id, errors.Transient(HUBSPOT, "no answer for this record"))
                outcomes[link_id] = (
                    answer,
                    self.reader.read_back(HUBSPOT, answer) if isinstance(answer, dict) else None,
                )
        for link_id, (answer, read_back) in outcomes.items():
            action, write = pending[link_id]
            if isinstance(answer, errors.ApiError) or answer is None:
                error = answer or errors.Transient(target, "no answer for this record")
                category = category_of(error, self.kind)
                message = self.kind.failure_message(category, write.get("body"), error.message)
                self.failed(Action("create", action.source, link_id=link_id), category, message, error.detail)
                continue
            self._after_create(link_id, target, write, answer, read_back)

    def _hubspot_create_body(self, source_id: str, changes: Mapping[str, Any]) -> dict[str, str]:
        """What a HubSpot create carries: the object type's required properties, the fields, our id property."""
        return {
            **self.kind.hubspot_create_properties,
            **self.kind.hubspot_create_body(_plain(changes)),
            self.kind.id_property: source_id,
        }

    def _mark_hubspot(self, marks: dict[str, str]) -> None:
        """Our id property on each HubSpot record whose QBO twin we created: a recreate can never duplicate it."""
        if not marks:
            return
        updates = {hub_id: {self.kind.id_property: qbo_id} for hub_id, qbo_id in marks.items()}
        for answer in self.hubspot.batch_update(self.kind.hubspot_object, updates).values():
            if isinstance(answer, dict):
                self.reader.read_back(HUBSPOT, answer)

    def _after_create(
        self, link_id: int, target: str, write: dict, answer: dict, read_back: Record, resumed: bool = False
    ) -> None:
        """A create answered: write what goes beside it (HubSpot lines and associations), then link.
        `resumed`: a create finished after a crash, whose line items may already be there."""
        target_id = answer["Id"] if target == QUICKBOOKS else answer["id"]
        added = ((write.get("changes") or {}).get(LINES) or {}).get("add", [])
        pairs: dict[str, str] = {}
        line_bases: dict[str, dict] = {}
        if target == QUICKBOOKS and self.kind.has_lines:
            for entry, line in zip(added, read_back.lines or (), strict=False):  # QBO keeps the order we sent
                pairs[entry["key"]], line_bases[entry["key"]] = line.id, dict(line.fields)
        if target == QUICKBOOKS:
            changes = _plain(write.get("changes") or {})
            own = self._own_fields(changes, target)
            if own:  # written once the record is there (an invoice's payments collected in HubSpot) …
                self.kind.write_own_fields(self.context, QUICKBOOKS, target_id, own, changes, fresh=not resumed)
                # … which changes it (its balance): read it again, so that HubSpot gets its figures now
                read_back = self.reader.read_back(QUICKBOOKS, self.qbo.read(self.kind.qbo_entity, target_id))
                read_back = replace(read_back, fields={**read_back.fields, **own})
            self._write_back_to_source(link_id, read_back)
        elif target == HUBSPOT:
            self._associate(target_id, write.get("changes") or {}, fresh=not resumed)
            for entry, created in self._create_line_items(target_id, added, resumed):
                pairs[created.id], line_bases[created.id] = _qbo_line_id(entry["key"]), dict(created.fields)
            changes = _plain(write.get("changes") or {})
            then = self.kind.after_hubspot_create(self.context, target_id, changes)
            if then:  # what HubSpot takes only once the record is whole (an invoice opened)
                read_back = self.reader.read_back(
                    HUBSPOT, self.hubspot.update(self.kind.hubspot_object, target_id, then)
                )
            own = self._own_fields(changes, target)
            if own:  # written last: an invoice's payments go onto the finished invoice
                self.kind.write_own_fields(self.context, HUBSPOT, target_id, own, changes, fresh=not resumed)
                read_back = replace(read_back, fields={**read_back.fields, **own})
        self._linked_after_create(link_id, target, target_id, read_back, pairs, line_bases)

    def _own_fields(self, changes: Mapping[str, Any], target: str) -> dict[str, Any]:
        """The fields among `changes` that the object type writes itself to `target` (a create carries all the
        source's fields: only those that flow toward the target are written)."""
        source = HUBSPOT if target == QUICKBOOKS else QUICKBOOKS
        return {
            name: changes[name]
            for name in self.kind.written_by_object
            if name in changes and flows(narrowed(self.rules.direction, self.rules.field_directions.get(name)), source)
        }

    def _write_back_to_source(
        self, link_id: int | None, written: Record, known: Mapping[str, Any] | None = None
    ) -> dict:
        """A field that flows only from QBO (the number QBO gave an invoice made in HubSpot, its balance after
        the payments we applied) goes back to the HubSpot record at once: the QBO record's own change is our
        echo, which plans nothing. `known`: the values HubSpot has already. Returns what it wrote."""
        back = {
            name: written.fields.get(name)
            for name in self.rules.fields
            if name not in self.kind.written_by_object
            and written.fields.get(name) not in (None, "")
            and written.fields.get(name) != (known or {}).get(name)
            and not flows(narrowed(self.rules.direction, self.rules.field_directions.get(name)), HUBSPOT)
        }
        properties = self.kind.to_hubspot(back)
        link = self.links.get(link_id) if link_id else None
        if properties and link is not None and link.hubspot_id:
            self.reader.read_back(HUBSPOT, self.hubspot.update(self.kind.hubspot_object, link.hubspot_id, properties))
            return back
        return {}

    def _unstage(self, before: dict[int, str | None], limited: errors.RateLimited) -> None:
        """Our own limiter stopped a batch before it was sent (no status: no answer from anyone), so
        nothing is pending: the staged writes go, and the records are simply planned again later —
        in a batch, rather than resumed one by one as writes that may have happened."""
        if limited.status is not None:
            return  # the remote answered 429: it received the request, so the writes stay to be resumed
        with self.links.writing() as session:
            for link_id, previous in before.items():
                link = session.get(RecordLink, link_id)
                if previous is None:
                    session.delete(link)
                else:
                    link.state, link.pending_write = previous, None

    def _linked_after_create(
        self,
        link_id: int,
        target: str,
        target_id: str,
        read_back: Record,
        pairs: dict[str, str] | None = None,
        line_bases: dict[str, dict] | None = None,
    ) -> None:
        with self.links.writing() as session:
            link = session.get(RecordLink, link_id)
            setattr(link, id_attribute(target), target_id)
            link.created_side = target
            base = {name: read_back.fields.get(name) for name in self.rules.fields}
            if self.kind.has_lines:
                base[LINES] = line_bases or {}
                link.line_pairs = pairs or {}
            write = link.pending_write or {}
            note = self.kind.create_note(write.get("changes") or {}, write.get("body"))
            message = f"created in {target}" + (f" ({note})" if note else "")
            self._settled(link, base)
            self.links.activity(session, link, "created", target, self._said(message))

    def finish_pending_writes(self) -> None:
        """A crash between storing a pending write and linking its answer: finish it, never duplicating.

        HubSpot creates are upserts on our property: sending again is safe. A QBO create may have been
        made by a batch that died before answering: the object type looks for it first (contacts: by
        DisplayName, unique in QBO), and only if it is not there is it created, with the write's own
        request id.
        """
        for link in self.links.pending_writes():
            write = link.pending_write
            source_id = link.hubspot_id if link.origin == HUBSPOT else link.qbo_id
            source = Record(link.origin, source_id, write["changes"])
            try:
                if write["target"] == QUICKBOOKS:
                    existing = self.kind.find_lost_create(self.qbo, write["body"])
                    holder = self.links.holder_of(QUICKBOOKS, existing["Id"], link.id) if existing else None
                    if holder is not None:  # it belongs to another linked record, not to our lost create
                        self.failed(
                            Action("create", source, link_id=link.id),
                            "linked to another record",
                            f"QuickBooks {self.kind.qbo_entity.lower()} {existing['Id']}"
                            + (f" (“{write['body']['DisplayName']}”)" if write["body"].get("DisplayName") else "")
                            + f" is already linked to HubSpot record {holder}",
                            None,
                        )
                        continue
                    written = existing or self.qbo.create(
                        self.kind.qbo_entity, write["body"], request_id=write["request_id"]
                    )
                    self._mark_hubspot({source.id: written["Id"]})
                    self._after_create(link.id, QUICKBOOKS, write, written, self.reader.read_back(QUICKBOOKS, written))
                else:
                    properties = self._hubspot_create_body(source.id, write["changes"])
                    written = self.hubspot.upsert(
                        self.kind.hubspot_object, self.kind.id_property, source.id, properties
                    )
                    read_back = self.reader.read_back(HUBSPOT, written)
                    self._after_create(link.id, HUBSPOT, write, written, read_back, resumed=True)
                self.summary.add("resumed")
            except errors.ApiError as error:
                self.failed(
                    Action("create", source, link_id=link.id),
                    category_of(error, self.kind),
                    error.message,
                    error.detail,
                )

    # --- updates -----------------------------------------------------------------------------------------

    def _update(self, action: Action) -> None:
        target, changes = action.target_side, dict(action.changes)
        target_id = action.target_id
        if not changes:
            base = dict(action.base_after)
        elif target == QUICKBOOKS:
            current = self.qbo.read(self.kind.qbo_entity, target_id)  # the SyncToken to write against
            merged = {**self.kind.from_quickbooks(current).fields, **action.base_after}
            body = self._qbo_body(changes, merged, creating=False)
            operation = self.kind.quickbooks_operation(changes)
            try:
                if operation == "void":  # QBO zeroes the document's amounts and keeps it
                    written = self.qbo.void(self.kind.qbo_entity, target_id, current["SyncToken"])
                elif LINES in changes:  # QBO replaces all lines: a full update of the document
                    sent = _with_lines(self.kind, current, changes[LINES])
                    written = self.qbo.full_update(self.kind.qbo_entity, {**sent, **body})
                elif body:
                    written = self.qbo.sparse_update(self.kind.qbo_entity, target_id, current["SyncToken"], body)
                else:  # only what the object type writes itself changed (an invoice's payments)
                    written = current
            except errors.StaleObject:
                self.summary.add("stale")
                self.replan(action)  # changed meanwhile: read again, plan again, write again
                return
            read_back = self.reader.read_back(QUICKBOOKS, written)
            own = self._own_fields(changes, QUICKBOOKS)
            wrote_back: dict = {}
            if own:
                merged_now = {**action.base_after, **_plain(changes)}
                self.kind.write_own_fields(self.context, QUICKBOOKS, target_id, own, merged_now)
                # the record changed with them (an invoice's balance): read it again, tell HubSpot its figures
                read_back = self.reader.read_back(QUICKBOOKS, self.qbo.read(self.kind.qbo_entity, target_id))
                read_back = replace(read_back, fields={**read_back.fields, **own})
                wrote_back = self._write_back_to_source(action.link_id, read_back, action.base_after)
                # what flows only from QBO and changed with our write (an invoice's discount line) is our echo
                for name in self.rules.fields:
                    only_from_qbo = not flows(
                        narrowed(self.rules.direction, self.rules.field_directions.get(name)), HUBSPOT
                    )
                    if only_from_qbo and name in read_back.fields and name not in wrote_back:
                        wrote_back[name] = read_back.fields[name]
            base = {**self._base_after_write(action, read_back), **wrote_back}
            if LINES in changes and operation != "void":
                self._lines_after_qbo_write(action, written, read_back, base)
                return
        else:
            properties = self.kind.to_hubspot(_plain(changes))
            if properties:
                written = self.hubspot.update(self.kind.hubspot_object, target_id, properties)
                read_back = self.reader.read_back(HUBSPOT, written)
            else:
                read_back = Record(HUBSPOT, target_id, dict(action.base_after))
            link = self.links.get(action.link_id) if action.link_id else None
            self._associate(target_id, changes)
            own = self._own_fields(changes, HUBSPOT)
            if own:
                self.kind.write_own_fields(
                    self.context, HUBSPOT, target_id, own, {**action.base_after, **_plain(changes)}
                )
                read_back = replace(read_back, fields={**read_back.fields, **own})
            base = self._base_after_write(action, read_back)
            if LINES in changes:
                self._lines_after_hubspot_write(action, target_id, link, base)
                return
        if action.kind == "link":
            self._link_row(action, base)
        else:
            self._store_base(action.link_id, base, target, action.line_pairs)

    def _base_after_write(self, action: Action, read_back: Record) -> dict:
        """The base of a link after an update: the agreed values, as the target stored what we wrote."""
        synced = [name for name in action.changes if name in self.rules.fields]  # not a rename's display_name
        return {**action.base_after, **{name: read_back.fields.get(name) for name in synced}}

    def _update_batch_qbo(self, actions: list[Action]) -> None:
        """Sparse updates, 30 a call, against the SyncTokens this run read; a stale one is planned again."""
        bodies = {}
        for index, action in enumerate(actions):  # keyed by position: a first link has no link id yet
            self.summary.add(action.kind)
            current = self.reader.qbo_cache.get(action.target_id) or self.qbo.read(
                self.kind.qbo_entity, action.target_id
            )
            merged = {**self.kind.from_quickbooks(current).fields, **action.base_after}
            body = self._qbo_body(dict(action.changes), merged, creating=False)
            bodies[str(index)] = {**body, "Id": action.target_id, "SyncToken": current["SyncToken"], "sparse": True}
        answers = self.qbo.batch_write(self.kind.qbo_entity, "update", bodies)
        for index, action in enumerate(actions):
            answer = answers.get(str(index))
            if isinstance(answer, errors.StaleObject) and action.kind == "link":
                self.summary.add("stale")  # not linked yet: it is planned again on its next change or retry
                self.failed(
                    action, "temporary failure", f"the {self.kind.qbo_entity.lower()} changed while we linked it", None
                )
            elif isinstance(answer, errors.StaleObject):
                self.summary.add("stale")
                self.replan(action)  # changed meanwhile: read again, plan again, write again
            elif isinstance(answer, dict):
                self._written(action, self.reader.read_back(QUICKBOOKS, answer))
            else:
                error = answer or errors.Transient(QUICKBOOKS, "no answer for this record")
                self.failed(action, category_of(error, self.kind), error.message, error.detail)

    def _update_batch_hubspot(self, actions: list[Action]) -> None:
        for action in actions:
            self.summary.add(action.kind)
        answers = self.hubspot.batch_update(
            self.kind.hubspot_object, {a.target_id: self.kind.to_hubspot(dict(a.changes)) for a in actions}
        )
        for action in actions:
            answer = answers.get(action.target_id)
            if isinstance(answer, dict):
                self._written(action, self.reader.read_back(HUBSPOT, answer))
            else:
                error = answer or errors.Transient(HUBSPOT, "no answer for this record")
                self.failed(action, category_of(error, self.kind), error.message, error.detail)

    def _written(self, action: Action, read_back: Record) -> None:
        base = self._base_after_write(action, read_back)
        if action.kind == "link":
            self._link_row(action, base)
        else:
            self._store_base(action.link_id, base, action.target_side, action.line_pairs)

    # --- lines and associations -------------------------------------------------------------------------------

    def _create_line_items(self, parent_id: str, entries: list[dict], resumed: bool = False) -> list[tuple[dict, Any]]:
        """New HubSpot line items for a record: (entry, its line as written) for each added line. On a
        resumed create, the line items made before the crash are taken as they are, not made again."""
        if not entries:
            return []
        if resumed:
            there = self.hubspot.associated_ids(self.kind.hubspot_object, self.kind.line_object, [parent_id])
            raw = self.hubspot.batch_read(
                self.kind.line_object, there.get(parent_id, []), list(self.kind.line_properties.values())
            )
            existing = [self.reader.hubspot_line(line) for line in raw]
            taken = [(entry, self._take_matching(existing, entry)) for entry in entries]
            entries = [entry for entry, line in taken if line is None]
            taken = [(entry, line) for entry, line in taken if line is not None]
            return taken + self._create_line_items(parent_id, entries)
        if self.kind.line_association_type is None:
            return [(entry, self._create_line_item(parent_id, entry["fields"])) for entry in entries]
        made = self.hubspot.batch_create_associated(
            self.kind.line_object,
            [self._hubspot_line(entry["fields"]) for entry in entries],
            parent_id,
            self.kind.line_association_type,
        )
        if len(made) != len(entries):
            raise errors.Transient(HUBSPOT, f"{len(made)} of {len(entries)} line items were created; the rest retry")
        lines = [self.reader.hubspot_line(raw) for raw in made]
        paired: list[tuple[dict, Any]] = []
        for entry in entries:  # the answer's order is not promised: each entry takes a line with its values
            # (if HubSpot changed a value as it stored it, any of the rest is as good)
            match = self._take_matching(lines, entry) or lines.pop(0)
            paired.append((entry, match))
        return paired

    def _take_matching(self, lines: list, entry: dict):
        """The first of `lines` with the entry's values, taken out of `lines`; None if there is none."""
        fields = {name: entry["fields"].get(name) for name in self.kind.line_fields}
        match = next((line for line in lines if _same_values(line.fields, fields, self.kind.line_fields)), None)
        if match is not None:
            lines.remove(match)
        return match

    def _create_line_item(self, parent_id: str, fields: Mapping[str, Any]):
        """One HubSpot line item, then its association with the record."""
        created = self.hubspot.create(self.kind.line_object, self._hubspot_line(fields))
        self.hubspot.associate(self.kind.line_object, created["id"], self.kind.hubspot_object, parent_id)
        return self.reader.hubspot_line(created)

    def _hubspot_line(self, fields: Mapping[str, Any]) -> dict[str, str]:
        """A line's HubSpot properties, each reference (a QBO id) as its linked HubSpot record's id."""
        values = dict(fields)
        for reference in self.kind.line_references:
            if reference.name in values:
                qbo_id = values[reference.name]
                store = self.links.of(reference.object_type)
                values[reference.name] = store.partners(QUICKBOOKS, {qbo_id}).get(qbo_id) if qbo_id else None
        return self.kind.line_to_hubspot(values)

    def _associate(self, record_id: str, changes: Mapping[str, Any], fresh: bool = False) -> None:
        """A HubSpot record's associations to follow its associations' canonical values (QBO ids); `fresh`:
        a record we just created, which has none yet."""
        for association in self.kind.associations:
            if association.name not in changes:
                continue
            store = self.links.of(association.object_type)
            wanted_qbo = changes[association.name]
            wanted = store.partners(QUICKBOOKS, {wanted_qbo}).get(wanted_qbo) if wanted_qbo else None
            current = (
                {}
                if fresh
                else self.hubspot.associated_ids(self.kind.hubspot_object, association.hubspot_object, [record_id])
            )
            for associated in current.get(record_id, []):
                if associated != wanted:
                    self.hubspot.unassociate(
                        self.kind.hubspot_object, record_id, association.hubspot_object, associated
                    )
            if wanted and wanted not in current.get(record_id, []):
                self.hubspot.associate(self.kind.hubspot_object, record_id, association.hubspot_object, wanted)

    def _lines_after_qbo_write(self, action: Action, written: dict, read_back: Record, base: dict) -> None:
        """After a full update of a QBO document: pair the lines it added (QBO keeps our order) and
        take the line bases from what it stored."""
        link = self.links.get(action.link_id)
        pairs = dict(action.line_pairs if action.line_pairs is not None else link.line_pairs or {})
        change = action.changes[LINES]
        removed = set(change.get("remove", []))
        pairs = {hub: qbo for hub, qbo in pairs.items() if qbo not in removed}
        sent_new = [entry["key"] for entry in change.get("add", [])]
        ours = list(read_back.lines or ())
        new_lines = [line for line in ours if line.id not in set(pairs.values())]
        for key, line in zip(sent_new, new_lines, strict=False):
            pairs[key] = line.id
        by_qbo = {line.id: line for line in ours}
        lines_base = dict(base.get(LINES) or {})
        for hub, qbo in pairs.items():
            if qbo in by_qbo:
                lines_base[hub] = dict(by_qbo[qbo].fields)
        self._store_lines(action, {**base, LINES: lines_base}, pairs, QUICKBOOKS)

    def _lines_after_hubspot_write(self, action: Action, parent_id: str, link, base: dict) -> None:
        """HubSpot line items: archived, updated, created (and associated); the base keyed by their ids."""
        change = action.changes[LINES]
        pairs = dict(action.line_pairs if action.line_pairs is not None else (link.line_pairs if link else None) or {})
        lines_base = dict(base.get(LINES) or {})
        for line_id in change.get("remove", []):
            self.hubspot.archive(self.kind.line_object, line_id)
            pairs.pop(line_id, None)
            lines_base.pop(line_id, None)
        updates = {line_id: self._hubspot_line(fields) for line_id, fields in change.get("update", {}).items()}
        if updates:
            for line_id, answer in self.hubspot.batch_update(self.kind.line_object, updates).items():
                if isinstance(answer, errors.ApiError):
                    raise answer
                lines_base[line_id] = dict(self.reader.hubspot_line(answer).fields)
        for entry, created in self._create_line_items(parent_id, change.get("add", [])):
            pairs[created.id] = _qbo_line_id(entry["key"])
            lines_base.pop(entry["key"], None)
            lines_base[created.id] = dict(created.fields)
        self._store_lines(action, {**base, LINES: lines_base}, pairs, HUBSPOT)

    def _store_lines(self, action: Action, base: dict, pairs: dict[str, str], target: str) -> None:
        if action.kind == "link":
            self._link_row(action, base, pairs)
            return
        with self.links.writing() as session:
            link = session.get(RecordLink, action.link_id)
            link.line_pairs = pairs
            self._settled(link, base)
            self.links.activity(session, link, "updated", target, self._said(f"updated in {target}"))

    def _said(self, message: str) -> str:
        """An activity message with what this run says of every record (e.g. why a price did not sync)."""
        return "; ".join([message, *self.context.notes])

    # --- rows ----------------------------------------------------------------------------------------------

    def _link_row(self, action: Action, base: dict, pairs: dict[str, str] | None = None) -> None:
        """A first link between two records: the source's row takes the target's id (a one-sided row
        the target had — a failure or exclusion of its own — goes: this link is its row now)."""
        target, target_id = action.target_side, action.target_id
        with self.links.writing() as session:
            link = self.links.own_row(session, action.source)
            self.links.free_id(session, target, target_id, keep=link.id if link is not None else None)
            if link is None:
                link = self.links.new_row(session, action.source.side, None)
            setattr(link, id_attribute(action.source.side), action.source.id)
            setattr(link, id_attribute(target), target_id)
            if pairs is not None:
                link.line_pairs = pairs
            self._settled(link, base)
            self.links.activity(session, link, "linked", target, action.reason)

    def _store_base(self, link_id: int, base: dict, target: str | None, pairs: Mapping[str, str] | None = None) -> None:
        with self.links.writing() as session:
            link = session.get(RecordLink, link_id)
            changed = link.base_values != base or link.state != "syncing"
            if pairs is not None:  # lines the plan paired (the same new line found on both sides)
                changed, link.line_pairs = True, dict(pairs)
            self._settled(link, base)
            if target is not None:
                self.links.activity(session, link, "updated", target, self._said(f"updated in {target}"))
            elif changed:
                session.add(link)

    def _settled(self, link: RecordLink, base: dict) -> None:
        link.base_values, link.state, link.pending_write, link.waiting_for = base, "syncing", None, None
        if link.hubspot_id and link.qbo_id:
            self.new_links.update({(HUBSPOT, link.hubspot_id), (QUICKBOOKS, link.qbo_id)})
        link.error_category = link.error_message = link.excluded_reason = None
        link.attempts, link.next_attempt_at, link.last_synced_at = 0, None, utcnow()

    def _relink(self, action: Action) -> None:
        """A merge: the link moves to the survivor (a one-sided row the survivor had goes: the link is its row now)."""
        self.summary.add("relink")
        with self.links.writing() as session:
            self.links.free_id(session, action.target_side, action.target_id, keep=action.link_id)
            link = session.get(RecordLink, action.link_id)
            setattr(link, id_attribute(action.target_side), action.target_id)
            self.links.activity(session, link, "merged", None, action.reason)

    def _delete(self, action: Action) -> None:
        """The propagate policy: delete the other side too (QBO name lists: made inactive), then tombstone."""
        if action.target_side == QUICKBOOKS:
            current = self.qbo.read(self.kind.qbo_entity, action.target_id)
            if self.kind.qbo_delete_body is None:
                self.qbo.delete(self.kind.qbo_entity, action.target_id, current["SyncToken"])
            elif current.get("Active") is not False:
                written = self.qbo.sparse_update(
                    self.kind.qbo_entity, action.target_id, current["SyncToken"], dict(self.kind.qbo_delete_body)
                )
                self.reader.read_back(QUICKBOOKS, written)
        else:
            self.hubspot.archive(self.kind.hubspot_object, action.target_id)
        self._tombstone(action, deleted_in=action.target_side)

    def _tombstone(self, action: Action, deleted_in: str | None = None) -> None:
        with self.links.writing() as session:
            link = session.get(RecordLink, action.link_id)
            if action.source.side == HUBSPOT or deleted_in == HUBSPOT:
                link.hubspot_deleted_at = utcnow()
            if action.source.side == QUICKBOOKS or deleted_in == QUICKBOOKS:
                link.qbo_deleted_at = utcnow()
            self.links.activity(session, link, "deleted", deleted_in, action.reason)

    def remember_state(self, action: Action) -> None:
        state = {"fail": "failed", "exclude": "excluded", "wait": "waiting"}[action.kind]
        with self.links.writing() as session:
            link = (
                session.get(RecordLink, action.link_id)
                if action.link_id
                else self.links.own_row(session, action.source)
            )
            if link is None:
                link = self.links.new_row(session, action.source.side, action.source.id)
            if link.hubspot_id and link.qbo_id and state == "excluded":
                return  # a linked record is never excluded
            link.state = state
            link.waiting_for = (
                [{"object_type": d.object_type, "side": d.side, "id": d.id} for d in action.waiting_for]
                if state == "waiting"
                else None
            )
            link.error_category = action.category
            link.error_message = action.reason + (f" What to do: {action.fix}" if action.fix else "")
            link.excluded_reason = action.reason if state == "excluded" else None
            if state == "failed":
                if action.category != "temporary failure":
                    # The other side refused the write for good: it did not happen, so it is not resumed as
                    # a write that may have (that resumption, run after run, was the retry churn).
                    link.pending_write = None
                link.attempts = (link.attempts or 0) + 1  # a new row has no default before its insert
                link.next_attempt_at = utcnow() + RETRY_BACKOFF[min(link.attempts, len(RETRY_BACKOFF)) - 1]
            session.flush()
            if state == "failed" and self._repeat_of_last_failure(session, link, action):
                return
            self.links.activity(session, link, state, None, action.reason, category=action.category)

    def _repeat_of_last_failure(self, session, link: RecordLink, action: Action) -> bool:
        """The same failure as the record's last activity: counted there (`details.repeats`, `last_at`)
        instead of a new row each attempt."""
        last = self.links.last_activity(session, link)
        if last is None or (last.action, last.error_category, last.message) != (
            "failed",
            action.category,
            action.reason,
        ):
            return False
        details = dict(last.details or {})
        details["repeats"] = int(details.get("repeats", 1)) + 1
        details["last_at"] = utcnow().isoformat()
        last.details = details
        return True

    def failed(self, action: Action, category: str, message: str, detail: str | None) -> None:
        self.summary.add("failed")
        self.remember_state(
            Action(
                "fail",
                action.source,
                link_id=action.link_id,
                category=category,
                reason=message + (f" ({detail[:300]})" if detail else ""),
                fix=self.kind.advice.get(category),
            )
        )


def _same_values(written: Mapping[str, Any], wanted: Mapping[str, Any], names) -> bool:
    return all(
        (written.get(n) in (None, "")) == (wanted.get(n) in (None, ""))
        and (written.get(n) in (None, "") or str(written.get(n)) == str(wanted.get(n)))
        for n in names
    )


def _plain(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Changes without their lines (those are written as line items)."""
    return {k: v for k, v in changes.items() if k != LINES}


def _qbo_line_id(key: str) -> str:
    """The QBO line id a line key names: "q:<id>" for a line new in QBO, or the id itself (a create)."""
    return key[2:] if key.startswith("q:") else key


def _with_lines(kind: ObjectType, current: dict, change: Mapping[str, Any]) -> dict:
    """The whole document for a full update, its `Line` array changed as planned: lines that are not
    ours (a subtotal, a discount) stay as they are; QBO computes the subtotal again."""
    removed = set(change.get("remove", []))
    updated = change.get("update", {})
    lines = []
    for entry in current.get("Line") or []:
        if entry.get("DetailType") == "SubTotalLineDetail":
            continue
        line = kind.line_from_quickbooks(entry)
        if line is not None and line.id in removed:
            continue
        if line is not None and line.id in updated:
            entry = kind.line_to_quickbooks({**line.fields, **updated[line.id]}, entry)
        lines.append(entry)
    lines += [kind.line_to_quickbooks(added["fields"], None) for added in change.get("add", [])]
    return {**current, "Line": lines, "sparse": False}
