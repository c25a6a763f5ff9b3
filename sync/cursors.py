"""Change detection: what changed on each side since the cursor — without missing anything.

HubSpot: search on the last-modified property, ascending. Search stops at 10,000
results, so before reaching the cap the query starts again from the last value
seen (records sharing that value are told apart by id). Search indexes lag, so
each run re-reads an overlap of the recent past; callers deduplicate by
(id, modified). The next watermark is the newest value seen, but never later
than the run's start, and it is stored only after the run commits.

QBO: Change Data Capture since the watermark; an entity that comes back with
the 1,000-object cap is read again from the newest LastUpdatedTime it returned,
until it comes back under the cap (deleted objects come after the live ones, so
they appear once the live ones fit). CDC looks back 30 days at most: an older
watermark is read with queries on MetaData.LastUpdatedTime instead (no deletes:
the sweep's link check catches those). QBO's answer `time` is the next watermark.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sync.clients.hubspot import HubSpotClient
from sync.clients.quickbooks import QuickBooksClient
from sync.times import parse_time

OVERLAP = timedelta(minutes=2)
SEARCH_PAGE = 200
SEARCH_CAP = 10_000
CDC_CAP = 1000
CDC_DAYS = 30


@dataclass
class Changes:
    records: dict[str, dict] = field(default_factory=dict)  # id → what the search or CDC returned (latest)
    deleted: set[str] = field(default_factory=set)
    watermark: datetime | str | None = None
    requests: int = 0


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def hubspot_changes(
    client: HubSpotClient,
    object_type: str,
    modified_property: str,
    since: datetime | None,
    run_started: datetime,
    page_size: int = SEARCH_PAGE,
    cap: int = SEARCH_CAP,
    on_page: Callable[[list[dict], datetime], None] | None = None,
) -> Changes:
    """Every record modified at or after `since` (minus the overlap), past the 10,000-result cap.

    `on_page(results, newest)` is called after each page (the walk is in ascending modified
    order, so `newest` is a safe watermark for what came before): a caller that stores the
    page and that watermark together can stop at any point — a rate limit, say — and resume.
    """
    changes = Changes()
    floor_ms = _ms(since - OVERLAP) if since else 0
    tie_id: str | None = None  # set while walking records that share the timestamp floor_ms
    newest = since
    while True:
        exhausted, last = True, None
        after = None
        while True:
            page = client.search(object_type, _window(modified_property, floor_ms, tie_id, page_size, after))
            changes.requests += 1
            for record in page["results"]:
                changes.records[record["id"]] = record
                modified = parse_time(record["properties"].get(modified_property))
                if modified and (newest is None or modified > newest):
                    newest = modified
            if on_page is not None and page["results"] and newest is not None:
                on_page(page["results"], min(newest, run_started))
            last = page["results"][-1] if page["results"] else last
            if page["after"] is None:
                break
            if int(page["after"]) + page_size > cap:  # the next page would pass the cap: re-window
                exhausted = False
                break
            after = page["after"]
        if exhausted:
            if tie_id is None:
                break
            tie_id, floor_ms = None, floor_ms + 1  # the tied records are done: go on after them
            continue
        last_ms = _ms(parse_time(last["properties"].get(modified_property)))
        if tie_id is not None or last_ms == floor_ms:
            tie_id = last["id"]  # a whole window of one timestamp: walk it by id
        floor_ms = last_ms
    changes.watermark = min(newest, run_started) if newest else run_started
    return changes


def _window(modified_property: str, floor_ms: int, tie_id: str | None, page_size: int, after: str | None) -> dict:
    if tie_id is None:
        filters = [{"propertyName": modified_property, "operator": "GTE", "value": str(floor_ms)}]
        sort = modified_property
    else:
        filters = [
            {"propertyName": modified_property, "operator": "EQ", "value": str(floor_ms)},
            {"propertyName": "hs_object_id", "operator": "GT", "value": tie_id},
        ]
        sort = "hs_object_id"
    return {
        "filter_groups": [{"filters": filters}],
        "limit": page_size,
        "after": after,
        "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
        "properties": [modified_property, "hs_object_id"],
    }


def quickbooks_changes(
    client: QuickBooksClient, entities: list[str], since: datetime, now: datetime, tz_offset: str = "+00:00"
) -> Changes:
    """Live and deleted changes of `entities` since `since`; `watermark` is QBO's answer time."""
    changes = Changes()
    if now - since > timedelta(days=CDC_DAYS - 1):
        return _query_changes(client, entities, since, changes)
    pending = {entity: since for entity in entities}
    while pending:
        moment = min(pending.values())
        batch = [entity for entity, when in pending.items() if when == moment]
        found, answer_time = client.cdc(batch, moment.isoformat(timespec="seconds"))
        changes.requests += 1
        changes.watermark = changes.watermark or answer_time
        for entity in batch:
            objects = found.get(entity, [])
            for item in objects:
                key = f"{entity}:{item['Id']}"
                if item.get("status") == "Deleted":
                    changes.deleted.add(key)
                    changes.records.pop(key, None)
                else:
                    changes.records[key] = item
            del pending[entity]
            if len(objects) >= CDC_CAP:
                latest = max(
                    (parse_time(o["MetaData"]["LastUpdatedTime"]) for o in objects if o.get("status") != "Deleted"),
                    default=None,
                )
                if latest is not None and latest > moment:
                    pending[entity] = latest  # read on from the newest change it returned
                else:  # over 1,000 changes within one second: page through them with a query
                    _query_changes(client, [entity], moment, changes)
    return changes


def _query_changes(client: QuickBooksClient, entities: list[str], since: datetime, changes: Changes) -> Changes:
    for entity in entities:
        start = 1
        while True:
            statement = (
                f"select * from {entity} where MetaData.LastUpdatedTime >= "  # noqa: S608 (QBO query)
                f"'{since.isoformat(timespec='seconds')}' orderby MetaData.LastUpdatedTime "
                f"startposition {start} maxresults 1000"
            )
            answer = client.query(statement)
            changes.requests += 1
            rows = answer.get(entity, [])
            for item in rows:
                changes.records[f"{entity}:{item['Id']}"] = item
            if len(rows) < 1000:
                break
            start += 1000
    changes.watermark = changes.watermark or datetime.now(UTC).isoformat()
    return changes
