"""Snakemake adapter: decode one batch's selected frames into the frame store."""

from dfdetect.corrupt import read_parquet
from dfdetect.data.store import STATUS_OK, StorePaths, pack_batch
from dfdetect.lock import job_lock
from dfdetect.logutil import log_to

with log_to(snakemake.log[0]) as log, job_lock(snakemake.config["results_dir"], snakemake.log[0]):
    index = pack_batch(
        snakemake.input.zip,
        read_parquet(snakemake.input.selection),
        snakemake.wildcards.batch,
        StorePaths.from_mapping(dict(snakemake.output.items())),
        snakemake.params.image_size,
        snakemake.params.n_slots,
        max_image_side=snakemake.params.max_image_side,
    )
    excluded = index[index["status"] != STATUS_OK]
    log.info("packed %d videos (%d frames); %d excluded", len(index), int(index["n_filled"].sum()), len(excluded))
    for row in excluded.itertuples():
        log.warning("excluded %s: %s (%s)", row.video_id, row.status, row.reason)
