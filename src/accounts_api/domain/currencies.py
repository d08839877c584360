"""Currency rules (contract §5.3), with Yeti's names and rate-provider support lists."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from accounts_api.domain.validation import (
    BLANK,
    NOT_INCLUDED,
    TAKEN,
    Errors,
    check_numericality,
    check_string,
    is_blank,
    to_decimal,
)

# The default (system) currency: every rate is relative to it.
DEFAULT_CURRENCY_ID = 0

# ISO 4217 codes Yeti accepts, then the one crypto currency it knows.
NAMES = frozenset(
    (
        "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD "
        "BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB "
        "EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK "
        "JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA "
        "MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK "
        "PHP PKR PLN PYG QAR RON RSD RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SYP "
        "SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD "
        "XOF XPF YER ZAR ZMW ZWL USDT"
    ).split()
)


@dataclass(frozen=True)
class RateProvider:
    id: int
    name: str
    supported: frozenset[str]

    def supports(self, currency: str) -> bool:
        return currency in self.supported


_FRANKFURTER = """AUD BRL CAD CHF CNY CZK DKK EUR GBP HKD HUF IDR ILS INR ISK JPY KRW MXN MYR NOK
    NZD PHP PLN RON SEK SGD THB TRY USD ZAR"""
_BANK_OF_ISRAEL = "ILS USD GBP JPY EUR AUD CAD DKK NOK ZAR SEK CHF JOD LBP EGP"
_NBU = """UAH AED AUD AZN BDT CAD CHF CNY CZK DKK DZD EGP EUR GBP GEL HKD HUF IDR ILS INR JPY KRW
    KZT LBP MDL MXN MYR NOK NZD PLN RON RSD SAR SEK SGD THB TND TRY USD VND ZAR"""

RATE_PROVIDERS = {
    provider.id: provider
    for provider in (
        RateProvider(1, "Frankfurter", frozenset(_FRANKFURTER.split())),
        RateProvider(2, "Bank of Israel", frozenset(_BANK_OF_ISRAEL.split())),
        RateProvider(3, "National Bank of Ukraine", frozenset(_NBU.split())),
    )
}


@dataclass(frozen=True)
class Lookups:
    name_taken: bool
    # the default currency's name (None while it is being created)
    system_currency: str | None
    # providers used by any currency, for renaming the default one
    used_provider_ids: Collection[int] = ()


def validate(
    values: Mapping[str, Any], lookups: Lookups, *, is_default: bool, name_changed: bool
) -> tuple[Errors, dict[str, Any]]:
    """Yeti's order: name presence, uniqueness, inclusion; rate presence, numericality;
    provider inclusion; the default-currency rules; provider support."""
    errors = Errors()
    name = check_string(errors, "name", values.get("name"))
    if is_blank(values.get("name")):
        errors.add("name", BLANK)
    if lookups.name_taken:
        errors.add("name", TAKEN)
    if name not in NAMES:
        errors.add("name", NOT_INCLUDED)
    rate_raw = values.get("rate")
    if is_blank(rate_raw):
        errors.add("rate", BLANK)
    rate = check_numericality(errors, "rate", rate_raw, greater_than=0)
    provider_raw = values.get("rate_provider_id")
    provider: RateProvider | None = None
    if provider_raw is not None:
        number = to_decimal(provider_raw)
        provider = (
            RATE_PROVIDERS.get(int(number))
            if number is not None and number == number.to_integral_value() and abs(number) < 10
            else None
        )
        if provider is None:
            errors.add("rate_provider_id", NOT_INCLUDED)
    if is_default and rate is not None and rate != 1:
        errors.add("rate", "must be 1 for default currency")
    if is_default and provider_raw is not None and provider is not None:
        errors.add("rate_provider_id", "must be empty for default currency")
    if not is_default and name and provider is not None:
        if not provider.supports(name):
            errors.add("rate_provider_id", f"{provider.name} does not support {name}")
        system = lookups.system_currency
        if system and not provider.supports(system):
            errors.add(
                "rate_provider_id",
                f"{provider.name} does not support system currency {system}"
                " required for cross rates",
            )
    if is_default and name_changed and name:
        unsupported = [
            RATE_PROVIDERS[i].name
            for i in sorted(lookups.used_provider_ids)
            if i in RATE_PROVIDERS and not RATE_PROVIDERS[i].supports(name)
        ]
        if unsupported:
            errors.add(
                "name",
                "is not supported as system currency by used rate provider(s): "
                + ", ".join(unsupported),
            )
    clean = {
        "name": name,
        "rate": float(rate) if rate is not None else None,
        "rate_provider_id": provider.id if provider else None,
    }
    return errors, clean
