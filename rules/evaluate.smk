# Evaluation: one job per model on the test split (threshold chosen on validation), then the comparison.


rule evaluate:
    input:
        model=result("models/{model}/model.keras"),
        test=result("splits/test.parquet"),
        validation=result("splits/validation.parquet"),
        store=STORE_FILES,
    output:
        predictions=result("eval/{model}/predictions.parquet"),
        validation_predictions=result("eval/{model}/validation_predictions.parquet"),
        metrics=report(
            result("eval/{model}/metrics.json"),
            caption="../report/metrics.rst",
            category="Evaluation",
            subcategory="{model}",
            labels={"model": "{model}", "figure": "metrics"},
        ),
        roc=evaluation_plot("roc.png", "roc"),
        precision_recall=evaluation_plot("precision_recall.png", "precision_recall"),
        confusion=evaluation_plot("confusion_matrix.png", "confusion_matrix"),
        scores=evaluation_plot("score_histograms.png", "score_histograms"),
        submission=result("eval/{model}/submission.csv"),
    params:
        settings=lambda wildcards: config["models"][wildcards.model],
        backend=config["keras_backend"],
        evaluation=config["evaluation"],
        store_prefixes=STORE_PREFIXES,
    conda:
        "../envs/train.yaml"
    log:
        result("logs/evaluate/{model}.log"),
    benchmark:
        result("benchmarks/evaluate/{model}.tsv")
    threads: lambda wildcards: config["models"][wildcards.model]["resources"]["threads"]
    resources:
        gpu=model_resource("gpu"),
        mem_mb=model_resource("mem_mb"),
        runtime=model_resource("runtime"),
    script:
        "../workflow_scripts/evaluate.py"


rule report:
    input:
        clean=result("clean/summary.json"),
        splits=result("splits/summary.json"),
        metrics=expand(result("eval/{model}/metrics.json"), model=MODELS),
        trained=expand(result("models/{model}/train.json"), model=MODELS),
        # for the run summary: what was ingested, kept, dropped and skipped
        videos=result("manifests/videos.parquet"),
        cleaned=result("clean/videos.parquet"),
        store_indexes=expand(result("store/{batch}.index.parquet"), batch=BATCHES),
        skipped=expand(result("manifests/skipped/{batch}.parquet"), batch=BATCHES),
    output:
        csv=report(
            result("report/comparison.csv"),
            caption="../report/comparison.rst",
            category="Comparison",
            labels={"table": "models"},
        ),
        markdown=result("report/comparison.md"),
        summary=report(
            result("report/run_summary.md"),
            caption="../report/run_summary.rst",
            category="Data",
        ),
    params:
        models=config["models"],
        # Derived from the output, not fixed strings, so that they follow a storage prefix (lint).
        eval_dir=lambda wildcards, output: os.path.join(os.path.dirname(os.path.dirname(output.csv)), "eval"),
        models_dir=lambda wildcards, output: os.path.join(os.path.dirname(os.path.dirname(output.csv)), "models"),
    conda:
        "../envs/prep.yaml"
    log:
        result("logs/report.log"),
    localrule: True
    script:
        "../workflow_scripts/report.py"
