"""The planner catalog: the shipped CSV's schema and coverage, validation lines, plugin and env rows,
accelerator names."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import pytest
from fixtures_cli import make_plugin

from cloudbridge.errors import UserError
from cloudbridge.planner.accelerators import (
    UnknownAccelerator,
    from_device_name,
    normalize_accelerator,
    satisfies,
    suggest_accelerators,
)
from cloudbridge.planner.catalog import (
    COLUMNS,
    CatalogError,
    builtin_catalog_path,
    load_catalog,
    parse_catalog_csv,
)

HEADER = ",".join(COLUMNS)
P = "aws,us-east-1,ml.x,"
GOOD = "aws,us-east-1,ml.g5.xlarge,A10G,1,24,4,16,1.408,0.42,https://example.test/p,2024-12-01"


def test_builtin_catalog_is_versioned_and_valid() -> None:
    catalog = load_catalog(include_plugins=False, include_env=False)
    assert catalog.version and catalog.version[0].isdigit()
    assert len(catalog) >= 150
    raw = builtin_catalog_path().read_text(encoding="utf-8")
    assert "# catalog-version:" in raw
    for row in catalog:
        assert row.price_hour > 0, row.label
        assert row.spot_price_hour is None or row.spot_price_hour < row.price_hour, row.label
        assert "https://" in row.price_source, row.label
        assert row.price_date.count("-") == 2
        assert row.vcpus > 0 and row.memory_gb > 0
        assert (row.accelerator is None) == (row.accelerator_count == 0)
        assert row.origin.startswith(str(builtin_catalog_path()) + ":")


def test_builtin_catalog_covers_families_regions_and_cpu_types() -> None:
    catalog = load_catalog(include_plugins=False, include_env=False)
    regions: dict[tuple[str, str], set[str]] = defaultdict(set)
    cpu_types: dict[str, int] = defaultdict(int)
    for row in catalog:
        if row.accelerator:
            regions[(row.provider, row.accelerator)].add(row.region)
        else:
            cpu_types[row.provider] += 1
    assert set(catalog.providers) == {"aws", "gcp", "azure"}
    offered = {accel for (_, accel) in regions}
    assert {"T4", "L4", "A10G", "V100", "A100", "A100-80GB", "H100"} <= offered
    for (provider, accel), where in regions.items():
        assert len(where) >= 3, (provider, accel, where)
    assert all(cpu_types[p] >= 2 for p in ("aws", "gcp", "azure"))
    # Where a cloud sells a family, every provider that sells it has it in 3+ regions (checked above);
    # the ones each cloud does not sell are known gaps, not omissions.
    assert {a for (p, a) in regions if p == "aws"} >= {"T4", "L4", "A10G", "V100", "A100", "A100-80GB", "H100"}


def test_rows_marked_approximate_say_so() -> None:
    rows = list(csv.DictReader(line for line in builtin_catalog_path().read_text().splitlines()
                               if not line.startswith("#")))
    regional = [r for r in rows if "regional factor" in r["price_source"]]
    assert regional and all("approx" in r["price_source"] for r in regional)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (P + "T4,1,16,4,16,,0.2,https://e,2024-12-01", "bad.csv:3: aws/us-east-1/ml.x: price_hour is missing"),
        (P + "T4,1,16,4,16,cheap,,https://e,2024-12-01", "ml.x: price_hour is not a number: 'cheap'"),
        (P + "T4,1,16,4,16,-1,,https://e,2024-12-01", "price_hour must be a number >= 0, got '-1'"),
        (P + "T4,1,16,4,16,nan,,https://e,2024-12-01", "price_hour must be a number >= 0"),
        (P + ",2,0,4,16,1,,https://e,2024-12-01", "accelerator_count is 2 but no accelerator is named"),
        (P + "T4,0,16,4,16,1,,https://e,2024-12-01", "accelerator_count must be at least 1"),
        (P + "T4,1.5,16,4,16,1,,https://e,2024-12-01", "accelerator_count must be a whole number"),
        (P + "T4,1,16,0,16,1,,https://e,2024-12-01", "vcpus must be a positive number"),
        (P + "T4,1,16,4,16,1,,,2024-12-01", "price_source is missing"),
        (P + "T4,1,16,4,16,1,,https://e,last week", "price_date must be a date"),
        ("aws,,ml.x,T4,1,16,4,16,1,,https://e,2024-12-01", "bad.csv:3: aws/?/ml.x: region is missing"),
        ("AWS!,us-east-1,ml.x,T4,1,16,4,16,1,,https://e,2024-12-01", "provider 'AWS!' must be lower-case"),
        (P + "T4,1,16,4", "bad.csv:3: expected 12 fields, found 7"),
        (GOOD, "bad.csv:3: aws/us-east-1/ml.g5.xlarge: duplicate row (first at bad.csv:2)"),
    ],
)
def test_bad_rows_are_one_line_naming_file_line_and_row(line: str, message: str) -> None:
    text = f"# catalog-version: t1\n{HEADER}\n{line}\n"
    if message.startswith("bad.csv:3: aws/us-east-1/ml.g5.xlarge: duplicate"):
        text = f"{HEADER}\n{GOOD}\n{line}\n"
    with pytest.raises(CatalogError) as info:
        parse_catalog_csv(text, source="bad.csv")
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert info.value.exit_code == 2


def test_header_problems_name_the_header_line() -> None:
    with pytest.raises(CatalogError, match=r"^x.csv:2: header: missing column\(s\) price_hour"):
        parse_catalog_csv("# comment\n" + HEADER.replace(",price_hour", "") + "\n", source="x.csv")
    with pytest.raises(CatalogError, match=r"x.csv:1: header: unknown column\(s\) colour"):
        parse_catalog_csv(HEADER + ",colour\n", source="x.csv")
    with pytest.raises(CatalogError, match="no header line"):
        parse_catalog_csv("# only comments\n", source="x.csv")


def test_optional_columns_and_aliases_are_normalised() -> None:
    text = (f"# catalog-version: 7\n{HEADER}\n"
            "gcp,us-central1,a2-ultragpu-1g,nvidia_a100_80gb,1,,12,170,5.85,,https://e,2024-12-01\n")
    version, rows = parse_catalog_csv(text, source="ok.csv")
    assert version == "7"
    assert rows[0].accelerator == "A100-80GB"
    assert rows[0].gpu_memory_gb == 80  # filled from the known size
    assert rows[0].spot_price_hour is None and rows[0].price(spot=True) is None


def test_env_catalog_overrides_a_price(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    extra = tmp_path / "mine.csv"
    extra.write_text(f"{HEADER}\n{GOOD.replace('1.408', '0.5')}\n"
                     "local,localhost,localhost,,0,0,2,4,0.25,,injected for a budget test,2024-12-01\n")
    monkeypatch.setenv("CLOUDBRIDGE_CATALOG", str(extra))
    catalog = load_catalog(include_plugins=False)
    row = catalog.get("aws", "us-east-1", "ml.g5.xlarge")
    assert row is not None and row.price_hour == 0.5 and row.origin == f"{extra}:2"
    assert catalog.get("local", "localhost", "localhost").price_hour == 0.25  # type: ignore[union-attr]
    assert (str(extra), None) in catalog.sources


def test_env_catalog_that_is_missing_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDBRIDGE_CATALOG", str(tmp_path / "nope.csv"))
    with pytest.raises(CatalogError, match="nope.csv: cannot read catalog"):
        load_catalog(include_plugins=False)


PLUGIN = '''
import cloudbridge
from pathlib import Path

@cloudbridge.hookimpl
def cloudbridge_register_catalog(register):
    register([{"provider": "acme", "region": "moon-1", "instance_type": "acme.gpu", "accelerator": "H100",
               "accelerator_count": 8, "vcpus": 96, "memory_gb": 1024, "price_hour": 20.0,
               "spot_price_hour": "", "price_source": "acme price list", "price_date": "2025-01-02"}])
    register(Path(__file__).with_name("rows.csv"))
'''


def test_plugins_add_rows_through_the_hook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_plugin(tmp_path / "site", dist="cloudbridge-acme", entry_name="acme",
                       modules={"acme_cb/plugin.py": PLUGIN})
    (root / "acme_cb" / "rows.csv").write_text(
        f"# catalog-version: acme-3\n{HEADER}\nacme,moon-2,acme.small,T4,1,16,4,16,0.3,0.1,acme,2025-01-02\n")
    monkeypatch.syspath_prepend(str(root))
    catalog = load_catalog()
    big = catalog.get("acme", "moon-1", "acme.gpu")
    assert big is not None and big.gpu_memory_gb == 80 and big.origin == "plugin acme: row 1"
    assert catalog.get("acme", "moon-2", "acme.small") is not None
    assert ("plugin acme", None) in catalog.sources
    assert any(version == "acme-3" for _, version in catalog.sources)


def test_a_bad_plugin_row_names_the_plugin_and_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = PLUGIN.replace('"price_hour": 20.0,', "")
    source = source.replace('    register(Path(__file__).with_name("rows.csv"))\n', "")
    root = make_plugin(tmp_path / "site", dist="cloudbridge-acme", entry_name="acme",
                       modules={"acme_bad_cb/plugin.py": source})
    monkeypatch.syspath_prepend(str(root))
    with pytest.raises(CatalogError, match=r"^plugin acme: row 1: acme/moon-1/acme.gpu: price_hour is missing$"):
        load_catalog()


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [("a100-80gb", "A100-80GB"), ("NVIDIA_TESLA_T4", "T4"), ("nvidia-tesla-v100", "V100"),
     ("A100-40GB", "A100"), ("h100 80gb", "H100"), ("A10G", "A10G"), ("l4", "L4")],
)
def test_accelerator_aliases(raw: str, canonical: str) -> None:
    assert normalize_accelerator(raw) == canonical


def test_unknown_accelerators_suggest_the_nearest() -> None:
    catalog = load_catalog(include_plugins=False, include_env=False)
    with pytest.raises(UnknownAccelerator) as info:
        catalog.normalize("A10", where="job.yaml:5: resources.accelerators: ")
    text = str(info.value)
    assert text.startswith("job.yaml:5: resources.accelerators: unknown accelerator 'A10'")
    assert "did you mean 'A10G'" in text
    assert isinstance(info.value, UserError)
    assert suggest_accelerators("h1", catalog.accelerators())[0] == "H100"
    assert suggest_accelerators("A100-80", catalog.accelerators())[0] == "A100-80GB"
    with pytest.raises(UnknownAccelerator, match="known: A100"):
        catalog.normalize("X9000")


def test_family_requests() -> None:
    assert satisfies("A100-80GB", "A100") and satisfies("A100", "A100")
    assert not satisfies("A100", "A100-80GB")
    assert not satisfies("A10G", "A10") and not satisfies(None, "T4") and satisfies(None, None)
    assert not satisfies("T4", None)


@pytest.mark.parametrize(
    ("device", "memory", "canonical"),
    [("NVIDIA A100-SXM4-80GB", 80, "A100-80GB"), ("NVIDIA A100-PCIE-40GB", 40, "A100"), ("Tesla T4", 15, "T4"),
     ("NVIDIA H100 80GB HBM3", 80, "H100"), ("NVIDIA A10G", 23, "A10G"), ("Tesla V100-SXM2-32GB", 32, "V100-32GB"),
     ("NVIDIA L4", 23, "L4"), ("NVIDIA GeForce RTX 4090", 24, "RTX-4090"), ("NVIDIA H100 NVL", 94, "H100-NVL")],
)
def test_device_names_map_to_catalog_names(device: str, memory: float, canonical: str) -> None:
    assert from_device_name(device, memory) == canonical


def test_filter_by_provider_accelerator_region() -> None:
    catalog = load_catalog(include_plugins=False, include_env=False)
    rows = catalog.filter(provider="azure", accelerator="a100")
    assert rows and all(r.provider == "azure" and r.accelerator in ("A100", "A100-80GB") for r in rows)
    assert {r.accelerator for r in rows} == {"A100", "A100-80GB"}
    only_80 = catalog.filter(accelerator="A100-80GB", region="eastus")
    assert only_80 and all(r.accelerator == "A100-80GB" and r.region == "eastus" for r in only_80)
