"""The resource registry: every declaration the app serves, by JSON:API type."""

from __future__ import annotations

from accounts_api.jsonapi.declaration import Resource
from accounts_api.resources.accounts import ACCOUNTS
from accounts_api.resources.balance_notifications import BALANCE_NOTIFICATIONS
from accounts_api.resources.contacts import CONTACTS
from accounts_api.resources.contractors import CONTRACTORS
from accounts_api.resources.currencies import CURRENCIES
from accounts_api.resources.event_subscriptions import EVENT_SUBSCRIPTIONS
from accounts_api.resources.invoice_templates import INVOICE_TEMPLATES, INVOICE_TEMPLATES_PLURAL
from accounts_api.resources.ledger_entries import LEDGER_ENTRIES
from accounts_api.resources.payments import PAYMENTS
from accounts_api.resources.smtp_connections import SMTP_CONNECTIONS
from accounts_api.resources.timezones import TIMEZONES
from accounts_api.resources.transactions import TRANSACTIONS
from accounts_api.resources.webhook_attempts import WEBHOOK_ATTEMPTS
from accounts_api.resources.webhook_deliveries import WEBHOOK_DELIVERIES

RESOURCES: tuple[Resource, ...] = (
    ACCOUNTS,
    CONTRACTORS,
    SMTP_CONNECTIONS,
    CONTACTS,
    CURRENCIES,
    INVOICE_TEMPLATES,
    INVOICE_TEMPLATES_PLURAL,
    TIMEZONES,
    PAYMENTS,
    TRANSACTIONS,
    LEDGER_ENTRIES,
    BALANCE_NOTIFICATIONS,
    EVENT_SUBSCRIPTIONS,
    WEBHOOK_DELIVERIES,
    WEBHOOK_ATTEMPTS,
)

REGISTRY: dict[str, Resource] = {
    resource.type: resource for resource in RESOURCES if resource.path != "invoice-templates"
}
