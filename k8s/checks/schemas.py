"""Strict validation of every object against the schemas of one Kubernetes version."""

import kubernetes_validate

from .manifests import Manifest, name_of


def check_schemas(objects: list[Manifest], version: str) -> list[str]:
    """Strict schema validation; an unknown field, or an apiVersion or kind this Kubernetes lacks, is an error."""
    problems = []
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            # kubernetes-validate's own command exits 0 here; for us a removed API is an error.
            problems.append(
                f"{name_of(obj)}: {obj.get('apiVersion')} {obj.get('kind')} does not exist in Kubernetes {version}; "
                "use an apiVersion and kind that this version serves"
            )
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(part) for part in error.path)
            problems.append(f"{name_of(obj)}: {path}: {error.message}")
    return problems
