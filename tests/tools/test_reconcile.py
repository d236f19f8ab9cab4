"""``kmo-ledger reconcile``: the financial manager's bank statement (camt.053 or
CSV) against the ledger's money events, exact to the cent."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from freezegun import freeze_time
from stdnum.be import ogm_vcs

from ledger.domain import commands as c
from scripts import reconcile
from tests.conftest import BACK_OFFICE
from tests.scenarios.helpers import Story
from tests.tools.helpers import Tools

CAMT_08 = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"
CAMT_02 = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"
UNKNOWN_REFERENCE = "+++090/9337/55493+++"


@pytest.fixture
def tools(monkeypatch, capsys, database_url):
    return Tools(monkeypatch, capsys, database_url)


@pytest.fixture
def march(ledger):
    """A training of 10,000: own share 7,000 in on 4 March, subsidy 3,000 on
    5 March, 4,000 paid to the provider on 20 March."""
    with freeze_time("2026-03-02 09:00:00"):
        story = Story(ledger)
        story.application_id = story.submit(date(2026, 3, 16))
    with freeze_time("2026-03-05 10:00:00"):
        story.confirm(story.application_id)
        story.deposit(story.application_id, date(2026, 3, 4))
        story.top_up(story.application_id, date(2026, 3, 5))
    with freeze_time("2026-03-20 10:00:00"):
        story.pay(story.application_id, "4000.00", date(2026, 3, 20))
    view = story.application(story.application_id)
    story.reference, story.project = view["payment_reference"], view["project_number"]
    return story


def entry(
    amount: str,
    direction: str,
    value_date: str,
    reference: str | None = None,
    text: str = "",
    ref_id: str = "",
    *,
    status: str = "BOOK",
    reversal: bool = False,
    currency: str = "EUR",
) -> str:
    """One camt.053 entry (Ntry) with its remittance: structured reference and/or free text."""
    structured = ""
    if reference:
        structured = (
            "<Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry><Issr>BBA</Issr></Tp>"
            f"<Ref>{reference}</Ref></CdtrRefInf></Strd>"
        )
    unstructured = f"<Ustrd>{text}</Ustrd>" if text else ""
    reversal_indicator = "<RvslInd>true</RvslInd>" if reversal else ""
    return f"""
      <Ntry>
        <NtryRef>{ref_id or value_date + "-" + amount}</NtryRef>
        <Amt Ccy="{currency}">{amount}</Amt>
        <CdtDbtInd>{"CRDT" if direction == "credit" else "DBIT"}</CdtDbtInd>{reversal_indicator}
        <Sts><Cd>{status}</Cd></Sts>
        <BookgDt><Dt>{value_date}</Dt></BookgDt>
        <ValDt><Dt>{value_date}</Dt></ValDt>
        <NtryDtls><TxDtls>
          <RmtInf>{unstructured}{structured}</RmtInf>
        </TxDtls></NtryDtls>
      </Ntry>"""


def camt(path: Path, *entries: str, namespace: str = CAMT_08) -> Path:
    return camt_statements(path, list(entries), namespace=namespace)


def camt_statements(path: Path, *statements: list[str], namespace: str = CAMT_08) -> Path:
    """A camt.053 document of one statement (Stmt) for each list of entries."""
    blocks = "".join(
        f"""
    <Stmt>
      <Id>BE68539007547034-2026-03-{number}</Id>
      <FrToDt><FrDtTm>2026-03-01T00:00:00+01:00</FrDtTm><ToDtTm>2026-03-31T23:59:59+02:00</ToDtTm></FrToDt>
      <Acct><Id><IBAN>BE68539007547034</IBAN></Id><Ccy>EUR</Ccy></Acct>
      {"".join(entries)}
    </Stmt>"""
        for number, entries in enumerate(statements, start=1)
    )
    path.write_text(
        f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="{namespace}">
  <BkToCstmrStmt>
    <GrpHdr><MsgId>STMT-2026-03</MsgId><CreDtTm>2026-04-01T06:00:00+02:00</CreDtTm></GrpHdr>{blocks}
  </BkToCstmrStmt>
</Document>
""",
        encoding="utf-8",
    )
    return path


def deposit_entry(story, amount: str = "7000.00", reference: str | None = None) -> str:
    digits = ogm_vcs.compact(reference or story.reference)  # the bank writes the 12 digits
    return entry(amount, "credit", "2026-03-04", digits)


def top_up_entry(story) -> str:
    return entry("3000.00", "credit", "2026-03-05", text=f"Vlaamse overheid KMO-portefeuille {story.reference}")


def payout_entry(story) -> str:
    return entry("4000.00", "debit", "2026-03-20", text=f"Opleiding project {story.project}")


def reconciled(tools: Tools, statement: Path) -> tuple[int, dict]:
    outcome = tools.run(reconcile.main, "--statement", str(statement), "--json")
    assert outcome.code in (0, 1), outcome.err
    return outcome.code, json.loads(outcome.out)


def test_a_statement_that_matches_every_money_event_reconciles(tools, march, tmp_path):
    statement = camt(tmp_path / "march.xml", deposit_entry(march), top_up_entry(march), payout_entry(march))
    code, report = reconciled(tools, statement)
    assert code == 0 and report["ok"]
    assert sorted(m["event"]["type"] for m in report["matched"]) == [
        "OwnShareDeposited",
        "PayoutExecuted",
        "SubsidyToppedUp",
    ]
    assert report["differences"] == report["unmatched_statement"] == report["unmatched_ledger"] == []
    assert (report["statement"]["from"], report["statement"]["to"]) == ("2026-03-01", "2026-03-31")
    human = tools.run(reconcile.main, "--statement", str(statement))
    assert human.code == 0 and "3 matched" in human.out and "reconciled" in human.out


def test_a_missing_deposit_is_a_ledger_event_with_no_statement_entry(tools, march, tmp_path):
    statement = camt(tmp_path / "march.xml", top_up_entry(march), payout_entry(march))
    code, report = reconciled(tools, statement)
    assert code == 1
    (missing,) = report["unmatched_ledger"]
    assert (missing["event"]["type"], missing["event"]["amount"], missing["event"]["sequence"]) == (
        "OwnShareDeposited",
        "7000.00",
        4,
    )
    assert "has no statement entry" in missing["reason"]
    assert report["unmatched_statement"] == report["differences"] == []


def test_an_unknown_payment_is_reported_for_return_to_payer(tools, march, tmp_path):
    assert ogm_vcs.is_valid(UNKNOWN_REFERENCE.strip("+"))
    statement = camt(
        tmp_path / "march.xml",
        deposit_entry(march),
        top_up_entry(march),
        payout_entry(march),
        entry("250.00", "credit", "2026-03-12", UNKNOWN_REFERENCE),
    )
    code, report = reconciled(tools, statement)
    assert code == 1
    (unknown,) = report["unmatched_statement"]
    assert unknown["entry"]["amount"] == "250.00" and unknown["entry"]["reference"] == UNKNOWN_REFERENCE
    assert "belongs to no application: return to payer" in unknown["reason"]
    assert len(report["matched"]) == 3 and report["unmatched_ledger"] == []


def test_an_amount_off_by_one_cent_is_a_difference(tools, march, tmp_path):
    statement = camt(tmp_path / "march.xml", deposit_entry(march, "7000.01"), top_up_entry(march), payout_entry(march))
    code, report = reconciled(tools, statement)
    assert code == 1
    (difference,) = report["differences"]
    assert difference["difference"] == "0.01" and difference["event"]["type"] == "OwnShareDeposited"
    assert (difference["entry"]["amount"], difference["event"]["amount"]) == ("7000.01", "7000.00")
    assert report["unmatched_statement"] == report["unmatched_ledger"] == []
    human = tools.run(reconcile.main, "--statement", str(statement))
    assert human.code == 1 and "Amount differences" in human.out and "0.01" in human.out


def test_a_deposit_with_a_wrong_reference_stays_on_the_statement_for_return(tools, march, tmp_path):
    """The ledger refused the deposit (wrong reference), so nothing was recorded:
    the money is unmatched on the statement; once returned, both cancel out."""
    other = ogm_vcs.compact(march.reference)
    wrong = other[:-2] + f"{(int(other[-2:]) % 97) + 1:02d}"  # a check digit off: not a valid reference
    refused = entry("7000.00", "credit", "2026-03-10", wrong, ref_id="refused")
    statement = camt(tmp_path / "march.xml", deposit_entry(march), top_up_entry(march), payout_entry(march), refused)
    code, report = reconciled(tools, statement)
    assert code == 1
    (unmatched,) = report["unmatched_statement"]
    assert unmatched["entry"]["id"] == "refused" and "return to payer" in unmatched["reason"]
    returned = entry("7000.00", "debit", "2026-03-12", wrong, ref_id="returned")
    statement = camt(
        tmp_path / "march.xml", deposit_entry(march), top_up_entry(march), payout_entry(march), refused, returned
    )
    code, report = reconciled(tools, statement)
    assert code == 0 and [(r["entry"]["id"], r["return"]["id"]) for r in report["returned"]] == [
        ("refused", "returned")
    ]


def test_a_reversed_event_is_left_out(tools, march, ledger, tmp_path):
    """A refund posted with a wrong value date, reversed and posted again: the
    statement shows one debit, and the reversed posting is not asked for."""
    with freeze_time("2026-03-25 10:00:00"):
        march.stop(march.application_id, "enterprise_ceased", proof="kbo-extract.pdf")

        def refund(kind: str, cents: int, value_date: date) -> None:
            command = c.ExecuteRefund(kind=kind, amount=cents, value_date=value_date)
            ledger.handle(march.en, march.application_id, command, BACK_OFFICE)

        refund("own_share_to_enterprise", 420000, date(2026, 3, 24))
        sequence = ledger.wallet_events(march.en)[-1].originator_version
        ledger.handle(
            march.en, march.application_id, c.ReverseEvent(sequence=sequence, reason="wrong value date"), BACK_OFFICE
        )
        refund("own_share_to_enterprise", 420000, date(2026, 3, 25))
        refund("subsidy_to_government", 180000, date(2026, 3, 25))
    statement = camt(
        tmp_path / "march.xml",
        deposit_entry(march),
        top_up_entry(march),
        payout_entry(march),
        entry("4200.00", "debit", "2026-03-25", text=f"Terugbetaling eigen bijdrage {march.project}"),
        entry("1800.00", "debit", "2026-03-25", text="Terugstorting subsidie"),
    )
    code, report = reconciled(tools, statement)
    assert code == 0, report
    refunds = [m for m in report["matched"] if m["event"]["type"] == "RefundExecuted"]
    assert sorted((m["event"]["kind"], m["event"]["value_date"]) for m in refunds) == [
        ("own_share_to_enterprise", "2026-03-25"),
        ("subsidy_to_government", "2026-03-25"),
    ]


def test_older_camt_versions_and_batch_bookings_are_read(tools, march, tmp_path):
    batch = f"""
      <Ntry>
        <Amt Ccy="EUR">10000.00</Amt>
        <CdtDbtInd>CRDT</CdtDbtInd>
        <Sts>BOOK</Sts>
        <BookgDt><Dt>2026-03-05</Dt></BookgDt>
        <ValDt><Dt>2026-03-05</Dt></ValDt>
        <NtryDtls>
          <TxDtls><AmtDtls><TxAmt><Amt Ccy="EUR">7000.00</Amt></TxAmt></AmtDtls>
            <RmtInf><Strd><CdtrRefInf><Ref>{march.reference}</Ref></CdtrRefInf></Strd></RmtInf></TxDtls>
          <TxDtls><AmtDtls><TxAmt><Amt Ccy="EUR">3000.00</Amt></TxAmt></AmtDtls>
            <RmtInf><Ustrd>subsidie {march.project}</Ustrd></RmtInf></TxDtls>
        </NtryDtls>
      </Ntry>"""
    statement = camt(tmp_path / "march.xml", batch, payout_entry(march), namespace=CAMT_02)
    code, report = reconciled(tools, statement)
    assert code == 0, report
    deposit = next(m for m in report["matched"] if m["event"]["type"] == "OwnShareDeposited")
    assert deposit["note"] == "value date 2026-03-05 on the statement, 2026-03-04 in the ledger"


def test_a_csv_statement_reconciles_the_same_way(tools, march, tmp_path):
    statement = tmp_path / "march.csv"
    statement.write_text(
        "value_date,amount,direction,reference,description\n"
        f"2026-03-04,7000.00,credit,{march.reference},eigen bijdrage\n"
        f"2026-03-05,3000.00,credit,,KMO-portefeuille {march.reference}\n"
        f"2026-03-20,4000.00,debit,,opleiding {march.project}\n"
        "2026-03-21,99.99,credit,,onbekende storting\n",
        encoding="utf-8",
    )
    code, report = reconciled(tools, statement)
    assert code == 1 and len(report["matched"]) == 3
    (unknown,) = report["unmatched_statement"]
    assert unknown["entry"]["amount"] == "99.99" and "return to payer" in unknown["reason"]


@pytest.mark.parametrize(
    "content, reason",
    [
        ("value_date,amount\n2026-03-04,1.00\n", "direction missing"),
        ("value_date,amount,direction\n2026-03-04,1.001,credit\n", "euro and cents"),
        ("value_date,amount,direction\n2026-03-04,-5.00,credit\n", "euro and cents"),
        ("value_date,amount,direction\n04/03/2026,5.00,credit\n", "not a date"),
        ("value_date,amount,direction\n2026-03-04,5.00,sideways\n", "neither credit"),
        ("<Document><Stmt><Ntry><Amt>1.00</Amt></Ntry>", "not readable XML"),
    ],
)
def test_a_malformed_statement_is_bad_input(monkeypatch, capsys, sqlite_url, tmp_path, content, reason):
    statement = tmp_path / "statement.txt"
    statement.write_text(content, encoding="utf-8")
    outcome = Tools(monkeypatch, capsys, sqlite_url).run(reconcile.main, "--statement", str(statement))
    assert outcome.code == 2 and reason in outcome.err and len(outcome.err.strip().splitlines()) == 1


def test_a_missing_statement_file_is_bad_usage(monkeypatch, capsys, sqlite_url, tmp_path):
    outcome = Tools(monkeypatch, capsys, sqlite_url).run(reconcile.main, "--statement", str(tmp_path / "none.xml"))
    assert outcome.code == 2 and "no such statement file" in outcome.err


def test_a_short_top_up_naming_the_application_is_a_difference_on_the_top_up(tools, march, tmp_path):
    short_top_up = entry("2999.99", "credit", "2026-03-05", text=f"KMO-portefeuille {march.reference}")
    statement = camt(tmp_path / "march.xml", short_top_up, deposit_entry(march), payout_entry(march))
    code, report = reconciled(tools, statement)
    assert code == 1
    (difference,) = report["differences"]
    assert (difference["event"]["type"], difference["difference"]) == ("SubsidyToppedUp", "-0.01")
    assert [m["event"]["type"] for m in report["matched"]] == ["OwnShareDeposited", "PayoutExecuted"]


# ---------------------------------------------------------------------- what real banks' files hold (#17)


def test_totals_are_kept_per_currency_and_a_dollar_entry_is_not_matched(tools, march, tmp_path):
    dollars = entry("500.00", "credit", "2026-03-10", text=f"project {march.project}", ref_id="usd", currency="USD")
    statement = camt(tmp_path / "march.xml", deposit_entry(march), top_up_entry(march), payout_entry(march), dollars)
    code, report = reconciled(tools, statement)
    assert code == 1 and len(report["matched"]) == 3
    assert (report["statement"]["credits"], report["statement"]["debits"]) == ("10000.00", "4000.00")
    assert report["totals"] == {
        "EUR": {"entries": 3, "credits": "10000.00", "debits": "4000.00"},
        "USD": {"entries": 1, "credits": "500.00", "debits": "0.00"},
    }
    (foreign,) = report["unmatched_statement"]
    assert foreign["entry"]["id"] == "usd" and "in USD: the wallets are kept in euro" in foreign["reason"]
    human = tools.run(reconcile.main, "--statement", str(statement))
    assert "credits 10000.00, debits 4000.00 in EUR; 1 in USD: credits 500.00, debits 0.00" in " ".join(
        human.out.split()
    )


def test_pending_and_information_entries_are_shown_and_never_matched(tools, march, tmp_path):
    """The deposit is still pending at the bank: it is listed, and the ledger's
    deposit waits for its booking instead of being matched to money not there."""
    pending = entry("7000.00", "credit", "2026-03-04", ogm_vcs.compact(march.reference), ref_id="pdng", status="PDNG")
    notice = entry(
        "3000.00", "credit", "2026-03-05", text=f"aangekondigd {march.project}", ref_id="info", status="INFO"
    )
    statement = camt(tmp_path / "march.xml", pending, notice, top_up_entry(march), payout_entry(march))
    code, report = reconciled(tools, statement)
    assert code == 1 and report["statement"]["not_booked"] == 2
    assert [(p["entry"]["id"], p["entry"]["status"]) for p in report["pending"]] == [("pdng", "PDNG"), ("info", "INFO")]
    assert "pending (PDNG): not booked, so not matched" in report["pending"][0]["reason"]
    assert all(m["entry"]["id"] not in ("pdng", "info") for m in report["matched"])
    (waiting,) = report["unmatched_ledger"]
    assert waiting["event"]["type"] == "OwnShareDeposited"
    human = tools.run(reconcile.main, "--statement", str(statement))
    assert "Not booked (pending or information only)" in human.out and "2 not booked" in human.out


def test_a_reversal_is_never_matched_as_settled_money(tools, march, tmp_path):
    """The bank reverses an earlier credit of 4,000.00 on the day the provider is
    paid 4,000.00: the reversal is listed, and the payout matches its own debit."""
    reversal = entry("4000.00", "debit", "2026-03-20", text="Terugboeking", ref_id="rvsl", reversal=True)
    statement = camt(tmp_path / "march.xml", deposit_entry(march), top_up_entry(march), reversal, payout_entry(march))
    code, report = reconciled(tools, statement)
    assert code == 1
    payout = next(m for m in report["matched"] if m["event"]["type"] == "PayoutExecuted")
    assert payout["entry"]["id"] == "2026-03-20-4000.00" and not payout["entry"]["reversal"]
    (undone,) = report["reversed"]
    assert undone["entry"]["id"] == "rvsl" and undone["entry"]["reversal"]
    assert "never matched as settled money" in undone["reason"]
    assert report["unmatched_statement"] == report["unmatched_ledger"] == []


def test_an_entry_id_met_again_in_another_statement_is_reported_and_not_matched_twice(tools, march, tmp_path):
    first = [deposit_entry(march).replace("<NtryRef>2026-03-04-7000.00<", "<NtryRef>D-1<")]
    second = [first[0], top_up_entry(march), payout_entry(march)]
    statement = camt_statements(tmp_path / "march.xml", first, second)
    code, report = reconciled(tools, statement)
    assert code == 1 and len(report["matched"]) == 3
    (twice,) = report["duplicate_ids"]
    assert (twice["entry"]["id"], twice["statement"], twice["first_statement"]) == ("D-1", 2, 1)
    assert "was met in statement 1" in twice["reason"]
    assert report["unmatched_statement"] == report["unmatched_ledger"] == []
    assert report["totals"]["EUR"]["credits"] == "17000.00"  # as the file lists them, the repeat included


def test_a_batch_whose_transactions_do_not_add_up_is_an_error_for_that_entry(tools, march, tmp_path):
    batch = f"""
      <Ntry>
        <NtryRef>batch</NtryRef>
        <Amt Ccy="EUR">10000.00</Amt>
        <CdtDbtInd>CRDT</CdtDbtInd>
        <Sts><Cd>BOOK</Cd></Sts>
        <ValDt><Dt>2026-03-05</Dt></ValDt>
        <NtryDtls>
          <TxDtls><Amt Ccy="EUR">7000.00</Amt>
            <RmtInf><Strd><CdtrRefInf><Ref>{march.reference}</Ref></CdtrRefInf></Strd></RmtInf></TxDtls>
          <TxDtls><Amt Ccy="EUR">2999.99</Amt><RmtInf><Ustrd>subsidie {march.project}</Ustrd></RmtInf></TxDtls>
        </NtryDtls>
      </Ntry>"""
    statement = camt(tmp_path / "march.xml", batch, payout_entry(march))
    code, report = reconciled(tools, statement)
    assert code == 1
    (mismatch,) = report["batch_mismatches"]
    assert (mismatch["entry"]["id"], mismatch["entry"]["amount"]) == ("batch", "10000.00")
    assert (mismatch["transactions"], mismatch["transactions_total"], mismatch["difference"]) == (2, "9999.99", "0.01")
    assert [m["event"]["type"] for m in report["matched"]] == ["PayoutExecuted"]
    assert sorted(u["event"]["type"] for u in report["unmatched_ledger"]) == ["OwnShareDeposited", "SubsidyToppedUp"]
    human = tools.run(reconcile.main, "--statement", str(statement))
    assert "Batches whose transactions do not add up" in human.out


BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">'
    + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(6))
    + "]><Document><Stmt><Ntry><Amt>&g;</Amt></Ntry></Stmt></Document>"
)


@pytest.mark.parametrize(
    "content, reason",
    [
        (BILLION_LAUGHS, "document type declaration (<!DOCTYPE>) is not allowed"),
        (
            '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><Document>&x;</Document>',
            "document type declaration (<!DOCTYPE>) is not allowed",
        ),
        ('<?xml version="1.0"?><!DOCTYPE Document SYSTEM "http://example.com/camt.dtd"><Document/>', "not allowed"),
        ("<Document><Other/></Document>", "no camt.053 statement (Stmt)"),
        ("value_date,amount,direction\n2026-03-04,1E+999999,credit\n", "line 2: '1E+999999' is not an amount in euro"),
        ("value_date,amount,direction\n2026-03-04,١٠٠٠,credit\n", "is not an amount in euro and cents"),
        ("value_date,amount,direction\n2026-03-04," + "9" * 50 + ",credit\n", "is not an amount in euro and cents"),
        ("value_date,amount,direction,description\n2026-03-04,5.00,credit," + "x" * 200_000 + "\n", "field larger"),
        ("", "columns value_date, amount, direction missing"),
    ],
)
def test_a_hostile_or_broken_statement_is_refused_in_one_line(
    monkeypatch, capsys, sqlite_url, tmp_path, content, reason
):
    statement = tmp_path / "statement.txt"
    statement.write_text(content, encoding="utf-8")
    outcome = Tools(monkeypatch, capsys, sqlite_url).run(reconcile.main, "--statement", str(statement))
    assert outcome.code == 2 and outcome.out == "" and reason in outcome.err, outcome.err
    assert len(outcome.err.strip().splitlines()) == 1


def test_a_statement_that_is_not_utf8_text_is_refused_in_one_line(monkeypatch, capsys, sqlite_url, tmp_path):
    statement = tmp_path / "statement.csv"
    statement.write_bytes("value_date,amount,direction,description\n2026-03-04,5.00,credit,Café\n".encode("latin-1"))
    outcome = Tools(monkeypatch, capsys, sqlite_url).run(reconcile.main, "--statement", str(statement))
    assert outcome.code == 2 and outcome.out == "" and "not UTF-8 text" in outcome.err
    assert len(outcome.err.strip().splitlines()) == 1
