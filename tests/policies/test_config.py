"""hitl.toml: found where documented, validated, and every bad file named with its line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from hitl_core import HITLStateMachine, Severity, TaskState
from hitl_core.policies import ConfigError, find_config, load_config

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str, name: str = "hitl.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_example_config_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(ROOT / "examples" / "hitl.toml")
    assert [r.id for r in config.rules] == ["no-prod-deletes", "routine-search", "small-refunds", "everything-else"]
    assert config.authorization is not None and config.authorization.four_eyes == [Severity.CRITICAL]
    assert config.roles.actors["alice"] == ["sre", "eng-manager"]  # from roles.toml
    assert config.roles.actors["carol"] == ["sre", "oncall-secondary"]  # inline
    assert config.escalation is not None and len(config.escalation.levels) == 2
    assert config.deadlines.default_timeout[Severity.CRITICAL] == 600
    assert config.notify.webhooks[0].link == "https://hitl.example.com/tasks/{task_id}"
    monkeypatch.setenv("HITL_WEBHOOK_SECRET", "s3cret")
    machine = HITLStateMachine("memory://", load_entrypoints=False, config=ROOT / "examples" / "hitl.toml")
    assert machine.policies is not None and len(machine.policies.plugins) == 4


def test_readme_policies_section_embeds_the_example() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "## Policies" in readme
    section = readme.split("## Policies", 1)[1]
    assert (ROOT / "examples" / "hitl.toml").read_text(encoding="utf-8").strip() in section


def test_malformed_policy_file_is_rejected_with_the_line_and_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[deadlines]\nwarn_before = 10\n\n[[rules]]\nid = "a"\ndecision = "allow"\n\n'
        '[[rules]]\nid = "b"\ndecision = "maybe"\naction = "x"\n',
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    error = info.value
    assert (error.path, error.line, error.key) == (str(path), 10, "rules[1].decision")
    assert "'allow', 'ask' or 'deny'" in str(error) and "'maybe'" in str(error)
    assert str(error).startswith(f"{path}, line 10: rules[1].decision:")


def test_misspelt_key_is_refused_not_ignored(tmp_path: Path) -> None:
    path = write(tmp_path, "[authorization]\nno_self_approval = true\nfour_eye = ['critical']\n")
    with pytest.raises(ConfigError, match=r"line 3: authorization\.four_eye: unknown key") as info:
        load_config(path)
    assert info.value.line == 3


def test_bad_value_in_a_predicate_names_the_operator(tmp_path: Path) -> None:
    path = write(tmp_path, '[[rules]]\nid = "r"\ndecision = "allow"\n[rules.args]\namount = { lt = "big" }\n')
    with pytest.raises(ConfigError, match=r"line 5: rules\[0\]\.args\.amount\.lt: Input should be a valid number"):
        load_config(path)


def test_bad_regex_in_a_rule_is_a_clear_error(tmp_path: Path) -> None:
    path = write(tmp_path, '[[rules]]\nid = "r"\ndecision = "deny"\nargs = { sql = { regex = "(unclosed" } }\n')
    with pytest.raises(ConfigError, match=r"line 4: rules\[0\]\.args\.sql\.regex: not a regular expression"):
        load_config(path)


def test_unknown_severity_is_a_clear_error(tmp_path: Path) -> None:
    path = write(tmp_path, "[deadlines.default_timeout]\nlow = 60\nurgent = 5\n")
    with pytest.raises(ConfigError, match=r"line 3: deadlines\.default_timeout\.urgent") as info:
        load_config(path)
    assert "'low', 'medium', 'high' or 'critical'" in str(info.value)


def test_duplicate_rule_ids_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '[[rules]]\nid = "r"\ndecision = "allow"\n[[rules]]\nid = "r"\ndecision = "deny"\n')
    with pytest.raises(ConfigError, match="rule id 'r' is used twice"):
        load_config(path)


def test_webhook_without_a_secret_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '[[notify.webhooks]]\nurl = "http://127.0.0.1:9/x"\n')
    with pytest.raises(ConfigError, match=r"line 1: notify\.webhooks\[0\]: give exactly one of secret or secret_env"):
        load_config(path)


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[deadlines]\nwarn_before = 10\n[rules\n")
    with pytest.raises(ConfigError, match=r"line 3: not valid TOML") as info:
        load_config(path)
    assert info.value.line == 3 and info.value.key is None


def test_missing_unreadable_and_directory_configs_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(binary)


def test_broken_roles_file_is_named_with_its_own_line(tmp_path: Path) -> None:
    write(tmp_path, '[actors]\nalice = ["sre"]\n\n[severity]\nhigh = "sre"\n', name="roles.toml")
    path = write(tmp_path, '[authorization]\nroles_file = "roles.toml"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.path == str(tmp_path / "roles.toml") and info.value.line == 5
    assert info.value.key == "severity.high"
    write(tmp_path, '[authorization]\nroles_file = "missing.toml"\n')
    with pytest.raises(ConfigError, match=r"missing\.toml: no such file"):
        load_config(path)


def test_config_is_found_in_env_then_cwd_then_user_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user_dir = tmp_path / "xdg"
    (user_dir / "hitl").mkdir(parents=True)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(user_dir))
    monkeypatch.delenv("HITL_CONFIG", raising=False)
    cwd = tmp_path / "project"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    assert find_config() is None
    user = write(user_dir / "hitl", "")
    assert find_config() == user
    here = write(cwd, "")
    assert find_config() == Path.cwd() / "hitl.toml" == here
    named = write(tmp_path, "", name="other.toml")
    monkeypatch.setenv("HITL_CONFIG", str(named))
    assert find_config() == named
    monkeypatch.setenv("HITL_CONFIG", str(tmp_path / "gone.toml"))
    with pytest.raises(ConfigError, match=r"gone\.toml: \$HITL_CONFIG names this file, but it does not exist"):
        find_config()


async def test_without_a_config_nothing_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("HITL_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    machine = HITLStateMachine("memory://", load_entrypoints=False, config=True)
    assert machine.policies is None
    assert not machine.plugins.has_policies and not machine.plugins.has_authorizers
    await machine.start_task("t", agent="bot")
    await machine.request_approval("t", "why", requested_by="bot")
    done = await machine.approve("t", actor="bot")  # self-approval is only refused when configured
    assert done.state == TaskState.APPROVED
    await machine.close()
