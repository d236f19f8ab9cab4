"""The submissions verify holds the payment-reference claims against, kept in
48 bytes an application: every claim finds its own submission, whatever ids
share a bucket or a byte sequence, and a claim that disagrees is named with
the submission's own enterprise number and reference, read again from its wallet."""

from __future__ import annotations

import uuid
from typing import Any

from ledger.audit.ledger_verification import Submissions
from ledger.domain.identifiers import payment_reference

FIRST, SECOND = payment_reference("first"), payment_reference("second")
WALLET = uuid.UUID("5d4f6c1e-0000-5000-8000-000000000001")


class Wallets:
    """A ledger that holds one wallet with the given submissions."""

    def __init__(self, submitted: dict[str, str] | list[tuple[str, str]]):
        opened = (1, "WalletOpened", {"enterprise_number": "0403170701"})
        pairs = submitted.items() if isinstance(submitted, dict) else submitted
        self.rows = [opened] + [
            (i + 2, "ApplicationSubmitted", {"application_id": a, "payment_reference": r})
            for i, (a, r) in enumerate(pairs)
        ]

    def stored_rows(self, wallet: uuid.UUID) -> list[tuple[int, str, dict[str, Any]]]:
        assert wallet == WALLET
        return self.rows


def claim(application_id: str, reference: str, enterprise: str = "0403170701") -> dict[str, Any]:
    return {"application_id": application_id, "reference": reference, "enterprise_number": enterprise}


def test_every_claim_finds_its_own_submission_among_many_in_one_bucket():
    same_prefix = [str(uuid.UUID(bytes=b"\x12\x34" + uuid.uuid4().bytes[2:])) for _ in range(300)]
    # an id of the wallet's bucket: its records hold the wallet's 16 bytes, which are no id there
    beside_wallet = str(uuid.UUID(bytes=WALLET.bytes[:2] + uuid.uuid4().bytes[2:]))
    ids = [*same_prefix, beside_wallet, "not-a-uuid", str(uuid.uuid4()).upper()]
    references = {a: payment_reference(a) for a in ids}
    submissions = Submissions(Wallets(references))
    for application_id, reference in references.items():
        submissions.add(application_id, WALLET, ("0403170701", reference))
    for application_id, reference in references.items():
        assert submissions.confirm(claim(application_id, reference.strip("+").replace("/", ""))) is None  # compact
        assert submissions.confirm(claim(application_id, payment_reference(application_id + "!"))) is not None
        assert submissions.get(application_id) == ("0403170701", reference)
    assert submissions.get(str(WALLET)) is None  # found only inside a record: not an application
    assert "ApplicationSubmitted event is missing" in submissions.confirm(
        claim(str(uuid.uuid4()), payment_reference("x"))
    )


def test_a_claim_that_disagrees_is_named_with_what_was_submitted():
    application_id = str(uuid.uuid4())
    submissions = Submissions(Wallets({application_id: FIRST}))
    submissions.add(application_id, WALLET, ("0403170701", FIRST))
    changed = submissions.confirm(claim(application_id, FIRST, enterprise="0417497106"))
    assert changed is not None and f"submitted with reference {FIRST} in the wallet of 0403170701" in changed
    assert submissions.confirm(claim(application_id, SECOND)) is not None


def test_a_submission_added_again_stands_as_last_added():
    """Two submissions of one id in a wallet (a forged copy): the last stands, as the
    fold reads it, also when the claim is named with what was submitted."""
    application_id = str(uuid.uuid4())
    submissions = Submissions(Wallets([(application_id, FIRST), (application_id, SECOND)]))
    submissions.add(application_id, WALLET, ("0403170701", FIRST))
    submissions.add(application_id, WALLET, ("0403170701", SECOND))
    assert submissions.confirm(claim(application_id, SECOND)) is None
    changed = submissions.confirm(claim(application_id, FIRST))
    assert changed is not None and f"submitted with reference {SECOND}" in changed
