"""spec/channel.md section 1.1 (the method table) agrees with the core: the method registry
(ids, block dimensions, fixed-budget, exact) and the file reader (which options apply)."""

from __future__ import annotations

import importlib.util
import re
import struct

import numpy as np
import pytest

import relcode

from ..conftest import SPEC

_spec = importlib.util.spec_from_file_location("gen_format_vectors", SPEC / "tools" / "gen_format_vectors.py")
G = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(G)

DECODE = SPEC / "vectors" / "format" / "decode"
_ITEM = re.compile(r"^`(\w+)`(?: \((required|with `bits`|without `bits`)\))?$")


def table_rows(text: str, header: str) -> list[list[str]]:
    """The body rows of the markdown table whose header line starts with ``header``."""
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[at + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


def method_table() -> dict[str, dict]:
    text = (SPEC / "channel.md").read_text()
    assert "### 1.1 Methods" in text
    out = {}
    for mid, name, dim, fixed, exact, options in table_rows(text, "| id | method |"):
        opts = {}
        for item in options.split(", "):
            m = _ITEM.match(item)
            assert m, f"unparsed option item {item!r} of {name}"
            opts[m.group(1)] = m.group(2)
        out[name.strip("`")] = {"id": int(mid), "dim": dim, "fixed": fixed, "exact": exact, "options": opts}
    return out


TABLE = method_table()


def test_table_lists_every_method_of_the_registry() -> None:
    core = relcode.channel.methods()
    assert list(TABLE) == sorted(core, key=lambda n: core[n]["id"])
    for name, row in TABLE.items():
        info = core[name]
        assert row["id"] == info["id"], name
        assert row["dim"] == ("any" if info["max_dim"] is None else str(info["max_dim"])), name
        assert row["fixed"] in ("yes", "no", "with `bits`"), name
        assert info["fixed_budget"] == (row["fixed"] == "yes"), name
        assert row["exact"] in ("yes", "no", "without `bits`"), name
        assert info["exact"] == (row["exact"] != "no"), name
        if row["fixed"] == "with `bits`":  # fixed-budget with bits: pool then applies
            assert row["options"].get("pool") == "with `bits`", name


def test_format_option_table_has_the_same_keys() -> None:
    rows = table_rows((SPEC / "format.md").read_text(), "| key | type | default | applies to |")
    keys = {r[0].strip("`") for r in rows}
    assert keys == set().union(*(row["options"] for row in TABLE.values()))


def _options(name: str) -> dict:
    if name in ("mrc", "orc"):
        return {"bits": 4}
    if name == "dad_star":
        return {"depth": 3}
    return {}


@pytest.mark.parametrize("name", list(TABLE))
def test_one_dimensional_methods_refuse_larger_blocks(name: str) -> None:
    dim = TABLE[name]["dim"]
    d = 3 if dim == "any" else int(dim) + 1
    msg = np.ones(1, dtype=np.uint64)
    if name == "agrs":
        msg = np.ones((1, 2), dtype=np.uint64)
    elif name == "gprs_parallel":
        msg = np.array([[0, 1]], dtype=np.uint64)
    if dim == "any":
        x = relcode.channel.decode(msg, 0.0, 1.0, method=name, dim=d, **_options(name))
        assert x.shape == (1, d)
    else:
        with pytest.raises(relcode.errors.RelcodeError, match="one dimension"):
            relcode.channel.decode(msg, 0.0, 1.0, method=name, dim=d, **_options(name))


# A valid value of every file option (index_code and zeta_k go together).
VALUES = {
    "bits": 8,
    "pool": True,
    "index_code": "zeta",
    "zeta_k": 3,
    "depth": 3,
    "parallel": 8,
    "split": "dyadic",
}


def _with_options(data: bytes, change) -> bytes:
    """The file with every MSGS options map replaced by change(options)."""
    version, chunks, digests = G.parse_file(data)
    for i, c in enumerate(chunks):
        if c.kind == b"MSGS":
            p = c.payload
            m = struct.unpack("<H", p[6:8])[0]
            new = G.mp_pack(change(G.mp_unpack(p[8 : 8 + m])))
            chunks[i] = G.Chunk(b"MSGS", p[:6] + struct.pack("<H", len(new)) + new + p[8 + m :])
    return G.build_file(chunks, digests, version=version)


def _error(data: bytes) -> str:
    try:
        relcode.verify(data)
    except relcode.FormatError as e:
        return str(e)
    return ""


VECTORS = [f"method_{n}" for n in TABLE] + ["method_pfr_exact"]


@pytest.mark.parametrize("vector", VECTORS)
def test_options_apply_as_the_table_says(vector: str) -> None:
    name = vector.removeprefix("method_").removesuffix("_exact")
    path = DECODE / f"{vector}.relc"
    if not path.exists():
        pytest.skip(f"no vector for {name}")
    data = path.read_bytes()
    assert _error(data) == ""
    msgs = next(c for c in G.parse_file(data)[1] if c.kind == b"MSGS").payload
    has_bits = "bits" in G.mp_unpack(msgs[8 : 8 + struct.unpack("<H", msgs[6:8])[0]])
    listed = TABLE[name]["options"]
    for key in VALUES:
        cond = listed.get(key, "absent")
        applies = key in listed and not (
            (cond == "with `bits`" and not has_bits) or (cond == "without `bits`" and has_bits)
        )
        add = {key: VALUES[key]}
        if key in ("index_code", "zeta_k"):
            add = {"index_code": "zeta", "zeta_k": 3}
        err = _error(_with_options(data, lambda o, add=add: {**o, **add}))
        assert ("does not apply" in err) != applies, (vector, key, err)
        if cond == "required":
            err = _error(_with_options(data, lambda o, key=key: {k: v for k, v in o.items() if k != key}))
            assert f"{key} is required" in err, (vector, key, err)


def test_an_empty_options_field_is_refused_and_an_empty_map_means_defaults() -> None:
    data = (DECODE / "method_astar.relc").read_bytes()
    version, chunks, digests = G.parse_file(data)
    i = next(i for i, c in enumerate(chunks) if c.kind == b"MSGS")
    p = chunks[i].payload
    assert p[6:9] == b"\x01\x00\x80"  # m = 1: the empty map, every option at its default
    chunks[i] = G.Chunk(b"MSGS", p[:6] + b"\x00\x00" + p[9:])  # m = 0: no MessagePack value
    with pytest.raises(relcode.FormatError) as info:
        relcode.verify(G.build_file(chunks, digests, version=version))
    assert type(info.value) is relcode.FormatError


def test_gprs_bnb_decodes_like_as_star_and_ad_star() -> None:
    """spec/channel.md section 5.3: B_1 is the whole quantile domain, as in section 5.2."""
    h = np.array([1, 2, 3, 13, 1000, 2**40 + 7, 2**63 - 1], dtype=np.uint64)
    for split, twin in (("sample", "as_star"), ("dyadic", "ad_star")):
        a = relcode.channel.decode(h, 0.1, 0.5, method="gprs_bnb", split=split, seed=5, dim=1)
        b = relcode.channel.decode(h, 0.1, 0.5, method=twin, seed=5, dim=1)
        np.testing.assert_array_equal(a.view(np.uint32), b.view(np.uint32))
