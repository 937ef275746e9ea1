# Preparation: outlier removal, 30-frame reduction, the packed frame store and the splits.


rule clean:
    input:
        rules.manifest.output.videos,
    output:
        videos=LAYOUT.clean_videos(data="{data}"),
        summary=report(
            LAYOUT.clean_summary(data="{data}"),
            caption="../report/clean.rst",
            category="Data",
            labels={"data": "{data}", "table": "cleaning"},
        ),
    log:
        result("logs/{data}clean.log"),
    localrule: True
    conda:
        "../envs/prep.yaml"
    params:
        min_frames=config["frames"]["min"],
        max_frames=config["frames"]["max"],
    script:
        "../workflow_scripts/clean.py"


rule select_frames:
    input:
        frames=rules.ingest.output.frames,
        videos=rules.ingest.output.videos,
    output:
        LAYOUT.selection("{batch}", data="{data}"),
    log:
        result("logs/{data}select_frames/{batch}.log"),
    group:
        "prep"
    conda:
        "../envs/prep.yaml"
    params:
        step=config["frames"]["step"],
        n_slots=config["frames"]["count"],
        min_frames=config["frames"]["min"],
        max_frames=config["frames"]["max"],
    script:
        "../workflow_scripts/select_frames.py"


rule reduce:
    input:
        cleaned=rules.clean.output.videos,
        selections=per_batch_of(rules.select_frames.output),
    output:
        LAYOUT.reduced(data="{data}"),
    log:
        result("logs/{data}reduce.log"),
    localrule: True
    conda:
        "../envs/prep.yaml"
    script:
        "../workflow_scripts/reduce.py"


rule pack:
    input:
        zip=batch_zip,
        selection=rules.select_frames.output[0],
    # Names and suffixes are dfdetect.data.store.StorePaths' (dfdetect.layout.STORE_FILES).
    output:
        multiext(LAYOUT.store_prefix("{batch}", data="{data}"), **STORE_FILES),
    log:
        result("logs/{data}pack/{batch}.log"),
    benchmark:
        result("benchmarks/{data}pack/{batch}.tsv")
    group:
        "prep"
    conda:
        "../envs/prep.yaml"
    resources:
        mem_mb=1000,
    params:
        image_size=config["image_size"],
        n_slots=config["frames"]["count"],
        max_image_side=config["max_image_side"],
    script:
        "../workflow_scripts/pack.py"


rule split:
    input:
        cleaned=of_data(TRAINING_DATA, rules.clean.output.videos),
        reduced=of_data(TRAINING_DATA, rules.reduce.output[0]),
        indexes=of_data(TRAINING_DATA, rules.pack.output.index, per_batch=True),
    output:
        train=LAYOUT.split("train"),
        validation=LAYOUT.split("validation"),
        test=LAYOUT.split("test"),
        summary=report(LAYOUT.split_summary(), caption="../report/splits.rst", category="Data"),
    log:
        result("logs/split.log"),
    localrule: True
    conda:
        "../envs/prep.yaml"
    params:
        test=config["split"]["test"],
        validation=config["split"]["validation"],
        seed=config["split"]["seed"],
    script:
        "../workflow_scripts/split.py"


# An evaluation set is never split: every kept, packed video is scored.
rule set_videos:
    input:
        cleaned=lambda wildcards: of_data(LAYOUT.set_data(wildcards.set), rules.clean.output.videos),
        indexes=lambda wildcards: of_data(LAYOUT.set_data(wildcards.set), rules.pack.output.index, per_batch=True),
    output:
        LAYOUT.set_videos("{set}"),
    log:
        result("logs/set_videos/{set}.log"),
    localrule: True
    conda:
        "../envs/prep.yaml"
    script:
        "../workflow_scripts/set_videos.py"
