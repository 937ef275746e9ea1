# Ingest: one job per batch reads the zip's directory and metadata.csv into Parquet manifests.


rule ingest:
    input:
        batch_zip,
    output:
        frames=LAYOUT.frame_manifest("{batch}", data="{data}"),
        videos=LAYOUT.video_manifest("{batch}", data="{data}"),
        skipped=LAYOUT.skipped_manifest("{batch}", data="{data}"),
    log:
        result("logs/{data}ingest/{batch}.log"),
    benchmark:
        result("benchmarks/{data}ingest/{batch}.tsv")
    # On a cluster, a batch's ingest, select_frames and pack run as one job (local runs ignore groups).
    group:
        "prep"
    conda:
        "../envs/prep.yaml"
    script:
        "../workflow_scripts/ingest.py"


rule manifest:
    input:
        per_batch_of(rules.ingest.output.videos),
    output:
        videos=LAYOUT.videos(data="{data}"),
        histogram=report(
            result("{data}manifests/n_frames_hist.png"),
            caption="../report/n_frames_hist.rst",
            category="Data",
            labels=data_labels("face files per video (histogram)"),
        ),
    log:
        result("logs/{data}manifest.log"),
    localrule: True
    conda:
        "../envs/prep.yaml"
    params:
        frame_bounds=[config["frames"]["min"], config["frames"]["max"]],
    script:
        "../workflow_scripts/manifest.py"
