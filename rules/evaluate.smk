# Evaluation: beam search with KenLM fusion on dev and test, then scoring.


rule decode:
    input:
        best=f"{RESULTS}/runs/{{dataset}}/{{model}}/{{task}}/{{strategy}}/{{fold}}/best.pt",
        lm=lambda w: f"{lm_stem(w.dataset, w.fold)}.bin",
        vocab=lambda w: vocab_json(w.dataset, w.fold),
        source=decode_source,
    output:
        dev=f"{RESULTS}/runs/{{dataset}}/{{model}}/{{task}}/{{strategy}}/{{fold}}/decoded.dev.jsonl",
        test=f"{RESULTS}/runs/{{dataset}}/{{model}}/{{task}}/{{strategy}}/{{fold}}/decoded.test.jsonl",
        summary=f"{RESULTS}/runs/{{dataset}}/{{model}}/{{task}}/{{strategy}}/{{fold}}/decoded.summary.json",
    log:
        "logs/decode/{dataset}/{model}/{task}/{strategy}/{fold}.log",
    benchmark:
        "benchmarks/decode/{dataset}/{model}/{task}/{strategy}/{fold}.tsv"
    conda:
        "../envs/hatl.yaml"
    threads: 1
    resources:
        mem_mb=lambda w, attempt: attempt_scaled(4000, attempt),
        runtime=lambda w, attempt: attempt_scaled(60, attempt),
    params:
        config=lambda w: resolved_config(w.dataset),
        settings=lambda w: settings_read_by("decode", w.dataset),
        run_dir=lambda w, input: str(Path(input.best).parent),
        vocab_dir=lambda w, input: str(Path(input.vocab).parent),
        source=lambda w, input: (
            f"--manifest {input.source}"
            if w.task in TEXT_ONLY_TASKS
            else f"--data-dir {input.source}"
        ),
    shell:
        "hatl decode --config {params.config} --run-dir {params.run_dir} {params.source}"
        " --vocab-dir {params.vocab_dir} --lm {input.lm} --out-dir {params.run_dir} > {log} 2>&1"


rule score:
    input:
        dev=f"{RESULTS}/runs/{{dataset}}/{{model}}/{{task}}/{{strategy}}/{{fold}}/decoded.dev.jsonl",
        test=f"{RESULTS}/runs/{{dataset}}/{{model}}/{{task}}/{{strategy}}/{{fold}}/decoded.test.jsonl",
    output:
        f"{RESULTS}/runs/{{dataset}}/{{model}}/{{task}}/{{strategy}}/{{fold}}/scores.json",
    log:
        "logs/score/{dataset}/{model}/{task}/{strategy}/{fold}.log",
    benchmark:
        "benchmarks/score/{dataset}/{model}/{task}/{strategy}/{fold}.tsv"
    conda:
        "../envs/hatl.yaml"
    threads: 1
    resources:
        mem_mb=lambda w, attempt: attempt_scaled(1000, attempt),
        runtime=lambda w, attempt: attempt_scaled(10, attempt),
    params:
        config=lambda w: resolved_config(w.dataset),
        settings=lambda w: settings_read_by("score", w.dataset),
    shell:
        "hatl score --config {params.config} --decoded {input.dev} {input.test} --out {output} > {log} 2>&1"
