# Preparation: outlier removal, 30-frame reduction, the packed frame store and the splits.


rule clean:
    input:
        rules.manifest.output.videos,
    output:
        videos=result("clean/videos.parquet"),
        summary=report(LAYOUT.clean_summary(), caption="../report/clean.rst", category="Data"),
    params:
        min_frames=config["frames"]["min"],
        max_frames=config["frames"]["max"],
    conda:
        "../envs/prep.yaml"
    log:
        result("logs/clean.log"),
    localrule: True
    script:
        "../workflow_scripts/clean.py"


rule select_frames:
    input:
        frames=rules.ingest.output.frames,
        videos=rules.ingest.output.videos,
    output:
        LAYOUT.selection("{batch}"),
    params:
        step=config["frames"]["step"],
        n_slots=config["frames"]["count"],
        min_frames=config["frames"]["min"],
        max_frames=config["frames"]["max"],
    conda:
        "../envs/prep.yaml"
    group:
        "prep"
    log:
        result("logs/select_frames/{batch}.log"),
    script:
        "../workflow_scripts/select_frames.py"


rule reduce:
    input:
        cleaned=rules.clean.output.videos,
        selections=expand(rules.select_frames.output, batch=BATCHES),
    output:
        result("reduced/frames.parquet"),
    conda:
        "../envs/prep.yaml"
    log:
        result("logs/reduce.log"),
    localrule: True
    script:
        "../workflow_scripts/reduce.py"


rule pack:
    input:
        zip=batch_zip,
        selection=rules.select_frames.output[0],
    output:
        frames=LAYOUT.store_file("{batch}", "frames.npy"),
        mask=LAYOUT.store_file("{batch}", "mask.npy"),
        index=LAYOUT.store_file("{batch}", "index.parquet"),
    params:
        image_size=config["image_size"],
        n_slots=config["frames"]["count"],
    conda:
        "../envs/prep.yaml"
    group:
        "prep"
    log:
        result("logs/pack/{batch}.log"),
    benchmark:
        result("benchmarks/pack/{batch}.tsv")
    resources:
        mem_mb=1000,
    script:
        "../workflow_scripts/pack.py"


rule split:
    input:
        cleaned=rules.clean.output.videos,
        reduced=rules.reduce.output[0],
        indexes=expand(rules.pack.output.index, batch=BATCHES),
    output:
        train=LAYOUT.split("train"),
        validation=LAYOUT.split("validation"),
        test=LAYOUT.split("test"),
        summary=report(LAYOUT.split_summary(), caption="../report/splits.rst", category="Data"),
    params:
        test=config["split"]["test"],
        validation=config["split"]["validation"],
        seed=config["split"]["seed"],
    conda:
        "../envs/prep.yaml"
    log:
        result("logs/split.log"),
    localrule: True
    script:
        "../workflow_scripts/split.py"
