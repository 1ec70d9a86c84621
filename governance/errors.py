"""Domain errors raised by governance services; voicegate.api_errors turns them into HTTP."""

from __future__ import annotations


class GovernanceError(Exception):
    """A refused operation, with a stable machine-readable code."""

    code = "governance_error"
    details: object = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidTransition(GovernanceError):
    code = "invalid_transition"


class OwnerErased(GovernanceError):
    code = "owner_erased"


class BiometricDataUnreadable(GovernanceError):
    """The blob's data key is destroyed, the master key is unknown, or the ciphertext was tampered with."""

    code = "biometric_data_unreadable"


class AuditChainBroken(GovernanceError):
    code = "audit_chain_broken"
