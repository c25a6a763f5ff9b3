"""QBO's query language (NOTES §3): a tokenizer and a recursive-descent parser, then evaluation.

    SELECT * | *, Prop | Prop, Prop | COUNT(*) FROM Entity
        [WHERE cond (AND cond)*] [ORDER BY | ORDERBY prop [ASC|DESC] (, prop [ASC|DESC])*]
        [STARTPOSITION n] [MAXRESULTS n]
    cond := path (= | < | > | <= | >= ) value | path IN (value, …) | path LIKE 'text%'

Keywords, entity and property names are case-insensitive; strings are single-quoted
with \\' escapes; True/true/false; CURRENT_DATE. No OR, no joins, one entity.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime

from emulators.quickbooks import assumptions, faults

TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>'(?:\\.|[^'\\])*')
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<op><=|>=|!=|=|<|>)
  | (?P<punct>[(),*])
  | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
""",
    re.VERBOSE,
)
KEYWORDS = {
    "select",
    "from",
    "where",
    "and",
    "in",
    "like",
    "order",
    "orderby",
    "by",
    "asc",
    "desc",
    "startposition",
    "maxresults",
    "count",
    "or",
}


@dataclass
class Condition:
    path: str
    op: str  # = < > <= >= IN LIKE
    values: list


@dataclass
class Query:
    entity: str
    count: bool = False
    projection: list[str] | None = None  # None: every field
    conditions: list[Condition] = field(default_factory=list)
    order: list[tuple[str, bool]] = field(default_factory=list)  # (path, descending)
    start: int = 1
    max_results: int = 100


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(text):
        match = TOKEN.match(text, position)
        if match is None:
            raise faults.query_parse(f'Encountered "{text[position : position + 10]}" at column {position + 1}.')
        kind = match.lastgroup
        value = match.group()
        position = match.end()
        if kind == "space":
            continue
        if kind == "word" and value.lower() in KEYWORDS:
            kind, value = "keyword", value.lower()
        tokens.append((kind, value))
    return tokens


class Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.position = 0

    def peek(self, offset: int = 0) -> tuple[str, str] | None:
        index = self.position + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def take(self, kind: str | None = None, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (kind and token[0] != kind) or (value and token[1] != value):
            found = "end of query" if token is None else f'"{token[1]}"'
            wanted = value or kind
            raise faults.query_parse(f"Encountered {found} when expecting {wanted}.")
        self.position += 1
        return token

    def accept(self, kind: str, value: str | None = None) -> bool:
        token = self.peek()
        if token is not None and token[0] == kind and (value is None or token[1] == value):
            self.position += 1
            return True
        return False

    def parse(self) -> Query:
        self.take("keyword", "select")
        count, projection = False, None
        if self.accept("keyword", "count"):
            self.take("punct", "(")
            self.take("punct", "*")
            self.take("punct", ")")
            count = True
        elif self.accept("punct", "*"):
            while self.accept("punct", ","):  # "*, Sku": every field anyway
                self.take("word")
        else:
            projection = [self.take("word")[1]]
            while self.accept("punct", ","):
                projection.append(self.take("word")[1])
        self.take("keyword", "from")
        query = Query(entity=self.take("word")[1], count=count, projection=projection)
        if self.accept("keyword", "where"):
            query.conditions.append(self.condition())
            while self.accept("keyword", "and"):
                query.conditions.append(self.condition())
            if self.peek() == ("keyword", "or"):
                raise faults.query_parse("OR is not supported: use IN, or run several queries.")
        if self.accept("keyword", "orderby") or (self.accept("keyword", "order") and self.take("keyword", "by")):
            query.order.append(self.order_item())
            while self.accept("punct", ","):
                query.order.append(self.order_item())
        if self.accept("keyword", "startposition"):
            query.start = int(self.take("number")[1])
        if self.accept("keyword", "maxresults"):
            query.max_results = int(self.take("number")[1])
        if self.peek() is not None:
            raise faults.query_parse(f'Encountered "{self.peek()[1]}" after the end of the query.')
        if query.max_results > assumptions.MAX_RESULTS_LIMIT or query.max_results < 1 or query.start < 1:
            raise faults.query_invalid(
                f"MAXRESULTS must be between 1 and {assumptions.MAX_RESULTS_LIMIT}, STARTPOSITION at least 1"
            )
        return query

    def order_item(self) -> tuple[str, bool]:
        path = self.take("word")[1]
        descending = False
        if self.accept("keyword", "desc"):
            descending = True
        else:
            self.accept("keyword", "asc")
        return path, descending

    def condition(self) -> Condition:
        path = self.take("word")[1]
        if self.accept("keyword", "in"):
            self.take("punct", "(")
            values = [self.value()]
            while self.accept("punct", ","):
                values.append(self.value())
            self.take("punct", ")")
            return Condition(path, "IN", values)
        if self.accept("keyword", "like"):
            return Condition(path, "LIKE", [self.value()])
        operator = self.take("op")[1]
        if operator == "!=":
            raise faults.query_parse("!= is not supported.")
        return Condition(path, operator, [self.value()])

    def value(self) -> object:
        kind, text = self.take()
        if kind == "string":
            return re.sub(r"\\(.)", r"\1", text[1:-1])
        if kind == "number":
            return text
        if kind == "word" and text.lower() in ("true", "false"):
            return text.lower() == "true"
        if kind == "word" and text.upper() == "CURRENT_DATE":
            return date.today().isoformat()
        raise faults.query_parse(f'Encountered "{text}" when expecting a value.')


def parse(text: str) -> Query:
    return Parser(text.strip().rstrip(";")).parse()


# --- evaluation --------------------------------------------------------------------------------------------------

SHORTCUTS = {"PrimaryEmailAddr": "PrimaryEmailAddr.Address", "PrimaryPhone": "PrimaryPhone.FreeFormNumber"}


def field_value(record: dict, path: str) -> object:
    """A (case-insensitive) dotted path; a ref compares by its value."""
    current: object = record
    for part in SHORTCUTS.get(path, path).split("."):
        if not isinstance(current, dict):
            return None
        key = next((k for k in current if k.lower() == part.lower()), None)
        if key is None:
            return None
        current = current[key]
    if isinstance(current, dict) and "value" in current:
        return current["value"]
    return current


def _comparable(value: object) -> object:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    if re.match(r"^\d{4}-\d{2}-\d{2}", text):
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return parsed.timestamp() if parsed.tzinfo else parsed.replace(tzinfo=None).isoformat()
        except ValueError:
            return text
    return text.lower() if assumptions.QUERY_CASE_INSENSITIVE else text


def _pair(left: object, right: object) -> tuple[object, object]:
    """Make two values comparable: datetimes with offsets against dates compare as text prefixes."""
    a, b = _comparable(left), _comparable(right)
    if isinstance(a, float) != isinstance(b, float) and {type(a), type(b)} <= {float, str}:
        return str(left), str(right)
    if isinstance(a, bool) or isinstance(b, bool):
        return (str(a).lower(), str(b).lower())
    return a, b


def matches(record: dict, condition: Condition) -> bool:
    actual = field_value(record, condition.path)
    if condition.op == "IN":
        return any(_equal(actual, value) for value in condition.values)
    if condition.op == "LIKE":
        pattern = re.escape(str(condition.values[0]).lower()).replace("%", ".*")
        return actual is not None and re.fullmatch(pattern, str(actual).lower()) is not None
    if condition.op == "=":
        return _equal(actual, condition.values[0])
    if actual is None:
        return False
    left, right = _pair(actual, condition.values[0])
    try:
        return {"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[condition.op]
    except TypeError:
        return False


def _equal(actual: object, wanted: object) -> bool:
    if actual is None:
        return wanted in (None, " ", "")
    left, right = _pair(actual, wanted)
    return left == right


def sort_key(record: dict, path: str):
    value = _comparable(field_value(record, path))
    return (value is None, str(type(value)), value if value is not None else 0)
