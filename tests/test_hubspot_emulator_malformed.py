"""Malformed input is answered as HubSpot answers it: 400 VALIDATION_ERROR, never a 500.

Each case is one that crashed the emulator (a 500 the SDK would retry as if HubSpot were down)
before input was read through emulators/hubspot/inputs.py. Over HTTP, with every response also
validated against HubSpot's specs by the fixture. The property-based test in
test_hubspot_emulator_conformance.py covers the rest of the input space.
"""

from __future__ import annotations

import pytest
from hubspot.crm.associations.v4 import BatchInputPublicDefaultAssociationMultiPost, PublicDefaultAssociationMultiPost

from tests.test_hubspot_emulator_crm import create, raw

OBJECT_TYPES = ("contacts", "companies", "deals", "products", "line_items", "invoices", "commerce_payments")
NOT_OBJECTS = (1, "x", None, [], 1.5, True)


def assert_validation_error(response) -> dict:
    assert response.status_code == 400, (response.status_code, response.text)
    body = response.json()
    assert body["status"] == "error"
    assert body["category"] == "VALIDATION_ERROR"
    assert isinstance(body["message"], str) and body["message"]
    return body


@pytest.fixture
def post(hubspot_emulator, hubspot_account):
    def send(path: str, body: object):
        return raw(hubspot_emulator, hubspot_account, "POST", path, json=body)

    return send


@pytest.mark.parametrize("object_type", OBJECT_TYPES)
@pytest.mark.parametrize("operation", ["read", "create", "update", "upsert", "archive"])
def test_a_batch_input_that_is_not_an_object(post, object_type, operation):
    for item in NOT_OBJECTS:
        body = assert_validation_error(post(f"/crm/v3/objects/{object_type}/batch/{operation}", {"inputs": [item]}))
        assert "inputs[0]" in body["message"]


def test_association_batch_read_input_that_is_not_an_object(post):
    for item in NOT_OBJECTS:
        assert_validation_error(post("/crm/v4/associations/contacts/companies/batch/read", {"inputs": [item]}))


@pytest.mark.parametrize("operation", ["read", "update", "upsert"])
def test_an_id_property_that_is_not_a_string(post, hubspot, operation):
    contact = create(hubspot, "contacts", email="ida@example.com")
    for id_property in ({"a": 1}, ["email"], 7, True):
        if operation == "read":
            body = {"idProperty": id_property, "inputs": [{"id": "ida@example.com"}]}
        else:
            body = {"inputs": [{"id": contact.id, "idProperty": id_property, "properties": {"firstname": "X"}}]}
        assert_validation_error(post(f"/crm/v3/objects/contacts/batch/{operation}", body))
    # nothing was written by the refused batches
    assert (
        hubspot.crm.contacts.basic_api.get_by_id(contact.id, properties=["firstname"]).properties["firstname"] is None
    )


def test_gdpr_delete_with_an_id_property_or_object_id_that_is_not_a_string(post, hubspot):
    contact = create(hubspot, "contacts", email="gdpr@example.com")
    for body in (
        {"objectId": "gdpr@example.com", "idProperty": {"x": 1}},
        {"objectId": "gdpr@example.com", "idProperty": ["email"]},
        {"objectId": [], "idProperty": [{"": None}]},
        {"objectId": {"id": contact.id}},
    ):
        assert_validation_error(post("/crm/v3/objects/contacts/gdpr-delete", body))
    assert hubspot.crm.contacts.basic_api.get_by_id(contact.id).id == contact.id  # still there


@pytest.mark.parametrize(
    "body",
    [
        {"filterGroups": [{"filters": [{"propertyName": 5, "operator": "EQ", "value": "x"}]}]},
        {"filterGroups": [{"filters": [{"propertyName": ["email"], "operator": "EQ", "value": "x"}]}]},
        {"filterGroups": [{"filters": [{"propertyName": {"a": 1}, "operator": "HAS_PROPERTY"}]}]},
        {"filterGroups": ["not a group"]},
        {"filterGroups": [7]},
        {"filterGroups": [None]},
        {"filterGroups": [{"filters": ["x"]}]},
        {"filterGroups": [{"filters": {"propertyName": "email"}}]},
        {"filterGroups": "groups"},
        {"sorts": "createdate"},
        {"sorts": [{"propertyName": 3}]},
        {"properties": "email"},
        {"properties": [1, 2]},
    ],
)
def test_search_with_malformed_filters(post, body):
    assert_validation_error(post("/crm/v3/objects/contacts/search", body))


def test_association_list_with_a_non_integer_limit_or_after(hubspot_emulator, hubspot_account, hubspot):
    contact = create(hubspot, "contacts", email="list@example.com")
    path = f"/crm/v4/objects/contacts/{contact.id}/associations/companies"
    for params in ({"limit": "ten"}, {"limit": "1.5"}, {"after": "0.00"}, {"after": "next"}):
        assert_validation_error(raw(hubspot_emulator, hubspot_account, "GET", path, params=params))
    assert raw(hubspot_emulator, hubspot_account, "GET", path, params={"limit": "10"}).status_code == 200


@pytest.mark.parametrize("operation", ["archive", "labels/archive"])
def test_association_archives_with_from_or_to_that_are_not_objects(post, hubspot, operation):
    contact = create(hubspot, "contacts", email="arch@example.com")
    company = create(hubspot, "companies", name="Arch")
    hubspot.crm.associations.v4.basic_api.create_default("contacts", contact.id, "companies", company.id)
    to = [{"id": company.id}] if operation == "archive" else {"id": company.id}
    for item in (
        {"from": contact.id, "to": to},
        {"from": [contact.id], "to": to},
        {"from": {"id": contact.id}, "to": "x"},
        {"from": {"id": contact.id}, "to": 5},
        {"from": None, "to": to},
    ):
        if operation == "labels/archive":
            item = {**item, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}]}
        assert_validation_error(post(f"/crm/v4/associations/contacts/companies/batch/{operation}", {"inputs": [item]}))
    listed = hubspot.crm.associations.v4.basic_api.get_page("contacts", contact.id, "companies")
    assert [r.to_object_id for r in listed.results] == [company.id]  # a refused batch archives nothing


def test_callback_completion_with_a_callback_id_that_is_not_a_string(post):
    for callback_id in (7, ["abc"], {"id": "abc"}, None, True):
        body = {"inputs": [{"callbackId": callback_id, "outputFields": {"hs_execution_state": "SUCCESS"}}]}
        assert_validation_error(post("/automation/v4/actions/callbacks/complete", body))


def test_batch_associate_default_answers_200_with_errors_and_the_sdk_reads_it(hubspot):
    contact = create(hubspot, "contacts", email="assoc@example.com")
    company = create(hubspot, "companies", name="Assoc")
    answer = hubspot.crm.associations.v4.batch_api.create_default(
        "contacts",
        "companies",
        batch_input_public_default_association_multi_post=BatchInputPublicDefaultAssociationMultiPost(
            inputs=[
                PublicDefaultAssociationMultiPost(_from={"id": contact.id}, to={"id": company.id}),
                PublicDefaultAssociationMultiPost(_from={"id": "999999999"}, to={"id": company.id}),
            ]
        ),
    )
    assert answer is not None  # SDK v12 returns None for a 207 here
    assert answer.num_errors == 1
    assert answer.errors[0].category == "OBJECT_NOT_FOUND"
    assert {(r._from.id, r.to.id) for r in answer.results} >= {(contact.id, company.id)}
