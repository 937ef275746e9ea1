"""Snakemake adapter: train one run of one model."""

from dfdetect.config import run_settings
from dfdetect.data.landmarks.files import LandmarkPaths
from dfdetect.data.store import StorePaths
from dfdetect.layout import ResultsLayout
from dfdetect.lock import job_lock
from dfdetect.logutil import log_to
from dfdetect.training.train import TrainPaths, train_model

# The trainer's lines (one per epoch) also reach the console of a local run; progress within an
# epoch (dfdetect.training.progress) and Keras's own output stay in the job's log.
with (
    log_to(snakemake.log[0], console=["dfdetect.training.train"]),
    job_lock(snakemake.config["results_dir"], snakemake.log[0]),
):
    train_model(
        snakemake.wildcards.model,
        # params.settings (what changes results) decides reruns; the entry adds its speed keys (loader_workers);
        # the run's entry differs from the model's in its seed only
        run_settings(
            snakemake.config["models"][snakemake.wildcards.model], ResultsLayout.run_number(snakemake.wildcards.run)
        ),
        store_paths=StorePaths.group(snakemake.input.store),
        landmark_paths=LandmarkPaths.group(snakemake.input.landmarks),
        train_path=snakemake.input.train,
        validation_path=snakemake.input.validation,
        paths=TrainPaths.from_mapping(dict(snakemake.output.items())),
        image_size=snakemake.params.image_size,
        backend=snakemake.params.backend,
        encoder_path=snakemake.input.encoder[0] if snakemake.input.encoder else None,
        job_threads=snakemake.threads,
    )
