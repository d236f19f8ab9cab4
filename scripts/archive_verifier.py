#!/usr/bin/env python3
"""Verify a kmo-ledger archive with nothing but the Python standard library.

    python archive_verifier.py DIR [--json]

DIR holds ``manifest.json`` and one ``events-YYYY.jsonl`` per calendar year of
business date, as written by ``kmo-ledger export``. This program checks:

1. every file's SHA-256 digest, byte count and event count against the manifest;
2. every event's hash, recomputed from its stored state: SHA-256 of the
   canonical JSON (keys sorted, no spaces, UTF-8 unescaped, numbers as the
   ledger wrote them) of the state without ``hash``, plus ``originator_id``
   (the wallet id), ``originator_version`` (the sequence) and ``type``;
3. every event's ``previous_hash`` against the hash of the wallet's previous
   event, across years too, so a missing, added or reordered event is found;
4. each wallet's chain head per year against the manifest;
5. the ledger-wide Merkle tree: ``tree-leaves.jsonl`` (every stored record's
   leaf, in notification order) against its digest; every exported event is
   a leaf with its hash; the root recomputed at each checkpoint's size (RFC
   6962, with ``merkle.py`` beside this file, the ledger's own code) against
   the checkpoint's; each checkpoint's Ed25519 signature when the
   ``cryptography`` package can be imported (if not, it says so plainly).

Exit 0 when everything holds, 1 when anything does not (each problem is
named: file, line, wallet, sequence), 2 when DIR is not an archive.
It reads one line at a time: an archive of any size fits in little memory.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

FORMAT = "kmo-ledger-archive/2"
READS = (FORMAT, "kmo-ledger-archive/1")
"""The formats this verifier reads: /2's checkpoints sign their number and the one before them."""
SHOWN_PROBLEMS = 200


# ---------------------------------------------------------------------- canonical JSON


def orjson_float(value: float) -> str:
    """A float as orjson writes it: the shortest round-trip digits, like ``repr``,
    but ``1e-7`` for ``1e-07`` and plain decimals (``0.00001``) for exponent -5."""
    if value != value or value in (float("inf"), float("-inf")):
        return "null"
    text = repr(value)
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    power = int(exponent)
    if power == -5:
        sign = "-" if mantissa.startswith("-") else ""
        digits = mantissa.lstrip("-").replace(".", "")
        return f"{sign}0.0000{digits}"
    return f"{mantissa}e{'+' if power > 0 else '-'}{abs(power)}"


def canonical(value) -> str:
    """Canonical JSON exactly as ``orjson.dumps(value, option=orjson.OPT_SORT_KEYS)``."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{canonical(key)}:{canonical(value[key])}" for key in sorted(value)) + "}"
    if isinstance(value, list):
        return "[" + ",".join(canonical(item) for item in value) + "]"
    if isinstance(value, float):
        return orjson_float(value)
    return json.dumps(value, ensure_ascii=False)


class _Line:
    """One parsed line; remembers whether it held a float (then the slow exact path is needed)."""

    def __init__(self, text: str):
        self.has_float = False
        self.value = json.loads(text, parse_float=self._float)

    def _float(self, text: str) -> float:
        self.has_float = True
        return float(text)


def chain_hash(content: dict, has_float: bool = True) -> str:
    """SHA-256 of the canonical JSON of an event's content (as ``ledger.domain.events.chain_hash``)."""
    if has_float:
        text = canonical(content)
    else:
        text = json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def event_hash(wallet_id: str, sequence: int, type_name: str, state: dict, has_float: bool = True) -> str:
    content = {key: value for key, value in state.items() if key != "hash"}
    content.update(originator_id=wallet_id, originator_version=sequence, type=type_name)
    return chain_hash(content, has_float)


# ---------------------------------------------------------------------- verification


class Verification:
    def __init__(self, directory: Path):
        self.directory = directory
        self.problems: list[str] = []
        self.events = 0
        self.files = 0
        self.pending: dict[tuple[str, int], tuple[str, str]] = {}
        """(wallet, sequence) whose previous event lies outside its run -> (expected previous hash, where)."""
        self.run_ends: dict[tuple[str, int], str] = {}
        """(wallet, sequence) that ends a run of consecutive events -> its hash."""
        self.labels: dict[str, str] = {}
        self.event_leaves = 0
        """The sum of :func:`leaf_mark` over every exported event (a multiset, order aside)."""

    def problem(self, text: str) -> None:
        self.problems.append(text)

    def wallet(self, wallet_id: str) -> str:
        label = self.labels.get(wallet_id)
        return f"wallet {label} ({wallet_id})" if label else f"wallet {wallet_id}"

    def run(self) -> dict:
        manifest_path = self.directory / "manifest.json"
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            years = manifest["years"]
        except FileNotFoundError:
            raise SystemExit(_usage(f"{manifest_path} not found: not a kmo-ledger archive")) from None
        except (ValueError, KeyError, TypeError) as error:
            raise SystemExit(_usage(f"{manifest_path} cannot be read: {error}")) from None
        if manifest.get("format") not in READS:
            self.problem(f"manifest.json: format {manifest.get('format')!r}, expected one of {', '.join(READS)}")
        listed = {entry.get("file") for entry in years.values()}
        for extra in sorted(self.directory.glob("events-*.jsonl")):
            if extra.name not in listed:
                self.problem(f"{extra.name}: not listed in manifest.json")
        for year in sorted(years):
            self.check_year(year, years[year])
        self.resolve_links()
        total = manifest.get("events")
        if total is not None and total != self.events:
            self.problem(f"manifest.json: {total} events listed, {self.events} found")
        tree = manifest.get("tree")
        notes = TreeCheck(self, tree).run() if isinstance(tree, dict) else ["no Merkle tree in this archive (older)"]
        return {
            "ok": not self.problems,
            "directory": str(self.directory),
            "files": self.files,
            "events": self.events,
            "problems": self.problems,
            "notes": notes,
        }

    def check_year(self, year: str, entry: dict) -> None:
        name = entry.get("file", f"events-{year}.jsonl")
        path = self.directory / name
        if not path.is_file():
            self.problem(f"{name}: missing")
            return
        self.files += 1
        digest, size, count = hashlib.sha256(), 0, 0
        last_in_file: dict[str, tuple[int, str]] = {}
        heads: dict[str, tuple[int, str]] = {}
        with path.open("rb") as stream:
            for number, raw in enumerate(stream, start=1):
                digest.update(raw)
                size += len(raw)
                count += 1
                self.check_line(name, year, number, raw, last_in_file, heads)
        for wallet_id, (sequence, digest_hex) in last_in_file.items():
            self.run_ends[(wallet_id, sequence)] = digest_hex
        if digest.hexdigest() != entry.get("sha256"):
            self.problem(f"{name}: SHA-256 {digest.hexdigest()} differs from the manifest's {entry.get('sha256')}")
        if size != entry.get("bytes", size):
            self.problem(f"{name}: {size} bytes, the manifest says {entry.get('bytes')}")
        if count != entry.get("events"):
            self.problem(f"{name}: {count} events, the manifest says {entry.get('events')}")
        self.events += count
        sealed = entry.get("wallets", {})
        for wallet_id, head in sealed.items():
            found = heads.get(wallet_id)
            if found is None:
                self.problem(f"{name}: {self.wallet(wallet_id)} has no events, the manifest lists its head")
            elif (found[0], found[1]) != (head.get("last_sequence"), head.get("head")):
                self.problem(
                    f"{name}: {self.wallet(wallet_id)} ends at event {found[0]} with hash {found[1][:12]}..., "
                    f"the manifest's head is event {head.get('last_sequence')} with {str(head.get('head'))[:12]}..."
                )
        for wallet_id in heads.keys() - sealed.keys():
            self.problem(f"{name}: {self.wallet(wallet_id)} is not listed in the manifest")

    def check_line(self, name, year, number, raw, last_in_file, heads) -> None:
        where = f"{name} line {number}"
        try:
            line = _Line(raw.decode("utf-8"))
            record = line.value
            wallet_id, sequence = record["wallet_id"], record["sequence"]
            type_name, state = record["type"], record["state"]
            if not isinstance(state, dict) or not isinstance(sequence, int) or not isinstance(wallet_id, str):
                raise TypeError("wallet_id, sequence or state has the wrong type")
        except (UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
            self.problem(f"{where}: not a readable event ({error})")
            return
        if record.get("enterprise_number"):
            self.labels.setdefault(wallet_id, record["enterprise_number"])
        event = f"{where}: {self.wallet(wallet_id)} event {sequence} ({type_name})"
        if event_hash(wallet_id, sequence, type_name, state, line.has_float) != state.get("hash"):
            self.problem(f"{event}: its hash does not match its content (changed)")
        if str(state.get("business_date", ""))[:4] != year or record.get("business_date") != state.get("business_date"):
            self.problem(f"{event}: business date {state.get('business_date')} does not belong in {name}")
        previous = last_in_file.get(wallet_id)
        if previous is not None and previous[0] == sequence - 1:
            if state.get("previous_hash") != previous[1]:
                self.problem(f"{event}: does not follow event {sequence - 1} (chain broken)")
        elif previous is not None and sequence <= previous[0]:
            self.problem(f"{event}: comes after event {previous[0]} (reordered or repeated)")
            return
        else:
            if previous is not None:
                self.run_ends[(wallet_id, previous[0])] = previous[1]
            key = (wallet_id, sequence)
            if key in self.pending:
                self.problem(f"{event}: appears more than once")
            self.pending[key] = (str(state.get("previous_hash")), event)
        self.event_leaves = (self.event_leaves + leaf_mark(wallet_id, sequence, state.get("hash"))) % MARK_MODULUS
        last_in_file[wallet_id] = (sequence, state.get("hash"))
        head = heads.get(wallet_id)
        if head is None or sequence > head[0]:
            heads[wallet_id] = (sequence, state.get("hash"))

    def resolve_links(self) -> None:
        """Link each run of events to the run before it (another year, or later in a file)."""
        for (wallet_id, sequence), (previous_hash, event) in sorted(self.pending.items()):
            if sequence == 1:
                if previous_hash != "":
                    self.problem(f"{event}: the first event names a previous hash")
                continue
            before = self.run_ends.get((wallet_id, sequence - 1))
            if before is None:
                self.problem(f"{event}: event {sequence - 1} of the wallet is missing from the archive")
            elif before != previous_hash:
                self.problem(f"{event}: does not follow event {sequence - 1} (chain broken)")


MARK_MODULUS = 2**256
CHECKPOINT_HEADER = "kmo-ledger checkpoint v1"
LINKED_HEADER = "kmo-ledger checkpoint v2"


def leaf_mark(wallet_id: str, sequence: int, digest: object) -> int:
    """One event as a number; summed over a set of events, the same for the same
    set in any order: the exported events and the tree's event leaves must agree."""
    return int.from_bytes(hashlib.sha256(f"{wallet_id}:{sequence}:{digest}".encode()).digest(), "big")


def checkpoint_message(checkpoint: dict) -> bytes:
    """What a checkpoint taken before 2026-12-07 signed (as ``ledger.audit.checkpoints.checkpoint_message``)."""
    return (
        f"{CHECKPOINT_HEADER}\ntree_size {checkpoint['tree_size']}\nroot_hash {checkpoint['root_hash']}\n"
        f"timestamp {checkpoint['timestamp']}\nkey_id {checkpoint['key_id']}\n"
    ).encode()


LINKED_FIELDS = ("number", "previous_size", "previous_root")


def signed_messages(checkpoint: dict) -> list:
    """What a checkpoint's signature may cover (as ``ledger.audit.checkpoints.signed_messages``):
    the linked message (its number and the checkpoint before it) when it carries them; else the older."""
    if any(field not in checkpoint for field in LINKED_FIELDS):
        return [checkpoint_message(checkpoint)]
    size = "none" if checkpoint["previous_size"] is None else checkpoint["previous_size"]
    linked = (
        f"{LINKED_HEADER}\nnumber {checkpoint['number']}\ntree_size {checkpoint['tree_size']}\n"
        f"root_hash {checkpoint['root_hash']}\ntimestamp {checkpoint['timestamp']}\nkey_id {checkpoint['key_id']}\n"
        f"previous_size {size}\nprevious_root {checkpoint['previous_root'] or 'none'}\n"
    ).encode()
    return [linked, checkpoint_message(checkpoint)]


def load_merkle(directory: Path):
    """The ledger's own RFC 6962 code: ``merkle.py`` beside this verifier (the copy an
    export writes beside it), else the checkout's ``ledger/audit/merkle.py`` when this
    is ``scripts/archive_verifier.py``. Never code from the archive being checked
    (``directory``), unless this verifier is the archive's own: a forged archive must
    not choose the code that checks it."""
    import importlib.util

    here = Path(__file__).resolve().parent
    for path in (here / "merkle.py", here.parent / "ledger" / "audit" / "merkle.py"):
        if path.is_file():
            spec = importlib.util.spec_from_file_location("kmo_archive_merkle", path)
            if spec is None or spec.loader is None:
                continue
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    return None


class TreeCheck:
    """Step 5: the leaves, the roots at each checkpoint, the signatures."""

    def __init__(self, verification: Verification, tree: dict):
        self.v, self.tree = verification, tree
        self.notes: list[str] = []

    def run(self) -> list[str]:
        merkle = load_merkle(self.v.directory)
        if merkle is None:
            self.v.problem("merkle.py: missing beside the verifier and in the archive: the roots were not recomputed")
            return self.notes
        leaves = self.tree.get("leaves") or {}
        path = self.v.directory / str(leaves.get("file", "tree-leaves.jsonl"))
        if not path.is_file():
            self.v.problem(f"{path.name}: missing")
            return self.notes
        checkpoints = sorted(self.tree.get("checkpoints") or [], key=lambda c: c.get("tree_size", 0))
        self.links(sorted(checkpoints, key=lambda c: (c.get("tree_size", 0), str(c.get("number")))))
        due = list(checkpoints)
        frontier, digest, marks = merkle.Frontier(), hashlib.sha256(), 0
        with path.open("rb") as stream:
            for number, raw in enumerate(stream, start=1):
                digest.update(raw)
                try:
                    leaf = json.loads(raw)
                    data = bytes.fromhex(leaf["leaf_input"])
                    if leaf["position"] != frontier.size or len(data) != 32:
                        raise ValueError(f"position {leaf['position']}, expected {frontier.size}")
                except (ValueError, KeyError, TypeError) as error:
                    self.v.problem(f"{path.name} line {number}: not a readable leaf ({error})")
                    return self.notes
                if leaf.get("event"):
                    marks = (marks + leaf_mark(leaf["record_id"], leaf["version"], data.hex())) % MARK_MODULUS
                frontier.append(merkle.leaf_hash(data))
                while due and due[0].get("tree_size") == frontier.size:
                    self.root(due.pop(0), frontier.root().hex())
        if digest.hexdigest() != leaves.get("sha256"):
            self.v.problem(f"{path.name}: SHA-256 {digest.hexdigest()} differs from the manifest's")
        if frontier.size != leaves.get("count"):
            self.v.problem(f"{path.name}: {frontier.size} leaves, the manifest says {leaves.get('count')}")
        if marks != self.v.event_leaves:
            self.v.problem(
                f"{path.name}: its wallet-event leaves are not the events exported (one added, lost or changed)"
            )
        for checkpoint in due:
            self.v.problem(f"checkpoint of tree size {checkpoint.get('tree_size')}: beyond the {frontier.size} leaves")
        self.signatures(checkpoints)
        self.notes.append(f"Merkle tree: {frontier.size} leaves, {len(checkpoints)} checkpoint root(s) recomputed")
        return self.notes

    def root(self, checkpoint: dict, recomputed: str) -> None:
        if checkpoint.get("root_hash") != recomputed:
            self.v.problem(
                f"checkpoint of tree size {checkpoint.get('tree_size')} ({checkpoint.get('timestamp')}): "
                f"root {checkpoint.get('root_hash')}, the leaves give {recomputed}"
            )

    def links(self, checkpoints: list) -> None:
        """The checkpoints are numbered from 1 without a gap, and each that names
        the one before it names the archive's: none is missing (a checkpoint
        taken since 2026-12-07 signs its number and that link)."""
        before = None
        for checkpoint in checkpoints:
            what = f"checkpoint {checkpoint.get('number')} (tree size {checkpoint.get('tree_size')})"
            number = before.get("number") if before else 0
            expected = number + 1 if isinstance(number, int) else None
            if "number" in checkpoint and expected is not None and checkpoint["number"] != expected:
                self.v.problem(f"{what}: checkpoint {expected} is missing from the archive")
            if "previous_size" in checkpoint and "previous_root" in checkpoint:
                named = checkpoint["previous_size"], checkpoint["previous_root"]
                held = (before.get("tree_size"), before.get("root_hash")) if before else (None, None)
                if named != held:
                    archive = f"the archive's is of {held[0]}" if before else "the archive has none before it"
                    self.v.problem(
                        f"{what}: it names the checkpoint before it as of tree size {named[0]}, {archive}: "
                        "a checkpoint is missing"
                    )
            before = checkpoint

    def signatures(self, checkpoints: list) -> None:
        if not checkpoints:
            return
        try:
            from cryptography.exceptions import InvalidSignature
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
        except ImportError:
            self.notes.append(
                "signatures NOT checked: the cryptography package cannot be imported here "
                "(pip install cryptography, then run this again)"
            )
            return
        keys = {k.get("key_id"): k.get("public_key") for k in self.tree.get("public_keys") or []}
        for checkpoint in checkpoints:
            what = f"checkpoint of tree size {checkpoint.get('tree_size')} ({checkpoint.get('timestamp')})"
            raw = keys.get(checkpoint.get("key_id"))
            try:
                key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(str(raw)))
                if hashlib.sha256(bytes.fromhex(str(raw))).hexdigest() != checkpoint.get("key_id"):
                    raise ValueError("the key is not the one its key_id names")
                signature = bytes.fromhex(str(checkpoint.get("signature")))
                if not any(
                    _verifies(key, signature, message, InvalidSignature) for message in signed_messages(checkpoint)
                ):
                    raise InvalidSignature()
            except (ValueError, KeyError, InvalidSignature) as error:
                self.v.problem(f"{what}: its signature does not verify ({error or 'forged or changed'})")
        self.notes.append(f"signatures checked: {len(checkpoints)}, keys {', '.join(sorted(map(str, keys)))}")


def _verifies(key, signature: bytes, message: bytes, invalid: type) -> bool:
    try:
        key.verify(signature, message)
    except invalid:
        return False
    return True


def _usage(reason: str) -> int:
    sys.stderr.write(f"archive_verifier: {reason}\n")
    return 2


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    as_json = "--json" in args
    paths = [a for a in args if a != "--json"]
    if len(paths) != 1 or paths[0].startswith("-"):
        return _usage("usage: python archive_verifier.py DIR [--json]")
    directory = Path(paths[0])
    if not directory.is_dir():
        return _usage(f"{directory} is not a folder")
    try:
        report = Verification(directory).run()
    except SystemExit as stop:
        return int(stop.code)
    if as_json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        for text in report["problems"][:SHOWN_PROBLEMS]:
            sys.stdout.write(f"PROBLEM {text}\n")
        hidden = len(report["problems"]) - SHOWN_PROBLEMS
        if hidden > 0:
            sys.stdout.write(f"... and {hidden} more problem(s) (use --json for all)\n")
        for text in report["notes"]:
            sys.stdout.write(f"NOTE {text}\n")
        verdict = "OK" if report["ok"] else f"FAILED: {len(report['problems'])} problem(s)"
        sys.stdout.write(f"{report['events']} event(s) in {report['files']} file(s): {verdict}\n")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
