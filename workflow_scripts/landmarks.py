"""Snakemake adapter: face landmarks for every packed frame of one batch."""

from dfdetect.data.landmarks import LandmarkPaths, LandmarkSettings, landmark_store, load_landmark_model
from dfdetect.data.store import StorePaths
from dfdetect.lock import job_lock
from dfdetect.logutil import log_to

with log_to(snakemake.log[0]) as log, job_lock(snakemake.config["results_dir"], snakemake.log[0]):
    settings = LandmarkSettings.from_mapping(snakemake.params.settings)
    (store,) = StorePaths.group(snakemake.input.store)
    counts = landmark_store(
        store, LandmarkPaths.from_mapping(dict(snakemake.output.items())), load_landmark_model(settings)
    )
    log.info(
        "batch %s (%s, %d points): face found in %d of %d packed frames (%.1f%%); "
        "%d frames (%.1f%%) need the fallback ellipse",
        snakemake.wildcards.batch,
        settings.model,
        counts["points"],
        counts["found"],
        counts["frames"],
        100 * counts["share"],
        counts["fallback"],
        100 * counts["fallback_share"],
    )
