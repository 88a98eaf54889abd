# Text stages: vocabularies and the KenLM n-gram on the training text.


rule vocab:
    input:
        manifest=f"{RESULTS}/{{dataset}}/manifest.parquet",
    output:
        gloss=f"{RESULTS}/{{dataset}}/vocab/gloss.json",
        text=f"{RESULTS}/{{dataset}}/vocab/text.json",
    log:
        "logs/vocab/{dataset}.log",
    benchmark:
        "benchmarks/vocab/{dataset}.tsv"
    conda:
        "../envs/hatl.yaml"
    threads: 1
    resources:
        mem_mb=lambda w, attempt: attempt_scaled(1000, attempt),
        runtime=lambda w, attempt: attempt_scaled(10, attempt),
    params:
        config=lambda w: resolved_config(w.dataset),
        settings=lambda w: [eff(w.dataset)["vocab"], ds_cfg(w.dataset)["text"]],
        out_dir=lambda w, output: str(Path(output.text).parent),
    shell:
        "hatl vocab --config {params.config} --dataset {wildcards.dataset} --manifest {input.manifest}"
        " --out-dir {params.out_dir} > {log} 2>&1"


rule lm:
    input:
        manifest=f"{RESULTS}/{{dataset}}/manifest.parquet",
    output:
        arpa=f"{RESULTS}/{{dataset}}/lm/text.{{order}}gram.arpa",
        binary=f"{RESULTS}/{{dataset}}/lm/text.{{order}}gram.bin",
    log:
        "logs/lm/{dataset}.{order}gram.log",
    benchmark:
        "benchmarks/lm/{dataset}.{order}gram.tsv"
    conda:
        "../envs/hatl.yaml"
    threads: 1
    resources:
        mem_mb=lambda w, attempt: attempt_scaled(2000, attempt),
        runtime=lambda w, attempt: attempt_scaled(20, attempt),
    params:
        config=lambda w: resolved_config(w.dataset),
        settings=lambda w: [eff(w.dataset)["lm"], ds_cfg(w.dataset)["text"]],
    shell:
        "hatl lm --config {params.config} --dataset {wildcards.dataset} --manifest {input.manifest}"
        " --out-arpa {output.arpa} --out-binary {output.binary} > {log} 2>&1"
