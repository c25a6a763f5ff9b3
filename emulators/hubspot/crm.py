"""CRM records of one account: create, read, update, archive, merge, and their rendering.

HTTP-free: `routes_crm` parses requests and calls this; `rules` keeps the
invoice and payment figures right after every change.
"""

from __future__ import annotations

from emulators.hubspot import assumptions, rules
from emulators.hubspot.errors import ApiError, not_found, validation
from emulators.hubspot.schema import (
    ASSOCIATION_TYPES,
    OBJECT_TYPES,
    PRIMARY_TYPE_IDS,
    REVERSE_TYPE_ID,
    ObjectType,
    association_target,
    resolve_object_type,
)
from emulators.hubspot.state import Account, EmulatorState, ObjectTable, Record, iso_from_ms
from emulators.hubspot.values import validate_input
from emulators.hubspot.webhooks import association_type_name


class Crm:
    """Operations on one account's records, under the caller's lock."""

    def __init__(
        self, state: EmulatorState, account: Account, source: tuple[str, str] = (assumptions.API_CHANGE_SOURCE, "")
    ) -> None:
        """`source` is (changeSource, sourceId) for the webhook events these writes cause."""
        self.state, self.account, self.source = state, account, source

    def emit(self, kind: str, object_type: ObjectType, record_id: int, **fields) -> None:
        self.state.webhooks.record(self.account, self.source, kind, object_type, record_id, **fields)

    # --- lookup --------------------------------------------------------------

    def table(self, object_type: ObjectType) -> ObjectTable:
        return self.account.tables[object_type.name]

    def find(
        self, object_type: ObjectType, record_id: str | int, id_property: str | None = None, archived: bool = False
    ) -> Record | None:
        table = self.table(object_type)
        if id_property and id_property != "hs_object_id":
            definition = self.account.properties[object_type.name].get(id_property)
            if definition is None or not definition.has_unique_value:
                raise validation(f"{id_property} is not a unique identifier property for {object_type.name}")
            key = str(record_id).lower() if id_property == "email" else str(record_id)
            found = table.unique_index.get(id_property, {}).get(key)
            return table.records.get(found) if found is not None and not archived else None
        try:
            numeric = int(record_id)
        except (TypeError, ValueError):
            return None
        if archived:
            return table.archived.get(numeric)
        return table.records.get(table.resolve(numeric))

    def get(self, object_type: ObjectType, record_id: str | int, id_property: str | None = None) -> Record:
        record = self.find(object_type, record_id, id_property)
        if record is None:
            raise not_found("Object not found.  objectId are usually numeric.", id=[str(record_id)])
        return record

    # --- writes ---------------------------------------------------------------

    def create(
        self, object_type: ObjectType, properties: dict, associations: list | None = None, *, source: str = "API"
    ) -> Record:
        if object_type.name == "commerce_payments":
            rules.require_payments(self.account)
        values = validate_input(self.account.properties[object_type.name], properties or {}, self.account.hub_id)
        required = assumptions.PRODUCT_REQUIRED_PROPERTIES if object_type.name == "products" else object_type.required
        missing = [name for name in required if not values.get(name)]
        if object_type.name == "companies" and not (values.get("name") or values.get("domain")):
            missing = ["name or domain"]
        if missing:
            raise validation(
                f"Missing required properties for {object_type.name}: {', '.join(missing)}",
                context={"properties": missing},
            )
        targets = self._check_associations(object_type, associations or [])
        self._check_unique(object_type, None, values)
        rules.before_write(self, object_type, None, values)
        now = self.state.clock.now_ms()
        record_id = self.state.new_object_id()
        stored = {k: v for k, v in values.items() if v is not None}
        stored.update(rules.defaults_on_create(self.account, object_type, stored, now))
        stored.update(self._system_properties(object_type, record_id, now, now))
        record = Record(record_id, stored, now, now)
        for name, value in stored.items():
            record.history[name] = [(value, now)]
        self.table(object_type).add(record)
        self._index_unique(object_type, record)
        self.emit("creation", object_type, record.id)
        if assumptions.PROPERTY_CHANGES_ON_CREATION:
            for name, value in values.items():
                if value is not None:
                    self.emit("propertyChange", object_type, record.id, propertyName=name, propertyValue=value)
        for to_type, to_id, type_id in targets:
            self.associate(object_type, record.id, to_type, to_id, type_id)
        rules.after_change(self, object_type, record)
        return record

    def update(self, object_type: ObjectType, record: Record, properties: dict) -> Record:
        values = validate_input(self.account.properties[object_type.name], properties or {}, self.account.hub_id)
        rules.before_write(self, object_type, record, values)
        self._check_unique(object_type, record, values)
        self._unindex_unique(object_type, record)
        changed = False
        now = self.state.clock.now_ms()
        for name, value in values.items():
            if record.properties.get(name) == value:
                continue
            changed = True
            if value is None:
                record.properties.pop(name, None)
            else:
                record.properties[name] = value
            record.history.setdefault(name, []).append((value or "", now))
            self.emit("propertyChange", object_type, record.id, propertyName=name, propertyValue=value or "")
        self._index_unique(object_type, record)
        if changed:
            self.touch(object_type, record, now)
            rules.after_change(self, object_type, record)
        return record

    def set_computed(self, object_type: ObjectType, record: Record, values: dict[str, str | None]) -> None:
        """Write HubSpot-maintained (read-only) values; bumps the last-modified date if anything changed."""
        now = self.state.clock.now_ms()
        changed = False
        for name, value in values.items():
            if record.properties.get(name) != value:
                changed = True
                if value is None:
                    record.properties.pop(name, None)
                else:
                    record.properties[name] = value
                record.history.setdefault(name, []).append((value or "", now))
                self.emit("propertyChange", object_type, record.id, propertyName=name, propertyValue=value or "")
        if changed:
            self.touch(object_type, record, now)

    def touch(self, object_type: ObjectType, record: Record, now: int | None = None) -> None:
        now = self.state.clock.now_ms() if now is None else now
        record.updated_ms = now
        record.properties[object_type.last_modified] = iso_from_ms(now)

    def archive(self, object_type: ObjectType, record: Record) -> None:
        rules.before_archive(self, object_type, record)
        table = self.table(object_type)
        self._unindex_unique(object_type, record)
        table.remove(record.id)
        record.archived_ms = self.state.clock.now_ms()
        table.archived[record.id] = record
        self.emit("deletion", object_type, record.id, changeFlag="DELETED")
        linked = self.remove_all_associations(object_type, record.id)
        for to_type, to_record in linked:
            rules.after_change(self, to_type, to_record)

    def purge(self, object_type: ObjectType, record: Record) -> None:
        """GDPR delete: gone for good, not archived, and its unique values are free again."""
        self._unindex_unique(object_type, record)
        self.table(object_type).remove(record.id)
        self.remove_all_associations(object_type, record.id)
        self.emit("privacyDeletion", object_type, record.id)
        self.emit("deletion", object_type, record.id, changeFlag="DELETED")

    def restore(self, object_type: ObjectType, record_id: str) -> Record:
        """Bring an archived record back from the recycle bin (a user does this in HubSpot)."""
        table = self.table(object_type)
        record = self.find(object_type, record_id, archived=True)
        if record is None:
            raise not_found(f"No archived {object_type.name} with id {record_id}", id=[str(record_id)])
        self._check_unique(object_type, None, record.properties)
        del table.archived[record.id]
        record.archived_ms = None
        table.add(record)
        self._index_unique(object_type, record)
        self.touch(object_type, record)
        self.emit("restore", object_type, record.id)
        return record

    def merge(self, object_type: ObjectType, primary_id: str, merged_id: str) -> Record:
        if not object_type.mergeable:
            raise validation(f"{object_type.name} cannot be merged")
        primary, merged = self.get(object_type, primary_id), self.get(object_type, merged_id)
        if primary.id == merged.id:
            raise validation("Cannot merge an object with itself")
        self._unindex_unique(object_type, merged)
        self._unindex_unique(object_type, primary)
        moved = 0
        for name, value in merged.properties.items():
            if name not in primary.properties and name not in ("hs_object_id", object_type.created):
                primary.properties[name] = value
                moved += 1
        if (
            object_type.name == "contacts"
            and merged.properties.get("email")
            and merged.properties.get("email") != primary.properties.get("email")
        ):
            extra = [e for e in primary.properties.get("hs_additional_emails", "").split(";") if e]
            primary.properties["hs_additional_emails"] = ";".join([*extra, merged.properties["email"]])
        merged_ids = [i for i in primary.properties.get("hs_merged_object_ids", "").split(";") if i]
        merged_ids += [str(merged.id), *[i for i in merged.properties.get("hs_merged_object_ids", "").split(";") if i]]
        primary.properties["hs_merged_object_ids"] = ";".join(merged_ids)
        self._index_unique(object_type, primary)
        # Associations move to the survivor.
        for (from_type, from_id, to_type), targets in list(self.account.associations.items()):
            if from_type == object_type.name and from_id == merged.id:
                for to_id, type_ids in targets.items():
                    for type_id in type_ids:
                        if type_id not in PRIMARY_TYPE_IDS or not self._has_primary(
                            object_type.name, primary.id, to_type
                        ):
                            self.associate(object_type, primary.id, OBJECT_TYPES[to_type], to_id, type_id)
        self.remove_all_associations(object_type, merged.id)
        table = self.table(object_type)
        table.remove(merged.id)
        table.merged_into[merged.id] = primary.id
        self.touch(object_type, primary)
        self.emit(
            "merge",
            object_type,
            primary.id,
            primaryObjectId=primary.id,
            mergedObjectIds=[merged.id],
            newObjectId=primary.id,
            numberOfPropertiesMoved=moved,
        )
        return primary

    # --- associations ----------------------------------------------------------

    def associate(self, from_type: ObjectType, from_id: int, to_type: ObjectType, to_id: int, type_id: int) -> None:
        rules.before_associate(self, from_type, from_id, to_type, to_id, type_id)
        key = (from_type.name, from_id, to_type.name)
        existing = self.account.associations.setdefault(key, {}).setdefault(to_id, set())
        if type_id in existing:
            return
        existing.add(type_id)
        reverse = (to_type.name, to_id, from_type.name)
        self.account.associations.setdefault(reverse, {}).setdefault(from_id, set()).add(REVERSE_TYPE_ID[type_id])
        self._emit_association(from_type, from_id, to_type, to_id, type_id, removed=False)

    def disassociate(
        self, from_type: ObjectType, from_id: int, to_type: ObjectType, to_id: int, type_ids: set[int] | None = None
    ) -> bool:
        forward = self.account.associations.get((from_type.name, from_id, to_type.name), {})
        if to_id not in forward:
            return False
        removing = set(forward[to_id]) if type_ids is None else forward[to_id] & type_ids
        forward[to_id] -= removing
        if not forward[to_id]:
            del forward[to_id]
        backward = self.account.associations.get((to_type.name, to_id, from_type.name), {})
        if from_id in backward:
            backward[from_id] -= {REVERSE_TYPE_ID[t] for t in removing}
            if not backward[from_id]:
                del backward[from_id]
        for type_id in removing:
            self._emit_association(from_type, from_id, to_type, to_id, type_id, removed=True)
        return bool(removing)

    def _emit_association(
        self, from_type: ObjectType, from_id: int, to_type: ObjectType, to_id: int, type_id: int, removed: bool
    ) -> None:
        """associationChange fires for both sides (NOTES §4)."""
        primary = type_id in PRIMARY_TYPE_IDS
        for a_type, a_id, b_type, b_id, a_type_id in (
            (from_type, from_id, to_type, to_id, type_id),
            (to_type, to_id, from_type, from_id, REVERSE_TYPE_ID[type_id]),
        ):
            self.emit(
                "associationChange",
                a_type,
                a_id,
                associationType=association_type_name(a_type, b_type),
                associationTypeId=a_type_id,
                fromObjectId=a_id,
                toObjectId=b_id,
                associationRemoved=removed,
                isPrimaryAssociation=primary,
            )

    def associated(self, from_type: str, from_id: int, to_type: str) -> dict[int, set[int]]:
        return self.account.associations.get((from_type, from_id, to_type), {})

    def remove_all_associations(self, object_type: ObjectType, record_id: int) -> list[tuple[ObjectType, Record]]:
        """Drop every association of a record; returns the records on the other side."""
        touched = []
        for (from_type, from_id, to_type), targets in list(self.account.associations.items()):
            if from_type == object_type.name and from_id == record_id:
                for to_id in list(targets):
                    self.disassociate(object_type, record_id, OBJECT_TYPES[to_type], to_id)
                    other = self.table(OBJECT_TYPES[to_type]).records.get(to_id)
                    if other is not None:
                        touched.append((OBJECT_TYPES[to_type], other))
        return touched

    def _has_primary(self, from_type: str, from_id: int, to_type: str) -> bool:
        return any(t & PRIMARY_TYPE_IDS for t in self.associated(from_type, from_id, to_type).values())

    def _check_associations(self, object_type: ObjectType, associations: list) -> list[tuple[ObjectType, int, int]]:
        """Validate the `associations` of a create; returns (type, id, association type id) each."""
        targets = []
        for association in associations:
            try:
                to_id = int(association["to"]["id"])
                specs = association["types"]
            except (KeyError, TypeError, ValueError):
                raise validation("Invalid association: each needs `to.id` and `types`") from None
            for spec in specs:
                type_id = spec.get("associationTypeId")
                to_name = association_target(object_type.name, type_id)
                if to_name is None:
                    raise validation(f"{type_id} is not a valid association type id from {object_type.name}")
                to_type = OBJECT_TYPES[to_name]
                if self.find(to_type, to_id) is None:
                    raise validation(
                        f"No {to_type.name} with ID {to_id} exists to associate with",
                        context={"toObjectId": [str(to_id)]},
                    )
                targets.append((to_type, self.table(to_type).resolve(to_id), type_id))
        return targets

    # --- unique values -----------------------------------------------------------

    def _unique_names(self, object_type: ObjectType) -> list[str]:
        return [n for n, d in self.account.properties[object_type.name].items() if d.has_unique_value]

    def _check_unique(self, object_type: ObjectType, record: Record | None, values: dict) -> None:
        table = self.table(object_type)
        for name in self._unique_names(object_type):
            value = values.get(name)
            if not value:
                continue
            key = value.lower() if name == "email" else value
            existing = table.unique_index.get(name, {}).get(key)
            if existing is not None and (record is None or existing != record.id):
                singular = object_type.singular.replace("_", " ").capitalize()
                raise ApiError(
                    409,
                    "CONFLICT",
                    f"{singular} already exists. Existing ID: {existing}",
                    context={"existingId": [str(existing)], "property": [name]},
                )

    def _index_unique(self, object_type: ObjectType, record: Record) -> None:
        table = self.table(object_type)
        for name in self._unique_names(object_type):
            value = record.properties.get(name)
            if value:
                table.unique_index.setdefault(name, {})[value.lower() if name == "email" else value] = record.id

    def _unindex_unique(self, object_type: ObjectType, record: Record) -> None:
        table = self.table(object_type)
        for name in self._unique_names(object_type):
            value = record.properties.get(name)
            if value:
                table.unique_index.get(name, {}).pop(value.lower() if name == "email" else value, None)

    def _system_properties(self, object_type: ObjectType, record_id: int, created: int, updated: int) -> dict:
        values = {
            "hs_object_id": str(record_id),
            object_type.created: iso_from_ms(created),
            object_type.last_modified: iso_from_ms(updated),
        }
        if object_type.name != "contacts":
            values["createdate"] = values["hs_createdate"] = iso_from_ms(created)
        return values

    # --- rendering -------------------------------------------------------------------

    def render(
        self,
        object_type: ObjectType,
        record: Record,
        properties: list[str] | None = None,
        *,
        all_properties: bool = False,
        with_history: list[str] | None = None,
        associations: list[str] | None = None,
    ) -> dict:
        """The API shape of a record (`SimplePublicObject…`).

        Reads return the requested (or default) properties, null where empty,
        plus the id and the two dates; writes return every stored property.
        """
        system = ("hs_object_id", object_type.created, object_type.last_modified)
        if all_properties:
            shown = dict(record.properties)
        else:
            names = list(properties) if properties else list(object_type.get_defaults)
            known = self.account.properties[object_type.name]
            shown = {name: record.properties.get(name) for name in names if name in known}
            for name in system:
                shown[name] = record.properties.get(name)
        body = {
            "id": str(record.id),
            "properties": shown,
            "createdAt": iso_from_ms(record.created_ms),
            "updatedAt": iso_from_ms(record.updated_ms),
            "archived": record.archived_ms is not None,
            "url": f"https://app.hubspot.com/contacts/{self.account.hub_id}/record/{object_type.type_id}/{record.id}",
        }
        if record.archived_ms is not None:
            body["archivedAt"] = iso_from_ms(record.archived_ms)
        if with_history:
            body["propertiesWithHistory"] = {
                name: [
                    {"value": value, "timestamp": iso_from_ms(ts), "sourceType": "API"}
                    for value, ts in reversed(record.history.get(name, []))
                ]
                for name in with_history
            }
        if associations:
            body["associations"] = {}
            for to_name in associations:
                to_type = resolve_object_type(to_name)
                if to_type is None:
                    continue
                targets = self.associated(object_type.name, record.id, to_type.name)
                if targets:
                    body["associations"][to_name] = {
                        "results": [
                            {"id": str(to_id), "type": self.association_type_name(object_type, to_type, type_id)}
                            for to_id, type_ids in sorted(targets.items())
                            for type_id in sorted(type_ids)
                        ]
                    }
        return body

    @staticmethod
    def association_type_name(from_type: ObjectType, to_type: ObjectType, type_id: int) -> str:
        name = f"{from_type.singular}_to_{to_type.singular}"
        pair = ASSOCIATION_TYPES.get((from_type.name, to_type.name), [])
        has_primary = any(a.type_id in PRIMARY_TYPE_IDS for a in pair)
        return f"{name}_unlabeled" if has_primary and type_id not in PRIMARY_TYPE_IDS else name
