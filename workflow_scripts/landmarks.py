"""Snakemake adapter: MTCNN keypoints for every packed frame of one batch."""

from dfdetect.data.faces import load_detector
from dfdetect.data.landmarks import LandmarkSettings, landmark_store
from dfdetect.lock import job_lock
from dfdetect.logutil import log_to

with log_to(snakemake.log[0]) as log, job_lock(snakemake.config["results_dir"], snakemake.log[0]):
    prefix = snakemake.input.index[: -len(".index.parquet")]
    counts = landmark_store(prefix, load_detector(), LandmarkSettings.from_mapping(snakemake.params.settings))
    log.info(
        "batch %s: face found in %d of %d packed frames (%.1f%%); the others use the fallback geometry",
        snakemake.wildcards.batch,
        counts["found"],
        counts["frames"],
        100 * counts["share"],
    )
