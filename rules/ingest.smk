# Ingest: one job per batch reads the zip's directory and metadata.csv into Parquet manifests.


rule ingest:
    input:
        batch_zip,
    output:
        frames=LAYOUT.frame_manifest("{batch}"),
        videos=LAYOUT.video_manifest("{batch}"),
        skipped=result("manifests/skipped/{batch}.parquet"),
    conda:
        "../envs/prep.yaml"
    # On a cluster, a batch's ingest, select_frames and pack run as one job (local runs ignore groups).
    group:
        "prep"
    log:
        result("logs/ingest/{batch}.log"),
    benchmark:
        result("benchmarks/ingest/{batch}.tsv")
    script:
        "../workflow_scripts/ingest.py"


rule manifest:
    input:
        expand(rules.ingest.output.videos, batch=BATCHES),
    output:
        videos=result("manifests/videos.parquet"),
        histogram=report(
            result("manifests/n_frames_hist.png"),
            caption="../report/n_frames_hist.rst",
            category="Data",
        ),
    params:
        frame_bounds=[config["frames"]["min"], config["frames"]["max"]],
    conda:
        "../envs/prep.yaml"
    log:
        result("logs/manifest.log"),
    localrule: True
    script:
        "../workflow_scripts/manifest.py"
