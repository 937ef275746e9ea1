# Preparation: outlier removal, 30-frame reduction, the packed frame store and the splits.


rule clean:
    input:
        result("manifests/videos.parquet"),
    output:
        videos=result("clean/videos.parquet"),
        summary=report(result("clean/summary.json"), caption="../report/clean.rst", category="Data"),
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
        frames=result("manifests/frames/{batch}.parquet"),
        videos=result("manifests/videos/{batch}.parquet"),
    output:
        result("reduced/batches/{batch}.parquet"),
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
        cleaned=result("clean/videos.parquet"),
        selections=expand(result("reduced/batches/{batch}.parquet"), batch=BATCHES),
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
        selection=result("reduced/batches/{batch}.parquet"),
    output:
        frames=result("store/{batch}.frames.npy"),
        mask=result("store/{batch}.mask.npy"),
        index=result("store/{batch}.index.parquet"),
    params:
        image_size=config["image_size"],
        n_slots=config["frames"]["count"],
        max_image_side=config["max_image_side"],
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
        cleaned=result("clean/videos.parquet"),
        reduced=result("reduced/frames.parquet"),
        indexes=expand(result("store/{batch}.index.parquet"), batch=BATCHES),
    output:
        train=result("splits/train.parquet"),
        validation=result("splits/validation.parquet"),
        test=result("splits/test.parquet"),
        summary=report(result("splits/summary.json"), caption="../report/splits.rst", category="Data"),
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
