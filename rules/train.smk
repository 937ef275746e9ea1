# Training: one job per configured model and run (a GPU job on a cluster; CPU-only runs work unchanged).
# {run} is "" for run 0 (models/{model}/, the model users deploy) and /runs/R for the other runs of a
# model with `repeats` (models/{model}/runs/R/), which differ only in their seed (seed + R).


rule train:
    input:
        train=rules.split.output.train,
        validation=rules.split.output.validation,
        store=store_files(),
        encoder=encoder_model,
        landmarks=landmark_inputs,
    # Names and paths are dfdetect.training.train.TrainPaths' (dfdetect.layout.TRAIN_FILES); the job writes these.
    output:
        model=LAYOUT.train_file("{model}", "model", "{run}"),
        history=LAYOUT.train_file("{model}", "history", "{run}"),
        plot=report(
            LAYOUT.train_file("{model}", "plot", "{run}"),
            caption="../report/history.rst",
            category="Training",
            subcategory="{model}",
            labels=run_labels(model="{model}", run="{run}", figure="training history"),
        ),
        info=LAYOUT.train_file("{model}", "info", "{run}"),
        samples=report(
            LAYOUT.train_file("{model}", "samples", "{run}"),
            caption="../report/training_samples.rst",
            category="Training",
            subcategory="{model}",
            labels=run_labels(model="{model}", run="{run}", figure="training inputs (16 samples)"),
        ),
    log:
        LAYOUT.train_log("{model}", "{run}"),
    benchmark:
        result("benchmarks/train/{model}{run}.tsv")
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
