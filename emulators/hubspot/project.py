"""The app as HubSpot knows it: the developer-project files (`*-hsmeta.json`) of `hubspot_extensions/`.

Loaded as data, never executed. They give the default app its scopes and
redirect URLs, its webhook target and subscriptions, its app card, its
workflow actions and its app-event types. A proxy map (as HubSpot's local
development `local.json` has) sends calls meant for the declared https host to
a local app instead, e.g. {"https://ledgersync.example.com": "http://localhost:8000"}.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from emulators.hubspot.errors import validation


@dataclass
class Project:
    folder: str
    app: dict = field(default_factory=dict)
    webhooks: dict | None = None
    cards: dict[str, dict] = field(default_factory=dict)
    actions: dict[str, dict] = field(default_factory=dict)
    app_events: dict[str, dict] = field(default_factory=dict)
    proxy: dict[str, str] = field(default_factory=dict)

    @property
    def required_scopes(self) -> tuple[str, ...]:
        return tuple(self.app.get("auth", {}).get("requiredScopes", []))

    @property
    def optional_scopes(self) -> tuple[str, ...]:
        auth = self.app.get("auth", {})
        return tuple(auth.get("optionalScopes", []) + auth.get("conditionallyRequiredScopes", []))

    @property
    def redirect_urls(self) -> list[str]:
        return [self.local_url(url) for url in self.app.get("auth", {}).get("redirectUrls", [])]

    def local_url(self, url: str) -> str:
        """Where a declared URL is really served (the proxy map), else the URL itself."""
        for declared, local in self.proxy.items():
            if url.startswith(declared.rstrip("/")):
                return local.rstrip("/") + url[len(declared.rstrip("/")) :]
        return url

    def webhook_target(self) -> str | None:
        if not self.webhooks:
            return None
        target = self.webhooks.get("settings", {}).get("targetUrl")
        return self.local_url(target) if target else None

    def subscriptions(self) -> list[dict]:
        """Every active subscription, each with a stable numeric id (its position)."""
        if not self.webhooks:
            return []
        groups = self.webhooks.get("subscriptions", {})
        listed = [*groups.get("legacyCrmObjects", []), *groups.get("crmObjects", [])]
        return [{**s, "id": 100 + i} for i, s in enumerate(listed) if s.get("active", True)]

    def to_api(self) -> dict:
        return {
            "folder": self.folder,
            "name": self.app.get("name"),
            "requiredScopes": list(self.required_scopes),
            "redirectUrls": self.redirect_urls,
            "webhookTarget": self.webhook_target(),
            "subscriptions": self.subscriptions(),
            "cards": sorted(self.cards),
            "actions": sorted(self.actions),
            "appEvents": sorted(self.app_events),
            "proxy": self.proxy,
        }


def load_project(folder: str | Path, proxy: dict[str, str] | None = None) -> Project:
    """Read every `*-hsmeta.json` under `folder`; a file that is not valid JSON or lacks uid/type is a 400."""
    root = Path(folder)
    if not root.is_dir():
        raise validation(f"No project folder at {folder}")
    project = Project(folder=str(root), proxy=dict(proxy or {}))
    files = sorted(root.rglob("*-hsmeta.json"))
    if not files:
        raise validation(f"No *-hsmeta.json files under {folder}")
    has_app = False
    for path in files:
        try:
            document = json.loads(path.read_text())
            uid, kind, config = document["uid"], document["type"], document["config"]
        except (ValueError, KeyError, TypeError) as error:
            raise validation(f"{path}: not a project component ({error})") from None
        if kind == "app":
            project.app, has_app = config, True
        elif kind == "webhooks":
            project.webhooks = config
        elif kind == "card":
            card = dict(config)
            card_config = path.parent / "card-config.json"  # imported by the card's React code
            if card_config.exists():
                card["fetchUrl"] = json.loads(card_config.read_text()).get("fetchUrl")
            project.cards[uid] = card
        elif kind == "workflow-action":
            project.actions[uid] = {**config, "definitionId": 1_000_000 + len(project.actions) + 1}
        elif kind == "app-event":
            project.app_events[uid] = config
    if not has_app:
        raise validation(f"{folder} has no app-hsmeta.json (type app)")
    _check_subscriptions(project)
    return project


def _check_subscriptions(project: Project) -> None:
    """The rules HubSpot applies to subscriptions when a project is uploaded (NOTES §4)."""
    subscriptions = project.subscriptions()
    if len(subscriptions) > 1000:
        raise validation("An app can have at most 1,000 webhook subscriptions")
    for subscription in subscriptions:
        kind = subscription.get("subscriptionType", "")
        if kind.endswith(".propertyChange"):
            name = subscription.get("propertyName")
            if not name:
                raise validation(f"{kind} needs a propertyName")
            if name in ("hs_lastmodifieddate", "lastmodifieddate", "num_unique_conversion_events"):
                raise validation(f"{name} cannot be subscribed to")
        if kind.startswith("object.") and not subscription.get("objectType"):
            raise validation(f"{kind} needs an objectType")
