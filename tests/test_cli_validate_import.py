"""``noa-registry validate`` and ``noa-registry import``, run as the installed console script.

Fixtures (tests/fixtures/cli/): ``models-with-errors.json``, a models-config file with nine problems in six of its
seven models; ``litellm-small.json``, a LiteLLM-shaped price map of twelve entries of which five are skipped (its
``sample_spec``, an entry without a provider, a negative price, a string context window, a duplicate key).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from noa_ai_provider import EnhancedModelRegistry, ModelStatus
from noa_ai_provider.config import bundled_config_path, read_models_config
from noa_ai_provider.errors import ConfigError

SCRIPT = Path(sys.executable).parent / "noa-registry"
FIXTURES = Path(__file__).parent / "fixtures" / "cli"
ERRORS = FIXTURES / "models-with-errors.json"
LITELLM = FIXTURES / "litellm-small.json"


def run(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )


def run_json(*args: str | Path) -> tuple[int, Any]:
    result = run(*args, "--json")
    assert "\x1b[" not in result.stdout
    return result.returncode, json.loads(result.stdout)


# --------------------------------------------------------------------------- validate

EXPECTED_PROBLEMS = [
    (1, "gpt-4o-mini", "contextWindow"),
    (1, "gpt-4o-mini", "capabilities[0]"),
    (1, "gpt-4o-mini", "cost.inputTokens"),
    (2, "claude-sonnet-4-5", "name"),
    (2, "claude-sonnet-4-5", "cost.inputCost"),
    (3, None, None),  # not an object
    (4, "gpt-4o", None),  # duplicates models[0]
    (5, "llama-3.1-8b-instruct", "metadata.deprecationDate"),
    (6, "o3", "rateLimit.requestsPerMinute"),
]


def test_validate_lists_every_problem_with_file_model_and_field() -> None:
    result = run("validate", ERRORS)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == len(EXPECTED_PROBLEMS) + 1
    prefix = f"{ERRORS}: "
    assert all(line.startswith(prefix) for line in lines[:-1])
    assert (
        lines[0]
        == prefix + "models[1] (id 'gpt-4o-mini'): contextWindow: Input should be a valid integer (got str 'lots')"
    )
    assert lines[2] == prefix + "models[1] (id 'gpt-4o-mini'): cost.inputTokens: must be >= 0, got Decimal('-0.15')"
    assert (
        lines[4]
        == prefix + "models[2] (id 'claude-sonnet-4-5'): cost.inputCost: unknown field (not part of the schema)"
    )
    assert lines[5] == prefix + "models[3]: expected an object, got str"
    assert lines[6] == prefix + "models[4] (id 'gpt-4o'): duplicates models[0] (key openai:gpt-4o)"
    assert lines[7] == (
        prefix + "models[5] (id 'llama-3.1-8b-instruct'): metadata.deprecationDate: must be a YYYY-MM-DD date, got "
        "'next year'"
    )
    assert lines[-1] == "9 problems in 6 of 7 models"
    assert result.stderr == ""


def test_validate_json_lists_file_index_id_path_and_message() -> None:
    status, report = run_json("validate", ERRORS)
    assert status == 1
    assert (report["file"], report["valid"], report["models"]) == (str(ERRORS), False, 7)
    assert [(e["index"], e["id"], e["path"]) for e in report["errors"]] == EXPECTED_PROBLEMS
    assert {e["file"] for e in report["errors"]} == {str(ERRORS)}
    assert report["errors"][1]["message"].startswith("Input should be 'chat_completion', 'text_generation'")


def test_validate_words_each_problem_as_loading_the_file_does() -> None:
    # Loading stops at the first invalid model and joins its fields' problems: the same words, one by one.
    with pytest.raises(ConfigError) as caught:
        read_models_config(ERRORS)
    _, report = run_json("validate", ERRORS)
    first = [e for e in report["errors"] if e["index"] == 1]
    joined = "; ".join(f"{e['path']}: {e['message']}" for e in first)
    assert str(caught.value) == f"{ERRORS}: models[1] (id 'gpt-4o-mini'): {joined}"


def test_validate_a_valid_file_prints_a_one_line_summary() -> None:
    bundled = bundled_config_path()
    count = len(read_models_config(bundled))
    result = run("validate", bundled)
    assert (result.returncode, result.stdout, result.stderr) == (0, f"{bundled}: {count} models valid\n", "")
    assert run_json("validate", bundled) == (0, {"file": str(bundled), "valid": True, "models": count, "errors": []})


def test_validate_max_errors_bounds_the_text_not_the_json() -> None:
    result = run("validate", ERRORS, "--max-errors", "2")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert lines[-1] == "9 problems in 6 of 7 models (the first 2 shown; --max-errors 0 shows all)"
    assert len(run("validate", ERRORS, "--max-errors", "0").stdout.splitlines()) == 10


def test_validate_recognises_a_litellm_price_map_and_names_the_import_command(tmp_path: Path) -> None:
    result = run("validate", LITELLM)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{LITELLM}: this is a LiteLLM price map (11 entries), not a models-config file; convert it with: "
        f"noa-registry import litellm {LITELLM} --out models-config.json"
    ]
    status, report = run_json("validate", LITELLM)
    assert (status, report["detected"], len(report["errors"])) == (1, "litellm", 1)
    # A map the size of LiteLLM's own, without its sample_spec: still one short line (was 176,595 characters).
    big = tmp_path / "model_prices_and_context_window.json"
    entries = {f"provider/model-{i}": {"litellm_provider": "openai", "mode": "chat"} for i in range(5000)}
    big.write_text(json.dumps(entries))
    result = run("validate", big)
    assert result.returncode == 1
    assert len(result.stdout) < 400
    assert "noa-registry import litellm" in result.stdout


def test_validate_recognises_a_saved_registry_and_genai_prices_data(tmp_path: Path) -> None:
    path = tmp_path / "registry.json"
    with EnhancedModelRegistry(persistence_path=path, auto_save=False) as registry:
        registry.load_from_config(bundled_config_path())
        registry.save()
    status, report = run_json("validate", path)
    assert (status, report["detected"]) == (1, "registry-snapshot")
    assert "noa-registry report --persistence" in report["errors"][0]["message"]
    genai = tmp_path / "data.json"
    genai.write_text(json.dumps([{"id": "openai", "api_pattern": "api.openai.com", "models": []}]))
    status, report = run_json("validate", genai)
    assert (status, report["detected"]) == (1, "genai-prices")
    assert "noa-registry import genai-prices --out" in report["errors"][0]["message"]


def test_validate_a_problem_outside_the_models(tmp_path: Path) -> None:
    path = tmp_path / "models.json"
    path.write_text(json.dumps({"version": 2, "models": json.loads(bundled_config_path().read_text())["models"][:2]}))
    result = run("validate", path)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{path}: unknown top-level field(s) 'version'; expected 'models'",
        "1 problem",
    ]


def test_validate_bad_json_missing_file_and_wrong_arguments(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "models": [\n    {"id": "x",,}\n  ]\n}\n')
    result = run("validate", broken)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{broken}: invalid JSON at line 3, column 16: Expecting property name enclosed in double quotes"
    ]
    missing = tmp_path / "missing.json"
    assert run("validate", missing).stdout == f"{missing}: file not found\n"
    assert run_json("validate", missing) == (
        1,
        {
            "file": str(missing),
            "valid": False,
            "models": None,
            "errors": [{"file": str(missing), "index": None, "id": None, "path": None, "message": "file not found"}],
        },
    )
    folder = run("validate", tmp_path)
    assert (folder.returncode, folder.stdout) == (1, f"{tmp_path}: cannot read: Is a directory\n")
    for wrong in ((), ("a.json", "b.json"), ("a.json", "--max-errors", "-1")):
        result = run("validate", *wrong)
        assert result.returncode == 2
        assert result.stdout == ""


def test_validate_keeps_every_message_short(tmp_path: Path) -> None:
    # Ids, field names and values of any length are cut; a top-level full of unknown names lists five of them.
    long = "x" * 100_000
    path = tmp_path / "hostile.json"
    model = {"id": long, "name": "n", "provider": "openai", "version": long, "capabilities": [], "cost": None}
    path.write_text(json.dumps({"models": [model, {**model, "id": "b", long: 1}], **{f"k{i}": 1 for i in range(3000)}}))
    result = run("validate", path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert (
        lines[0] == f"{path}: unknown top-level field(s) 'k0', 'k1', 'k2', 'k3', 'k4' and 2,995 more; expected 'models'"
    )
    assert len(lines) == 5
    assert max(map(len, lines)) < 2 * len(str(path)) + 700
    _, report = run_json("validate", path)
    assert all(len(json.dumps(e)) < 1500 for e in report["errors"])


# --------------------------------------------------------------------------- import


def test_import_litellm_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "config" / "models-config.json"
    result = run("import", "litellm", LITELLM, "--out", out)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"Imported 7 models from LiteLLM's price map ({LITELLM}) into {out}"
    assert lines[1] == "Skipped 5 entries:"
    assert "  1  no litellm_provider (mystery-model)" in lines
    assert "  1  input_cost_per_token: must be >= 0, got … (broken-price)" in lines
    assert lines[-1] == "--verbose lists every skipped entry with its reason"
    assert result.stderr == ""  # no progress display: stderr is not a terminal
    assert [p.name for p in out.parent.iterdir()] == ["models-config.json"]  # nothing left behind

    registry = EnhancedModelRegistry(auto_save=False, models_config_path=out)
    assert registry.load_from_config() == 7
    assert [m.key for m in registry.list_models()] == [
        "openai:gpt-4o",
        "openai:gpt-4o-mini",
        "openai:text-embedding-3-small",
        "openai:dall-e-3",
        "claude:claude-sonnet-4-5",
        "claude:claude-3-opus-20240229",
        "groq:groq/llama-3.1-8b-instant",
    ]
    assert registry.estimate_cost("openai:gpt-4o", 100_000, 10_000, cached_input_tokens=20_000) == Decimal("0.325")
    assert registry.estimate_cost("openai:gpt-4o", 100_000, 0, service_tier="batch") == Decimal("0.125")
    assert registry.estimate_cost("claude:claude-sonnet-4-5", 300_000, 0) == Decimal("1.8")  # the long-context tier
    opus = registry.get_model("claude:claude-3-opus-20240229")
    assert opus is not None
    assert opus.status is ModelStatus.DEPRECATED
    dalle = registry.get_model("openai:dall-e-3")
    assert dalle is not None
    assert dalle.cost is None  # unpriced, kept as "cost": null
    assert run("validate", out).stdout == f"{out}: 7 models valid\n"
    written = json.loads(out.read_text())
    assert "noa-registry import litellm" in written["description"]


def test_import_json_and_verbose(tmp_path: Path) -> None:
    out = tmp_path / "models.json"
    status, summary = run_json("import", "litellm", LITELLM, "--out", out)
    assert status == 0
    assert {k: summary[k] for k in ("catalog", "source", "out", "imported", "filtered", "skipped")} == {
        "catalog": "litellm",
        "source": str(LITELLM),
        "out": str(out),
        "imported": 7,
        "filtered": 0,
        "skipped": 5,
    }
    assert summary["skippedEntries"] == [
        {"name": "sample_spec", "reason": "sample_spec documents LiteLLM's fields; it is not a model"},
        {"name": "mystery-model", "reason": "no litellm_provider"},
        {"name": "broken-price", "reason": "input_cost_per_token: must be >= 0, got -0.000001"},
        {"name": "broken-context", "reason": "max_input_tokens: must be a whole number, got str 'lots'"},
        {"name": "gpt-4o-mini", "reason": "duplicate key in the JSON text: the first entry with it was kept"},
    ]
    assert summary["reasons"][1] == {"reason": "no litellm_provider", "count": 1, "examples": ["mystery-model"]}
    verbose = run("import", "litellm", LITELLM, "--out", out, "--force", "--verbose")
    assert verbose.returncode == 0
    assert "  broken-context: max_input_tokens: must be a whole number, got str 'lots'" in verbose.stdout.splitlines()


def test_import_refuses_to_replace_without_force(tmp_path: Path) -> None:
    out = tmp_path / "models-config.json"
    out.write_text("keep me")
    refused = run("import", "litellm", LITELLM, "--out", out)
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr == f"noa-registry: {out} exists; add --force to replace it\n"
    assert out.read_text() == "keep me"
    assert run("import", "litellm", LITELLM, "--out", out, "--force").returncode == 0
    assert len(read_models_config(out)) == 7


def test_import_filters_by_provider(tmp_path: Path) -> None:
    out = tmp_path / "models.json"
    status, summary = run_json("import", "litellm", LITELLM, "--out", out, "--provider", "Anthropic")
    assert (status, summary["imported"], summary["filtered"]) == (0, 2, 5)
    assert {m.provider for m in read_models_config(out)} == {"claude"}
    both = ("--provider", "openai", "--provider", "groq")
    status, summary = run_json("import", "litellm", LITELLM, "--out", out, "--force", *both)
    assert (status, summary["imported"]) == (0, 5)
    nothing = run("import", "litellm", LITELLM, "--out", tmp_path / "none.json", "--provider", "mistral")
    assert nothing.returncode == 1
    assert nothing.stderr == (
        "noa-registry: no model of provider mistral in LiteLLM's price map; nothing written "
        "(its providers include openai, claude, groq)\n"
    )
    assert not (tmp_path / "none.json").exists()


def test_import_bad_sources_and_wrong_arguments(tmp_path: Path) -> None:
    out = tmp_path / "models.json"
    missing = run("import", "litellm", tmp_path / "nope.json", "--out", out)
    assert (missing.returncode, missing.stderr) == (1, f"noa-registry: {tmp_path / 'nope.json'}: no such file\n")
    broken = tmp_path / "broken.json"
    broken.write_text('{"gpt-4o": {"litellm_provider": "openai",}}')
    result = run("import", "litellm", broken, "--out", out)
    assert result.returncode == 1
    assert "invalid JSON at line 1, column" in result.stderr
    config = tmp_path / "config.json"
    config.write_text(bundled_config_path().read_text())
    result = run("import", "litellm", config, "--out", out)
    assert result.returncode == 1
    assert "looks like a models-config file already" in result.stderr
    assert not out.exists()
    for wrong in (
        ("import",),
        ("import", "litellm", LITELLM),  # no --out
        ("import", "genai-prices", "extra", "--out", out),
        ("import", "openrouter", "--out", out),
        ("import", "litellm", LITELLM, "--out", LITELLM, "--force"),  # over the catalogue itself
        ("import", "litellm", LITELLM, "--out", tmp_path),  # a directory
    ):
        assert run(*wrong).returncode == 2, wrong
    assert json.loads(LITELLM.read_text(encoding="utf-8"))  # untouched (duplicate key and all)


def test_import_genai_prices_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "genai.json"
    status, summary = run_json("import", "genai-prices", "--out", out)
    assert status == 0
    assert summary["source"].startswith("genai-prices ")
    assert summary["imported"] > 1000
    assert sum(reason["count"] for reason in summary["reasons"]) == summary["skipped"]
    registry = EnhancedModelRegistry(auto_save=False, models_config_path=out)
    assert registry.load_from_config() == summary["imported"]
    assert run("validate", out).stdout == f"{out}: {summary['imported']:,} models valid\n"
    openai = run("import", "genai-prices", "--out", out, "--force", "--provider", "openai")
    assert openai.returncode == 0
    assert {m.provider for m in read_models_config(out)} == {"openai"}


def test_import_genai_prices_without_the_package_names_the_extra(tmp_path: Path) -> None:
    hidden = tmp_path / "site"
    (hidden / "genai_prices").mkdir(parents=True)
    (hidden / "genai_prices" / "__init__.py").write_text("raise ImportError('No module named genai_prices')\n")
    path = os.pathsep.join(p for p in (str(hidden), os.environ.get("PYTHONPATH", "")) if p)
    result = run("import", "genai-prices", "--out", tmp_path / "m.json", env={"PYTHONPATH": path})
    assert result.returncode == 1
    assert "pip install 'noa-ai-provider[genai-prices]'" in result.stderr
    assert not (tmp_path / "m.json").exists()


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_import_shows_progress_on_a_terminal_only(tmp_path: Path) -> None:
    import pty

    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [str(SCRIPT), "import", "litellm", str(LITELLM), "--out", str(tmp_path / "m.json")],
        stdout=subprocess.PIPE,
        stderr=follower,
        env={**os.environ, "TERM": "xterm", "COLUMNS": "100"},
    )
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    out, _ = process.communicate(timeout=60)
    os.close(leader)
    assert process.returncode == 0
    assert b"Preparing 7 models" in shown
    assert b"\x1b[" not in out  # the summary on stdout (a pipe) stays plain


def test_help_has_examples_and_exit_statuses() -> None:
    for args in (("validate",), ("import",), ("import", "litellm"), ("import", "genai-prices")):
        result = run(*args, "--help")
        assert result.returncode == 0
        assert "examples:" in result.stdout, args
        assert "exit status:" in result.stdout, args
    assert "a missing or unreadable file" in run("validate", "--help").stdout


def test_importing_the_modules_loads_neither_rich_nor_a_catalogue_package() -> None:
    code = (
        "import sys, noa_ai_provider.cli.validating, noa_ai_provider.cli.importing; "
        "print(sorted(m for m in ('rich', 'litellm', 'genai_prices') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout == "[]\n"


def test_validate_compares_deprecation_dates_with_today(tmp_path: Path) -> None:
    # What validate accepts, loading accepts: a past deprecationDate is fine (the model loads as deprecated).
    path = tmp_path / "models.json"
    model = json.loads(bundled_config_path().read_text())["models"][0]
    model["metadata"] = {"deprecationDate": date(2020, 1, 1).isoformat()}
    path.write_text(json.dumps([model]))
    assert run("validate", path).returncode == 0
    assert read_models_config(path)[0].status is ModelStatus.DEPRECATED
