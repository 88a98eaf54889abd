# Backbone: pretraining when no checkpoint is configured (the demo's own, or supervised on a named real
# source: backbone.pretrain), then the import of a pyskl-format ST-GCN++ checkpoint onto each dataset's
# MediaPipe graph.


rule pretrain_demo:
    input:
        data=lambda w: f"{RESULTS}/{demo_pretrain_source()}/normalised",
    output:
        f"{RESULTS}/pretrained/stgcnpp_demo.pth",
    log:
        "logs/pretrain_demo.log",
    benchmark:
        "benchmarks/pretrain_demo.tsv"
    conda:
        "../envs/hatl.yaml"
    threads: 1
    resources:
        mem_mb=lambda w, attempt: attempt_scaled(4000, attempt),
        runtime=lambda w, attempt: attempt_scaled(30, attempt),
    params:
        config=lambda w: resolved_config(demo_pretrain_source()),
        settings=lambda w: settings_read_by("pretrain-demo", demo_pretrain_source()),
        split=lambda w: splits_of(demo_pretrain_source())[0],
        fold=lambda w: demo_pretrain_fold(),
    shell:
        "hatl pretrain-demo --config {params.config} --data {input.data}/{params.split}.parquet"
        " --fold {params.fold} --threads {threads} --out {output} > {log} 2>&1"


rule pretrain_data:
    output:
        manifest=f"{RESULTS}/pretraining/{{source}}/manifest.parquet",
        splits=f"{RESULTS}/pretraining/{{source}}/splits.tsv",
        keypoints=directory(f"{RESULTS}/pretraining/{{source}}/keypoints"),
    log:
        "logs/pretrain_data/{source}.log",
    benchmark:
        "benchmarks/pretrain_data/{source}.tsv"
    conda:
        "../envs/hatl.yaml"
    threads: 1
    resources:
        mem_mb=lambda w, attempt: attempt_scaled(2000, attempt),
        runtime=lambda w, attempt: attempt_scaled(15, attempt),
    params:
        config=lambda w: resolved_config(),
        settings=lambda w: settings_read_by("pretrain-data"),
        out_dir=lambda w: f"{RESULTS}/pretraining/{w.source}",
    shell:
        "hatl pretrain-data --config {params.config} --source {wildcards.source}"
        " --out-dir {params.out_dir} > {log} 2>&1"


rule pretrain_supervised:
    input:
        manifest=f"{RESULTS}/pretraining/{{source}}/manifest.parquet",
        keypoints=f"{RESULTS}/pretraining/{{source}}/keypoints",
    output:
        table=f"{RESULTS}/pretraining/{{source}}.csv",
        report=f"{RESULTS}/pretraining/{{source}}.json",
        checkpoint=f"{RESULTS}/pretrained/stgcnpp_{{source}}.pth",
    log:
        "logs/pretrain_supervised/{source}.log",
    benchmark:
        "benchmarks/pretrain_supervised/{source}.tsv"
    conda:
        "../envs/hatl.yaml"
    threads: 2
    resources:
        mem_mb=lambda w, attempt: attempt_scaled(4000, attempt),
        runtime=lambda w, attempt: attempt_scaled(120, attempt),
    params:
        config=lambda w: resolved_config(pretrain_arch_dataset()),
        settings=lambda w: settings_read_by(
            "pretrain-supervised", pretrain_arch_dataset()
        ),
    shell:
        "hatl pretrain-supervised --config {params.config} --manifest {input.manifest}"
        " --keypoints {input.keypoints}/*.parquet --threads {threads}"
        " --csv {output.table} --report {output.report} --out {output.checkpoint} > {log} 2>&1"


rule import_backbone:
    input:
        checkpoint=backbone_checkpoint,
    output:
        weights=f"{RESULTS}/{{dataset}}/backbone/stgcnpp.pt",
        report=f"{RESULTS}/{{dataset}}/backbone/import_report.json",
    log:
        "logs/import_backbone/{dataset}.log",
    benchmark:
        "benchmarks/import_backbone/{dataset}.tsv"
    conda:
        "../envs/hatl.yaml"
    threads: 1
    resources:
        mem_mb=lambda w, attempt: attempt_scaled(2000, attempt),
        runtime=lambda w, attempt: attempt_scaled(10, attempt),
    params:
        config=lambda w: resolved_config(w.dataset),
        settings=lambda w: settings_read_by("import-backbone", w.dataset),
    shell:
        "hatl import-backbone --config {params.config} --checkpoint {input.checkpoint}"
        " --out {output.weights} --report {output.report} > {log} 2>&1"
