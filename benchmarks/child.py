"""One measurement process: ``python -m benchmarks.child SCENARIO STEP ...`` (used by run.py).

``STEP`` is ``prepare`` or a job name. Writes a JSON file with the rows and this process's own
memory high-water mark (``VmHWM`` of /proc/self/status, read at the end: the peak resident set
of this process since it was exec'd, every thread included).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import traceback
from pathlib import Path

from .harness import Context, JobSkipped, proc_status_mb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("module")
    parser.add_argument("step")
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    ctx = Context(quick=args.quick, size=args.size, workdir=args.workdir, repeats=args.repeats)
    module = importlib.import_module(args.module)
    output: dict[str, object] = {"rows": [], "load_average_start": os.getloadavg()[0]}
    status = 0
    try:
        if args.step == "prepare":
            module.prepare(ctx)
        else:
            output["rows"] = [m.to_dict() for m in module.measure(args.step, ctx)]
    except JobSkipped as skipped:
        output["skipped"] = str(skipped)
    except Exception as error:
        output["error"] = f"{type(error).__name__}: {error}"
        output["traceback"] = traceback.format_exc()
        status = 1
    output["vm_hwm_mb"] = proc_status_mb("VmHWM")
    output["load_average_end"] = os.getloadavg()[0]
    args.out.write_text(json.dumps(output, indent=1, default=str))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
