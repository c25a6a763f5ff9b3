"""QBO's Fault envelope (NOTES §4) and the exact texts of the faults the product can meet."""

from __future__ import annotations


class QboFault(Exception):
    """A fault QBO answers with: HTTP status, code (a string), Message, Detail, element, type."""

    def __init__(
        self,
        code: str,
        message: str,
        detail: str,
        *,
        status: int = 400,
        element: str = "",
        fault_type: str = "ValidationFault",
    ) -> None:
        super().__init__(f"{code} {message}: {detail}")
        self.code, self.message, self.detail = code, message, detail
        self.status, self.element, self.fault_type = status, element, fault_type

    def fault(self) -> dict:
        return {
            "Error": [{"Message": self.message, "Detail": self.detail, "code": self.code, "element": self.element}],
            "type": self.fault_type,
        }


def required(field: str) -> QboFault:
    return QboFault(
        "2020",
        "Required param missing, need to supply the required value for the API",
        f"Required parameter {field} is missing in the request",
        element=field,
    )


def not_found(entity: str, entity_id: str) -> QboFault:
    return QboFault(
        "610",
        "Object Not Found",
        "Object Not Found : Something you're trying to use has been made inactive. Check the fields "
        "with accounts, customers, items, vendors or employees.",
        element=f"{entity}:{entity_id}",
    )


def invalid_reference(field: str, value: str) -> QboFault:
    return QboFault(
        "2500",
        "Invalid Reference Id",
        f"Invalid Reference Id : Something you're trying to use has been made inactive. Check the "
        f"fields with accounts, customers, items, vendors or employees. ({field}={value})",
        element=field,
    )


def stale(who: str = "API API") -> QboFault:
    return QboFault(
        "5010",
        "Stale Object Error",
        f"Stale Object Error : You and {who} were working on this at the same time. {who} finished "
        "before you did, so your work was not saved.",
    )


def duplicate_name(detail: str) -> QboFault:
    return QboFault("6240", "Duplicate Name Exists Error", detail)


def business(detail: str) -> QboFault:
    return QboFault("6000", "A business validation error has occurred while processing your request", detail)


def closed_period() -> QboFault:
    return QboFault(
        "6210",
        "Account Period Closed, Cannot Update Through Services API",
        "The account period has closed and the account books cannot be updated through through the QBO "
        "Services API. Please use the QBO website to make these changes.",
    )


def duplicate_doc_number(doc_number: str, txn_type: str, txn_id: str) -> QboFault:
    return QboFault(
        "6140",
        "Duplicate Document Number Error",
        f"Duplicate Document Number Error : You must specify a different number. This number has "
        f"already been used. DocNumber={doc_number} is assigned to TxnType={txn_type} with TxnId={txn_id}",
    )


def unsupported(operation: str, entity: str) -> QboFault:
    return QboFault("500", "Unsupported Operation", f"Operation {operation} is not supported for {entity}.")


def query_parse(detail: str) -> QboFault:
    return QboFault("4000", "Error parsing query", f"QueryParserError: {detail}")


def query_invalid(detail: str) -> QboFault:
    return QboFault("4001", "Invalid query", f"QueryValidationError: {detail}")


def authentication(detail: str) -> dict:
    """The 401 body QBO actually returns (lower-case keys; NOTES §4.2)."""
    return {
        "warnings": None,
        "intuitObject": None,
        "fault": {
            "error": [
                {
                    "message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                    "detail": detail,
                    "code": "3200",
                    "element": None,
                }
            ],
            "type": "AUTHENTICATION",
        },
        "report": None,
        "queryResponse": None,
        "batchItemResponse": [],
        "attachableResponse": [],
        "syncErrorResponse": None,
        "requestId": None,
        "time": 0,
        "status": None,
        "cdcresponse": [],
    }


THROTTLE_XML = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<IntuitResponse time="{time}" xmlns="http://schema.intuit.com/finance/v3">\n'
    '    <Fault type="SERVICE">\n'
    '        <Error code="3001">\n'
    "            <Message>message=ThrottleExceeded; errorCode=003001; statusCode=429</Message>\n"
    "            <Detail>The request limit was reached.  Try again later</Detail>\n"
    "        </Error>\n"
    "    </Fault>\n"
    "</IntuitResponse>"
)
