"""`relcode --version` prints the one version (the Cargo workspace's, through the native module)."""

from __future__ import annotations

import pytest

import relcode
from relcode import cli


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"relcode {relcode.__version__}"
    assert relcode.__version__.count(".") == 2
