"""appliance.service.audit.ACTIONS is every action the code writes to the audit trail,
and nothing else: read off the calls that write events, in the source."""
import ast
import re
from pathlib import Path

from strongroom.appliance.service.audit import ACTIONS

SOURCE = Path(__file__).resolve().parents[2] / "appliance"
# The calls that write an action, and where it stands among their positional arguments
# (None: only as the keyword `action=`, which counts in each of them).
TAKES_ACTION = {"append": None, "record": None, "_audit": 1, "audit": 1, "transaction": 0, "audit_event": 0,
                "_refuse": 0}
# Names that are the spine's (service/spine.py) only when called on it.
SPINE_ONLY = {"audit", "transaction"}
# Actions spelled at run time: each expression the code uses, and what it can be.
SPELLED = {"f'{kind}-add'": {"client-add", "library-add"}}


def _actions(node, where):
    """(action, where) for each action `node` can be; a plain name is an action passed
    through from a caller (whose call is read in turn)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value, where
    elif isinstance(node, ast.IfExp):
        yield from _actions(node.body, where)
        yield from _actions(node.orelse, where)
    elif not isinstance(node, ast.Name):
        spelled = ast.unparse(node)
        assert spelled in SPELLED, f"{where}: tell this test what {spelled} can be"
        for action in SPELLED[spelled]:
            yield action, where


def written_actions():
    for path in sorted(SOURCE.rglob("*.py")):
        for call in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(call, ast.Call):
                continue
            name = getattr(call.func, "attr", getattr(call.func, "id", None))
            if name not in TAKES_ACTION:
                continue
            owner = ast.unparse(getattr(call.func, "value", call.func))
            if name in SPINE_ONLY and "spine" not in owner and not (
                    path.name == "spine.py" and owner == "self"):
                continue        # another transaction (the database's), not an audited operation
            args = [kw.value for kw in call.keywords if kw.arg == "action"]
            at = TAKES_ACTION[name]
            if at is not None and len(call.args) > at:
                args.append(call.args[at])
            for arg in args:
                yield from _actions(arg, f"{path.relative_to(SOURCE.parent)}:{call.lineno}")


def test_every_action_written_is_declared_and_every_declared_one_written():
    written = dict(written_actions())
    assert len(written) > 30, "the scan found too little: have the calls changed?"
    undeclared = sorted(f"{action} ({where})" for action, where in written.items()
                        if action not in ACTIONS)
    assert not undeclared, "add these to appliance.service.audit.ACTIONS: " \
        + ", ".join(undeclared)
    assert sorted(set(ACTIONS) - set(written)) == [], "declared, never written"


def test_actions_are_unique_lowercase_names():
    assert len(set(ACTIONS)) == len(ACTIONS)
    assert all(re.fullmatch(r"[a-z]+(-[a-z]+)*", a) for a in ACTIONS)
