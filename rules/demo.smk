# Demo batches in exactly the DFDC face-batch format (only when demo.enabled).


rule demo:
    output:
        result("demo/raw/deepfake-detection-faces-part-{batch}.zip"),
    params:
        batch_index=lambda wildcards: list(BATCHES).index(wildcards.batch),
        spec={key: value for key, value in config["demo"].items() if key not in ("enabled", "batches")},
    conda:
        "../envs/prep.yaml"
    log:
        result("logs/demo/{batch}.log"),
    benchmark:
        result("benchmarks/demo/{batch}.tsv")
    script:
        "../workflow_scripts/demo.py"
