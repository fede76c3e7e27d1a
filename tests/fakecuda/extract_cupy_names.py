"""Write ``cupy_names.json``: the public names of the real CuPy that the stand-in may offer.

Run it with a real CuPy installed (no GPU is needed to import it)::

    python3 -m venv /tmp/cupyvenv && /tmp/cupyvenv/bin/pip install cupy-cuda13x cuda-pathfinder
    /tmp/cupyvenv/bin/python tests/fakecuda/extract_cupy_names.py

The stand-in refuses every name that is not in this list, so code that works on the
fake cannot call something the real CuPy lacks.
"""

from __future__ import annotations

import json
from pathlib import Path


def public(obj: object) -> list[str]:
    return sorted(n for n in dir(obj) if not n.startswith("_") or (n.startswith("__") and n.endswith("__")))


def main() -> None:
    import cupy
    import cupy.cuda
    import cupy.cuda.runtime
    import cupy.lib.stride_tricks
    import cupy.random

    names = {
        "version": cupy.__version__,
        "cupy": public(cupy),
        "cupy.ndarray": public(cupy.ndarray),
        "cupy.ufunc": public(cupy.ufunc),
        "cupy.random": public(cupy.random),
        "cupy.random.Generator": public(cupy.random.Generator),
        "cupy.cuda": public(cupy.cuda),
        "cupy.cuda.runtime": public(cupy.cuda.runtime),
        "cupy.cuda.Device": public(cupy.cuda.Device),
        "cupy.cuda.Stream": public(cupy.cuda.Stream),
        "cupy.cuda.MemoryPool": public(cupy.cuda.MemoryPool),
        "cupy.lib.stride_tricks": public(cupy.lib.stride_tricks),
        "cupy.linalg": public(cupy.linalg),
        "cupy.RawModule": public(cupy.RawModule),
        "cupy.RawKernel": public(cupy.RawKernel),
    }
    out = Path(__file__).with_name("cupy_names.json")
    out.write_text(json.dumps(names, indent=0) + "\n")
    print(f"wrote {out} (CuPy {cupy.__version__})")


if __name__ == "__main__":
    main()
