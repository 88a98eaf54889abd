# Paper artefacts: Table 3 (+ keypoint quality), Table 4 (resolved hyperparameters), Tables 5-7, Figures 2-10.


rule stats:
    input:
        manifests=expand(f"{RESULTS}/{{dataset}}/manifest.parquet", dataset=DATASETS),
        normalised=[
            f"{RESULTS}/{ds}/normalised" for ds in DATASETS if needs_keypoints(ds)
        ],
    output:
        table=report(
            f"{RESULTS}/table3.csv",
            caption="../workflow/report/table3.rst",
            category="Tables",
        ),
        markdown=f"{RESULTS}/table3.md",
        quality=f"{RESULTS}/quality/keypoint_quality.csv",
        figure=report(
            f"{RESULTS}/figures/keypoint_quality.png",
            caption="../workflow/report/keypoint_quality.rst",
            category="Data",
        ),
    log:
        "logs/stats.log",
    benchmark:
        "benchmarks/stats.tsv"
    conda:
        "../envs/hatl.yaml"
    threads: 1
    resources:
        mem_mb=lambda w, attempt: attempt_scaled(4000, attempt),
        runtime=lambda w, attempt: attempt_scaled(20, attempt),
    params:
        config=resolved_config(),
        datasets=DATASETS,
        settings=lambda w: [ds_cfg(ds) for ds in DATASETS],
    shell:
        "hatl stats --config {params.config} --datasets {params.datasets} --manifests {input.manifests}"
        " --normalised-dirs {input.normalised} --out-table {output.table}"
        " --out-quality {output.quality} --out-figure {output.figure} > {log} 2>&1"
