"""Synthesis refusals, as domain errors carrying what the client needs to act on them."""

from __future__ import annotations

from governance.errors import GovernanceError
from governance.policy import Decision


class SynthesisRefused(GovernanceError):
    """The policy said no. `decision.reason` is the stable code; rate limits carry retry_after_seconds."""

    def __init__(self, decision: Decision) -> None:
        super().__init__(f"synthesis refused: {decision.reason.value}")
        self.code = decision.reason.value
        self.decision = decision


class VoiceNotReady(GovernanceError):
    code = "voice_not_fitted"


class UnknownEngine(GovernanceError):
    code = "unknown_engine"


class TextNotSpeakable(GovernanceError):
    code = "text_rejected"
