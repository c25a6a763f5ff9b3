"""Local stand-ins for HubSpot and QuickBooks Online. They share no code with the product."""
