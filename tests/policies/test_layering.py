"""The policies reach the machine only through its public API and hooks (``PolicyHost``).

An import of ``hitl_core.machine`` from the policies (even for type checking) would close the
circle machine → policies → machine; a private attribute (``machine._ready``) would tie them to
how the machine decides, which changes without notice.
"""

from __future__ import annotations

import ast
from pathlib import Path

from hitl_core import HITLStateMachine
from hitl_core.policies import PolicyHost

POLICIES = Path(__file__).resolve().parents[2] / "hitl_core" / "policies"


def _modules() -> list[Path]:
    found = sorted(POLICIES.glob("*.py"))
    assert len(found) >= 8
    return found


def test_no_policy_module_imports_the_machine() -> None:
    offenders = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                module = node.module or ""
                names = {alias.name for alias in node.names}
                if module.endswith("machine") or (node.level == 2 and module == "" and "machine" in names):
                    offenders.append(f"{path.name}:{node.lineno} from {'.' * node.level}{module}")
            elif isinstance(node, ast.Import):
                offenders += [f"{path.name}:{node.lineno} import {a.name}" for a in node.names if "machine" in a.name]
    assert offenders == []


def test_no_policy_module_touches_a_private_attribute_of_the_machine() -> None:
    offenders = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")):
                continue
            owner = node.value
            name = owner.id if isinstance(owner, ast.Name) else owner.attr if isinstance(owner, ast.Attribute) else ""
            if name in ("machine", "host"):
                offenders.append(f"{path.name}:{node.lineno} {name}.{node.attr}")
    assert offenders == []


async def test_the_machine_is_a_policy_host() -> None:
    async with HITLStateMachine("memory://", load_entrypoints=False) as machine:
        assert isinstance(machine, PolicyHost)
