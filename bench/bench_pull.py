"""Image pull time from a local registry, cold and warm cache, and rootfs provisioning.

Builds a 5-layer image (a busybox base plus 4 layers of incompressible data) with umoci,
pushes it with skopeo to a docker-registry on 127.0.0.1, then measures:
- cold pull: an empty store (every layer downloaded, verified, unpacked);
- warm pull: the same store again (manifest and config fetched, every layer cached);
- provision: a container rootfs from the cached image, per backend available here.
The registry's own rate is measured too (one GET of every layer blob, nothing stored)
as the ceiling of what a pull can do here.

    python -m bench.bench_pull [--layer-mib 8] [--repeat 3]

Needs docker-registry, umoci, skopeo, busybox (Debian packages of the same names,
busybox-static for busybox).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import anyio
import httpx

from mesoslite.proto import mesos_pb2
from mesoslite.runtime.provisioner import BackendName, Provisioner
from mesoslite.runtime.provisioner.backend_choice import overlay_works
from tests.support.images import build_layered_image, push_layout
from tests.support.registry import running_registry

LAYER_COUNT = 5


def _median_s(samples: list[float]) -> str:
    median = statistics.median(samples)
    return f"median {median:.3f} s (min {min(samples):.3f}, max {max(samples):.3f})"


async def _timed_pull(root: Path, reference: str) -> float:
    provisioner = Provisioner(root, backend=BackendName.COPY)
    started = time.perf_counter()
    await provisioner.pull(reference)
    return time.perf_counter() - started


async def _raw_fetch_s(registry_url: str, repository: str, digests: list[str]) -> float:
    async with httpx.AsyncClient(timeout=60) as client:
        started = time.perf_counter()
        for digest in digests:
            async with client.stream("GET", f"{registry_url}/v2/{repository}/blobs/{digest}") as r:
                async for _ in r.aiter_bytes():
                    pass
        return time.perf_counter() - started


async def _timed_provision(root: Path, backend: BackendName, reference: str, count: int) -> float:
    provisioner = Provisioner(root, backend=backend)
    image = mesos_pb2.Image(
        type=mesos_pb2.Image.DOCKER, docker=mesos_pb2.Image.Docker(name=reference)
    )
    await provisioner.pull(reference)
    samples = []
    for index in range(count):
        started = time.perf_counter()
        await provisioner.provision(f"bench-{index}", image)
        samples.append(time.perf_counter() - started)
    for index in range(count):
        await provisioner.destroy(f"bench-{index}")
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer-mib", type=int, default=8, help="size of each data layer")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement")
    arguments = parser.parse_args()
    for tool in ("docker-registry", "umoci", "skopeo", "busybox"):
        if shutil.which(tool) is None:
            raise SystemExit(f"bench_pull needs `{tool}` on PATH")
    busybox = shutil.which("busybox")
    registry_binary = shutil.which("docker-registry")
    assert busybox is not None and registry_binary is not None
    with tempfile.TemporaryDirectory(prefix="bench-pull-") as scratch:
        workdir = Path(scratch)
        image = build_layered_image(
            workdir / "image",
            busybox,
            layer_count=LAYER_COUNT,
            layer_size_bytes=arguments.layer_mib << 20,
            tag="bench",
        )
        manifest = image.manifest()
        layer_digests = [layer["digest"] for layer in manifest["layers"]]
        compressed_bytes = sum(layer["size"] for layer in manifest["layers"])
        with running_registry(registry_binary, workdir / "registry") as registry:
            push_layout(image, registry.host, "bench/pull:1")
            reference = f"{registry.host}/bench/pull:1"

            async def measure() -> None:
                raw = [
                    await _raw_fetch_s(registry.url, "bench/pull", layer_digests)
                    for _ in range(arguments.repeat)
                ]
                cold = []
                warm = []
                for run in range(arguments.repeat):
                    root = workdir / f"store-{run}"
                    cold.append(await _timed_pull(root, reference))
                    warm.append(await _timed_pull(root, reference))
                    shutil.rmtree(root)
                print(
                    f"image: {LAYER_COUNT} layers, {compressed_bytes / 1e6:.1f} MB compressed "
                    f"({arguments.layer_mib} MiB incompressible per data layer)"
                )
                megabytes = compressed_bytes / 1e6
                print(f"raw blob GETs (ceiling): {_median_s(raw)}")
                print(
                    f"cold pull:  {_median_s(cold)}"
                    f" = {megabytes / statistics.median(cold):.0f} MB/s"
                )
                print(f"warm pull:  {_median_s(warm)}")
                backends = [BackendName.COPY]
                probe = workdir / "probe"
                probe.mkdir()
                if overlay_works(probe):
                    backends.insert(0, BackendName.OVERLAY)
                for backend in backends:
                    provision_s = await _timed_provision(
                        workdir / f"provision-{backend.value}", backend, reference, 5
                    )
                    print(f"provision ({backend.value}, cached image): median {provision_s:.3f} s")

            anyio.run(measure)


if __name__ == "__main__":
    main()
