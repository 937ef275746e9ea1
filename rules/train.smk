# Training: one job per configured model (a GPU job on a cluster; CPU-only runs work unchanged).


rule train:
    input:
        train=rules.split.output.train,
        validation=rules.split.output.validation,
        store=store_files(),
        encoder=encoder_model,
        landmarks=landmark_inputs,
    # Names and paths are dfdetect.training.train.TrainPaths' (dfdetect.layout.TRAIN_FILES); the job writes these.
    output:
        model=LAYOUT.train_file("{model}", "model"),
        history=LAYOUT.train_file("{model}", "history"),
        plot=report(
            LAYOUT.train_file("{model}", "plot"),
            caption="../report/history.rst",
            category="Training",
            subcategory="{model}",
        ),
        info=LAYOUT.train_file("{model}", "info"),
        samples=report(
            LAYOUT.train_file("{model}", "samples"),
            caption="../report/training_samples.rst",
            category="Training",
            subcategory="{model}",
        ),
    log:
        LAYOUT.train_log("{model}"),
    benchmark:
        result("benchmarks/train/{model}.tsv")
    conda:
        "../envs/train.yaml"
    threads: lambda wildcards: config["models"][wildcards.model]["resources"]["threads"]
    resources:
        gpu=model_resource("gpu"),
        mem_mb=model_resource("mem_mb"),
        runtime=model_resource("runtime"),
    params:
        settings=model_settings,
        image_size=config["image_size"],
        backend=config["keras_backend"],
    script:
        "../workflow_scripts/train.py"
