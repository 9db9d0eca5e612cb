"""The GPU check's report as tables for people (the JSON report has everything)."""

from __future__ import annotations


def print_summary(report: dict) -> None:
    env = report.get("environment", {})
    print(f"\n==== GPU check ({report['mode']}) on {report['host']}, {report['duration_s']} s")
    for gpu in env.get("nvidia_smi", {}).get("gpus", []):
        print(
            f"GPU: {gpu['name']}, driver {gpu['driver_version']}, {gpu['memory.total']}, "
            f"driver CUDA {env['nvidia_smi']['driver_cuda_version']}"
        )
    if env:
        print(
            f"onnxruntime {env['onnxruntime']} ({env['onnxruntime_package']}, CUDA build "
            f"{env['onnxruntime_cuda_build']}), providers {env['available_providers']}, "
            f"python {env['python']}, {env['cores']} cores"
        )
    if report.get("parity"):
        print("\nparity vs CPU        provider                 max|diff|  same argmax")
        for r in report["parity"]:
            print(
                f"  {r['model']:9} b{r['batch']:<4}  {r['provider']:24} {r['max_abs_diff']:9.2e}"
                f"  {r['same_argmax']:.3f}{'' if r['ok'] else '  FAILED'}"
            )
    if report.get("throughput"):
        print("\nraw ONNX Runtime      provider                 inferences/s    images/s")
        for r in report["throughput"]:
            print(
                f"  {r['model']:9} b{r['batch']:<4}  {r['provider']:24}"
                f" {r['inferences_per_s']:12,.0f} {r['images_per_s']:11,.0f}"
            )
    if report.get("load"):
        print(
            f"\nmodel_api, {report['load_model']}, no Redis     req/s    p50 ms   p99 ms  errors  "
            "server cores  client cpu  GPU util"
        )
        for r in report["load"]:
            if "skipped" in r or "requests_per_s" not in r:
                print(
                    f"  {r.get('provider_asked', r.get('provider'))} x{r['workers']}: "
                    f"{r.get('skipped', 'failed')}"
                )
                continue
            gpu = r.get("gpu") or {}
            batched = "b" if r.get("batching") else " "
            print(
                f"  {r['ready'].get('provider', '?'):23}{batched} x{r['workers']:<3} "
                f"{r['requests_per_s']:8,.0f} {r['latency_ms']['p50']:8.1f} "
                f"{r['latency_ms']['p99']:8.1f} {r['errors']:7}  {r['server_cpu_cores']:12}"
                f"  {r['client_cpu_share_max']:10}  {gpu.get('util_mean_pct', '-')}"
            )
    print("\nPASSED" if report["passed"] else "\nFAILED:\n  " + "\n  ".join(report["failures"]))
