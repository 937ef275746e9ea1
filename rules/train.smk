# Training: one job per configured model (a GPU job on a cluster; CPU-only runs work unchanged).


rule train:
    input:
        train=result("splits/train.parquet"),
        validation=result("splits/validation.parquet"),
        store=STORE_FILES,
        encoder=encoder_model,
        landmarks=recipe_landmarks,
    output:
        model=result("models/{model}/model.keras"),
        history=result("models/{model}/history.csv"),
        plot=report(
            result("models/{model}/history.png"),
            caption="../report/history.rst",
            category="Training",
            subcategory="{model}",
        ),
        info=result("models/{model}/train.json"),
        samples=report(
            result("models/{model}/training_samples.png"),
            caption="../report/training_samples.rst",
            category="Training",
            subcategory="{model}",
        ),
    params:
        settings=lambda wildcards: config["models"][wildcards.model],
        image_size=config["image_size"],
        backend=config["keras_backend"],
        store_prefixes=STORE_PREFIXES,
    conda:
        "../envs/train.yaml"
    log:
        result("logs/train/{model}.log"),
    benchmark:
        result("benchmarks/train/{model}.tsv")
    threads: lambda wildcards: config["models"][wildcards.model]["resources"]["threads"]
    resources:
        gpu=model_resource("gpu"),
        mem_mb=model_resource("mem_mb"),
        runtime=model_resource("runtime"),
    script:
        "../workflow_scripts/train.py"
