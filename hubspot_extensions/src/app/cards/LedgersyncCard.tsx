// The app card: asks Ledgersync (through hubspot.fetch, signed by HubSpot) what it knows of this record.
// Its URL lives in card-config.json, which the HubSpot emulator reads too.
import React, { useEffect, useState } from "react";
import { hubspot, Text, Alert, LoadingSpinner } from "@hubspot/ui-extensions";
import config from "./card-config.json";

hubspot.extend(({ context }) => <LedgersyncCard context={context} />);

const LedgersyncCard = ({ context }) => {
  const [state, setState] = useState({ loading: true, data: null, error: null });
  useEffect(() => {
    const query = new URLSearchParams({
      portalId: String(context.portal.id),
      userId: String(context.user.id),
      userEmail: context.user.email,
      associatedObjectId: String(context.crm.objectId),
      associatedObjectType: String(context.crm.objectTypeId),
    });
    hubspot
      .fetch(`${config.fetchUrl}?${query}`, { method: "GET", timeout: 15000 })
      .then((response) => response.json())
      .then((data) => setState({ loading: false, data, error: null }))
      .catch((error) => setState({ loading: false, data: null, error: String(error) }));
  }, []);
  if (state.loading) return <LoadingSpinner label="Loading QuickBooks details" />;
  if (state.error) return <Alert title="Ledgersync is unreachable" variant="error">{state.error}</Alert>;
  return <Text>{state.data.summary}</Text>;
};
