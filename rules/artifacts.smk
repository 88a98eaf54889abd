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
        settings=lambda w: settings_read_by("stats"),
    shell:
        "hatl stats --config {params.config} --datasets {params.datasets} --manifests {input.manifests}"
        " --normalised-dirs {input.normalised} --out-table {output.table}"
        " --out-quality {output.quality} --out-figure {output.figure} > {log} 2>&1"


rule table4:
    output:
        csv=report(
            f"{RESULTS}/table4.csv",
            caption="../workflow/report/table4.rst",
            category="Tables",
        ),
        markdown=f"{RESULTS}/table4.md",
        sidecar=f"{RESULTS}/table4.json",
    log:
        "logs/table4.log",
    benchmark:
        "benchmarks/table4.tsv"
    conda:
        "../envs/hatl.yaml"
    threads: 1
    resources:
        mem_mb=lambda w, attempt: attempt_scaled(1000, attempt),
        runtime=lambda w, attempt: attempt_scaled(10, attempt),
    params:
        dataset=lambda w: table4_dataset(),
        config=lambda w: resolved_config(table4_dataset()),
        settings=lambda w: settings_read_by("table", table4_dataset()),
    shell:
        "hatl table --config {params.config} --table 4 --dataset {params.dataset} --out {output.csv} > {log} 2>&1"


rule results_table:
    input:
        scores=lambda w: paper_inputs(w, scores_for),
        decoded=lambda w: paper_inputs(w, decoded_tests_for),
        # backbone provenance and the full baseline's layer decay per row
        summaries=lambda w: paper_inputs(w, summaries_for),
    output:
        csv=report(
            f"{RESULTS}/table{{number}}.csv",
            caption="../workflow/report/results_table.rst",
            category="Tables",
        ),
        markdown=f"{RESULTS}/table{{number}}.md",
        sidecar=f"{RESULTS}/table{{number}}.json",
    log:
        "logs/table{number}.log",
    benchmark:
        "benchmarks/table{number}.tsv"
    wildcard_constraints:
        number="5|6|7",
    conda:
        "../envs/hatl.yaml"
    threads: 1
    resources:
        mem_mb=lambda w, attempt: attempt_scaled(2000, attempt),
        runtime=lambda w, attempt: attempt_scaled(20, attempt),
    params:
        dataset=table_dataset,
        config=lambda w: resolved_config(table_dataset(w)),
        settings=lambda w: settings_read_by("table", table_dataset(w)),
    shell:
        "hatl table --config {params.config} --table {wildcards.number} --dataset {params.dataset}"
        " --scores {input.scores} --out {output.csv} > {log} 2>&1"


rule figure:
    input:
        summaries=lambda w: paper_inputs(w, summaries_for, FIGURE_TABLE),
        logs=lambda w: paper_inputs(w, logs_for, FIGURE_TABLE),
    output:
        png=report(
            f"{RESULTS}/figures/figure{{number}}.png",
            caption="../workflow/report/figure.rst",
            category="Figures",
        ),
        pdf=f"{RESULTS}/figures/figure{{number}}.pdf",
        sidecar=f"{RESULTS}/figures/figure{{number}}.json",
    log:
        "logs/figure{number}.log",
    benchmark:
        "benchmarks/figure{number}.tsv"
    wildcard_constraints:
        number=r"\d+",
    conda:
        "../envs/hatl.yaml"
    threads: 1
    resources:
        mem_mb=lambda w, attempt: attempt_scaled(2000, attempt),
        runtime=lambda w, attempt: attempt_scaled(10, attempt),
    params:
        dataset=figure_dataset,
        config=lambda w: resolved_config(figure_dataset(w)),
        settings=lambda w: settings_read_by("figure", figure_dataset(w)),
        runs=lambda w: trained_runs_of(figure_dataset(w)),
    shell:
        "hatl figure --config {params.config} --figure {wildcards.number} --dataset {params.dataset}"
        " --runs {params.runs} --out {output.png} > {log} 2>&1"


rule learning_curves:
    input:
        summaries=lambda w: summaries_for(w.dataset),
        logs=lambda w: logs_for(w.dataset),
    output:
        png=report(
            f"{RESULTS}/figures/learning_curves_{{dataset}}.png",
            caption="../workflow/report/learning_curves.rst",
            category="Figures",
        ),
        pdf=f"{RESULTS}/figures/learning_curves_{{dataset}}.pdf",
        sidecar=f"{RESULTS}/figures/learning_curves_{{dataset}}.json",
    log:
        "logs/learning_curves/{dataset}.log",
    benchmark:
        "benchmarks/learning_curves/{dataset}.tsv"
    conda:
        "../envs/hatl.yaml"
    threads: 1
    resources:
        mem_mb=lambda w, attempt: attempt_scaled(2000, attempt),
        runtime=lambda w, attempt: attempt_scaled(10, attempt),
    params:
        config=lambda w: resolved_config(w.dataset),
        settings=lambda w: settings_read_by("figure", w.dataset),
        runs=lambda w: trained_runs_of(w.dataset),
    shell:
        "hatl figure --config {params.config} --figure curves --dataset {wildcards.dataset}"
        " --runs {params.runs} --out {output.png} > {log} 2>&1"
