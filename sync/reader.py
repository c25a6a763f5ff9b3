"""Reading one page of a run: both sides' records, whole, as the planner needs them.

For the ids of a page the reader reads the records, the other side of every link they have, any
unlinked match by key, and — for compound records — their lines and associations. It remembers
the version of everything it read (modified time; QBO's SyncToken too), so that the run can note
what was planned and our own writes' echoes plan nothing.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from sync.engine import HUBSPOT, QUICKBOOKS, Dependency, Line, Record
from sync.objects.base import ObjectType, RunContext
from sync.store.models import RecordLink
from sync.times import parse_time

QBO_IDS_PER_QUERY = 100
HUBSPOT_KEYS_PER_SEARCH = 100  # values in one IN filter (HubSpot allows 100)


class Reader:
    def __init__(self, kind: ObjectType, context: RunContext, rules) -> None:
        self.kind, self.context, self.rules = kind, context, rules
        self.hubspot, self.qbo, self.links = context.hubspot, context.qbo, context.links
        self.qbo_cache: dict[str, dict] = {}  # QBO id → the entity as listed or read (this page's, or the listing's)
        self.versions: dict[tuple[str, str], datetime | None] = {}  # (side, id) → modified time as read
        # QBO's LastUpdatedTime has whole seconds: an edit in the same second as our write would look
        # already synced. Its SyncToken, which every write increments, tells versions apart exactly.
        self.tokens: dict[str, str] = {}  # QBO id → SyncToken as read
        self.merged_into: dict[str, str] = {}  # HubSpot id merged away → its survivor's id (as read)

    def page_done(self, qbo_ids: set[str]) -> None:
        """Forget what this page read (later pages keep the listing's rows of their own)."""
        for entity_id in qbo_ids:
            self.qbo_cache.pop(entity_id, None)
        self.versions.clear()
        self.tokens.clear()
        self.merged_into.clear()

    def modified(self, side: str, raw: dict) -> datetime | None:
        if side == HUBSPOT:
            return parse_time(raw["properties"].get(self.kind.hubspot_modified_property))
        return parse_time((raw.get("MetaData") or {}).get("LastUpdatedTime"))

    def qbo_where(self, condition: str = "") -> str:
        """`select * from <entity>` with inactive name-list rows included (QBO hides them otherwise)."""
        parts = [p for p in ("Active in (true, false)" if self.kind.qbo_has_active else "", condition) if p]
        where = " where " + " and ".join(parts) if parts else ""
        return f"select * from {self.kind.qbo_entity}{where}"  # noqa: S608 - ids and our own names only

    # --- records as written -------------------------------------------------------------------------------

    def read_back(self, side: str, raw: dict) -> Record:
        """A record as a write answered it; its version is noted so that the echo is not work again."""
        record_id = str(raw["Id"] if side == QUICKBOOKS else raw["id"])
        if side == QUICKBOOKS and record_id in self.qbo_cache:
            # the listing's copy is now stale: a later page that plans this record must see our write,
            # or it would take the fields we just filled for fields cleared in QBO
            self.qbo_cache[record_id] = raw
        self.versions[(side, record_id)] = self.modified(side, raw)
        if side == QUICKBOOKS and raw.get("SyncToken") is not None:
            self.tokens[record_id] = str(raw["SyncToken"])
        return self.quickbooks_record(raw) if side == QUICKBOOKS else self.kind.from_hubspot(raw)

    def quickbooks_record(self, raw: dict) -> Record:
        """A QBO entity as a record, with its lines and its associations' values."""
        record = self.kind.from_quickbooks(raw)
        if record.deleted:
            return record
        if self.kind.has_lines and self.kind.lines_known(raw):
            record = replace(record, lines=self._referenced(QUICKBOOKS, self.kind.lines_from_quickbooks(raw)))
        if self.kind.associations:
            fields, needs = dict(record.fields), list(record.depends_on)
            for association in self.kind.associations:
                value = (raw.get(association.qbo_field) or {}).get("value")
                fields[association.name] = str(value) if value else None
                if value:
                    needs.append(Dependency(association.object_type, QUICKBOOKS, str(value)))
            record = replace(record, fields=fields, depends_on=tuple(needs))
        return record

    # --- HubSpot -------------------------------------------------------------------------------------------

    def read_hubspot(self, ids: set[str], links: list[RecordLink]) -> dict[str, Record]:
        properties = [*self.kind.hubspot_read_properties(), "hs_merged_object_ids"]
        found = {r["id"]: r for r in self.hubspot.batch_read(self.kind.hubspot_object, sorted(ids), properties)}
        for survivor_id, raw in found.items():  # a merged id reads as its survivor, which lists it
            for merged_id in (raw["properties"].get("hs_merged_object_ids") or "").split(";"):
                if merged_id.strip() and merged_id.strip() != survivor_id:
                    self.merged_into[merged_id.strip()] = survivor_id
        self.versions.update({(HUBSPOT, i): self.modified(HUBSPOT, r) for i, r in found.items()})
        unlinked = sorted(set(found) - {link.hubspot_id for link in links})
        extra = self.kind.enrich_hubspot(self.context, found, unlinked) if found else {}
        records = {i: self.kind.from_hubspot(r, extra.get(i)) for i, r in found.items()}
        if self.kind.has_lines:
            records = self._with_hubspot_lines(records)
        if self.kind.associations:
            records = self._with_hubspot_associations(records)
        for link in links:  # a linked record that no longer reads was archived in HubSpot
            if link.hubspot_id in ids and link.hubspot_id not in found:
                records[link.hubspot_id] = Record(HUBSPOT, link.hubspot_id, {}, deleted=True)
        return records

    def _with_hubspot_lines(self, records: dict[str, Record]) -> dict[str, Record]:
        live = sorted(i for i, r in records.items() if not r.deleted)
        lines_of = self.hubspot.associated_ids(self.kind.hubspot_object, self.kind.line_object, live) if live else {}
        wanted = sorted({line for ids in lines_of.values() for line in ids})
        properties = [*self.kind.line_properties.values(), "hs_lastmodifieddate"]
        raw_lines = {r["id"]: r for r in self.hubspot.batch_read(self.kind.line_object, wanted, properties)}
        for record_id in live:
            lines = [
                self.kind.line_from_hubspot(raw_lines[i])
                for i in sorted(lines_of.get(record_id, []), key=_numeric)
                if i in raw_lines
            ]
            records[record_id] = replace(records[record_id], lines=self._referenced(HUBSPOT, lines))
        return records

    def hubspot_line(self, raw: dict) -> Line:
        """A HubSpot line item as written back, its references in canonical form (for the line's base)."""
        return self._referenced(HUBSPOT, [self.kind.line_from_hubspot(raw)])[0]

    def _referenced(self, side: str, lines: list[Line]) -> tuple[Line, ...]:
        """Lines with each reference as its canonical value: the linked record's QBO id, else None."""
        for reference in self.kind.line_references:
            values = {str(line.fields[reference.name]) for line in lines if line.fields.get(reference.name)}
            store = self.links.of(reference.object_type)
            if side == HUBSPOT:
                known = store.partners(HUBSPOT, values)
            else:
                known = {value: value for value in store.linked_ids(QUICKBOOKS, values)}
            lines = [
                replace(line, fields={**line.fields, reference.name: known.get(str(line.fields.get(reference.name)))})
                for line in lines
            ]
        return tuple(lines)

    def _with_hubspot_associations(self, records: dict[str, Record]) -> dict[str, Record]:
        live = sorted(i for i, r in records.items() if not r.deleted)
        for association in self.kind.associations:
            targets = self.hubspot.associated_ids(self.kind.hubspot_object, association.hubspot_object, live)
            chosen = {i: sorted(ids, key=_numeric)[0] for i, ids in targets.items() if ids}
            several = {i for i, ids in targets.items() if len(ids) > 1}  # `<name>_several`: the choice is a guess
            partners = self.links.of(association.object_type).partners(HUBSPOT, set(chosen.values()))
            for record_id in live:
                record = records[record_id]
                target = chosen.get(record_id)
                fields = {
                    **record.fields,
                    association.name: partners.get(target) if target else None,
                    f"{association.name}_several": record_id in several,
                }
                needs = record.depends_on
                if target and target not in partners:  # associated, but that record is not linked yet
                    needs = (*needs, Dependency(association.object_type, HUBSPOT, target))
                records[record_id] = replace(record, fields=fields, depends_on=needs)
        return records

    # --- QBO -----------------------------------------------------------------------------------------------

    def read_quickbooks(self, ids: set[str]) -> dict[str, Record]:
        cache = self.qbo_cache
        missing = sorted(i for i in ids if i not in cache)
        for start in range(0, len(missing), QBO_IDS_PER_QUERY):
            quoted = ", ".join(f"'{i}'" for i in missing[start : start + QBO_IDS_PER_QUERY])
            for row in self.qbo.query(self.qbo_where(f"Id in ({quoted})")).get(self.kind.qbo_entity, []):
                cache[row["Id"]] = row
        records = {i: self.quickbooks_record(cache[i]) for i in ids if i in cache}
        live = {i: cache[i] for i, record in records.items() if not record.deleted}
        for record_id, fields in (self.kind.enrich_quickbooks(self.context, live) if live else {}).items():
            records[record_id] = replace(records[record_id], fields={**records[record_id].fields, **fields})
        self.versions.update({(QUICKBOOKS, i): self.modified(QUICKBOOKS, cache[i]) for i in ids if i in cache})
        self.tokens.update({i: str(cache[i]["SyncToken"]) for i in ids if cache.get(i, {}).get("SyncToken")})
        for entity_id in ids:
            records.setdefault(entity_id, Record(QUICKBOOKS, entity_id, {}, deleted=True))
        return records

    # --- what else a page needs -------------------------------------------------------------------------------

    def key_candidates(
        self, hub_records: dict[str, Record], qbo_records: dict[str, Record], links: list[RecordLink]
    ) -> None:
        """Add the other side's records that share a key with an unlinked record we read, and their links.

        The planner matches new records by key only among the records it is given: without this,
        a new contact whose QBO customer did not change in this window would get a second customer.
        """
        linked = {HUBSPOT: {link.hubspot_id for link in links}, QUICKBOOKS: {link.qbo_id for link in links}}

        def keys_of(records: dict[str, Record], side: str) -> list[str]:
            keys = (self.rules.natural_key(r) for i, r in records.items() if i not in linked[side] and not r.deleted)
            return sorted({key for key in keys if key})

        hub_keys, qbo_keys = keys_of(hub_records, HUBSPOT), keys_of(qbo_records, QUICKBOOKS)
        if self.kind.duplicate_key:  # keys unique per side: each side's own twins are looked up too
            hub_keys = qbo_keys = sorted(set(hub_keys) | set(qbo_keys))
        hub_found = self._hubspot_by_key(qbo_keys) - set(hub_records)
        qbo_found: set[str] = set()
        for start in range(0, len(hub_keys), QBO_IDS_PER_QUERY):
            for statement in self.kind.quickbooks_key_queries(hub_keys[start : start + QBO_IDS_PER_QUERY]):
                for row in self.qbo.query(statement).get(self.kind.qbo_entity, []):
                    self.qbo_cache[row["Id"]] = row
                    qbo_found.add(row["Id"])
        qbo_found -= set(qbo_records)
        if not hub_found and not qbo_found:
            return
        extra = [link for link in self.links.linked(hub_found, qbo_found) if link.id not in {k.id for k in links}]
        links += extra
        hub_found |= {link.hubspot_id for link in extra if link.hubspot_id} - set(hub_records)
        qbo_found |= {link.qbo_id for link in extra if link.qbo_id} - set(qbo_records)
        hub_records.update(self.read_hubspot(hub_found, extra))
        qbo_records.update(self.read_quickbooks(qbo_found))

    def _hubspot_by_key(self, keys: list[str]) -> set[str]:
        """HubSpot ids of the records with these keys: a batch read by a unique property, or a search."""
        if not keys:
            return set()
        if self.kind.hubspot_key_property:
            found = self.hubspot.batch_read(
                self.kind.hubspot_object, keys, [], id_property=self.kind.hubspot_key_property
            )
            return {r["id"] for r in found}
        ids: set[str] = set()
        for start in range(0, len(keys), HUBSPOT_KEYS_PER_SEARCH):
            groups = self.kind.hubspot_key_search(keys[start : start + HUBSPOT_KEYS_PER_SEARCH])
            after = None
            while groups:
                request = {"filter_groups": groups, "properties": ["hs_object_id"], "limit": 200, "after": after}
                page = self.hubspot.search(self.kind.hubspot_object, request)
                ids.update(r["id"] for r in page["results"])
                after = page["after"]
                if after is None:
                    break
        return ids

    def merges(self, hub_records: dict[str, Record], links: list[RecordLink]) -> set[str]:
        """HubSpot merges among what was read: each linked record merged into a survivor becomes a
        merged record (the planner moves its link to the survivor) and the survivor's own link, if
        any, joins the page. Returns the QBO ids those links add."""
        if not self.merged_into:
            return set()
        known = {link.id for link in links}
        merged_links = [
            link
            for link in self.links.linked(set(self.merged_into) | set(self.merged_into.values()), set())
            if link.id not in known
        ]
        links += merged_links
        for link in links:
            survivor = self.merged_into.get(link.hubspot_id or "")
            if survivor is not None:
                hub_records[link.hubspot_id] = Record(HUBSPOT, link.hubspot_id, {}, merged_into=survivor)
        return {link.qbo_id for link in merged_links if link.qbo_id}


def _numeric(record_id: Any) -> tuple[int, str]:
    text = str(record_id)
    return (int(text), text) if text.isdigit() else (0, text)
