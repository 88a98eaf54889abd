# Text stages: vocabularies and the KenLM n-gram, one pair per run fold ({fold}: main, or foldK under
# cross-validation), each built from that fold's training rows only (fold K's dev rows stay out).


rule vocab:
    input:
        manifest=f"{RESULTS}/{{dataset}}/manifest.parquet",
    output:
        gloss=f"{RESULTS}/{{dataset}}/vocab/{{fold}}/gloss.json",
        text=f"{RESULTS}/{{dataset}}/vocab/{{fold}}/text.json",
    log:
        "logs/vocab/{dataset}/{fold}.log",
    benchmark:
        "benchmarks/vocab/{dataset}/{fold}.tsv"
    conda:
        "../envs/hatl.yaml"
    threads: 1
    resources:
        mem_mb=lambda w, attempt: attempt_scaled(1000, attempt),
        runtime=lambda w, attempt: attempt_scaled(10, attempt),
    params:
        config=lambda w: resolved_config(w.dataset),
        settings=lambda w: settings_read_by("vocab", w.dataset),
        out_dir=lambda w, output: str(Path(output.text).parent),
    shell:
        "hatl vocab --config {params.config} --dataset {wildcards.dataset} --manifest {input.manifest}"
        " --fold {wildcards.fold} --out-dir {params.out_dir} > {log} 2>&1"


rule lm:
    input:
        manifest=f"{RESULTS}/{{dataset}}/manifest.parquet",
    output:
        arpa=f"{RESULTS}/{{dataset}}/lm/{{fold}}/text.{{order}}gram.arpa",
        binary=f"{RESULTS}/{{dataset}}/lm/{{fold}}/text.{{order}}gram.bin",
    log:
        "logs/lm/{dataset}/{fold}.{order}gram.log",
    benchmark:
        "benchmarks/lm/{dataset}/{fold}.{order}gram.tsv"
    conda:
        "../envs/hatl.yaml"
    threads: 1
    resources:
        mem_mb=lambda w, attempt: attempt_scaled(2000, attempt),
        runtime=lambda w, attempt: attempt_scaled(20, attempt),
    params:
        config=lambda w: resolved_config(w.dataset),
        settings=lambda w: settings_read_by("lm", w.dataset),
    shell:
        "hatl lm --config {params.config} --dataset {wildcards.dataset} --manifest {input.manifest}"
        " --fold {wildcards.fold} --out-arpa {output.arpa} --out-binary {output.binary} > {log} 2>&1"
