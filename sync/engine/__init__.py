"""The sync engine: pure planning code (no HTTP, no SDK, no database, no clock of its own).

`types` holds the data the planner takes and returns; `planner.plan()` makes the decisions.
Object modules (contacts, products, invoices) supply the normalization, natural keys, filters
and dependencies; the runtime reads records, calls `plan()`, writes, and stores the bases.
"""

from sync.engine.planner import link_after_duplicate, plan
from sync.engine.types import (
    HUBSPOT,
    LINES,
    QUICKBOOKS,
    Action,
    Dependency,
    Filter,
    Line,
    Link,
    Plan,
    Record,
    SyncRules,
)

__all__ = [
    "HUBSPOT",
    "LINES",
    "QUICKBOOKS",
    "Action",
    "Dependency",
    "Filter",
    "Line",
    "Link",
    "Plan",
    "Record",
    "SyncRules",
    "link_after_duplicate",
    "plan",
]
