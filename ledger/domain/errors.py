"""One exception hierarchy with the stable machine codes of the API contract.

A refusal by a rule records nothing: the command that raises one of these
saves no event.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every refusal the ledger gives; ``code`` is stable for scripts."""

    code = "internal_error"
    title = "Ledger error"

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


class ValidationFailed(LedgerError):
    code = "validation_error"
    title = "The request is not valid"


class InvalidEnterpriseNumber(LedgerError):
    code = "invalid_enterprise_number"
    title = "Invalid enterprise number"


class InvalidProviderNumber(LedgerError):
    code = "invalid_provider_number"
    title = "Invalid provider registration number"


class NotAnSme(LedgerError):
    code = "not_an_sme"
    title = "The enterprise is not a small or medium enterprise"


class NotEligible(LedgerError):
    code = "not_eligible"
    title = "The enterprise is not eligible"


class DeadlinePassed(LedgerError):
    code = "deadline_passed"
    title = "A deadline has passed"


class CeilingExceeded(LedgerError):
    code = "ceiling_exceeded"
    title = "The yearly ceiling is used up"


class BelowMinimumCost(LedgerError):
    code = "below_minimum_cost"
    title = "The eligible cost is below the minimum"


class ThemeRequired(LedgerError):
    code = "theme_required"
    title = "A theme is required"


class ServiceNotEligible(LedgerError):
    code = "service_not_eligible"
    title = "The service is not eligible"


class AmountMismatch(LedgerError):
    code = "amount_mismatch"
    title = "The amount does not match"


class PaymentReferenceMismatch(LedgerError):
    code = "payment_reference_mismatch"
    title = "The payment reference does not match"


class InvalidState(LedgerError):
    code = "invalid_state"
    title = "Not allowed in the current state"


class InsufficientFunds(LedgerError):
    code = "insufficient_funds"
    title = "The amount is more than is held or due"


class IdempotencyKeyReused(LedgerError):
    code = "idempotency_key_reused"
    title = "The idempotency key was used with another request"


class VersionMismatch(LedgerError):
    code = "version_mismatch"
    title = "The wallet has changed since the version given"


class AlreadyExists(LedgerError):
    code = "already_exists"
    title = "It exists already"


class NotFound(LedgerError):
    code = "not_found"
    title = "Not found"


class StoreBusy(LedgerError):
    """The event store stayed locked by another writer longer than the ledger
    waits for it (``POSTGRES_LOCK_TIMEOUT``); the command recorded nothing."""

    code = "store_busy"
    title = "The ledger is busy"


class StoreUnavailable(LedgerError):
    """No connection to the event store came free within the ledger's wait
    (the server refused or did not answer); the command recorded nothing."""

    code = "store_unavailable"
    title = "The ledger's store cannot be reached"


class Conflict(LedgerError):
    """Concurrent writers kept colliding; the command recorded nothing."""

    code = "version_mismatch"
    title = "Concurrent change, try again"
