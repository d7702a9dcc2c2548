"""The output formats CI and code review read, the output options, and standard input."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import attr
import pytest
import sarif_om
from click.testing import CliRunner
from conftest import FIXTURES, ROOT

from enslint.cli import main

SEED = (FIXTURES / "positive" / "seed_shared_trunk_head_groups.py").read_text()


def check(*args: str, stdin: str | None = None):
    return CliRunner().invoke(main, ["check", "--no-cache", *args], input=stdin)


# SARIF objects by the property that holds them; which properties each may have, and
# which it must have, come from sarif-om, the object model generated from the schema.
_CLASS_OF = {
    "runs": sarif_om.Run,
    "tool": sarif_om.Tool,
    "driver": sarif_om.ToolComponent,
    "rules": sarif_om.ReportingDescriptor,
    "shortDescription": sarif_om.MultiformatMessageString,
    "fullDescription": sarif_om.MultiformatMessageString,
    "help": sarif_om.MultiformatMessageString,
    "defaultConfiguration": sarif_om.ReportingConfiguration,
    "results": sarif_om.Result,
    "message": sarif_om.Message,
    "locations": sarif_om.Location,
    "physicalLocation": sarif_om.PhysicalLocation,
    "artifactLocation": sarif_om.ArtifactLocation,
    "region": sarif_om.Region,
}


def sarif_object(cls, data: dict):
    """`data` as an instance of the sarif-om class `cls`: every property must be one the
    schema defines for that object, every required one present."""
    fields = {f.metadata["schema_property_name"]: f for f in attr.fields(cls)}
    required = {name for name, f in fields.items() if f.default is attr.NOTHING}
    assert required <= set(data), f"{cls.__name__} lacks {required - set(data)}"
    kwargs = {}
    for key, value in data.items():
        assert key in fields, f"{cls.__name__} has no property {key!r}"
        if key == "originalUriBaseIds":
            value = {base: sarif_object(sarif_om.ArtifactLocation, location) for base, location in value.items()}
        elif key in _CLASS_OF and isinstance(value, list):
            value = [sarif_object(_CLASS_OF[key], item) for item in value]
        elif key in _CLASS_OF:
            value = sarif_object(_CLASS_OF[key], value)
        kwargs[fields[key].name] = value
    return cls(**kwargs)


def test_sarif_carries_what_github_code_scanning_needs(monkeypatch):
    monkeypatch.chdir(ROOT)
    result = check("--output-format", "sarif", "fixtures/")
    log = sarif_object(sarif_om.SarifLog, json.loads(result.stdout))
    assert log.version == "2.1.0" and log.schema_uri.endswith("sarif-2.1.0.json")
    (run,) = log.runs
    driver = run.tool.driver
    assert driver.name == "enslint" and driver.version
    rules = {rule.id: rule for rule in driver.rules}
    assert {"ENS001", "ENS002", "ENS003", "ENS000"} <= set(rules)
    assert all(rule.short_description.text and rule.name for rule in rules.values())
    assert rules["ENS001"].help_uri.endswith("rules/ENS001.md")
    expected = json.loads(check("--format", "json", "fixtures/").stdout)
    assert len(run.results) == len(expected) > 0
    for found, want in zip(run.results, expected):
        assert found.rule_id == want["code"] and driver.rules[found.rule_index].id == want["code"]
        assert found.message.text.startswith(want["message"])
        (location,) = found.locations
        physical = location.physical_location
        assert not physical.artifact_location.uri.startswith("/") and physical.artifact_location.uri.endswith(".py")
        assert (
            physical.region.start_line == want["location"]["row"]
            and physical.region.start_column == want["location"]["column"]
        )


def test_github_annotations(project):
    (project / "seed.py").write_text(SEED)
    lines = check("--output-format", "github").stdout.splitlines()
    assert lines[0] == (
        "::warning title=enslint (ENS002),file=seed.py,line=26,col=9,endLine=30,endColumn=52::ENS002 "
        "`GroupedHeadEnsemble.batched_forward`: ensemble_size groups run one by one on slices …; fix: on the inner loop (ENS001)"
    )
    assert len(lines) == 3 and all(line.startswith("::warning ") for line in lines)


def test_github_escapes_what_would_end_a_command():
    from enslint.output import _github_escape

    assert _github_escape("a%b\nc") == "a%25b%0Ac"
    assert _github_escape("dir,x:y.py", property_value=True) == "dir%2Cx%3Ay.py"


def test_gitlab_code_quality_and_junit(project):
    (project / "seed.py").write_text(SEED)
    (project / "clean.py").write_text("x = 1\n")
    report = json.loads(check("--format", "gitlab").stdout)
    assert [item["check_name"] for item in report] == ["ENS002", "ENS003", "ENS001"]
    assert all(
        item["location"]["path"] == "seed.py" and item["severity"] == "major" and len(item["fingerprint"]) == 64
        for item in report
    )
    assert len({item["fingerprint"] for item in report}) == 3
    suites = ET.fromstring(check("--format", "junit").stdout)
    assert suites.tag == "testsuites" and suites.get("failures") == "3"
    by_name = {suite.get("name"): suite for suite in suites}
    assert set(by_name) == {"seed.py", "clean.py"}
    assert [case.get("name") for case in by_name["seed.py"]] == ["enslint.ENS002", "enslint.ENS003", "enslint.ENS001"]
    assert by_name["clean.py"].get("failures") == "0"


def test_concise_quiet_and_output_file(project):
    (project / "seed.py").write_text(SEED)
    concise = check("--format", "concise").stdout.splitlines()
    assert len(concise) == 3 and concise[0].startswith("seed.py:26:9: ENS002 ")
    quiet = check("--quiet").stdout.splitlines()
    assert quiet == concise  # findings only: no summary
    result = check("--output-format", "json", "--output-file", "report.json")
    assert result.exit_code == 1 and result.stdout == ""
    assert len(json.loads((project / "report.json").read_text())) == 3


def test_statistics_honour_json(project):
    (project / "seed.py").write_text(SEED)
    stats = json.loads(check("--statistics", "--format", "json").stdout)
    assert {(s["code"], s["count"], s["fixable"]) for s in stats} == {
        ("ENS001", 1, 0),
        ("ENS002", 1, 0),
        ("ENS003", 1, 1),
    }


def test_show_fixes_lists_what_was_fixed_before_what_remains(project):
    (project / "seed.py").write_text(SEED)
    out = check("--fix", "--show-fixes").stdout
    assert "Fixed 1 error:\n- seed.py:\n    1 x ENS003 (quadratic-slice-backward)" in out
    assert out.index("ENS002") < out.index("Fixed 1 error")


def test_standard_input_with_a_file_name(project):
    (project / "pyproject.toml").write_text(
        '[tool.enslint]\nper-file-ignores = { "legacy/*" = ["ENS001"] }\nextend-exclude = ["generated"]\n'
    )
    named = check("-", "--stdin-filename", "models/seed.py", stdin=SEED)
    assert named.exit_code == 1 and named.stdout.startswith("models/seed.py:26:9: ENS002")
    ignored = check("-", "--stdin-filename", "legacy/seed.py", "--format", "json", stdin=SEED)
    assert {d["code"] for d in json.loads(ignored.stdout)} == {"ENS002", "ENS003"}
    excluded = check("-", "--stdin-filename", "generated/seed.py", stdin=SEED)
    assert excluded.exit_code == 0 and excluded.stdout == ""
    fixed = check("-", "--stdin-filename", "seed.py", "--fix", stdin=SEED)
    assert "zip(self.ensemble, x.unbind(1))" in fixed.stdout and fixed.stdout.startswith('"""The seed')
    assert not (project / "seed.py").exists()  # nothing written


@pytest.mark.parametrize(
    "args, message",
    [
        (["-", "other.py"], "`-` (standard input) cannot be combined with other paths"),
        (["x.py", "--stdin-filename", "y.py"], "--stdin-filename names what `-` reads: pass `-` as the path"),
    ],
)
def test_standard_input_usage_errors(project, args, message):
    (project / "x.py").write_text("x = 1\n")
    result = check(*args)
    assert result.exit_code == 2 and message in result.output


def test_no_python_files_is_a_warning_not_a_pass(project):
    (project / "docs").mkdir()
    result = check("docs")
    assert result.exit_code == 0 and "All checks passed" not in result.output
    assert "enslint: warning: no Python files found to check" in result.stderr


def test_rule_ens000_has_a_page():
    result = CliRunner().invoke(main, ["rule", "ENS000"])
    assert result.exit_code == 0 and result.output.startswith("# ENS000 (unreadable-file)")


@pytest.mark.parametrize(
    "toml",
    [
        '[tool."enslint"]\nignore = ["ENS001"]\n',
        '[tool]\nenslint = { ignore = ["ENS001"] }\n',
        '[tool . enslint]\nignore = "ENS001"\nexclude = "build"\n',  # a string for any list key
    ],
)
def test_configuration_is_read_as_toml_however_it_is_spelt(project, toml):
    (project / "m.py").write_text((FIXTURES / "positive" / "linear_heads_mean.py").read_text())
    (project / "pyproject.toml").write_text(toml)
    result = check()
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "toml, message",
    [
        ("tool = 1  # tool.enslint\n", "'tool' must be a table of tools' settings, not int 1"),
        ("[tool]\nenslint = 3\n", "[tool.enslint] must be a table, not int 3"),
        ('[tool.enslint]\nignor = ["ENS001"]\n', "unknown key 'ignor' (did you mean 'ignore'?)"),
        ("[tool.enslint.verify.X]\ninit = {}\nshapes = []\n", "unknown key 'shapes'"),
        ("[tool.enslint]\nselect = " + "[" * 3000 + "]" * 3000 + "\n", "invalid TOML"),
    ],
)
def test_configuration_errors_are_one_line(project, toml, message):
    (project / "m.py").write_text("x = 1\n")
    (project / "pyproject.toml").write_text(toml)
    result = check()
    assert result.exit_code == 2 and message in result.output and len(result.output.strip().splitlines()) == 1, (
        result.output
    )


def test_config_flag_on_a_file_without_the_table_is_an_error(project):
    (project / "m.py").write_text("x = 1\n")
    (project / "other.toml").write_text('[project]\nname = "x"\n')
    result = check("--config", "other.toml")
    assert result.exit_code == 2 and "no [tool.enslint] table" in result.output


def test_extend_select_adds_to_the_configured_list(project):
    (project / "seed.py").write_text(SEED)
    (project / "pyproject.toml").write_text('[tool.enslint]\nselect = ["ENS001"]\n')
    assert {d["code"] for d in json.loads(check("--format", "json").stdout)} == {"ENS001"}
    assert {d["code"] for d in json.loads(check("--format", "json", "--extend-select", "ENS003").stdout)} == {
        "ENS001",
        "ENS003",
    }
    (project / "pyproject.toml").write_text('[tool.enslint]\nselect = ["ENS001"]\nextend-select = ["ENS002"]\n')
    assert {d["code"] for d in json.loads(check("--format", "json").stdout)} == {"ENS001", "ENS002"}


def test_progress_bar_only_for_long_runs_on_a_terminal(monkeypatch):
    from enslint import cli

    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    assert cli._progress(500, silent=False).show
    assert not cli._progress(10, silent=False).show  # short: no bar
    assert not cli._progress(500, silent=True).show  # --quiet, machine formats
    monkeypatch.setenv("CI", "true")
    assert not cli._progress(500, silent=False).show


ODD_NAMES = ["with space.py", "100%.py", "ünïcode.py", "#hash.py", "q?x.py", "foo:bar.py"]


def test_sarif_uris_are_encoded_and_name_their_files(project):
    """Each artifact URI, resolved against %SRCROOT% as a SARIF reader does, is the file."""
    from urllib.parse import unquote, urljoin, urlsplit

    source = (FIXTURES / "positive" / "linear_heads_mean.py").read_text()
    (project / "sub dir").mkdir()
    for name in ODD_NAMES:
        (project / "sub dir" / name).write_text(source)
    log = json.loads(check("--output-format", "sarif", "--no-cache", ".").stdout)
    (run,) = log["runs"]
    root = run["originalUriBaseIds"]["%SRCROOT%"]["uri"]
    found = set()
    for result in run["results"]:
        location = result["locations"][0]["physicalLocation"]["artifactLocation"]
        uri = location["uri"]
        assert " " not in uri and "#" not in uri and "?" not in uri and uri.isascii()
        assert location["uriBaseId"] == "%SRCROOT%"
        assert urlsplit(uri).scheme == ""  # `foo:bar.py` must not read as a scheme
        resolved = urlsplit(urljoin(root, uri))
        assert resolved.scheme == "file" and not resolved.query and not resolved.fragment
        found.add(unquote(resolved.path))
    assert found == {str(project.resolve() / "sub dir" / name) for name in ODD_NAMES}


def test_sarif_uri_outside_the_tree_is_a_file_uri(project, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere") / "my model.py"
    outside.write_text((FIXTURES / "positive" / "linear_heads_mean.py").read_text())
    log = json.loads(check("--output-format", "sarif", "--no-cache", str(outside)).stdout)
    location = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert location == {"uri": outside.as_uri()}
