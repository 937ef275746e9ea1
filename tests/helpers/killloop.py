"""Fault-injection driver for tests/test_train.py: SIGKILL a training job at many points, resume each.

    python -m tests.helpers.killloop SPEC.json   # prints one JSON result per kill point

Keras is imported once, before any TensorFlow op runs; then, for each kill point, one child
process is forked that trains with ``DFDETECT_FAULT_AT`` set (it SIGKILLs itself there), and a
second child resumes the same folder to the end and loads the model it wrote. Forking a process
that has imported but not yet used TensorFlow saves the import (several seconds) per process.
``spec["parallel"]`` kill points run at a time (tracing a model is single-threaded Python).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path


def run_child(spec: dict, out_dir: Path, point: str | None) -> int:
    pid = os.fork()
    if pid == 0:
        code = 3
        os.dup2(2, 1)  # Keras prints its progress to stdout: keep stdout for the results
        try:
            from dfdetect.data.store import StorePaths
            from dfdetect.training.resume import FAULT_ENV
            from dfdetect.training.train import TrainPaths, train_model

            if point is not None:
                os.environ[FAULT_ENV] = point
            train_model(
                spec["name"],
                spec["settings"],
                store_paths=[StorePaths.for_prefix(spec["store_prefix"])],
                train_path=spec["train_path"],
                validation_path=spec["validation_path"],
                paths=TrainPaths.in_folder(out_dir),
                image_size=spec["image_size"],
                backend="tensorflow",
            )
            if point is None:
                import keras

                shape = keras.models.load_model(out_dir / "model.keras").output_shape
                code = 0 if tuple(shape) == (None, 1) else 4
            else:
                code = 5  # the kill point was never reached
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def kill_and_resume(spec: dict, point: str) -> dict:
    from dfdetect.training.resume import latest_state

    out_dir = Path(spec["root"]) / point.replace(":", "_")
    killed = run_child(spec, out_dir, point)
    state = latest_state(out_dir / ".resume")
    resumed = run_child(spec, out_dir, None)
    info = json.loads((out_dir / "train.json").read_text()) if resumed == 0 else {}
    history = (out_dir / "history.csv").read_text().splitlines() if resumed == 0 else []
    return {
        "point": point,
        "killed_rc": killed,
        "state_epochs": state.epochs if state else 0,
        "resume_rc": resumed,
        "resumed_after_epochs": info.get("resumed_after_epochs"),
        "history_epochs": [int(line.split(",")[0]) for line in history[1:]],
        "resume_left": (out_dir / ".resume").exists(),
    }


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[0]).read_text())
    import keras  # noqa: F401  (imported, never used here: the children inherit it)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401

    import dfdetect.training.callbacks  # noqa: F401
    import dfdetect.training.train  # noqa: F401

    results = Path(spec["root"]) / "results"
    results.mkdir(parents=True, exist_ok=True)
    pending, running = list(spec["points"]), {}
    while pending or running:
        while pending and len(running) < spec.get("parallel", 1):
            point = pending.pop(0)
            pid = os.fork()
            if pid == 0:
                code = 3
                try:
                    (results / f"{point.replace(':', '_')}.json").write_text(json.dumps(kill_and_resume(spec, point)))
                    code = 0
                except BaseException:
                    traceback.print_exc()
                finally:
                    os._exit(code)
            running[pid] = point
        pid, _ = os.wait()
        point = running.pop(pid)
        result = results / f"{point.replace(':', '_')}.json"
        print(
            result.read_text() if result.exists() else json.dumps({"point": point, "error": "driver child failed"}),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
